"""What IT Glue's workflow webhook gets back, and what the event log keeps."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from qp_tenant.config import Settings
from qp_tenant.crypto import Crypto, new_master_key
from qp_tenant.db import create_engine, create_sqlite_writer, migrate, session_factory
from qp_tenant.domain.auth import create_tenant
from qp_tenant.domain.events import EventBroker
from qp_tenant.domain.tokens import generate_token
from qp_tenant.domain.webhook import Trigger, TriggerIngest
from qp_tenant.models import Event
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.tenant.conftest import IT_GLUE_BODY, Api, sign_in


def all_event_count(api: Api) -> int:
    return len(api.events(limit=500))


def test_an_it_glue_trigger_is_accepted_and_logged(api: Api) -> None:
    url = api.generate()
    r = api.http.post(url, json=IT_GLUE_BODY)
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "accepted"
    event = api.get(f"/api/v1/events/{body['event_id']}").json()
    assert event["type"] == "workflow_trigger.received"
    assert event["resource_name"] == "Domain Admin"
    assert event["resource_url"] == IT_GLUE_BODY["resourceUrl"]
    assert event["details"]["organization_id"] == "2412"
    assert event["details"]["password_id"] == "98765"
    assert event["token_id"] is not None


def test_body_is_read_as_json_whatever_the_content_type(api: Api) -> None:
    url = api.generate()
    import json

    r = api.http.post(url, content=json.dumps(IT_GLUE_BODY),
                      headers={"Content-Type": "text/plain"})
    assert r.status_code == 202 and r.json()["status"] == "accepted"


def test_same_body_within_the_window_is_a_duplicate_with_the_original_id(api: Api) -> None:
    url = api.generate()
    first = api.http.post(url, json=IT_GLUE_BODY).json()
    second = api.http.post(url, json=IT_GLUE_BODY).json()
    third = api.http.post(url, json=IT_GLUE_BODY).json()
    assert second == {"event_id": first["event_id"], "status": "duplicate"}
    assert third["event_id"] == first["event_id"]
    received = api.events(type="workflow_trigger.received")
    assert len(received) == 1
    assert received[0]["details"]["duplicates"] == 2


def test_duplicates_sent_concurrently_still_log_one_event(api: Api) -> None:
    url = api.generate()
    import concurrent.futures

    body = {**IT_GLUE_BODY, "resourceName": "Burst"}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.post(url, json=body).json(), range(16)))
    ids = {a["event_id"] for a in answers}
    assert len(ids) == 1
    assert sorted(a["status"] for a in answers).count("accepted") == 1
    assert len(api.events(q="Burst", type="workflow_trigger.received")) == 1


def test_a_test_action_body_is_accepted_as_test(api: Api) -> None:
    url = api.generate()
    r = api.http.post(url, json={"resourceUrl": "[resource_url]",
                                 "resourceName": "[resource_name]"})
    assert r.status_code == 202 and r.json()["status"] == "test"
    assert api.events()[0]["type"] == "workflow_trigger.test"


def test_bad_bodies_get_the_documented_errors_and_are_logged(api: Api) -> None:
    url = api.generate()
    cases = [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (b'{"resourceName": "x"}', 422, "missing_resource_url"),
        (b"x" * (64 * 1024 + 1), 413, "payload_too_large"),
    ]
    for raw, status, code in cases:
        r = api.http.post(url, content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == status, (raw[:20], r.text)
        assert r.json()["error"]["code"] == code
    rejected = api.events(type="workflow_trigger.rejected")
    # The two invalid_json refusals of this minute are one event with a count.
    assert [(e["details"]["code"], e["details"]["count"]) for e in rejected] == [
        ("payload_too_large", 1), ("missing_resource_url", 1), ("invalid_json", 2)]


def test_oversized_body_is_refused_without_reading_it_whole(api: Api) -> None:
    url = api.generate()
    sent = {"bytes": 0}

    def endless():
        chunk = b"a" * 16384
        for _ in range(10_000):  # up to 160 MB if the server kept reading
            sent["bytes"] += len(chunk)
            yield chunk

    try:
        r = api.http.post(url, content=endless(),
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 413
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        pass  # the server closed the connection on us: also a refusal
    assert sent["bytes"] < 10_000 * 16384


def test_unknown_tokens_are_404_and_log_nothing(api: Api) -> None:
    api.generate()
    before = all_event_count(api)
    for token in ("qpwt_" + "A" * 43, "not-a-token", "qpwt_x"):
        r = api.http.post(f"/hooks/itglue/{token}", json=IT_GLUE_BODY)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "unknown_token"
    assert all_event_count(api) == before


def test_kill_9_after_202_loses_nothing(tenant_proc: TenantProcess, api: Api) -> None:
    url = api.generate()
    ids = []
    with httpx.Client(timeout=10) as client:
        for n in range(60):
            r = client.post(url, json={**IT_GLUE_BODY, "resourceName": f"Account {n}"})
            assert r.status_code == 202
            ids.append(r.json()["event_id"])
    tenant_proc.restart(kill=True)
    with httpx.Client(base_url=tenant_proc.url, timeout=10) as http:
        from tests.tenant.conftest import sign_in

        fresh = sign_in(http)
        stored = {e["id"] for e in fresh.events(type="workflow_trigger.received", limit=500)}
    assert set(ids) <= stored


def test_webhook_token_never_reaches_the_logs(tenant_proc: TenantProcess, api: Api) -> None:
    from tests.conftest import ADMIN_PASSWORD, ITGLUE_KEY

    api.put("/api/v1/integrations/itglue", json={"region": "us", "api_key": ITGLUE_KEY})
    url = api.generate()
    token = url.rsplit("/", 1)[1]
    api.http.post(url, json=IT_GLUE_BODY)
    api.http.post(url, content=b"{broken")
    revealed = api.post("/api/v1/integrations/itglue/workflow-token/reveal").json()["url"]
    api.generate()
    api.http.post(revealed, json=IT_GLUE_BODY)  # 410 now
    api.put("/api/v1/integrations/itglue", json={"region": "us", "api_key": "ITG.wrongkey123"})
    api.post("/api/v1/auth/logout")
    tenant_proc.stop()
    logs = tenant_proc.log_text()
    assert "POST /hooks/itglue/qpwt_…" in logs  # the access log is there, redacted
    for secret in (token, ITGLUE_KEY, "ITG.wrongkey123", ADMIN_PASSWORD, api.access_token,
                   api.refresh_token):
        assert secret not in logs


def assert_no_traceback(tenant: TenantProcess) -> None:
    """Nothing the tenant has logged so far (while it runs) is a traceback."""
    logs = tenant.log_text()
    at = logs.find("Traceback")
    assert at < 0, logs[max(0, at - 300):at + 3000]


# --- bodies an anonymous caller controls -----------------------------------------------------

UNKNOWN_PATH = "/hooks/itglue/qpwt_" + "Z" * 43
# Each is refused 400 invalid_json for a known token; before, each failed the whole batch it
# joined (the surrogate and NUL), or answered 500 with a traceback (the deep and long ones).
UNSTORABLE_BODIES = {
    "lone surrogate": b'{"resourceUrl": "https://acme.itglue.com/1/passwords/2", '
                      b'"resourceName": "\\ud800"}',
    "surrogate in a key": b'{"resourceUrl": "https://acme.itglue.com/1/passwords/2", '
                          b'"\\udfff": 1}',
    "NUL": b'{"resourceUrl": "https://acme.itglue.com/1/passwords/2", '
           b'"resourceName": "a\\u0000b"}',
    "2,000 arrays deep": b'{"resourceUrl": "x", "deep": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    "40 objects deep": b'{"resourceUrl": "x", "deep": ' + b'{"a": ' * 40 + b"1" + b"}" * 40
                       + b"}",
    "5,000-digit integer": b'{"resourceUrl": "https://acme.itglue.com/1/passwords/2", '
                           b'"n": ' + b"7" * 5000 + b"}",
    "NaN": b'{"resourceUrl": "https://acme.itglue.com/1/passwords/2", "n": NaN}',
}


def test_unstorable_bodies_are_invalid_json_for_a_known_token_and_unknown_for_others(
        tenant_proc: TenantProcess, api: Api) -> None:
    url = api.generate()
    for name, raw in UNSTORABLE_BODIES.items():
        known = api.http.post(url, content=raw)
        assert known.status_code == 400, (name, known.text)
        assert known.json()["error"]["code"] == "invalid_json", name
        unknown = api.http.post(UNKNOWN_PATH, content=raw)
        assert unknown.status_code == 404, (name, unknown.text)
        assert unknown.json()["error"]["code"] == "unknown_token", name
    assert api.http.post(url, json=IT_GLUE_BODY).status_code == 202
    rejected = api.events(type="workflow_trigger.rejected")
    assert [(e["details"]["code"], e["details"]["count"]) for e in rejected] == [
        ("invalid_json", len(UNSTORABLE_BODIES))]
    assert rejected[0]["resource_name"] is None  # nothing of such a body is stored
    assert_no_traceback(tenant_proc)


def test_anonymous_bad_bodies_never_fail_other_triggers(tenant_proc: TenantProcess,
                                                         api: Api) -> None:
    url = api.generate()
    good_done = threading.Event()
    bad_flowing = threading.Event()
    bad_answers: list[int] = []

    def send_bad(raw: bytes) -> None:
        with httpx.Client(base_url=tenant_proc.url, timeout=30) as client:
            while not good_done.is_set():
                bad_answers.append(client.post(UNKNOWN_PATH, content=raw).status_code)
                bad_flowing.set()

    def send_good(n: int) -> tuple[int, dict]:
        r = httpx.post(url, json={**IT_GLUE_BODY, "resourceName": f"Concurrent {n}"},
                       timeout=30)
        return r.status_code, r.json()

    bad = [threading.Thread(target=send_bad, args=(raw,))
           for raw in list(UNSTORABLE_BODIES.values()) * 2]
    for thread in bad:
        thread.start()
    try:
        assert bad_flowing.wait(30)  # the bad bodies flow before the good ones start
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            good = list(pool.map(send_good, range(80)))
    finally:
        good_done.set()
        for thread in bad:
            thread.join()
    assert [status for status, _ in good] == [202] * 80, good
    assert set(bad_answers) == {404}
    stored = {e["id"] for e in api.events(type="workflow_trigger.received", limit=500)}
    assert {body["event_id"] for _, body in good} <= stored
    assert_no_traceback(tenant_proc)


# --- refusals: rate-limited, and folded into one event per token, code and minute -------------


def test_repeated_refusals_are_one_event_per_token_code_and_minute_with_a_count(
        api: Api) -> None:
    old_url = api.generate()
    with httpx.Client(timeout=10) as client:
        for _ in range(30):
            assert client.post(old_url, content=b"{broken").status_code == 400
        for _ in range(4):
            assert client.post(old_url, json={"resourceName": "x"}).status_code == 422
        url = api.generate()  # the old URL is revoked now, but a workflow still calls it
        for _ in range(25):
            assert client.post(old_url, json=IT_GLUE_BODY).status_code == 410
        assert client.post(url, json=IT_GLUE_BODY).status_code == 202
    rejected = api.events(type="workflow_trigger.rejected")
    assert [(e["details"]["code"], e["details"]["count"]) for e in rejected] == [
        ("token_revoked", 25), ("missing_resource_url", 4), ("invalid_json", 30)]
    assert rejected[0]["summary"].endswith("Rejected 24 more times in the same minute.")
    assert rejected[2]["summary"].endswith("Rejected 29 more times in the same minute.")
    streamed = api.get(f"/api/v1/events/{rejected[0]['id']}").json()
    assert streamed["details"]["count"] == 25


@pytest.fixture
def limited_tenant(tmp_path: Path, tenant_template: Path,
                   itglue_emulator: EmulatorProcess) -> Iterator[TenantProcess]:
    """A tenant that answers a token's refusals 429 past 20 a minute."""
    data = tmp_path / "limited"
    shutil.copytree(tenant_template, data)
    tenant = TenantProcess(data, env={"QP_ITGLUE_BASE_URL": itglue_emulator.url,
                                      "QP_PUBLIC_URL": "",
                                      "QP_WEBHOOK_REFUSAL_LIMIT_PER_MINUTE": "20"})
    tenant.start()
    try:
        yield tenant
    finally:
        tenant.stop()


