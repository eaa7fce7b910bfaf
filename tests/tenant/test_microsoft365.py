"""Microsoft 365 accounts through a real tenant process, the IT Glue emulator and the TLS
Microsoft 365 emulator (Entra ID login + Graph): linking, sync, cloud resets, refusals."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ITGLUE_KEY
from tests.support.m365 import EntraTenant, M365EmulatorProcess
from tests.support.pipeline import (
    change_in_itglue,
    db_rows,
    fire,
    import_customers,
    start_tenant,
    trigger_body,
    wait_for_trigger_event,
)
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.support.smtp import SmtpServer, smtp_server
from tests.tenant.conftest import sign_in

__all__ = ["smtp_server"]  # fixture used by name below

NORTHWIND_ORG = 101
# The IT Glue emulator's demo passwords of Northwind Traders (seed_demo).
DOMAIN_ADMIN, BACKUP_SERVICE, RECEPTION_PC, GLOBAL_ADMIN = 5001, 5002, 5003, 5004
GLOBAL_ADMIN_UPN = "admin@northwindtraders.onmicrosoft.com"
SECRET = "Qp8~m365.client-secret-VALUE-0001"  # noqa: S105 - a throw-away test secret
PRIVILEGED = ["Privileged Authentication Administrator"]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def m365(tmp_path_factory: pytest.TempPathFactory) -> Iterator[M365EmulatorProcess]:
    """One Microsoft 365 emulator for the module; each test makes its own Entra tenant."""
    emulator = M365EmulatorProcess(tmp_path_factory.mktemp("m365-tls"))
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def itglue() -> Iterator[EmulatorProcess]:
    """Its own IT Glue emulator: these tests change passwords in it."""
    emulator = EmulatorProcess(api_key=ITGLUE_KEY, seed_demo=True)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


class World:
    """A tenant with IT Glue connected and its organizations imported as customers."""

    def __init__(self, tenant: TenantProcess, itglue: EmulatorProcess, m365: M365EmulatorProcess):
        self.tenant = tenant
        self.itglue = itglue
        self.m365 = m365
        self.http = httpx.Client(base_url=tenant.url, timeout=30)
        self.api = sign_in(self.http)
        customers = import_customers(self.api)
        self.northwind = customers["Northwind Traders"]
        self.responses: list[str] = []
        self.triggers = 0

    def link(self, entra: EntraTenant, customer: int | None = None,
             secret: str | None = None) -> httpx.Response:
        r = self.api.put(f"/api/v1/customers/{customer or self.northwind}/microsoft365",
                         json=entra.link_body(secret))
        self.responses.append(r.text)
        return r

    def sync(self) -> dict[str, Any]:
        r = self.api.post(f"/api/v1/customers/{self.northwind}/microsoft365/sync")
        assert r.status_code == 202, r.text
        self.responses.append(r.text)
        return dict(r.json())

    def accounts(self) -> list[dict[str, Any]]:
        r = self.api.get("/api/v1/accounts", params={"customer_id": self.northwind})
        self.responses.append(r.text)
        return list(r.json()["accounts"])

    def add_cloud_account(self, upn: str, password_id: int,
                          kind: str = "end_user") -> dict[str, Any]:
        r = self.api.post("/api/v1/accounts", json={
            "customer_id": self.northwind, "kind": kind, "display_name": upn,
            "source": {"type": "entra_id", "identity": upn},
            "itglue_password_id": password_id})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def change_in_itglue(self, password_id: int, value: str) -> None:
        change_in_itglue(self.itglue.url, password_id, value, "Dana Whitfield")

    def trigger(self, url: str, password_id: int) -> int:
        # A distinct name each time: the same body within the duplicate window is one trigger.
        self.triggers += 1
        return fire(url, trigger_body(NORTHWIND_ORG, password_id,
                                      f"Password {password_id} (change {self.triggers})"))

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def make_world(tmp_path: Path, tenant_template: Path, itglue: EmulatorProcess,
               m365: M365EmulatorProcess) -> Iterator[Any]:
    started: list[tuple[TenantProcess, World]] = []

    def make(env: dict[str, str] | None = None) -> World:
        tenant = start_tenant(tmp_path, tenant_template, itglue.url,
                              env={**m365.tenant_env(), **(env or {})},
                              name=f"tenant-{len(started)}")
        world = World(tenant, itglue, m365)
        started.append((tenant, world))
        return world

    yield make
    for tenant, world in started:
        world.close()
        tenant.stop()


def northwind_users(extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [
        {"upn": "Admin@NorthwindTraders.onmicrosoft.com", "display_name": "Global admin",
         "administrator": True},
        {"upn": "dana@northwindtraders.com", "display_name": "Dana Whitfield"},
        {"upn": "reception@northwindtraders.com", "display_name": "Reception desk"},
        {"upn": "jsmith@northwindtraders.com", "display_name": "John Smith",
         "on_premises_sync_enabled": True},
        *(extra or []),
    ]


def assert_secret_absent(world: World, *secrets: str) -> None:
    """Not in the tenant's logs, its events, or any response the test received."""
    events = json.dumps(world.api.events(limit=500))
    logs = world.tenant.log_text()
    for secret in secrets:
        assert secret not in logs
        assert secret not in events
        for text in world.responses:
            assert secret not in text


