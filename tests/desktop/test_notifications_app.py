"""Alerts end to end: a real tenant, the app signed in, and a real notification daemon on a
private D-Bus session. Expiry notifies once per threshold (also across restarts), snooze is
remembered, a burst of refused triggers is one notification whose Open shows the monitor,
and without D-Bus or a tray the warning is a banner in the window."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import Qt

from qp_desktop.services import settings as S
from qp_desktop.services.alert_policy import STATE_ERROR, STATE_WARNING
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ITGLUE_KEY
from tests.desktop.helpers import WAIT, sign_in_app
from tests.support.notification_daemon import NotificationDaemon
from tests.support.processes import TenantProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def daemon():
    d = NotificationDaemon(cwd=str(ROOT))
    try:
        d.start()
    except RuntimeError as exc:  # dbus-run-session missing: fail, never skip
        pytest.fail(str(exc))
    yield d
    d.stop()


@pytest.fixture
def short_lived_tenant(tmp_path, tenant_template, itglue_emulator):
    """A tenant whose workflow tokens live 5 days (so a new one is already "expiring")."""
    data = tmp_path / "tenant-data"
    shutil.copytree(tenant_template, data)
    tenant = TenantProcess(data, env={"QP_ITGLUE_BASE_URL": itglue_emulator.url,
                                      "QP_PUBLIC_URL": "", "QP_TOKEN_LIFETIME_DAYS": "5"})
    tenant.start()
    yield tenant
    tenant.stop()


class Api:
    def __init__(self, tenant):
        self.client = httpx.Client(base_url=tenant.url, timeout=20)
        token = self.client.post("/api/v1/auth/login", json={
            "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()["access_token"]
        self.client.headers["Authorization"] = f"Bearer {token}"
        self.client.put("/api/v1/integrations/itglue",
                        json={"region": "us", "api_key": ITGLUE_KEY}).raise_for_status()

    def generate(self) -> dict:
        answer = self.client.post("/api/v1/integrations/itglue/workflow-token", json={})
        answer.raise_for_status()
        return answer.json()

    def events(self, **params: str) -> list[dict]:
        answer = self.client.get("/api/v1/events", params=params)
        answer.raise_for_status()
        return answer.json()["events"]

    def close(self) -> None:
        self.client.close()


def test_expiry_notifies_once_per_threshold_across_restarts_and_snooze_is_remembered(
        qtbot, make_app, short_lived_tenant, memory_keyring, daemon, prefs):
    api = Api(short_lived_tenant)
    generated = api.generate()
    api.close()
    secret = generated["url"].rsplit("/", 1)[1]

    app = make_app(tenant_url=short_lived_tenant.url, dbus_bus=daemon.address,
                   tray_available=False)
    sign_in_app(qtbot, app)
    qtbot.waitUntil(lambda: len(daemon.received()) == 1, timeout=WAIT)
    (sent,) = daemon.received()
    assert sent["summary"].startswith("The workflow URL expires in ")
    assert sent["actions"][:4] == ["open", "Open", "snooze", "Snooze 1 day"]
    assert secret not in json.dumps(sent)
    assert app.alerts.status.state == STATE_WARNING
    # The window says so too.
    banner = app.main_window.alert_banner
    qtbot.waitUntil(lambda: "expiry" in banner.rows, timeout=WAIT)
    assert banner.rows["expiry"].title.text() == sent["summary"]

    # "Open" brings the IT Glue page.
    app.main_window.show_page("events")
    daemon.invoke_action(sent["id"], "open")
    qtbot.waitUntil(lambda: app.main_window.current_page_key() == "itglue", timeout=WAIT)

    # Restart: the same threshold is not notified again (also not by the tenant's own
    # token.expiring event for it, replayed here as it arrives on the stream).
    app.shutdown()
    again = make_app(tenant_url=short_lived_tenant.url, dbus_bus=daemon.address,
                     tray_available=False)
    sign_in_app(qtbot, again)
    qtbot.waitUntil(lambda: again.alerts.token is not None and not again.alerts.busy,
                    timeout=WAIT)
    token_id = int(generated["token"]["id"])
    again.alerts.on_events([{"id": 1, "type": "token.expiring", "severity": "warning",
                             "summary": "expires", "token_id": token_id,
                             "details": {"threshold": 7, "days_left": 4}}])
    qtbot.waitUntil(lambda: not again.alerts.busy, timeout=WAIT)
    assert len(daemon.received()) == 1

    # The next threshold arrives on the stream: one new notification, snoozed by the user.
    again.alerts.on_events([{"id": 2, "type": "token.expiring", "severity": "warning",
                             "summary": "expires", "token_id": token_id,
                             "details": {"threshold": 1, "days_left": 1}}])
    qtbot.waitUntil(lambda: len(daemon.received()) == 2, timeout=WAIT)
    second = daemon.received()[1]
    assert second["summary"] == "The workflow URL expires tomorrow"
    daemon.invoke_action(second["id"], "snooze")
    qtbot.waitUntil(lambda: "snoozed_until\":\"" in prefs.get(S.ALERT_MEMORY), timeout=WAIT)
    memory = json.loads(prefs.get(S.ALERT_MEMORY))
    (entry,) = [v for k, v in memory.items() if k.endswith(f"#{token_id}")]
    assert set(entry["done"]) >= {30, 7, 1}


def test_a_burst_of_refused_triggers_is_one_notification_and_open_shows_the_monitor(
        qtbot, make_app, tenant_proc, memory_keyring, daemon):
    api = Api(tenant_proc)
    old_url = api.generate()["url"]
    api.generate()  # the old URL is refused from now on
    app = make_app(tenant_url=tenant_proc.url, dbus_bus=daemon.address,
                   tray_available=False)
    # A slow machine may split the burst: later failures then update the same notification
    # (after a short gap here; a minute in the app).
    app.alerts.min_gap = timedelta(seconds=0.5)
    sign_in_app(qtbot, app)
    qtbot.waitUntil(lambda: app.event_stream is not None
                    and app.event_stream.state == "live", timeout=WAIT)

    for _ in range(5):
        answer = httpx.post(old_url, json={"resourceUrl": "x", "resourceName": "y"}, timeout=10)
        assert answer.status_code == 410
    # The tenant logs the first refusal of the minute and folds the other four into it
    # (details.count); the live stream carries that first event, so one refusal is told.
    [event] = api.events(type="workflow_trigger.rejected")
    assert event["details"]["count"] == 5
    api.close()
    qtbot.waitUntil(lambda: daemon.received()[-1:] != [] and daemon.received()[-1]["summary"]
                    == "1 workflow trigger was refused", timeout=WAIT)
    received = daemon.received()
    assert len({n["id"] for n in received}) == 1  # one notification on screen
    sent = received[-1]
    assert sent["actions"][:2] == ["open", "Open"]
    assert old_url.rsplit("/", 1)[1] not in json.dumps(sent)
    assert app.alerts.status.state == STATE_ERROR
    assert "1 workflow trigger was refused" in app.tray.icon.toolTip()

    daemon.invoke_action(sent["id"], "open")
    qtbot.waitUntil(lambda: app.main_window.current_page_key() == "events", timeout=WAIT)
    assert app.alerts.status.state != STATE_ERROR  # looked at: the tray calms down


def test_without_dbus_or_tray_the_expiry_warning_is_a_banner_in_the_window(
        qtbot, make_app, short_lived_tenant, memory_keyring, prefs):
    api = Api(short_lived_tenant)
    api.generate()
    api.close()
    app = make_app(tenant_url=short_lived_tenant.url, dbus_bus=None)  # offscreen: no tray
    assert not app.tray.is_available()
    sign_in_app(qtbot, app)
    banner = app.main_window.alert_banner
    qtbot.waitUntil(lambda: "expiry" in banner.rows and not app.alerts.busy, timeout=WAIT)
    assert app.notifier.backend.name == "banner"
    row = banner.rows["expiry"]
    assert row.isVisible()
    assert row.title.text().startswith("The workflow URL expires in ")
    assert "snooze" in row.buttons  # the notification itself, not just the status
    qtbot.mouseClick(row.buttons["snooze"], Qt.MouseButton.LeftButton)
    assert "expiry" not in banner.rows
    assert "snoozed_until\":\"" in prefs.get(S.ALERT_MEMORY)
