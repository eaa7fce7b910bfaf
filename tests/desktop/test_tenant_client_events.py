"""The tenant client's event history: typed events, pages newest first against a real tenant,
and a refused session refreshed once like every other authenticated call."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from qp_desktop.services.tenant_client import Event, SessionExpired, TenantClient
from qp_desktop.ui.events.records import EventRecord
from tests.desktop.test_monitor import Tenant

WAIT = 20_000


class _Rotating:
    """A session whose first token has expired: the tenant refuses it, the refresh fixes it."""

    def __init__(self, fresh: str, refresh_works: bool = True) -> None:
        self.access_token = "qpat_expired"
        self._fresh = fresh
        self._works = refresh_works
        self.refreshes = 0

    async def refresh_after_rejection(self, rejected: str | None) -> bool:
        self.refreshes += 1
        if not self._works:
            return False
        self.access_token = self._fresh
        return True


def test_event_pages_walk_the_log_newest_first(qtbot, qloop, tenant_proc):
    tenant = Tenant(tenant_proc)
    for _ in range(6):
        tenant.post_hook()
    http = httpx.AsyncClient()
    client = TenantClient(http, tenant.url, tenant)
    pages = []
    events: list[Event] = []

    async def walk() -> None:
        before = None
        while True:
            page = await client.event_page(before, 3)
            pages.append([e.id for e in page.events])
            events.extend(page.events)
            if page.next_before_id is None:
                break
            before = page.next_before_id
        await http.aclose()

    task = qloop.create_task(walk())
    qtbot.waitUntil(lambda: task.done(), timeout=WAIT)
    task.result()
    flat = [i for page in pages for i in page]
    assert flat == sorted(tenant.all_ids(), reverse=True)
    assert all(len(p) <= 3 for p in pages)
    # Typed, and nothing lost: each event is exactly what the API lists for its id.
    newest = events[0]
    assert newest.type == "workflow_trigger.test" and isinstance(newest.occurred_at, datetime)
    listed = tenant.http.get(f"{tenant.url}/api/v1/events/{newest.id}",
                             headers=tenant.headers).json()
    assert newest.to_json() == listed
    tenant.http.close()


def test_an_expired_session_is_refreshed_once_then_the_page_loads(qtbot, qloop, tenant_proc):
    tenant = Tenant(tenant_proc)
    posted = tenant.post_hook()
    http = httpx.AsyncClient()
    session = _Rotating(tenant.token)
    dead = _Rotating(tenant.token, refresh_works=False)

    async def scenario() -> tuple[list[int], str]:
        try:
            page = await TenantClient(http, tenant.url, session).event_page(
                limit=5, type="workflow_trigger.*")
            try:
                await TenantClient(http, tenant.url, dead).event_page()
            except SessionExpired as exc:
                return [e.id for e in page.events], exc.message
            raise AssertionError("a session that cannot refresh must not read events")
        finally:
            await http.aclose()

    task = qloop.create_task(scenario())
    qtbot.waitUntil(lambda: task.done(), timeout=WAIT)
    ids, refused = task.result()
    assert posted in ids and session.refreshes == 1
    assert refused == "Your session has expired. Please sign in again."
    tenant.http.close()


WIRE = {"id": 41, "occurred_at": "2026-03-12T14:05:00.123Z", "type": "password_reset.failed",
        "severity": "error", "summary": "Reset failed for svc-backup",
        "resource_name": "svc-backup — Acme", "resource_url": "https://acme.itglue.com/2/passwords/7",
        "account": "svc-backup@acme.local", "token_id": 3,
        "details": {"code": "agent_offline", "duplicates": 2}, "shard": "eu-1"}


def test_an_event_from_a_page_shows_exactly_as_the_same_event_from_the_stream():
    event = Event.from_json(WIRE)
    assert event.occurred_at == datetime(2026, 3, 12, 14, 5, 0, 123000, tzinfo=UTC)
    assert event.duplicates == 2 and event.details["code"] == "agent_offline"
    assert event.extra == {"shard": "eu-1"}  # a field this app does not know yet is kept
    assert event.to_json() == WIRE
    # History pages hand the page Events, the live stream dicts: one row either way.
    assert EventRecord.from_event(event) == EventRecord.from_event(WIRE)
