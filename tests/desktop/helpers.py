"""Driving the desktop windows the way a technician does."""

from __future__ import annotations

from PySide6.QtCore import Qt

WAIT = 20_000  # ms: generous, a real tenant answers; never a timed assertion


def start(qtbot, app) -> None:
    """Run DesktopApp.start() and wait until it is done."""
    task = app.tasks.start(app.start())
    qtbot.waitUntil(task.done, timeout=60_000)
    task.result()


def type_into(qtbot, widget, text: str) -> None:
    widget.clear()
    qtbot.keyClicks(widget, text)


def fill_sign_in(qtbot, window, *, email: str, password: str, url: str | None = None,
                 remember: bool | None = None) -> None:
    if url is not None:
        qtbot.mouseClick(window.mode_url, Qt.MouseButton.LeftButton)
        type_into(qtbot, window.tenant_url, url)
    type_into(qtbot, window.email, email)
    type_into(qtbot, window.password.edit, password)
    if remember is not None and window.remember_me.isChecked() != remember:
        qtbot.mouseClick(window.remember_me, Qt.MouseButton.LeftButton)


def submit_and_wait(qtbot, window) -> None:
    """Click the primary button and wait for the call to finish (busy bar gone)."""
    assert window.submit_button.isEnabled()
    qtbot.mouseClick(window.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=WAIT)


def sign_in_app(qtbot, app, email: str | None = None, password: str | None = None) -> None:
    """Start ``app`` and sign in through its window (the admin by default); returns once the
    main window shows. The one copy of "start the app and sign in" for desktop tests."""
    from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

    start(qtbot, app)
    fill_sign_in(qtbot, app.sign_in, email=email or ADMIN_EMAIL,
                 password=password or ADMIN_PASSWORD)
    submit_and_wait(qtbot, app.sign_in)
    qtbot.waitUntil(lambda: app.main_window is not None and app.main_window.isVisible(),
                    timeout=WAIT)


def click_and_settle(qtbot, button, page) -> None:
    """Click a page button and wait for the page's background work to end."""
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.tasks.busy, timeout=WAIT)
