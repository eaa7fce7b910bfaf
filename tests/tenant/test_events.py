"""The event list and the resumable live stream."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx

from tests.support.processes import TenantProcess
from tests.tenant.conftest import IT_GLUE_BODY, Api, sign_in


def post_triggers(url: str, names: list[str]) -> list[int]:
    ids = []
    with httpx.Client(timeout=10) as client:
        for name in names:
            r = client.post(url, json={**IT_GLUE_BODY, "resourceName": name})
            assert r.status_code == 202, r.text
            ids.append(r.json()["event_id"])
    return ids


def test_list_is_newest_first_with_cursor_paging(api: Api) -> None:
    url = api.generate()
    ids = post_triggers(url, [f"Account {i}" for i in range(7)])
    page1 = api.get("/api/v1/events", params={"limit": 3, "type": "workflow_trigger.received"})
    body = page1.json()
    assert [e["id"] for e in body["events"]] == ids[::-1][:3]
    page2 = api.get("/api/v1/events", params={
        "limit": 3, "type": "workflow_trigger.received", "before_id": body["next_before_id"]})
    assert [e["id"] for e in page2.json()["events"]] == ids[::-1][3:6]
    last = api.get("/api/v1/events", params={
        "limit": 3, "type": "workflow_trigger.received",
        "before_id": page2.json()["next_before_id"]}).json()
    assert [e["id"] for e in last["events"]] == [ids[0]]
    assert last["next_before_id"] is None
    after = api.events(after_id=ids[4], type="workflow_trigger.received")
    assert [e["id"] for e in after] == [ids[6], ids[5]]


def test_filters_by_type_prefix_severity_and_text(api: Api) -> None:
    url = api.generate()
    post_triggers(url, ["Backup Service", "Domain Admin"])
    api.http.post(url, content=b"{bad")
    assert {e["type"] for e in api.events(type="token.*")} == {"token.generated"}
    backups = api.events(q="backup", type="workflow_trigger.received")
    assert [e["resource_name"] for e in backups] == ["Backup Service"]
    warnings = api.events(severity="warning")
    assert warnings and all(e["severity"] == "warning" for e in warnings)
    grouped = {e["type"] for e in api.events(type="workflow_trigger")}
    # The UI's "Workflow Trigger" category: triggers, plus the reset pipeline's own events
    # (its "No matched account" failures may or may not be logged yet).
    assert {"workflow_trigger.received", "workflow_trigger.rejected"} <= grouped
    assert all(t.startswith(("workflow_trigger.", "password_reset.")) for t in grouped)
    assert api.get("/api/v1/events", params={"limit": 501}).status_code == 422


class StreamReader:
    """Reads an SSE stream in a thread and collects the events it delivers."""

    def __init__(self, base_url: str, token: str, last_event_id: int | None):
        self.events: list[dict] = []
        self.ids: list[int] = []
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        headers = {"Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self._client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(5, read=30))
        self._headers = headers
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _lines(self) -> Iterator[str]:
        with self._client.stream("GET", "/api/v1/events/stream", headers=self._headers) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            self.connected.set()
            yield from r.iter_lines()

    def _run(self) -> None:
        current: dict[str, str] = {}
        try:
            for line in self._lines():
                if self._stop.is_set():
                    return
                if not line:
                    if "data" in current:
                        event = json.loads(current["data"])
                        assert int(current["id"]) == event["id"]
                        assert current["event"] == event["type"]
                        with self._lock:
                            if self._stop.is_set():
                                return
                            self.events.append(event)
                            self.ids.append(event["id"])
                    current = {}
                    continue
                field, _, value = line.partition(":")
                current[field] = value.lstrip(" ")
        except (httpx.HTTPError, RuntimeError):
            return

    def wait_for(self, wanted: list[int], timeout: float = 30) -> None:
        """Wait until every id in ``wanted`` has arrived (others may arrive too)."""
        import time

        deadline = time.monotonic() + timeout
        while not set(wanted) <= set(self.ids) and time.monotonic() < deadline:
            self._thread.join(0.05)
        missing = sorted(set(wanted) - set(self.ids))
        assert not missing, f"events {missing} never arrived"

    def close(self) -> None:
        """Stop taking events: after this returns, ``ids`` no longer changes."""
        with self._lock:
            self._stop.set()
        self._client.close()


def test_stream_delivers_live_events(tenant_proc: TenantProcess, api: Api) -> None:
    url = api.generate()
    reader = StreamReader(tenant_proc.url, api.access_token, None)
    assert reader.connected.wait(10)
    try:
        ids = post_triggers(url, ["One", "Two", "Three"])
        reader.wait_for(ids)
        delivered = [e for e in reader.events if e["id"] in ids]
        assert [e["id"] for e in delivered] == ids
        assert delivered[0]["resource_name"] == "One"
    finally:
        reader.close()


def test_reconnecting_subscriber_gets_every_event_exactly_once(tenant_proc: TenantProcess,
                                                                api: Api) -> None:
    url = api.generate()
    first = StreamReader(tenant_proc.url, api.access_token, 0)
    assert first.connected.wait(10)
    seen_before = post_triggers(url, ["A1", "A2"])
    first.wait_for(seen_before)
    first.close()
    last_seen = first.ids[-1]
    # While the subscriber is away, more events are committed.
    while_away = post_triggers(url, ["B1", "B2", "B3"])
    second = StreamReader(tenant_proc.url, api.access_token, last_seen)
    assert second.connected.wait(10)
    after = post_triggers(url, ["C1"])
    second.wait_for(while_away + after)
    second.close()
    combined = first.ids + second.ids
    # Exactly once and in order: what the two connections delivered is precisely the
    # tenant's log up to the last id received (the pipeline's own events included).
    assert combined == sorted(set(combined))
    logged = sorted(e["id"] for e in api.events(limit=500) if e["id"] <= combined[-1])
    assert combined == logged


def test_stream_resumes_across_a_tenant_restart(tenant_proc: TenantProcess, api: Api) -> None:
    url = api.generate()
    before = post_triggers(url, ["Before restart"])
    tenant_proc.restart()
    with httpx.Client(base_url=tenant_proc.url, timeout=10) as http:
        fresh = sign_in(http)
        after = post_triggers(url, ["After restart"])
        reader = StreamReader(tenant_proc.url, fresh.access_token, before[0])
        assert reader.connected.wait(10)
        reader.wait_for(after)
        reader.close()
        logged = sorted(e["id"] for e in fresh.events(limit=500)
                        if before[0] < e["id"] <= reader.ids[-1])
    assert reader.ids == logged


def test_stream_query_parameter_also_resumes(tenant_proc: TenantProcess, api: Api) -> None:
    url = api.generate()
    ids = post_triggers(url, ["Q1", "Q2"])
    with httpx.Client(base_url=tenant_proc.url, timeout=httpx.Timeout(5, read=10)) as c, \
            c.stream("GET", "/api/v1/events/stream", params={"last_event_id": ids[0]},
                     headers=api.h()) as r:
        for line in r.iter_lines():
            if line.startswith("id:"):
                assert int(line[3:].strip()) == ids[1]
                break
