"""The tenant client's event history: pages newest first against a real tenant, and a refused
session refreshed once like every other authenticated call."""

from __future__ import annotations

import httpx

from qp_desktop.services.tenant_client import SessionExpired, TenantClient
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

    async def walk() -> None:
        before = None
        while True:
            page = await client.event_page(before, 3)
            pages.append([e["id"] for e in page.events])
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
                return [e["id"] for e in page.events], exc.message
            raise AssertionError("a session that cannot refresh must not read events")
        finally:
            await http.aclose()

    task = qloop.create_task(scenario())
    qtbot.waitUntil(lambda: task.done(), timeout=WAIT)
    ids, refused = task.result()
    assert posted in ids and session.refreshes == 1
    assert refused == "Your session has expired. Please sign in again."
    tenant.http.close()
