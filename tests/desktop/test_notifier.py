"""The notification adapter chain: a real notification daemon on a private D-Bus session
(``dbus-run-session``), the tray message, and the in-app banner as the last resort."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from qp_desktop.services.notifier import (
    ACTION_OPEN,
    ACTION_SNOOZE,
    BannerNotifier,
    DbusNotifier,
    Notification,
    Notifier,
    TrayNotifier,
    scrub,
)
from qp_desktop.ui.alert_banner import AlertBanner
from tests.support.notification_daemon import NotificationDaemon

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10_000
SECRET_URL = "http://127.0.0.1:8080/hooks/itglue/qpwt_c2VjcmV0LXNlY3JldC1zZWNyZXQ"

EXPIRY = Notification("expiry", "The workflow URL expires in 7 days",
                      f"Generate a new one before then (old: {SECRET_URL}).", "warning",
                      ((ACTION_OPEN, "Open"), (ACTION_SNOOZE, "Snooze 1 day")))


def _daemon(no_actions: bool = False):
    daemon = NotificationDaemon(no_actions=no_actions, cwd=str(ROOT))
    try:
        daemon.start()
    except RuntimeError as exc:  # dbus-run-session missing: fail, never skip
        pytest.fail(str(exc))
    return daemon


@pytest.fixture
def daemon():
    d = _daemon()
    yield d
    d.stop()


@pytest.fixture
def daemon_without_actions():
    d = _daemon(no_actions=True)
    yield d
    d.stop()


def run(qtbot, qloop, coro):
    task = qloop.create_task(coro)
    qtbot.waitUntil(task.done, timeout=WAIT)
    return task.result()


class FakeTray:
    """The tray at its boundary: offscreen Qt has no system tray to show messages in."""

    def __init__(self, available: bool):
        self.available = available
        self.messages: list[tuple[str, str, str]] = []
        self.clicked = None

    def is_available(self) -> bool:
        return self.available

    def show_message(self, title: str, body: str, severity: str) -> None:
        self.messages.append((title, body, severity))

    def set_message_clicked_handler(self, handler) -> None:
        self.clicked = handler


def chain(*adapters):
    notifier = Notifier(list(adapters))
    actions: list[tuple[str, str]] = []
    notifier.action_invoked.connect(lambda n, a: actions.append((n.key, a)))
    return notifier, actions


def test_scrub_removes_workflow_tokens_and_hook_paths():
    text = scrub(f"see {SECRET_URL} or qpwt_AbC-_123 now")
    assert "qpwt_c2Vj" not in text and "AbC-_123" not in text
    assert "/hooks/itglue/\u2026" in text


def test_dbus_notification_arrives_with_actions_and_an_action_calls_back(qtbot, qloop, daemon):
    dbus = DbusNotifier(daemon.address)
    notifier, actions = chain(dbus, TrayNotifier(FakeTray(False)), BannerNotifier())
    run(qtbot, qloop, notifier.start())
    assert [a.name for a in notifier.active] == ["dbus", "banner"]  # no tray: skipped
    assert dbus.server[0] == "qp-test-notifications"
    assert run(qtbot, qloop, notifier.notify(EXPIRY)) == "dbus"

    (sent,) = daemon.received()
    assert sent["app_name"] == "QP Desktop"
    assert sent["summary"] == "The workflow URL expires in 7 days"
    assert sent["body"].startswith("Generate a new one before then")
    assert "qpwt_c2Vj" not in sent["body"]  # never a secret in a notification
    assert sent["actions"] == ["open", "Open", "snooze", "Snooze 1 day", "default", "Open"]
    assert sent["hints"]["urgency"] == 1

    daemon.invoke_action(sent["id"], "snooze")
    qtbot.waitUntil(lambda: actions == [("expiry", "snooze")], timeout=WAIT)
    daemon.invoke_action(sent["id"], "default")  # a click on the bubble
    qtbot.waitUntil(lambda: actions[-1:] == [("expiry", "open")], timeout=WAIT)
    run(qtbot, qloop, notifier.close())


def test_a_newer_notification_about_the_same_thing_replaces_the_older(qtbot, qloop, daemon):
    notifier, _ = chain(DbusNotifier(daemon.address))
    failures = Notification("failures", "2 password resets failed", "Open the monitor.",
                            "error", ((ACTION_OPEN, "Open"),))
    run(qtbot, qloop, notifier.notify(failures))
    run(qtbot, qloop, notifier.notify(Notification(
        "failures", "5 password resets failed", "Open the monitor.", "error",
        ((ACTION_OPEN, "Open"),))))
    first, second = daemon.received()
    assert second["replaces_id"] == first["id"] and second["id"] == first["id"]
    assert second["summary"] == "5 password resets failed"
    assert second["hints"]["urgency"] == 2  # errors are critical
    run(qtbot, qloop, notifier.close())


def test_without_the_actions_capability_no_buttons_are_offered(
        qtbot, qloop, daemon_without_actions):
    dbus = DbusNotifier(daemon_without_actions.address)
    notifier, _ = chain(dbus)
    run(qtbot, qloop, notifier.notify(EXPIRY))
    assert not dbus.supports_actions
    (sent,) = daemon_without_actions.received()
    assert sent["actions"] == []
    assert "&lt;" not in sent["body"]  # no body-markup: the text is sent as it is
    run(qtbot, qloop, notifier.close())


def test_when_the_daemon_goes_away_the_next_notification_falls_back(qtbot, qloop):
    daemon = _daemon()
    banner = BannerNotifier()
    notifier, _ = chain(DbusNotifier(daemon.address), banner)
    assert run(qtbot, qloop, notifier.notify(EXPIRY)) == "dbus"
    daemon.stop()
    assert run(qtbot, qloop, notifier.notify(EXPIRY)) == "banner"
    assert banner.current["expiry"].title == EXPIRY.title
    run(qtbot, qloop, notifier.close())


def test_no_dbus_falls_to_the_tray_message_and_a_click_opens(qtbot, qloop, tmp_path):
    tray = FakeTray(True)
    notifier, actions = chain(DbusNotifier(f"unix:path={tmp_path}/no-bus"), TrayNotifier(tray),
                              BannerNotifier())
    assert run(qtbot, qloop, notifier.notify(EXPIRY)) == "tray"
    assert [a.name for a in notifier.active] == ["tray", "banner"]
    title, body, severity = tray.messages[0]
    assert title == EXPIRY.title and "qpwt_c2Vj" not in body and severity == "warning"
    tray.clicked()
    assert actions == [("expiry", "open")]


def test_no_dbus_and_no_tray_shows_a_banner_with_working_buttons(qtbot, qloop, tmp_path):
    from qp_desktop.ui.tray import Tray

    # The tray needs nothing of the app to say whether it can exist.
    real_tray = Tray(available=None)  # ask Qt: offscreen there is no system tray
    assert not real_tray.is_available()
    banner = BannerNotifier()
    notifier, actions = chain(DbusNotifier(f"unix:path={tmp_path}/no-bus"),
                              TrayNotifier(real_tray), banner)
    # Before any window exists the banner keeps the notification ...
    assert run(qtbot, qloop, notifier.notify(EXPIRY)) == "banner"
    assert [a.name for a in notifier.active] == ["banner"]
    # ... and shows it once a window's alert area is attached.
    area = AlertBanner()
    qtbot.addWidget(area)
    area.show()
    banner.attach(area)
    row = area.rows["expiry"]
    assert row.isVisible()
    assert row.title.text() == EXPIRY.title
    assert "qpwt_c2Vj" not in row.body.text()
    assert set(row.buttons) == {"open", "snooze", "dismiss"}
    qtbot.mouseClick(row.buttons["snooze"], Qt.MouseButton.LeftButton)
    assert actions == [("expiry", "snooze")]
    assert "expiry" not in area.rows and not area.isVisible()

    failures = Notification("failures", "3 password resets failed", "Open the monitor.",
                            "error", ((ACTION_OPEN, "Open"),))
    run(qtbot, qloop, notifier.notify(failures))
    qtbot.mouseClick(area.rows["failures"].buttons["open"], Qt.MouseButton.LeftButton)
    assert actions[-1] == ("failures", "open")
    real_tray.shutdown()
