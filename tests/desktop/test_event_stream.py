"""EventStream: resume, dedupe and 401 handling (real tenant + one stub)."""

from __future__ import annotations

import asyncio
import json

import httpx

from qp_desktop.services.event_stream import EventStream
from tests.desktop.test_monitor import Tenant

WAIT = 20_000


def _collect(stream: EventStream) -> list[int]:
    ids: list[int] = []
    stream.events_received.connect(lambda evs: ids.extend(e["id"] for e in evs))
    return ids


def test_stream_refreshes_once_on_401_then_streams(qtbot, qloop, tenant_proc):
    tenant = Tenant(tenant_proc)
    client = httpx.AsyncClient()
    token = {"value": "expired-token"}
    refreshes: list[int] = []

    async def auth_headers() -> dict[str, str]:
        return {"Authorization": f"Bearer {token['value']}"}

    async def on_unauthorized() -> None:
        refreshes.append(1)
        token["value"] = tenant.token

    stream = EventStream(client, tenant.url, auth_headers, on_unauthorized,
                         initial_backoff=0.2, max_backoff=1.0)
    ids = _collect(stream)
    stream.start(0)  # replay everything after id 0
    qtbot.waitUntil(lambda: stream.state == "live", timeout=WAIT)
    posted = tenant.post_hook()
    qtbot.waitUntil(lambda: posted in ids, timeout=WAIT)
    assert refreshes == [1]
    assert ids == tenant.all_ids()
    stream.stop()
    assert stream.state == "offline" and stream.down_since is not None
    closing = qloop.create_task(client.aclose())
    qtbot.waitUntil(lambda: closing.done(), timeout=WAIT)
    tenant.http.close()


def test_dedupe_guard_drops_replayed_ids_and_resumes_with_last_event_id(qtbot, qloop):
    """A server that replays overlapping ids (and drops the line) still yields each id once."""
    seen_last_ids: list[str | None] = []

    def sse(ids: list[int]) -> bytes:
        out = "retry: 100\n\n"
        for i in ids:
            event = {"id": i, "occurred_at": "2025-03-04T12:00:00Z", "type": "token.revealed",
                     "severity": "info", "summary": f"e{i}", "details": {}}
            out += f"id: {i}\nevent: token.revealed\ndata: {json.dumps(event)}\n\n"
        return out.encode()

    def handler(request: httpx.Request) -> httpx.Response:
        seen_last_ids.append(request.headers.get("last-event-id"))
        n = len(seen_last_ids)
        body = sse([1, 2, 3]) if n == 1 else sse([2, 3, 4, 5]) if n == 2 else sse([])
        if n > 3:
            return httpx.Response(503, json={"error": {"code": "down", "message": "Down"}})
        return httpx.Response(200, content=body,
                              headers={"content-type": "text/event-stream"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))

    async def auth_headers() -> dict[str, str]:
        return {"Authorization": "Bearer x"}

    stream = EventStream(client, "http://tenant.test", auth_headers, initial_backoff=0.05,
                         max_backoff=0.1, offline_after=0.0)
    ids = _collect(stream)
    states: list[str] = []
    stream.state_changed.connect(lambda state, _d: states.append(state))
    stream.start(None)
    qtbot.waitUntil(lambda: len(seen_last_ids) >= 5, timeout=WAIT)
    stream.stop()
    assert ids == [1, 2, 3, 4, 5]
    assert seen_last_ids[:3] == [None, "3", "5"]
    assert "live" in states and states[-1] == "offline"
    closing = qloop.create_task(client.aclose())
    qtbot.waitUntil(lambda: closing.done(), timeout=WAIT)
    assert asyncio.get_event_loop() is qloop
