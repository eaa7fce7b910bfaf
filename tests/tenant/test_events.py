"""The event list and the resumable live stream."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx

from tests.support.processes import TenantProcess
from tests.support.tenant_api import bearer
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
        self._arrived = threading.Condition(self._lock)  # notified per event, and at the end
        headers = bearer(token)
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
        try:
            self._read()
        finally:
            with self._arrived:
                self._arrived.notify_all()

    def _read(self) -> None:
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
                            self._arrived.notify_all()
                    current = {}
                    continue
                field, _, value = line.partition(":")
                current[field] = value.lstrip(" ")
        except (httpx.HTTPError, RuntimeError):
            return

    def wait_for(self, wanted: list[int]) -> None:
        """Wait until every id in ``wanted`` has arrived (others may arrive too).

        No deadline of its own: pytest-timeout ends a test that waits forever.
        """
        with self._arrived:
            while not set(wanted) <= set(self.ids):
                assert self._thread.is_alive(), (
                    f"the stream ended; events {sorted(set(wanted) - set(self.ids))} never "
                    "arrived")
                self._arrived.wait()

    def close(self) -> None:
        """Stop taking events: after this returns, ``ids`` no longer changes."""
        with self._lock:
            self._stop.set()
        self._client.close()

    def join(self) -> None:
        """Wait until the reading thread has let go of its connection."""
        self._thread.join()


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


def log_ids(api: Api, after: int, upto: int) -> list[int]:
    """The tenant's event ids in ``(after, upto]``, oldest first."""
    return sorted(e["id"] for e in api.events(limit=500) if after < e["id"] <= upto)


def test_many_subscribers_each_receive_every_event_once_in_order(tenant_proc: TenantProcess,
                                                                 api: Api, http: httpx.Client
                                                                 ) -> None:
    url = api.generate()
    start = post_triggers(url, ["Before"])[0]
    # Two people, as one person may hold only 8 streams.
    tenant_proc.create_user("acme", "tech@acme.test", "a colleague's long password",
                            role="technician")
    colleague = sign_in(http, "tech@acme.test", "a colleague's long password")
    readers = [StreamReader(tenant_proc.url, who.access_token, start)
               for who in [api, colleague] * 6]
    try:
        for reader in readers:
            assert reader.connected.wait(10)
        sent: list[int] = []
        for n in range(6):  # events keep arriving while the subscribers stream
            sent += post_triggers(url, [f"Many {n}.{k}" for k in range(n % 3 + 1)])
            readers[n].wait_for(sent)
        for reader in readers:
            reader.wait_for(sent)
    finally:
        for reader in readers:
            reader.close()
    for reader in readers:
        # Exactly once and in order: precisely the log (the pipeline's own events included).
        assert reader.ids == sorted(set(reader.ids))
        assert reader.ids == log_ids(api, start, reader.ids[-1])


def test_a_subscriber_far_behind_gets_the_whole_log_then_live_events(
        tenant_proc: TenantProcess, api: Api) -> None:
    url = api.generate()
    live = StreamReader(tenant_proc.url, api.access_token, None)  # the tenant's tail starts
    assert live.connected.wait(10)
    early = post_triggers(url, ["Early 1", "Early 2", "Early 3"])
    live.wait_for(early)
    # Connects with an id older than anything the process holds in memory: the start.
    behind = StreamReader(tenant_proc.url, api.access_token, 0)
    try:
        assert behind.connected.wait(10)
        behind.wait_for(early)
        late = post_triggers(url, ["Late 1", "Late 2"])
        behind.wait_for(late)
        live.wait_for(late)
    finally:
        behind.close()
        live.close()
    assert behind.ids == sorted(set(behind.ids))
    assert behind.ids == log_ids(api, 0, behind.ids[-1])
    assert live.ids == sorted(set(live.ids))
    assert live.ids == log_ids(api, live.ids[0] - 1, live.ids[-1])


def test_a_subscriber_sees_only_its_own_tenants_events_while_both_stream(
        tenant_proc: TenantProcess, api: Api, http: httpx.Client) -> None:
    tenant_proc.create_tenant("beta", "Beta MSP")
    tenant_proc.create_user("beta", "tech@beta.test", "another long password")
    beta = sign_in(http, "tech@beta.test", "another long password", tenant="beta")
    acme_url = api.generate()
    acme_reader = StreamReader(tenant_proc.url, api.access_token, 0)
    beta_reader = StreamReader(tenant_proc.url, beta.access_token, 0)
    try:
        assert acme_reader.connected.wait(10) and beta_reader.connected.wait(10)
        acme_ids = post_triggers(acme_url, ["Acme 1", "Acme 2"])
        beta_url = beta.generate()
        beta_ids = post_triggers(beta_url, ["Beta 1"])
        acme_ids += post_triggers(acme_url, ["Acme 3"])
        beta_ids += post_triggers(beta_url, ["Beta 2"])
        # Beta's stream is in id order, so any acme event before "Beta 2" would be in by now.
        beta_reader.wait_for(beta_ids)
        acme_reader.wait_for(acme_ids)
    finally:
        acme_reader.close()
        beta_reader.close()
    assert beta_reader.ids == log_ids(beta, 0, beta_reader.ids[-1])
    assert not set(beta_reader.ids) & set(acme_reader.ids)
    assert acme_reader.ids == log_ids(api, 0, acme_reader.ids[-1])


def open_stream_status(base_url: str, token: str) -> tuple[int, dict]:
    """Open a stream and return its status (and error body when refused), then close it."""
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(10, read=30)) as client, \
            client.stream("GET", "/api/v1/events/stream",
                          headers=bearer(token)) as r:
        if r.status_code != 200:
            r.read()
            return r.status_code, r.json()
        return 200, {}


def test_a_user_holds_at_most_eight_streams_and_closing_one_frees_a_slot(
        tenant_proc: TenantProcess, api: Api, http: httpx.Client) -> None:
    readers = [StreamReader(tenant_proc.url, api.access_token, None) for _ in range(8)]
    try:
        for reader in readers:
            assert reader.connected.wait(10)
        status, body = open_stream_status(tenant_proc.url, api.access_token)
        assert status == 429
        assert body["error"]["code"] == "too_many_streams"
        assert "close one" in body["error"]["message"]
        # The cap is per user: a colleague still gets a stream.
        tenant_proc.create_user("acme", "tech@acme.test", "a colleague's long password",
                                role="technician")
        colleague = sign_in(http, "tech@acme.test", "a colleague's long password")
        assert open_stream_status(tenant_proc.url, colleague.access_token)[0] == 200
        closed = readers.pop()
        closed.close()
        # The reader thread sits in a blocking read until the stream sends something: log an
        # event so it wakes, sees it was closed and drops the connection.
        api.generate()
        closed.join()
        # The server frees the slot once it sees the connection closed (no deadline of our
        # own: pytest-timeout ends a test whose slot never comes back).
        while open_stream_status(tenant_proc.url, api.access_token)[0] == 429:
            pass
    finally:
        for reader in readers:
            reader.close()