def test_refusals_past_the_limit_are_429_and_accepted_triggers_still_pass(
        limited_tenant: TenantProcess) -> None:
    with httpx.Client(base_url=limited_tenant.url, timeout=10) as http:
        api = sign_in(http)
        url = api.generate()
        answers = [http.post(url, content=b"{broken") for _ in range(40)]
        statuses = [r.status_code for r in answers]
        assert statuses[:20] == [400] * 20  # the budget, then 429 (it refills slowly)
        assert set(statuses) == {400, 429}
        limited = next(r for r in answers if r.status_code == 429)
        assert limited.json()["error"]["code"] == "too_many_requests"
        assert int(limited.headers["Retry-After"]) >= 1
        # IT Glue's own triggers draw on a separate budget, far above anything it sends.
        for n in range(30):
            r = http.post(url, json={**IT_GLUE_BODY, "resourceName": f"After {n}"})
            assert r.status_code == 202
        counts = {e["details"]["code"]: e["details"]["count"]
                  for e in api.events(type="workflow_trigger.rejected")}
    assert counts == {"invalid_json": statuses.count(400),
                      "too_many_requests": statuses.count(429)}


def test_a_resource_url_on_another_domain_is_a_warning_test_trigger(api: Api) -> None:
    url = api.generate()
    r = api.http.post(url, json={"resourceUrl": "https://itglue.com.evil.example/1/passwords/2",
                                 "resourceName": "Domain Admin"})
    assert r.status_code == 202 and r.json()["status"] == "test"
    event = api.get(f"/api/v1/events/{r.json()['event_id']}").json()
    assert event["type"] == "workflow_trigger.test"
    assert event["severity"] == "warning"
    assert "itglue.com.evil.example" in event["summary"]
    assert "not IT Glue's" in event["summary"]
    eu = api.http.post(url, json={"resourceUrl": "https://acme.eu.itglue.com/1/passwords/2",
                                  "resourceName": "EU"})
    assert eu.json()["status"] == "accepted"
    action = api.http.post(url, json={"resourceUrl": "[resource_url]", "resourceName": "T"})
    test_event = api.get(f"/api/v1/events/{action.json()['event_id']}").json()
    assert test_event["severity"] == "info"  # IT Glue's Test Action stays a plain test


