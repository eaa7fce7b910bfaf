"""The tenant's IT Glue watcher as the desktop shows it: the status line (a table of states),
the IT Glue page and the setup wizard against a tenant answering the watcher JSON, and
nothing at all for a tenant without a watcher.

A real tenant answers ``watcher`` only once the watcher lands, so the pages are driven by a
stand-in that answers ``GET /api/v1/integrations/itglue`` with the documented shape (and the
error envelope for anything else).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from qp_common.wire import format_rfc3339
from qp_desktop.services.itglue_watcher import watcher_covers, watcher_status
from qp_desktop.services.tenant_client import ITGlueIntegration, ITGlueWatcher
from tests.desktop.helpers import WAIT

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8750"


def _watcher(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "enabled": True, "interval_seconds": 60,
        "last_checked_at": format_rfc3339(NOW - timedelta(seconds=12)),
        "next_check_at": format_rfc3339(NOW + timedelta(seconds=48)),
        "last_error": None, "last_found_at": None, "changes_found": 0}
    data.update(changes)
    return data


def _integration(watcher: dict[str, Any] | None, *, public: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "connected": True, "region": "us", "api_key_hint": "ITG.\u2026cdef",
        "last_verified_at": format_rfc3339(NOW), "last_error": None,
        "workflow_token": {"id": "3", "status": "active", "days_left": 300,
                           "url_hint": f"{BASE}/hooks/itglue/qpwt_ab",
                           "public_url_ok": public},
        "webhook_payload": [{"key": "resourceUrl", "value": "[resource_url]"}]}
    if watcher is not None:
        data["watcher"] = watcher
    return data


@pytest.mark.parametrize(("changes", "kind", "text"), [
    ({}, "info", "Checked 12 s ago, next in 48 s."),
    ({"next_check_at": format_rfc3339(NOW - timedelta(seconds=2))}, "info",
     "Checked 12 s ago, next check due now."),
    ({"last_checked_at": None, "next_check_at": None}, "info",
     "Starting: it checks IT Glue every 60 s."),
    ({"changes_found": 3, "last_found_at": format_rfc3339(NOW - timedelta(minutes=5))},
     "info", "Checked 12 s ago, next in 48 s. 3 changed passwords picked up, the last "
             "5 min ago."),
    ({"last_error": "IT Glue refused the API key (401)"}, "error",
     "Checked 12 s ago, next in 48 s. The last check failed: IT Glue refused the API key "
     "(401). It tries again at each check; if this goes on, check the IT Glue connection "
     "above."),
    ({"enabled": False}, "info",
     "Off. Password changes reach the tenant through the IT Glue workflow."),
])
def test_the_watcher_line_says_when_it_checked_and_what_went_wrong(changes, kind, text):
    watcher = ITGlueWatcher.from_json(_watcher(**changes))
    assert watcher_status(watcher, NOW) == (kind, text)


def test_no_watcher_in_the_answer_means_no_line():
    integration = ITGlueIntegration.from_json(_integration(None))
    assert integration.watcher is None
    assert watcher_status(integration.watcher, NOW) == ("", "")
    assert not watcher_covers(integration, BASE)


def test_the_watcher_covers_only_a_tenant_it_glue_cannot_call():
    local = ITGlueIntegration.from_json(_integration(_watcher()))
    public = ITGlueIntegration.from_json(_integration(_watcher(), public=True))
    off = ITGlueIntegration.from_json(_integration(_watcher(enabled=False)))
    assert watcher_covers(local, BASE)
    assert not watcher_covers(public, "https://qp.example.com")
    assert not watcher_covers(off, BASE)


def _stand_in(answer: dict[str, Any]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/api/v1/integrations/itglue":
            return httpx.Response(200, json=answer)
        return httpx.Response(404, json={"error": {"code": "not_found",
                                                   "message": "Not here.", "details": {}}})
    return httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url=BASE)


class _SignedIn:
    """The stand-in accepts any bearer token."""

    access_token = "stand-in"

    async def refresh_after_rejection(self, rejected: str | None) -> bool:
        return False


@pytest.fixture
def itglue_page(qtbot, qloop):
    from qp_desktop.services.clipboard import SecretClipboard
    from qp_desktop.services.tenant_client import TenantClient
    from qp_desktop.ui.itglue import ITGluePage

    def build(answer: dict[str, Any]) -> ITGluePage:
        client = TenantClient(_stand_in(answer), BASE, tokens=_SignedIn())
        page = ITGluePage(client, SecretClipboard(30_000))
        qtbot.addWidget(page)
        page.show()
        task = page.tasks.start(page.refresh())
        qtbot.waitUntil(task.done, timeout=WAIT)
        assert task.result()
        return page
    return build


def test_the_itglue_page_shows_the_watcher_and_that_it_replaces_the_workflow(itglue_page):
    page = itglue_page(_integration(_watcher(
        last_checked_at=format_rfc3339(datetime.now(UTC) - timedelta(seconds=5)),
        next_check_at=format_rfc3339(datetime.now(UTC) + timedelta(seconds=55)))))
    assert page.watcher_label.isVisible()
    assert page.watcher_label.text().startswith("Checked ")
    assert ", next in " in page.watcher_label.text()
    assert page.public_url_warning.kind == "info"
    assert "changes are picked up within a minute" in page.public_url_warning.label.text()


def test_the_itglue_page_shows_the_watchers_last_error(itglue_page):
    page = itglue_page(_integration(_watcher(last_error="IT Glue answered 503")))
    assert "The last check failed: IT Glue answered 503." in page.watcher_label.text()


def test_a_tenant_without_a_watcher_shows_nothing_of_it(itglue_page):
    page = itglue_page(_integration(None))
    assert not page.watcher_label.isVisible()
    assert page.watcher_label.text() == ""
    assert page.public_url_warning.kind == "warning"
    assert page.public_url_warning.label.text().startswith("IT Glue cannot reach this URL")


def test_the_wizard_completes_without_the_workflow_steps_when_the_watcher_covers(
        qtbot, qloop, prefs, memory_keyring):
    from qp_desktop.services.clipboard import SecretClipboard
    from qp_desktop.services.secret_store import SecretStore
    from qp_desktop.services.session import Session
    from qp_desktop.services.tenant_client import TenantClient
    from qp_desktop.ui import wizard_steps as W
    from qp_desktop.ui.wizard import SetupWizardPage

    def wizard(answer: dict[str, Any]) -> SetupWizardPage:
        http = _stand_in(answer)
        client = TenantClient(http, BASE)
        session = Session(client, SecretStore())
        client.tokens = _SignedIn()
        page = SetupWizardPage(client, SecretClipboard(30_000), prefs, session, http)
        qtbot.addWidget(page)
        for key, _ in W.CONFIRMATIONS:
            page.progress.set_confirmed(key, True)
        task = page.tasks.start(page.refresh())
        qtbot.waitUntil(task.done, timeout=WAIT)
        assert task.result()
        return page

    covered = wizard(_integration(_watcher()))
    assert covered.watcher_covers()
    assert all(not covered.step_required(key) for key in W.WORKFLOW_STEPS)
    assert covered.progress_label.text() == "Required: 2 of 2 done"
    assert covered.notice_banner.kind == "success"
    assert "picked up within a minute" in covered.notice_banner.label.text()
    assert "picked up within a minute" in covered.url_public_warning.label.text()
    covered.shutdown()

    without = wizard(_integration(None))
    assert not without.watcher_covers()
    assert without.step_required(W.URL)
    assert without.progress_label.text() == f"2 of {len(W.STEPS)} steps done"
    assert without.notice_banner.kind != "success"
    without.shutdown()
