"""The event monitor against a real tenant process: live events, restart, pause, filters,
export and history paging — driven the way a technician uses the window."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

import httpx
import pytest
from PySide6.QtCore import Qt

from qp_desktop.services.event_stream import EventStream
from qp_desktop.services.tenant_client import TenantClient
from qp_desktop.ui.events.page import MonitorWindow
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

WAIT = 20_000


class Tenant:
    """A signed-in admin on the test tenant, posting webhooks like IT Glue does."""

    def __init__(self, proc) -> None:
        self.proc = proc
        self.http = httpx.Client(timeout=10)
        response = self.http.post(f"{proc.url}/api/v1/auth/login",
                                  json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        response.raise_for_status()
        self.token = response.json()["access_token"]
        response = self.http.post(f"{proc.url}/api/v1/integrations/itglue/workflow-token",
                                  headers=self.headers, json={})
        assert response.status_code == 201, response.text
        self.hook_url = response.json()["url"]
        self.counter = 0

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def access_token(self) -> str:
        """With ``refresh_after_rejection``: the session a ``TenantClient`` signs in with."""
        return self.token

    async def refresh_after_rejection(self, rejected: str | None) -> bool:
        return False

    def post_hook(self, test: bool = True) -> int:
        """One webhook (a different body each time); returns the event id."""
        self.counter += 1
        n = self.counter
        url = (f"https://acme.itglue.com/2412/not-a-password/{n}" if test
               else f"https://acme.itglue.com/2412/passwords/{98000 + n}")
        response = self.http.post(self.hook_url, json={"resourceUrl": url,
                                                       "resourceName": f"Domain Admin n{n}"})
        assert response.status_code == 202, response.text
        return int(response.json()["event_id"])

    def post_bad_hook(self) -> None:
        response = self.http.post(self.hook_url, content=b"{not json",
                                  headers={"Content-Type": "application/json"})
        assert response.status_code == 400

    def all_ids(self) -> list[int]:
        """Every event id the API lists, oldest first."""
        ids: list[int] = []
        before = None
        while True:
            params = {"limit": 500, **({"before_id": before} if before else {})}
            body = self.http.get(f"{self.url}/api/v1/events", params=params,
                                 headers=self.headers).json()
            ids.extend(e["id"] for e in body["events"])
            before = body["next_before_id"]
            if before is None:
                return sorted(ids)


@pytest.fixture
def tenant(tenant_proc) -> Iterator[Tenant]:
    t = Tenant(tenant_proc)
    yield t
    t.http.close()


@pytest.fixture
def monitor(qtbot, qloop, tenant) -> Iterator[MonitorWindow]:
    client = httpx.AsyncClient()

    async def auth_headers() -> dict[str, str]:
        return tenant.headers

    stream = EventStream(client, tenant.url, auth_headers, initial_backoff=0.2,
                         max_backoff=1.0, offline_after=30)
    window = MonitorWindow(stream, TenantClient(client, tenant.url, tenant).event_page,
                           page_size=10)
    qtbot.addWidget(window)
    window.show()
    window.delivered = []  # every id the stream delivered, in order
    stream.events_received.connect(lambda evs: window.delivered.extend(e["id"] for e in evs))
    yield window
    window.stop()
    closing = qloop.create_task(client.aclose())
    qtbot.waitUntil(lambda: closing.done(), timeout=WAIT)


def _start_live(qtbot, window: MonitorWindow) -> None:
    window.start()
    qtbot.waitUntil(lambda: window.connection_text == "Live", timeout=WAIT)


def _model_ids(window: MonitorWindow) -> list[int]:
    return [r.id for r in window.model.records]


def test_events_posted_over_http_appear_in_the_window(qtbot, tenant, monitor):
    _start_live(qtbot, monitor)
    ids = [tenant.post_hook(test=False), tenant.post_hook(), tenant.post_hook()]
    qtbot.waitUntil(lambda: set(ids) <= set(_model_ids(monitor)), timeout=WAIT)
    # Newest on top; the table shows the summary of what was posted.
    top = monitor.view_model.record_at(0)
    assert top.id == max(_model_ids(monitor))
    qtbot.waitUntil(lambda: _model_ids(monitor) == tenant.all_ids(), timeout=WAIT)
    # Selecting a row fills the detail pane with every field and the URL as a link.
    row = monitor.view_model.row_of(ids[0])
    rect = monitor.table.visualRect(monitor.view_model.index(row, 4))
    qtbot.mouseClick(monitor.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert monitor.selected_record().id == ids[0]
    html = monitor.detail.toHtml()
    assert "https://acme.itglue.com/2412/passwords/" in html and "href" in html
    qtbot.mouseClick(monitor.copy_json_button, Qt.MouseButton.LeftButton)
    from PySide6.QtGui import QGuiApplication
    copied = json.loads(QGuiApplication.clipboard().text())
    assert copied["id"] == ids[0] and copied["type"] == "workflow_trigger.received"


def test_monitor_resumes_after_tenant_restart_without_gap_or_duplicate(qtbot, tenant,
                                                                       monitor):
    for _ in range(3):
        tenant.post_hook()
    _start_live(qtbot, monitor)
    history_newest = monitor.model.newest_id
    before = [tenant.post_hook() for _ in range(3)]
    qtbot.waitUntil(lambda: set(before) <= set(_model_ids(monitor)), timeout=WAIT)

    tenant.proc.stop()
    qtbot.waitUntil(lambda: monitor.connection_text in ("Reconnecting…", "Connecting…")
                    or monitor.connection_text.startswith("Offline"), timeout=WAIT)
    tenant.proc.restart(same_port=True)
    # Committed while the client is still backing off: must be replayed on resume.
    during = [tenant.post_hook() for _ in range(5)]
    qtbot.waitUntil(lambda: monitor.connection_text == "Live", timeout=WAIT)
    after = [tenant.post_hook() for _ in range(5)]

    expected = tenant.all_ids()
    assert set(before + during + after) <= set(expected)
    qtbot.waitUntil(lambda: _model_ids(monitor) == expected, timeout=WAIT)
    assert len(monitor.delivered) == len(set(monitor.delivered)), "a duplicate was delivered"
    assert monitor.delivered == sorted(monitor.delivered)
    # The stream delivered exactly every event after the history it started from.
    assert monitor.delivered == [i for i in expected if i > history_newest]


def test_pause_buffers_and_resume_shows_everything(qtbot, tenant, monitor):
    _start_live(qtbot, monitor)
    green = monitor.state_dot.pixmap().toImage().pixelColor(6, 6)
    qtbot.mouseClick(monitor.pause_button, Qt.MouseButton.LeftButton)
    assert monitor.pause_button.isChecked()
    # Paused is not "Live": the state says so and the dot is no longer green.
    assert monitor.connection_text == "Paused"
    assert monitor.state_dot.pixmap().toImage().pixelColor(6, 6) != green
    held = [tenant.post_hook() for _ in range(3)]
    qtbot.waitUntil(lambda: monitor.paused_count == 3, timeout=WAIT)
    assert monitor.paused_label.text() == "3 new while paused"
    assert not set(held) & set(_model_ids(monitor))
    qtbot.mouseClick(monitor.pause_button, Qt.MouseButton.LeftButton)
    assert set(held) <= set(_model_ids(monitor))
    assert monitor.paused_count == 0 and not monitor.paused_label.isVisible()
    assert monitor.connection_text == "Live"
    assert _model_ids(monitor) == tenant.all_ids()


def test_filters_combine_counters_add_up_and_export_matches(qtbot, tenant, monitor,
                                                             tmp_path):
    tests = [tenant.post_hook() for _ in range(4)]
    tenant.post_bad_hook()
    tenant.post_bad_hook()
    _start_live(qtbot, monitor)
    expected = tenant.all_ids()
    qtbot.waitUntil(lambda: _model_ids(monitor) == expected, timeout=WAIT)
    # 1 token.generated + 4 tests + 1 rejected (the second refusal of the minute folds into
    # the first, which counts both)
    total = len(expected)

    # Category: Token only.
    monitor.category_filter.setCurrentIndex(monitor.category_filter.findText("Token"))
    assert [r.type for r in monitor.view_model.shown_records()] == ["token.generated"]
    assert monitor.counts_label.text() == f"1 shown · {total - 1:,} filtered out"

    # Workflow Trigger + only warnings = the rejected calls.
    monitor.category_filter.setCurrentIndex(
        monitor.category_filter.findText("Workflow Trigger"))
    qtbot.mouseClick(monitor.severity_buttons["info"], Qt.MouseButton.LeftButton)
    shown = monitor.view_model.shown_records()
    assert [r.type for r in shown] == ["workflow_trigger.rejected"]
    assert monitor.counts_label.text() == f"1 shown · {total - 1} filtered out"

    # Back to info too, then free text narrows to one posted body.
    qtbot.mouseClick(monitor.severity_buttons["info"], Qt.MouseButton.LeftButton)
    qtbot.keyClicks(monitor.filter_text, "admin N3")
    shown = monitor.view_model.shown_records()
    assert [r.id for r in shown] == [tests[2]]
    assert monitor.counts_label.text() == f"1 shown · {total - 1} filtered out"

    # A live event that does not match only moves the "filtered out" counter.
    tenant.post_hook()
    qtbot.waitUntil(lambda: monitor.counts_label.text()
                    == f"1 shown · {total} filtered out", timeout=WAIT)

    # Export what is shown, as a technician would from the Export menu.
    monitor.filter_text.clear()
    qtbot.keyClicks(monitor.filter_text, "domain admin")
    shown_ids = [r.id for r in monitor.view_model.shown_records()]
    assert len(shown_ids) == 5
    csv_path, json_path = tmp_path / "shown.csv", tmp_path / "shown.json"
    monitor.choose_export_path = lambda fmt, _s: str(csv_path if fmt == "csv" else json_path)
    with qtbot.waitSignal(monitor.export_finished, timeout=WAIT):
        monitor.export_csv_action.trigger()
    with qtbot.waitSignal(monitor.export_finished, timeout=WAIT):
        monitor.export_json_action.trigger()
    with open(csv_path, encoding="utf-8", newline="") as fh:
        assert [int(r["id"]) for r in csv.DictReader(fh)] == shown_ids
    exported = json.loads(json_path.read_text(encoding="utf-8"))
    assert [e["id"] for e in exported] == shown_ids
    api = tenant.http.get(f"{tenant.url}/api/v1/events/{shown_ids[0]}",
                          headers=tenant.headers).json()
    assert exported[0] == api

    qtbot.mouseClick(monitor.reset_filters_button, Qt.MouseButton.LeftButton)
    assert monitor.view_model.shown_count == total + 1
    assert monitor.counts_label.text() == f"{total + 1} shown"


def test_history_pages_load_on_demand_and_when_scrolling_to_the_old_end(qtbot, tenant,
                                                                        monitor):
    for _ in range(34):
        tenant.post_hook()
    expected = tenant.all_ids()  # 35 with token.generated
    _start_live(qtbot, monitor)
    assert _model_ids(monitor) == expected[-10:]
    with qtbot.waitSignal(monitor.history_loaded, timeout=WAIT):
        qtbot.mouseClick(monitor.load_older_button, Qt.MouseButton.LeftButton)
    assert _model_ids(monitor) == expected[-20:]
    # Scrolling to the bottom (the old end when newest is on top) loads the next page.
    monitor.resize(monitor.width(), 420)
    qtbot.waitUntil(lambda: monitor.table.verticalScrollBar().maximum() > 0, timeout=WAIT)
    with qtbot.waitSignal(monitor.history_loaded, timeout=WAIT):
        monitor.table.verticalScrollBar().setValue(monitor.table.verticalScrollBar().maximum())
    assert _model_ids(monitor) == expected[-30:]
    assert not monitor.following  # scrolled away from the newest: no auto-scroll
    assert monitor.jump_button.isEnabled()
    with qtbot.waitSignal(monitor.history_loaded, timeout=WAIT):
        qtbot.mouseClick(monitor.load_older_button, Qt.MouseButton.LeftButton)
    assert _model_ids(monitor) == expected
    assert monitor.load_older_button.text() == "All history loaded"
    assert not monitor.load_older_button.isEnabled()
    qtbot.mouseClick(monitor.jump_button, Qt.MouseButton.LeftButton)
    assert monitor.following and monitor.table.verticalScrollBar().value() == 0
