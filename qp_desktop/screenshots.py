"""``qp-desktop --screenshot DIR``: render every window offscreen with realistic data.

A throw-away local tenant (in a temporary folder) and the IT Glue emulator run as child
processes; the administrator is created, IT Glue connected and a workflow token generated;
then each registered screenshot is rendered in the light and the dark palette.

Pages add their own pictures with :func:`register_screenshot`::

    register_screenshot("monitor", render_monitor)   # async (ctx) -> QWidget
"""

from __future__ import annotations

import logging
import secrets
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

from qp_desktop.services.local_tenant import ChildServer, ChildServerError

log = logging.getLogger(__name__)

DEMO_EMAIL = "alex@northwind-it.example"
DEMO_NAME = "Alex Morgan"
DEMO_PASSWORD = secrets.token_urlsafe(18)  # throw-away, never shown


@dataclass
class ScreenshotContext:
    """What a screenshot function may use. ``app`` is the running DesktopApp."""

    app: object  # DesktopApp (import cycle otherwise)
    out_dir: Path
    workdir: Path
    dark: bool = False
    keep: list[QWidget] = field(default_factory=list)


ScreenshotFn = Callable[[ScreenshotContext], Awaitable[QWidget]]
SCREENSHOTS: list[tuple[str, ScreenshotFn]] = []


def register_screenshot(name: str, render: ScreenshotFn) -> None:
    """Add a picture: ``render`` returns the widget to grab into ``<name>.png``."""
    SCREENSHOTS.append((name, render))


async def _sign_in_shot(ctx: ScreenshotContext) -> QWidget:
    from qp_desktop.app import DesktopApp
    from qp_desktop.ui.sign_in import SignInWindow

    app = ctx.app
    assert isinstance(app, DesktopApp)
    window = SignInWindow(app.session, app.local_tenant, app.prefs)
    window.email.setText(DEMO_EMAIL)
    window.show()
    await window.prepare_local()
    ctx.keep.append(window)
    return window


async def _integration_shot(ctx: ScreenshotContext) -> QWidget:
    from qp_desktop.app import DesktopApp
    from qp_desktop.ui.itglue_page import ITGluePage

    app = ctx.app
    assert isinstance(app, DesktopApp)
    window = app._build_main_window()
    window.resize(1120, 1300)
    window.show()
    page = window.page("itglue")
    assert isinstance(page, ITGluePage)
    await page.refresh()
    ctx.keep.append(window)
    return window


async def _monitor_shot(ctx: ScreenshotContext) -> QWidget:
    from qp_desktop.ui.monitor import MonitorWindow, populate_for_screenshot

    window = MonitorWindow()
    window.resize(1280, 760)
    populate_for_screenshot(window)
    window.show()
    ctx.keep.append(window)
    return window


register_screenshot("sign-in", _sign_in_shot)
register_screenshot("integration", _integration_shot)
register_screenshot("monitor", _monitor_shot)


async def _prepare(app: object, emulator_key: str) -> None:
    from qp_desktop.app import DesktopApp
    from qp_desktop.ui.sign_in import LOCAL_TENANT_KEY

    assert isinstance(app, DesktopApp)
    url = await app.local_tenant.ensure_started()
    await app.session.create_admin(url, LOCAL_TENANT_KEY, app.local_tenant.setup_token,
                                   DEMO_EMAIL, DEMO_PASSWORD, remember=False, name=DEMO_NAME)
    await app.client.connect_itglue("us", emulator_key)
    await app.client.generate_workflow_token()


def _grab(widget: QWidget, path: Path) -> None:
    QApplication.processEvents()
    if not widget.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path}", flush=True)


async def run_screenshots(out_dir: Path) -> int:
    """Render all registered screenshots into ``out_dir``. Returns the exit code."""
    import keyring

    from qp_desktop.app import DesktopApp, http_client
    from qp_desktop.services.secret_store import MemoryKeyring, SecretStore
    from qp_desktop.services.settings import Preferences
    from qp_desktop.ui.theme import apply_theme

    # Throw-away run: never touch the technician's real keyring.
    keyring.set_keyring(MemoryKeyring())
    out_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before any window
    qapp = QApplication.instance()
    assert isinstance(qapp, QApplication)
    emulator_key = "ITG." + secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="qp-desktop-shots-") as tmp:
        workdir = Path(tmp)
        emulator = ChildServer("IT Glue emulator",
                               [sys.executable, "-m", "qp_tenant.itglue.emulator", "--port", "0",
                                "--api-key", emulator_key, "--seed-demo"])
        app: DesktopApp | None = None
        try:
            emulator_url = await emulator.start()
            async with http_client() as http:
                prefs = Preferences(QSettings(str(workdir / "settings.ini"),
                                              QSettings.Format.IniFormat))
                app = DesktopApp(prefs, SecretStore(), http, local_data_dir=workdir / "tenant",
                                 local_env={"QP_ITGLUE_BASE_URL": emulator_url,
                                            "QP_PUBLIC_URL": ""})
                await _prepare(app, emulator_key)
                for dark in (False, True):
                    apply_theme(qapp, dark=dark)
                    ctx = ScreenshotContext(app, out_dir, workdir, dark=dark)
                    for name, render in SCREENSHOTS:
                        widget = await render(ctx)
                        _grab(widget, out_dir / (f"dark-{name}.png" if dark else f"{name}.png"))
                    for widget in ctx.keep:
                        widget.hide()
                        widget.deleteLater()
                apply_theme(qapp, dark=False)
        except ChildServerError as exc:
            print(f"qp-desktop: {exc.message}\n{exc.details}", file=sys.stderr)
            return 1
        finally:
            if app is not None:
                app.shutdown()
                app.sign_in.deleteLater()
            emulator.stop()
    return 0