# --- a row that cannot be stored fails alone (the ingest in-process, on a real database) -----


@pytest.fixture
async def ingest_world(tmp_path: Path, db_kind: str, request: pytest.FixtureRequest
                       ) -> AsyncIterator[tuple[Settings, Crypto, str]]:
    """A migrated database with tenant ``acme`` and a workflow token (its plaintext)."""
    yield await make_ingest_world(tmp_path, db_kind, request)


async def make_ingest_world(tmp_path: Path, db_kind: str, request: pytest.FixtureRequest
                            ) -> tuple[Settings, Crypto, str]:
    """What ``ingest_world`` gives, on the database asked for."""
    if db_kind == "postgresql":
        server = request.getfixturevalue("postgres_server")
        settings = Settings(data_dir=tmp_path, database_url=server.url(server.create_database()))
    else:
        settings = Settings(data_dir=tmp_path)
    engine = create_engine(settings)
    await migrate(engine)
    crypto = Crypto(new_master_key())
    async with session_factory(engine)() as session:
        tenant = await create_tenant(session, "acme", "Acme MSP")
        token = await generate_token(session, crypto, tenant.id, lifetime_days=30)
        await session.commit()
    await engine.dispose()
    return settings, crypto, token.plaintext


async def test_a_trigger_that_cannot_be_stored_fails_alone_and_is_logged_once(
        ingest_world: tuple[Settings, Crypto, str], caplog: pytest.LogCaptureFixture) -> None:
    settings, crypto, token = ingest_world
    engine = create_engine(settings)

    def after_insert(_conn: Any, rows: list[tuple[int, dict[str, Any]]]) -> None:
        # Stands in for any failure one row's content causes inside the batch's transaction.
        if any(row["resource_name"] == "Poison" for _, row in rows):
            raise ValueError("this row cannot be stored")

    ingest = TriggerIngest(engine, crypto, EventBroker(), duplicate_window_seconds=600,
                           rate_limit_per_minute=120_000, after_insert=after_insert,
                           sqlite_writer=create_sqlite_writer(settings))
    names = [f"Account {n}" for n in range(30)]
    names.insert(17, "Poison")
    triggers = [Trigger(token=token, body={**IT_GLUE_BODY, "resourceName": name})
                for name in names]
    ingest.start()  # queued before the writer runs: they meet in one batch
    try:
        answers = await asyncio.gather(*(ingest.submit(t) for t in triggers))
    finally:
        await ingest.stop()
        await engine.dispose()
    by_name = dict(zip(names, answers, strict=True))
    poison = by_name.pop("Poison")
    assert poison[0] == 500 and poison[1]["error"]["code"] == "trigger_not_stored"
    assert {status for status, _, _ in by_name.values()} == {202}
    assert ingest.failed_batches >= 1  # they really shared a batch with the poison
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            stored = dict((await session.execute(
                select(Event.resource_name, Event.id)
                .where(Event.type == "workflow_trigger.received"))).all())
    finally:
        await engine.dispose()
    assert stored == {name: body["event_id"] for name, (_, body, _) in by_name.items()}
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1 and failures[0].exc_info is None
    assert "cannot be stored" in failures[0].getMessage()
    assert token not in caplog.text


async def test_only_refusals_wake_the_alert_scheduler(
        ingest_world: tuple[Settings, Crypto, str]) -> None:
    # Accepted triggers are no failure: waking the alert scheduler for them would make it
    # scan the event log after every batch of a burst, on the event loop that answers 202s.
    settings, crypto, token = ingest_world
    engine = create_engine(settings)
    committed: list[set[int]] = []
    refused: list[set[int]] = []
    ingest = TriggerIngest(engine, crypto, EventBroker(), duplicate_window_seconds=600,
                           rate_limit_per_minute=120_000, on_committed=committed.append,
                           on_refused=refused.append,
                           sqlite_writer=create_sqlite_writer(settings))
    ingest.start()
    try:
        accepted = await ingest.submit(Trigger(token=token, body=IT_GLUE_BODY))
        assert accepted[0] == 202 and committed and refused == []
        bad = await ingest.submit(Trigger(token=token, body={"resourceName": "x"},
                                          refusal=(422, "missing_resource_url", "no url")))
        assert bad[0] == 422 and len(refused) == 1
        assert refused[0] == committed[-1]  # the refusal's tenant, the one with the event
    finally:
        await ingest.stop()
        await engine.dispose()