# --------------------------------------------------------------------------------- linking
def test_a_verified_link_is_saved_encrypted_and_shows_only_a_hint(
        make_world: Any, m365: M365EmulatorProcess) -> None:
    world = make_world()
    entra = m365.add_tenant(northwind_users(), secret=SECRET, directory_roles=PRIVILEGED)
    r = world.link(entra)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["linked"] is True
    assert body["tenant_id"] == entra.tenant_id and body["client_id"] == entra.client_id
    assert body["secret_hint"] == "…" + SECRET[-4:]
    assert body["directory_roles"] == PRIVILEGED
    assert body["last_verified_at"] and body["last_error"] is None
    r = world.api.get(f"/api/v1/customers/{world.northwind}/microsoft365")
    world.responses.append(r.text)
    assert r.json() == body
    [stored] = db_rows(world.tenant, "SELECT client_secret_encrypted AS value FROM m365_links")
    assert SECRET not in stored["value"]
    [connected] = [e for e in world.api.events(type="integration.connected")
                   if e["details"].get("integration") == "microsoft365"]
    assert "Microsoft 365 linked for Northwind Traders" in connected["summary"]
    r = world.api.delete(f"/api/v1/customers/{world.northwind}/microsoft365")
    assert r.status_code == 204
    assert world.api.get(f"/api/v1/customers/{world.northwind}/microsoft365").json()[
        "linked"] is False
    assert_secret_absent(world, SECRET)


def test_refused_links_quote_microsoft_and_say_what_to_do_and_save_nothing(
        make_world: Any, m365: M365EmulatorProcess) -> None:
    world = make_world()
    good = m365.add_tenant(northwind_users(), secret=SECRET)
    no_consent = m365.add_tenant(northwind_users(), secret=SECRET, permissions=[])
    read_only = m365.add_tenant(northwind_users(), secret=SECRET, permissions=["User.Read.All"])
    no_role = m365.add_tenant(northwind_users(), secret=SECRET, directory_roles=[])
    wrong_app = EntraTenant(good.tenant_id, "00000000-0000-4000-8000-000000000000", SECRET)
    wrong_tenant = EntraTenant("11111111-0000-4000-8000-000000000000", good.client_id, SECRET)
    cases = [
        (good, "not-the-secret", ["AADSTS7000215: Invalid client secret provided.",
                                  "paste the secret's Value (not its Secret ID)"]),
        (wrong_app, None, ["AADSTS700016: Application with identifier",
                           "Check the Application (client) ID"]),
        (wrong_tenant, None, ["AADSTS90002: Tenant '11111111-0000-4000-8000-000000000000' not "
                              "found.", "Check the Directory (tenant) ID"]),
        (no_consent, None, ["Insufficient privileges to complete the operation.",
                            "User.ReadWrite.All", "Grant admin consent"]),
        (read_only, None, ["no consented User.ReadWrite.All application permission",
                           "Grant admin consent"]),
        (no_role, None, ["no directory role that may reset passwords",
                         "Assign the directory role User Administrator to the app"]),
    ]
    for entra, secret, sentences in cases:
        r = world.link(entra, secret=secret)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "m365_credentials_rejected"
        for sentence in sentences:
            assert sentence in error["message"], (sentence, error["message"])
    assert world.api.get(f"/api/v1/customers/{world.northwind}/microsoft365").json()[
        "linked"] is False
    assert_secret_absent(world, SECRET, "not-the-secret")


