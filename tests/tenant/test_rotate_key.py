"""Rotating the secret key with ``qp-tenant rotate-key``, against real tenant processes.

The rolling procedure of docs/deployment.md ("Rotating it"): start on key A; restart on key B
with A as a previous key (old workflow URLs, revealing and IT Glue keep working); run
``rotate-key``; restart on B alone (everything still works, nothing readable with A is left).
Runs on SQLite and, with ``--db postgresql``, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.config import Settings
from qp_tenant.crypto import KEY_FILE_NAME, PREVIOUS_KEY_FILE_NAME, Crypto, SecretKeyError
from qp_tenant.db import create_engine, session_factory
from qp_tenant.domain.pipeline import reset_value_key
from qp_tenant.models import (
    Account,
    Customer,
    ITGlueIntegration,
    Microsoft365Link,
    ResetJob,
    Tenant,
    WorkflowToken,
)
from tests.conftest import ITGLUE_KEY
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.tenant.conftest import IT_GLUE_BODY, sign_in

T = TypeVar("T")

KEY_A = secrets.token_urlsafe(48)
KEY_B = secrets.token_urlsafe(48)
KEY_WRONG = secrets.token_urlsafe(48)


# -- helpers ---------------------------------------------------------------------------------
def run_db(tenant: TenantProcess, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``action`` in a session on the tenant's own database (SQLite or PostgreSQL)."""

    async def run() -> T:
        engine = create_engine(Settings(data_dir=tenant.data_dir,
                                        database_url=tenant.database_url))
        try:
            async with session_factory(engine)() as session:
                result = await action(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


def stored_secrets(tenant: TenantProcess) -> dict[str, Any]:
    """Every encrypted value and token HMAC in the database, by table and row."""

    async def read(session: AsyncSession) -> dict[str, Any]:
        return {
            "integrations": {r.id: r.api_key_encrypted for r in
                             (await session.execute(select(ITGlueIntegration))).scalars()},
            "tokens": {r.id: (r.token_hmac, r.token_encrypted) for r in
                       (await session.execute(select(WorkflowToken))).scalars()},
            "jobs": {r.id: (r.password_encrypted, r.password_hash) for r in
                     (await session.execute(select(ResetJob))).scalars()},
        }

    return run_db(tenant, read)


def set_keys(tenant: TenantProcess, current: str, previous: list[str] | None = None) -> None:
    """What an admin puts in /etc/qp-tenant/env; used by the next restart and CLI run."""
    tenant.env["QP_SECRET_KEY"] = current
    if previous:
        tenant.env["QP_PREVIOUS_SECRET_KEYS"] = ",".join(previous)
    else:
        tenant.env.pop("QP_PREVIOUS_SECRET_KEYS", None)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def assert_tenant_works(tenant: TenantProcess, urls: list[str], current_url: str,
                        name: str) -> None:
    """Old workflow URLs are accepted, reveal shows the URL, the IT Glue key still works."""
    with httpx.Client(base_url=tenant.url, timeout=10) as http:
        api = sign_in(http)
        for n, url in enumerate(urls):
            r = http.post(f"/hooks/itglue/{token_of(url)}",
                          json={**IT_GLUE_BODY, "resourceName": f"{name} {n}"})
            assert r.status_code == 202, r.text
            assert r.json()["status"] == "accepted"
        revealed = api.post("/api/v1/integrations/itglue/workflow-token/reveal")
        assert revealed.status_code == 200, revealed.text
        assert token_of(revealed.json()["url"]) == token_of(current_url)
        imported = api.post("/api/v1/customers/import-itglue")  # decrypts the IT Glue API key
        assert imported.status_code == 200, imported.text


def rotate(tenant: TenantProcess, *args: str) -> tuple[int, str, str]:
    done = tenant.cli("rotate-key", *args, check=False)
    for key in (KEY_A, KEY_B, KEY_WRONG):
        assert key not in done.stdout + done.stderr
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def keyed_tenant(tmp_path: Path, tenant_template: Path,
                 itglue_emulator: EmulatorProcess) -> Iterator[TenantProcess]:
    """A tenant on ``QP_SECRET_KEY`` = A with IT Glue connected, not started yet."""
    data = tmp_path / "tenant-data"
    shutil.copytree(tenant_template, data)
    tenant = TenantProcess(data, env={"QP_ITGLUE_BASE_URL": itglue_emulator.url,
                                      "QP_PUBLIC_URL": "", "QP_SECRET_KEY": KEY_A})
    try:
        yield tenant
    finally:
        tenant.stop()


def seed(tenant: TenantProcess) -> tuple[str, str]:
    """Connect IT Glue and make two working workflow URLs (the older one in its grace period).
    Returns (older URL, current URL)."""
    tenant.start()
    with httpx.Client(base_url=tenant.url, timeout=10) as http:
        api = sign_in(http)
        r = api.put("/api/v1/integrations/itglue", json={"region": "us", "api_key": ITGLUE_KEY})
        assert r.status_code == 200, r.text
        older = api.generate()
        current = api.generate(grace_hours=24)
    return older, current


# -- the rolling rotation ----------------------------------------------------------------------
def test_rolling_rotation_keeps_urls_reveal_and_itglue_working(keyed_tenant: TenantProcess
                                                               ) -> None:
    tenant = keyed_tenant
    older, current = seed(tenant)
    before = stored_secrets(tenant)

    # (a) every process restarts with B as the key and A as a previous key.
    set_keys(tenant, KEY_B, [KEY_A])
    tenant.restart()
    assert_tenant_works(tenant, [older, current], current, "before rotate-key")
    assert stored_secrets(tenant)["tokens"] == before["tokens"]  # nothing rewritten yet

    # (b) rotate-key, once, while the process serves.
    code, out, err = rotate(tenant)
    assert code == 0, err
    assert "re-encrypted 3 secrets, re-hashed 2 workflow tokens" in out
    assert "you can now remove QP_PREVIOUS_SECRET_KEYS" in out
    assert_tenant_works(tenant, [older, current], current, "after rotate-key")
    code, out, err = rotate(tenant)  # running it again is harmless
    assert code == 0, err
    assert "re-encrypted 0 secrets, re-hashed 0 workflow tokens" in out

    # (c) A is removed everywhere.
    set_keys(tenant, KEY_B)
    tenant.restart()
    assert_tenant_works(tenant, [older, current], current, "on B alone")

    # Nothing in the database is readable with A any more; everything is with B alone.
    after = stored_secrets(tenant)
    old_key, new_key = Crypto(KEY_A.encode()), Crypto(KEY_B.encode())
    values = list(after["integrations"].values())
    values += [encrypted for _, encrypted in after["tokens"].values()]
    assert len(values) == 3
    for value in values:
        with pytest.raises(SecretKeyError):
            old_key.decrypt(value)
    assert new_key.decrypt(after["integrations"][min(after["integrations"])]) == ITGLUE_KEY
    assert {new_key.decrypt(encrypted) for _, encrypted in after["tokens"].values()} == {
        token_of(older), token_of(current)}
    for token_hmac, encrypted in after["tokens"].values():
        assert token_hmac == new_key.lookup_hash(new_key.decrypt(encrypted))

    tenant.stop()
    logs = tenant.log_text()
    for secret in (KEY_A, KEY_B, token_of(older), token_of(current), ITGLUE_KEY):
        assert secret not in logs


def test_a_value_no_key_decrypts_fails_clearly_and_changes_nothing(keyed_tenant: TenantProcess
                                                                   ) -> None:
    tenant = keyed_tenant
    older, current = seed(tenant)
    before = stored_secrets(tenant)
    ids = {table: sorted(rows) for table, rows in before.items()}

    set_keys(tenant, KEY_B, [KEY_WRONG])  # the old key A is not among the previous keys
    code, out, err = rotate(tenant)
    assert code == 1
    assert out == ""
    assert (f"cannot be decrypted with QP_SECRET_KEY or any key in QP_PREVIOUS_SECRET_KEYS: "
            f"itglue_integrations row {ids['integrations'][0]} (api_key_encrypted), "
            f"workflow_tokens row {ids['tokens'][0]} (token_encrypted), "
            f"workflow_tokens row {ids['tokens'][1]} (token_encrypted)") in err
    assert "nothing was changed" in err
    assert "Traceback" not in err
    assert stored_secrets(tenant) == before

    # The processes still on A are untouched by the failed attempt.
    assert_tenant_works(tenant, [older, current], current, "after the failed rotation")


def test_an_in_flight_reset_payload_and_its_value_hash_move_to_the_new_key(
        keyed_tenant: TenantProcess) -> None:
    tenant = keyed_tenant
    tenant.cli("migrate")
    old_key, new_key = Crypto(KEY_A.encode()), Crypto(KEY_B.encode())
    password = "Winter-Harbor-42!"  # noqa: S105 - test data

    async def queue_job(session: AsyncSession) -> tuple[int, int]:
        acme = (await session.scalars(select(Tenant).where(Tenant.slug == "acme"))).one()
        customer = Customer(tenant_id=acme.id, name="Northwind")
        session.add(customer)
        await session.flush()
        account = Account(tenant_id=acme.id, customer_id=customer.id, kind="domain",
                          display_name="Northwind admin", source_type="ad",
                          identity="NWT\\administrator", itglue_password_id="5001")
        session.add(account)
        await session.flush()
        job = ResetJob(tenant_id=acme.id, state="queued", itglue_password_id="5001",
                       account_id=account.id,
                       password_encrypted=old_key.encrypt(password),
                       password_hash=old_key.lookup_hash(reset_value_key(account.id, password)))
        session.add(job)
        await session.flush()
        return job.id, account.id

    job_id, account_id = run_db(tenant, queue_job)
    set_keys(tenant, KEY_B, [KEY_A])
    code, out, err = rotate(tenant)
    assert code == 0, err
    assert "re-encrypted 1 secrets, re-hashed 0 workflow tokens and 1 in-flight reset" in out
    encrypted, value_hash = stored_secrets(tenant)["jobs"][job_id]
    assert new_key.decrypt(encrypted) == password
    assert not old_key.is_current(encrypted)
    assert value_hash == new_key.lookup_hash(reset_value_key(account_id, password))


def test_a_microsoft_365_client_secret_moves_to_the_new_key(keyed_tenant: TenantProcess
                                                           ) -> None:
    tenant = keyed_tenant
    tenant.cli("migrate")
    old_key, new_key = Crypto(KEY_A.encode()), Crypto(KEY_B.encode())
    client_secret = "m365~client-secret-VALUE"  # noqa: S105 - test data

    async def link(session: AsyncSession) -> int:
        acme = (await session.scalars(select(Tenant).where(Tenant.slug == "acme"))).one()
        customer = Customer(tenant_id=acme.id, name="Northwind")
        session.add(customer)
        await session.flush()
        row = Microsoft365Link(tenant_id=acme.id, customer_id=customer.id,
                               directory_id="8a6b1c2d-0000-4000-8000-00000000a001",
                               client_id="5f0c9d1e-0000-4000-8000-00000000b001",
                               client_secret_encrypted=old_key.encrypt(client_secret),
                               secret_hint="…ALUE")
        session.add(row)
        await session.flush()
        return row.id

    async def stored(session: AsyncSession) -> str:
        return (await session.scalars(select(Microsoft365Link.client_secret_encrypted))).one()

    link_id = run_db(tenant, link)
    set_keys(tenant, KEY_B, [KEY_WRONG])
    code, _, err = rotate(tenant)
    assert code == 1 and f"m365_links row {link_id} (client_secret_encrypted)" in err
    set_keys(tenant, KEY_B, [KEY_A])
    code, out, err = rotate(tenant)
    assert code == 0, err
    assert "re-encrypted 1 secrets" in out
    encrypted = run_db(tenant, stored)
    assert new_key.decrypt(encrypted) == client_secret
    with pytest.raises(SecretKeyError):
        old_key.decrypt(encrypted)
    assert client_secret not in out + err


# -- installs that keep the key in the data folder -----------------------------------------------
def test_a_key_file_install_rotates_with_new_key_file(tmp_path: Path, tenant_template: Path,
                                                      itglue_emulator: EmulatorProcess) -> None:
    data = tmp_path / "tenant-data"
    shutil.copytree(tenant_template, data)
    tenant = TenantProcess(data, env={"QP_ITGLUE_BASE_URL": itglue_emulator.url,
                                      "QP_PUBLIC_URL": ""})
    tenant.env.pop("QP_SECRET_KEY", None)
    tenant.env.pop("QP_PREVIOUS_SECRET_KEYS", None)
    key_file, previous_file = data / KEY_FILE_NAME, data / PREVIOUS_KEY_FILE_NAME
    try:
        older, current = seed(tenant)
        old_key = key_file.read_bytes()
        tenant.stop()

        # A key the data was not stored with is refused before any file is touched.
        key_file.write_bytes(KEY_WRONG.encode() + b"\n")
        code, _, err = rotate(tenant, "--new-key-file")
        assert code == 1 and "cannot be decrypted with secret.key" in err
        assert key_file.read_bytes() == KEY_WRONG.encode() + b"\n"
        assert not previous_file.exists()
        key_file.write_bytes(old_key)

        code, out, err = rotate(tenant, "--new-key-file")
        assert code == 0, err
        assert "re-encrypted 3 secrets, re-hashed 2 workflow tokens" in out
        new_key = key_file.read_bytes()
        assert new_key.strip() and new_key != old_key
        assert new_key.strip().decode() not in out + err
        assert old_key.strip().decode() not in out + err
        assert previous_file.read_bytes().split() == [old_key.strip()]
        for path in (key_file, previous_file):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600

        tenant.start()
        assert_tenant_works(tenant, [older, current], current, "on the new key file")
        code, out, err = rotate(tenant)  # idempotent; reads secret.key.previous too
        assert code == 0, err
        assert "re-encrypted 0 secrets, re-hashed 0 workflow tokens" in out

        previous_file.unlink()  # the admin archives the old key with older backups
        tenant.restart()
        assert_tenant_works(tenant, [older, current], current, "without the previous file")
    finally:
        tenant.stop()


def test_new_key_file_is_refused_when_the_key_comes_from_the_environment(
        keyed_tenant: TenantProcess) -> None:
    keyed_tenant.cli("migrate")
    code, out, err = rotate(keyed_tenant, "--new-key-file")
    assert code == 2 and out == ""
    assert "QP_SECRET_KEY is set" in err
    assert not (keyed_tenant.data_dir / PREVIOUS_KEY_FILE_NAME).exists()


# -- the pieces ----------------------------------------------------------------------------------
def test_crypto_reads_with_previous_keys_and_writes_with_the_current_one() -> None:
    old, new = Crypto(KEY_A.encode()), Crypto(KEY_B.encode(), [KEY_A.encode()])
    stored = old.encrypt("ITG.secret")
    assert new.decrypt(stored) == "ITG.secret" and not new.is_current(stored)
    assert new.is_current(new.encrypt("x")) and not old.is_current(new.encrypt("x"))
    with pytest.raises(SecretKeyError):
        old.decrypt(new.encrypt("x"))
    assert new.lookup_hash("qpwt_t") == Crypto(KEY_B.encode()).lookup_hash("qpwt_t")
    assert new.lookup_hashes("qpwt_t") == [new.lookup_hash("qpwt_t"), old.lookup_hash("qpwt_t")]
    assert new.lookup_aliases(["qpwt_t"]) == {old.lookup_hash("qpwt_t"): new.lookup_hash("qpwt_t"),
                                              new.lookup_hash("qpwt_t"): new.lookup_hash("qpwt_t")}
    assert Crypto(KEY_B.encode(), [KEY_B.encode()]).lookup_hashes("t") == [new.lookup_hash("t")]
    assert KEY_A not in repr(new) and KEY_B not in repr(new)


def test_previous_keys_are_a_comma_separated_setting_kept_out_of_repr(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QP_SECRET_KEY", KEY_B)
    monkeypatch.setenv("QP_PREVIOUS_SECRET_KEYS", f" {KEY_A} ,,{KEY_WRONG}")
    settings = Settings()
    assert settings.previous_secret_keys == [KEY_A, KEY_WRONG]
    for key in (KEY_A, KEY_B, KEY_WRONG):
        assert key not in repr(settings) and key not in str(settings)
    monkeypatch.delenv("QP_PREVIOUS_SECRET_KEYS")
    assert Settings().previous_secret_keys == []
