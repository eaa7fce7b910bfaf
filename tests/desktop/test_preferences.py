"""Preferences: notification kinds, the clipboard clear timeout and start at login, each saved
at once; the test notification says which way notifications go."""

from __future__ import annotations

from PySide6.QtCore import Qt

from qp_desktop.services import settings as S
from qp_desktop.services.autostart import Autostart
from qp_desktop.services.clipboard import DEFAULT_CLEAR_SECONDS, SecretClipboard
from qp_desktop.services.notifier import BannerNotifier, DbusNotifier, Notifier
from qp_desktop.ui.alert_banner import AlertBanner
from qp_desktop.ui.preferences import PreferencesPage


def make_page(qtbot, prefs, tmp_path, notifier=None):
    clipboard = SecretClipboard(30_000)
    autostart = Autostart("linux", home=tmp_path / "home", env={}, command=["qp-desktop"])
    page = PreferencesPage(prefs, clipboard, autostart, notifier)
    qtbot.addWidget(page)
    page.show()
    return page, clipboard, autostart


def test_notification_kinds_are_saved_when_toggled(qtbot, prefs, tmp_path):
    page, _, _ = make_page(qtbot, prefs, tmp_path)
    assert all(box.isChecked() for box in page.notify_boxes.values())
    qtbot.mouseClick(page.notify_boxes["notify_reset_failed"], Qt.MouseButton.LeftButton)
    assert prefs.get(S.NOTIFY_RESET_FAILED) is False
    assert prefs.get(S.NOTIFY_EXPIRY) is True and prefs.get(S.NOTIFY_TRIGGER_REJECTED) is True
    again, _, _ = make_page(qtbot, prefs, tmp_path)
    assert not again.notify_boxes["notify_reset_failed"].isChecked()


def test_clipboard_timeout_applies_at_once(qtbot, prefs, tmp_path):
    page, clipboard, _ = make_page(qtbot, prefs, tmp_path)
    # The default outlasts the clicks between Copy in the wizard and Paste in IT Glue.
    assert page.clear_seconds.value() == DEFAULT_CLEAR_SECONDS >= 90
    page.clear_seconds.selectAll()
    qtbot.keyClicks(page.clear_seconds, "45")
    assert prefs.get(S.CLIPBOARD_CLEAR_SECONDS) == 45
    assert clipboard.clear_after_ms == 45_000


def test_start_at_login_writes_and_removes_the_autostart_file(qtbot, prefs, tmp_path):
    page, _, autostart = make_page(qtbot, prefs, tmp_path)
    assert not page.start_at_login.isChecked()
    assert str(autostart.path) in page.autostart_hint.text()
    qtbot.mouseClick(page.start_at_login, Qt.MouseButton.LeftButton)
    assert autostart.path.is_file() and prefs.get(S.START_AT_LOGIN)
    qtbot.mouseClick(page.start_at_login, Qt.MouseButton.LeftButton)
    assert not autostart.path.exists() and not prefs.get(S.START_AT_LOGIN)


def test_start_at_login_failure_is_explained_and_the_box_stays_off(qtbot, prefs, tmp_path):
    clipboard = SecretClipboard(30_000)
    blocker = tmp_path / "cfg"
    blocker.write_text("not a folder")
    autostart = Autostart("linux", home=tmp_path, env={"XDG_CONFIG_HOME": str(blocker)},
                          command=["qp-desktop"])
    page = PreferencesPage(prefs, clipboard, autostart)
    qtbot.addWidget(page)
    page.show()
    qtbot.mouseClick(page.start_at_login, Qt.MouseButton.LeftButton)
    assert not page.start_at_login.isChecked()
    assert page.banner.kind == "error" and "start at login" in page.banner.label.text()


def test_test_notification_names_the_way_notifications_go(qtbot, qloop, prefs, tmp_path):
    banner = BannerNotifier()
    area = AlertBanner()
    qtbot.addWidget(area)
    banner.attach(area)
    notifier = Notifier([DbusNotifier(f"unix:path={tmp_path}/no-bus"), banner])
    page, _, _ = make_page(qtbot, prefs, tmp_path, notifier)
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "test" in area.rows, timeout=5000)
    qtbot.waitUntil(lambda: page.backend_label.text() != "", timeout=5000)
    assert page.backend_label.text() == "Notifications appear as a banner in the window."


def test_the_local_tenants_public_address_is_checked_and_kept(qtbot, prefs, tmp_path):
    page, _, _ = make_page(qtbot, prefs, tmp_path)
    page.public_url.setText("http://qp.example.net")
    qtbot.mouseClick(page.save_public_button, Qt.MouseButton.LeftButton)
    assert page.public_url_message.kind == "error" and "https" in page.public_url_message.text()
    assert prefs.get(S.LOCAL_PUBLIC_URL) == ""
    page.public_url.setText("qp.example.net/")
    qtbot.mouseClick(page.save_public_button, Qt.MouseButton.LeftButton)
    assert prefs.get(S.LOCAL_PUBLIC_URL) == "https://qp.example.net"
    assert "start QP Desktop again" in page.public_url_message.text()