def test_only_an_admin_links_and_a_viewer_reads(make_world: Any,
                                                m365: M365EmulatorProcess) -> None:
    world = make_world()
    world.tenant.create_user("acme", "viewer@acme.test", "viewer password 123", role="viewer")
    viewer = sign_in(world.http, "viewer@acme.test", "viewer password 123")
    entra = m365.add_tenant(northwind_users(), secret=SECRET)
    path = f"/api/v1/customers/{world.northwind}/microsoft365"
    assert viewer.put(path, json=entra.link_body()).json()["error"]["code"] == "forbidden"
    assert viewer.post(f"{path}/sync").status_code == 403
    assert viewer.get(path).status_code == 200
    # The setup checklist's question: which customers keep cloud passwords, linked or not.
    r = viewer.get("/api/v1/microsoft365/prerequisites")
    assert r.status_code == 200, r.text
    rows = {c["name"]: c for c in r.json()["customers"]}
    assert rows["Northwind Traders"]["cloud_passwords"] == 1  # "Global admin", Microsoft 365
    assert rows["Contoso Dental"]["cloud_passwords"] == 1
    assert rows["Fabrikam Logistics"]["cloud_passwords"] == 0
    assert not rows["Northwind Traders"]["linked"]
    assert world.link(entra).status_code == 200
    rows = {c["name"]: c for c in viewer.get("/api/v1/microsoft365/prerequisites").json()[
        "customers"]}
    assert rows["Northwind Traders"]["linked"] and not rows["Contoso Dental"]["linked"]


# ------------------------------------------------------------------------------------ sync
def test_sync_pages_through_users_marks_on_premises_ones_and_automatches_by_upn(
        make_world: Any, m365: M365EmulatorProcess) -> None:
    world = make_world()
    many = [{"upn": f"user{i:04d}@northwindtraders.com", "display_name": f"User {i}"}
            for i in range(1000)]
    entra = m365.add_tenant(northwind_users(many), secret=SECRET, directory_roles=PRIVILEGED)
    assert world.link(entra).status_code == 200
    result = world.sync()
    assert result["users"] == 1004  # more than one page of 999
    assert result["created"] == 1004 and result["gone"] == 0
    assert result["on_premises"] == 1
    assert result["matched"] == 1  # Admin@… in Entra, admin@… in IT Glue
    accounts = {a["source"]["identity"]: a for a in world.accounts()}
    admin = accounts["Admin@NorthwindTraders.onmicrosoft.com"]
    assert admin["itglue_password_id"] == str(GLOBAL_ADMIN)
    assert admin["source"]["type"] == "entra_id" and admin["source"]["agent_id"] is None
    assert admin["source"]["object_id"] and admin["state"] == "present"
    assert accounts["jsmith@northwindtraders.com"]["source"]["on_premises_sync"] is True
    assert accounts["dana@northwindtraders.com"]["source"]["on_premises_sync"] is False

    m365.delete_user(entra, "dana@northwindtraders.com")
    again = world.sync()
    assert again["created"] == 0 and again["gone"] == 1
    dana = next(a for a in world.accounts()
                if a["source"]["identity"] == "dana@northwindtraders.com")
    assert dana["state"] == "gone"
    [synced, _] = world.api.events(type="integration.synced")
    assert "1003 users (0 new, 1 gone, 1 synced from on-premises AD)" in synced["summary"]


# ---------------------------------------------------------------------------- cloud resets
def test_an_itglue_change_of_a_cloud_password_is_patched_into_microsoft_365(
        make_world: Any, m365: M365EmulatorProcess) -> None:
    world = make_world()
    entra = m365.add_tenant(northwind_users(), secret=SECRET, directory_roles=PRIVILEGED)
    assert world.link(entra).status_code == 200
    assert world.sync()["matched"] == 1
    url = world.api.generate()
    new_value = "Harbor-Lights-2031!"
    world.change_in_itglue(GLOBAL_ADMIN, new_value)
    trigger = world.trigger(url, GLOBAL_ADMIN)
    done = wait_for_trigger_event(world.api, trigger, "password_reset.succeeded")
    assert done["summary"] == ("Password of Global admin reset in Microsoft 365 "
                               "(Admin@NorthwindTraders.onmicrosoft.com)")
    assert done["details"]["updated_by"] == "Dana Whitfield"
    [change] = m365.password_changes(entra)
    assert change["user_principal_name"] == "Admin@NorthwindTraders.onmicrosoft.com"
    assert change["password_sha256"] == sha256(new_value)
    assert change["force_change"] is False
    account = next(a for a in world.accounts() if a["itglue_password_id"] == str(GLOBAL_ADMIN))
    assert account["last_result"] == "succeeded"
    assert account["last_reset_by"] == "Dana Whitfield"
    # The same value again is not applied twice.
    second = world.trigger(url, GLOBAL_ADMIN)
    wait_for_trigger_event(world.api, second, "password_reset.skipped")
    assert len(m365.password_changes(entra)) == 1
    [held] = db_rows(world.tenant, "SELECT COUNT(*) AS n FROM reset_jobs "
                                   "WHERE password_encrypted IS NOT NULL")
    assert held["n"] == 0
    assert_secret_absent(world, SECRET, new_value)


