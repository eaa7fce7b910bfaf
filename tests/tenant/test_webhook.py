"""What IT Glue's workflow webhook gets back, and what the event log keeps."""

from __future__ import annotations

import httpx

from tests.support.processes import TenantProcess
from tests.tenant.conftest import IT_GLUE_BODY, Api


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
    assert [e["details"]["code"] for e in rejected] == [
        "payload_too_large", "missing_resource_url", "invalid_json", "invalid_json"]


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
