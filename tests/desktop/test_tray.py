"""The tray: its menu rendered offscreen against a real tenant (each action doing its job),
its state in icon and tooltip, and closing the window (hide to the tray, or quit)."""

from __future__ import annotations

import httpx
import pytest
from PySide6.QtGui import QGuiApplication

from qp_desktop.services import settings as S
from qp_desktop.services.alert_policy import STATE_ERROR, STATE_WARNING, AlertStatus
from qp_desktop.services.clipboard import PASSWORD_HINT_MIME
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ITGLUE_KEY
from tests.desktop.helpers import WAIT, sign_in_app

MENU = ["tray_open", "tray_monitor", "tray_setup", "tray_copy_url", "tray_generate",
        "tray_sign_out", "tray_quit"]


def prepare_token(tenant) -> str:
    """Connect IT Glue and generate a workflow token through the API; returns its URL."""
    with httpx.Client(base_url=tenant.url, timeout=20) as client:
        token = client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL,
                                                         "password": ADMIN_PASSWORD}
                            ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        client.put("/api/v1/integrations/itglue", json={"region": "us", "api_key": ITGLUE_KEY},
                   headers=auth).raise_for_status()
        answer = client.post("/api/v1/integrations/itglue/workflow-token", json={},
                             headers=auth)
        answer.raise_for_status()
        return answer.json()["url"]


def names(menu) -> list[str]:
    return [a.objectName() for a in menu.actions() if a.objectName().startswith("tray_")
            and a.objectName() != "tray_status"]


@pytest.fixture
def signed_in(qtbot, make_app, tenant_proc, memory_keyring):
    url = prepare_token(tenant_proc)
    app = make_app(tenant_url=tenant_proc.url, dbus_bus=None, tray_available=False)
    sign_in_app(qtbot, app)
    qtbot.waitUntil(lambda: app.alerts.token is not None, timeout=WAIT)
    return app, url


def test_menu_is_built_when_it_opens_and_each_action_does_its_job(qtbot, signed_in):
    app, url = signed_in
    tray = app.tray
    tray.menu.clear()
    tray.menu.aboutToShow.emit()  # what opening the menu does
    assert names(tray.menu) == MENU
    assert all(tray.action(name).isEnabled() for name in MENU)
    assert tray.action("tray_status").text() == "The workflow URL is valid for 365 days"
    picture = tray.menu.grab()
    assert not picture.isNull() and picture.width() > 100

    # Copy workflow URL: asks the tenant, copies with the password-manager hint.
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("")
    tray.action("tray_copy_url").trigger()
    qtbot.waitUntil(lambda: clipboard.text() == url, timeout=WAIT)
    mime = clipboard.mimeData()
    assert bytes(mime.data(PASSWORD_HINT_MIME).data()) == b"secret"
    assert app.clipboard.pending_clear

    window = app.main_window
    tray.action("tray_monitor").trigger()
    assert window.current_page_key() == "events"
    if window.has_page("setup"):
        tray.action("tray_setup").trigger()
        assert window.current_page_key() == "setup"

    # Generate new token…: the IT Glue page's own confirmation opens (nothing replaced yet).
    tray.action("tray_generate").trigger()
    page = window.page("itglue")
    qtbot.waitUntil(lambda: page.generate_dialog is not None, timeout=WAIT)
    assert window.current_page_key() == "itglue"
    page.generate_dialog.reject()

    window.hide()
    tray.action("tray_open").trigger()
    assert window.isVisible()

    with qtbot.waitSignal(app.quit_requested, timeout=1000):
        tray.action("tray_quit").trigger()

    tray.action("tray_sign_out").trigger()
    qtbot.waitUntil(lambda: app.main_window is None and app.sign_in.isVisible(), timeout=WAIT)


def test_signed_out_menu_offers_open_and_quit_only(qtbot, make_app, tenant_proc, memory_keyring):
    app = make_app(tenant_url=tenant_proc.url, dbus_bus=None, tray_available=False)
    app.tray.menu.aboutToShow.emit()
    enabled = [n for n in MENU if app.tray.action(n).isEnabled()]
    assert enabled == ["tray_open", "tray_quit"]
    assert app.tray.action("tray_status").text() == "Not signed in"
    app.tray.action("tray_open").trigger()
    assert app.sign_in.isVisible()


def test_icon_and_tooltip_follow_the_alert_state(qtbot, make_app, tenant_proc):
    app = make_app(tenant_url=tenant_proc.url, dbus_bus=None, tray_available=False)
    tray = app.tray
    ok_key = tray.icon.icon().cacheKey()
    app.alerts.status_changed.emit(AlertStatus(STATE_WARNING,
                                               ("The workflow URL expires in 5 days",)))
    assert tray.icon.toolTip() == "QP Desktop\nThe workflow URL expires in 5 days"
    warn_key = tray.icon.icon().cacheKey()
    app.alerts.status_changed.emit(AlertStatus(STATE_ERROR, ("The workflow URL has expired",
                                                             "2 password resets failed")))
    assert "2 password resets failed" in tray.icon.toolTip()
    assert len({ok_key, warn_key, tray.icon.icon().cacheKey()}) == 3
    assert not tray.icon.icon().isNull()
    tray.menu.aboutToShow.emit()
    assert tray.action("tray_status").text().endswith("The workflow URL has expired")


def test_without_a_tray_closing_the_main_window_quits(qtbot, make_app, tenant_proc,
                                                     memory_keyring):
    app = make_app(tenant_url=tenant_proc.url, dbus_bus=None, tray_available=False)
    sign_in_app(qtbot, app)
    with qtbot.waitSignal(app.quit_requested, timeout=1000):
        app.main_window.close()


def test_with_a_tray_closing_hides_to_it_and_says_so_the_first_time(
        qtbot, make_app, tenant_proc, memory_keyring, prefs):
    app = make_app(tenant_url=tenant_proc.url, dbus_bus=None, tray_available=True)
    messages = []
    app.tray.show_message = lambda *args: messages.append(args)  # offscreen has no tray
    quits = []
    app.quit_requested.connect(lambda: quits.append(True))
    sign_in_app(qtbot, app)
    window = app.main_window
    window.close()
    qtbot.waitUntil(lambda: len(messages) == 1, timeout=WAIT)
    assert not window.isVisible() and app.main_window is window and not quits
    title, body, _ = messages[0]
    assert title == "QP Desktop is still running" and "Quit" in body
    assert prefs.get(S.TRAY_HINT_SHOWN)

    app.tray.action("tray_open").trigger()
    assert window.isVisible()
    window.close()
    app.on_last_window_closed()
    assert not quits and len(messages) == 1  # said once only


def test_screenshots_render_the_tray_menu_and_the_expiry_banner(qtbot, qloop, signed_in,
                                                                tmp_path):
    from qp_desktop.demo.screenshots import SCREENSHOTS, ScreenshotContext

    app, _ = signed_in
    shots = dict(SCREENSHOTS)
    ctx = ScreenshotContext(app, tmp_path, tmp_path)
    for name in ("tray-menu", "banner-expiring"):
        task = qloop.create_task(shots[name](ctx))
        qtbot.waitUntil(task.done, timeout=WAIT)
        widget = task.result()
        assert widget.grab().save(str(tmp_path / f"{name}.png"))
        assert (tmp_path / f"{name}.png").stat().st_size > 2000
    window = ctx.keep[-1]
    row = window.alert_banner.rows["expiry"]
    assert row.isVisible() and row.title.text() == "The workflow URL expires in 5 days"
    for kept in ctx.keep:
        kept.shutdown_pages()
        kept.hide()
        kept.deleteLater()