def test_each_refusal_of_a_cloud_reset_is_named_in_its_event(
        make_world: Any, m365: M365EmulatorProcess) -> None:
    world = make_world()
    entra = m365.add_tenant(northwind_users(), secret=SECRET)  # User Administrator only
    assert world.link(entra).status_code == 200
    world.add_cloud_account("jsmith@northwindtraders.com", DOMAIN_ADMIN)
    world.add_cloud_account("dana@northwindtraders.com", BACKUP_SERVICE)
    world.add_cloud_account("ghost@northwindtraders.com", RECEPTION_PC)
    world.add_cloud_account(GLOBAL_ADMIN_UPN, GLOBAL_ADMIN, kind="administrator")
    url = world.api.generate()
    world.change_in_itglue(BACKUP_SERVICE, "short")
    expected = {
        DOMAIN_ADMIN: ("m365_on_premises_synced", [
            "jsmith@northwindtraders.com is synced from an on-premises Active Directory",
            "Unable to update the specified properties for on-premises mastered Directory "
            "Sync objects", "Reset it through the agent's Active Directory instead"]),
        BACKUP_SERVICE: ("m365_password_policy", [
            "Microsoft 365 refused the new password of dana@northwindtraders.com",
            "The specified password does not comply with password complexity requirements. "
            "Please provide a different password.",
            "Change it in IT Glue to one the tenant's password policy accepts"]),
        RECEPTION_PC: ("m365_user_not_found", [
            "Microsoft 365 has no user ghost@northwindtraders.com", "Run Sync now"]),
        GLOBAL_ADMIN: ("m365_insufficient_privileges", [
            "Insufficient privileges to complete the operation.",
            "Resetting an administrator's password needs the directory role Privileged "
            "Authentication Administrator"]),
    }
    for password_id, (code, sentences) in expected.items():
        trigger = world.trigger(url, password_id)
        failed = wait_for_trigger_event(world.api, trigger, "password_reset.failed")
        assert failed["details"]["code"] == code, failed
        for sentence in sentences:
            assert sentence in failed["details"]["reason"], (sentence, failed["summary"])
            assert sentence in failed["summary"]
    # Without any directory role, an ordinary user's reset names User Administrator.
    m365.change_app(entra, directory_roles=[])
    world.add_cloud_account("reception@northwindtraders.com", 5005)
    world.change_in_itglue(5005, "Fresh-Start-4411!")
    trigger = fire(url, trigger_body(102, 5005, "Practice manager"))
    failed = wait_for_trigger_event(world.api, trigger, "password_reset.failed")
    assert failed["details"]["code"] == "m365_insufficient_privileges"
    assert ("Resetting a user's password needs the directory role User Administrator"
            in failed["details"]["reason"])
    assert m365.password_changes(entra) == []
    assert_secret_absent(world, SECRET, "Fresh-Start-4411!")


def test_a_throttled_reset_waits_out_retry_after_then_succeeds_or_fails_with_the_reason(
        make_world: Any, m365: M365EmulatorProcess) -> None:
    world = make_world({"QP_M365_MAX_THROTTLE_SECONDS": "3"})
    entra = m365.add_tenant(northwind_users(), secret=SECRET, directory_roles=PRIVILEGED)
    assert world.link(entra).status_code == 200
    world.add_cloud_account("dana@northwindtraders.com", BACKUP_SERVICE)
    url = world.api.generate()
    m365.control("limits", {"failures": [[429, 1]]})
    world.change_in_itglue(BACKUP_SERVICE, "Patience-Pays-77!")
    throttled_before = m365.state()["throttled"]
    trigger = world.trigger(url, BACKUP_SERVICE)
    wait_for_trigger_event(world.api, trigger, "password_reset.succeeded")
    assert m365.state()["throttled"] == throttled_before + 1
    assert m365.password_changes(entra)[-1]["password_sha256"] == sha256("Patience-Pays-77!")

    m365.control("limits", {"failures": [[429, 2], [429, 2], [429, 2]]})
    world.change_in_itglue(BACKUP_SERVICE, "Patience-Ends-88!")
    trigger = world.trigger(url, BACKUP_SERVICE)
    failed = wait_for_trigger_event(world.api, trigger, "password_reset.failed")
    assert failed["details"]["code"] == "m365_throttled"
    assert "kept answering HTTP 429 after the tenant waited as told (Retry-After)" in failed[
        "details"]["reason"]


