"""``qp-desktop`` and ``python -m qp_desktop``: the command line, the QApplication, the
sign-in window, then the qasync loop and :class:`qp_desktop.app.DesktopApp` (or the
screenshot mode).

Kept light on purpose: the sign-in window is built and painted with PySide6 and its own
modules only; qasync, httpx, keyring and the app's services are imported and built after it
is on screen, then attached to it (see ``docs/desktop.md``, "Start-up").
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qp_desktop import APP_NAME

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication, QWidget

NO_DISPLAY_MESSAGE = (
    "qp-desktop: no display found (DISPLAY and WAYLAND_DISPLAY are unset). Run it from a "
    "desktop session, or under a virtual X server: xvfb-run qp-desktop. "
    "(qp-desktop --screenshot DIR works without a display.)"
)


def has_display() -> bool:
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY",
                                                   "QT_QPA_PLATFORM"))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="qp-desktop",
                                     description="QP Desktop: the technician's companion.")
    parser.add_argument("--tenant", metavar="URL", help="sign in to the tenant at URL "
                        "instead of the one on this computer")
    parser.add_argument("--screenshot", metavar="DIR", type=Path,
                        help="render every window into DIR as PNG and exit")
    parser.add_argument("--check-layout", action="store_true",
                        help="with --screenshot: render every page and dialog at its default "
                             "size and at 1024x700 only, check each for scroll bars, controls "
                             "out of reach and cut-off text, and exit 3 on a problem")
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--exit-when-shown", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tenant:
        from qp_common.urls import normalise_tenant_url

        try:
            args.tenant = normalise_tenant_url(args.tenant)
        except ValueError as exc:
            parser.error(str(exc))
    return args


def _make_qapplication() -> QApplication:
    from PySide6.QtWidgets import QApplication

    from qp_desktop import APP_ID
    from qp_desktop.ui.theme import apply_theme, qapplication_arguments

    app = QApplication.instance()
    style_set = app is None
    if app is None:
        app = QApplication(qapplication_arguments(sys.argv[0] if sys.argv else APP_NAME))
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationDisplayName("QP Desktop")
    # The reverse-DNS id: Wayland's app id, matched to resources/<APP_ID>.desktop.
    app.setDesktopFileName(APP_ID)
    apply_theme(app, style_set=style_set)
    return app


def _finish_start(app: QApplication) -> None:
    """Logging, the crash dialog and the window icon: together they cost more than the
    sign-in window itself, so a normal start sets them up right after that window is on
    screen (or on the way out of a failure to show it, which is then logged, redacted,
    and shown like any other)."""
    from qp_desktop.resources import app_icon
    from qp_desktop.services.logs import setup_logging
    from qp_desktop.ui.crash_dialog import install_excepthook

    log_file = setup_logging()
    install_excepthook(log_file.parent)
    app.setWindowIcon(app_icon())


def _paint_now(app: QApplication, window: QWidget, wait_ms: int = 500) -> None:
    """Let ``window`` reach the screen before the heavy imports block the GUI thread: process
    events until the window system has exposed it (and so painted it), or ``wait_ms``."""
    from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer

    app.processEvents()
    handle = window.windowHandle()
    if handle is None or handle.isExposed():
        return
    waiting = QEventLoop()

    class _ExposeWatch(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt
            if event.type() == QEvent.Type.Expose and handle.isExposed():
                QTimer.singleShot(0, waiting.quit)  # after Qt has painted for this expose
            return False

    watch = _ExposeWatch()
    handle.installEventFilter(watch)
    QTimer.singleShot(wait_ms, waiting.quit)
    waiting.exec()
    handle.removeEventFilter(watch)


def main(argv: Sequence[str] | None = None) -> int:
    from qp_desktop.services.bundle import run_module_if_requested

    # Inside a PyInstaller bundle this executable also starts the embedded tenant (and the
    # screenshot mode's IT Glue emulator): ``qp-desktop -m qp_tenant serve ...``.
    child_exit = run_module_if_requested(argv)
    if child_exit is not None:
        return child_exit
    args = parse_args(argv)
    if args.screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    elif not has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return 2

    sign_in = None
    if args.screenshot is not None:
        from qp_desktop.services.logs import setup_logging

        setup_logging()
        app = _make_qapplication()
        from qp_desktop.resources import app_icon

        app.setWindowIcon(app_icon())
    else:
        from PySide6.QtCore import QSettings

        from qp_desktop.services.settings import Preferences
        from qp_desktop.ui.sign_in import SignInWindow

        app = _make_qapplication()
        try:
            # Quit is ours to run: the coroutine below cleans up (tenant child, HTTP client)
            # and then returns, which ends the loop; letting Qt exit first would cut that
            # short.
            app.setQuitOnLastWindowClosed(False)
            # On screen first; the services (keyring, HTTP client, local tenant) are
            # attached by DesktopApp once built, and until then nothing can be sent.
            sign_in = SignInWindow(None, None, Preferences(QSettings()))
            if args.tenant:
                sign_in.set_tenant_url(args.tenant)
            sign_in.show()
            _paint_now(app, sign_in)
            if args.exit_when_shown:
                # The start-up benchmark: it counts the CPU time to the first window, so
                # end here without the interpreter's teardown (its bare window ends the
                # same way).
                print("shown", flush=True)
                os._exit(0)
        finally:
            _finish_start(app)

    import asyncio

    import qasync

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    if args.screenshot is not None:
        from qp_desktop.demo.screenshots import run_screenshots

        with loop:
            return loop.run_until_complete(run_screenshots(args.screenshot,
                                                           check_layout=args.check_layout))

    quit_requested = asyncio.Event()

    async def run() -> int:
        from PySide6.QtCore import QSettings

        from qp_desktop.app import DesktopApp, http_client
        from qp_desktop.services.secret_store import SecretStore
        from qp_desktop.services.settings import Preferences, WindowState

        qsettings = QSettings()
        async with http_client() as http:
            desktop = DesktopApp(Preferences(qsettings), SecretStore(), http,
                                 tenant_url=args.tenant, local_data_dir=args.data_dir,
                                 window_state=WindowState(qsettings), sign_in=sign_in)
            # With a tray, closing the last window only hides it (see DesktopApp).
            app.lastWindowClosed.connect(desktop.on_last_window_closed)
            desktop.quit_requested.connect(quit_requested.set)
            desktop.tasks.start(desktop.start())
            await quit_requested.wait()
            desktop.shutdown()
            await desktop.notifier.close()
        return 0

    with loop:
        return loop.run_until_complete(run())


if __name__ == "__main__":
    sys.exit(main())