def test_an_expired_client_secret_fails_every_reset_but_alerts_once(
        make_world: Any, m365: M365EmulatorProcess, smtp_server: SmtpServer) -> None:
    world = make_world({"QP_ALERT_BATCH_SECONDS": "0", "QP_SCHEDULER_INTERVAL_SECONDS": "0.3",
                        **smtp_server.env()})
    assert world.api.put("/api/v1/alerts", json={"recipients": ["ops@acme.test"]}
                         ).status_code == 200
    entra = m365.add_tenant(northwind_users(), secret=SECRET, directory_roles=PRIVILEGED)
    assert world.link(entra).status_code == 200
    world.add_cloud_account("dana@northwindtraders.com", BACKUP_SERVICE)
    url = world.api.generate()
    m365.change_app(entra, secret_expired=True)
    failures = []
    for n in range(3):
        world.change_in_itglue(BACKUP_SERVICE, f"Expired-Secret-{n}-Try!")
        trigger = world.trigger(url, BACKUP_SERVICE)
        failures.append(wait_for_trigger_event(world.api, trigger, "password_reset.failed"))
        if n == 0:
            [first_mail] = smtp_server.wait_for(1)
    for failed in failures:
        assert failed["details"]["code"] == "m365_credentials_rejected"
        assert "AADSTS7000222: The provided client secret keys for app" in failed["summary"]
        assert "create a new client secret" in failed["summary"]
    assert "AADSTS7000222" in first_mail.text
    assert [f["details"].get("alert") for f in failures] == [None, False, False]
    link = world.api.get(f"/api/v1/customers/{world.northwind}/microsoft365").json()
    assert "AADSTS7000222" in link["last_error"]
    # A different failure later is mailed on its own: the repeats were never mailed.
    trigger = fire(url, trigger_body(NORTHWIND_ORG, 5099, "Unmatched password"))
    wait_for_trigger_event(world.api, trigger, "password_reset.failed")
    mails = smtp_server.wait_for(2)
    assert len(mails) == 2
    assert "AADSTS7000222" not in mails[1].text
    assert "1 workflow failure" in mails[1].subject
    # A renewed secret clears the error and resets work again.
    m365.change_app(entra, secret="renewed-secret-VALUE-2", secret_expired=False)
    assert world.link(entra, secret="renewed-secret-VALUE-2").status_code == 200
    trigger = world.trigger(url, BACKUP_SERVICE)
    wait_for_trigger_event(world.api, trigger, "password_reset.succeeded")
    assert world.api.get(f"/api/v1/customers/{world.northwind}/microsoft365").json()[
        "last_error"] is None
    assert_secret_absent(world, SECRET, "renewed-secret-VALUE-2")


def test_a_cloud_account_without_a_link_fails_with_what_to_do(make_world: Any) -> None:
    world = make_world()
    world.add_cloud_account("dana@northwindtraders.com", BACKUP_SERVICE)
    url = world.api.generate()
    trigger = world.trigger(url, BACKUP_SERVICE)
    failed = wait_for_trigger_event(world.api, trigger, "password_reset.failed")
    assert failed["details"]["code"] == "m365_not_linked"
    assert "its customer is not linked to Microsoft 365" in failed["details"]["reason"]
    r = world.api.post("/api/v1/accounts", json={
        "customer_id": world.northwind, "kind": "end_user", "display_name": "x",
        "source": {"type": "entra_id", "agent_id": 1, "identity": "x@northwindtraders.com"}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "agent_not_used"


def test_sync_without_a_link_says_to_link_first(make_world: Any) -> None:
    world = make_world()
    r = world.api.post(f"/api/v1/customers/{world.northwind}/microsoft365/sync")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "m365_not_linked"
    assert "link it first" in r.json()["error"]["message"]
