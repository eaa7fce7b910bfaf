"""``qp-desktop --screenshot DIR``: render every window offscreen with realistic data.

A throw-away local tenant (in a temporary folder) and the IT Glue emulator run as child
processes; the administrator is created, IT Glue connected and a workflow token generated;
then each registered screenshot is rendered in the light and the dark palette.

Pages add their own pictures with :func:`register_screenshot`::

    register_screenshot("monitor", render_monitor)   # async (ctx) -> QWidget
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

from qp_desktop.services.local_tenant import ChildServer, ChildServerError

if TYPE_CHECKING:
    from qp_desktop.ui.events.page import MonitorWindow

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


async def _until_idle(owner: Any) -> None:
    """Let the work ``owner`` (a page or dialog) started finish: up to ten seconds."""
    for _ in range(200):
        if not owner.tasks.busy:
            return
        await asyncio.sleep(0.05)


async def _main_window_on(ctx: ScreenshotContext, page_name: str, size: tuple[int, int], *,
                          refresh: bool = False) -> tuple[Any, Any]:
    """A new main window of the app at ``size``, showing page ``page_name`` (refreshed and
    done loading when ``refresh``); kept alive by ``ctx``. Returns (window, page)."""
    from qp_desktop.app import DesktopApp

    app = ctx.app
    assert isinstance(app, DesktopApp)
    window = app._build_main_window()
    window.resize(*size)
    window.show()
    window.show_page(page_name)
    page = window.page(page_name)
    if refresh:
        await page.refresh()
        await _until_idle(page)  # and the refresh started by showing the page
    ctx.keep.append(window)
    return window, page


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
    window, _page = await _main_window_on(ctx, "itglue", (1120, 1300), refresh=True)
    return window


def populate_for_screenshot(window: MonitorWindow, events: list[dict[str, Any]] | None = None,
                            *, select_type: str = "password_reset.failed") -> None:
    """Fill ``window`` with a realistic mix of events, show it as live and select a failure.

    For ``qp-desktop --screenshot``: ``window.grab().save("monitor.png")`` afterwards.
    """
    from qp_desktop.demo.events import demo_events
    from qp_desktop.services.event_stream import STATE_LIVE

    events = events if events is not None else demo_events(400)
    window.model.prepend_older(events)
    window._set_history_cursor(min((int(e["id"]) for e in events), default=1) - 1 or None)
    window._initial_loaded = True
    window.show_connection_state(STATE_LIVE, "")
    window.jump_to_latest()
    newest = list(reversed(window.model.records))[:14]
    chosen = next((r for r in newest if r.type == select_type),
                  next((r for r in newest if r.severity != "info"),
                       newest[0] if newest else None))
    if chosen is not None:
        window._select_event(chosen.id)  # among the top rows: no scrolling needed


async def _monitor_shot(ctx: ScreenshotContext) -> QWidget:
    from qp_desktop.ui.events.page import MonitorWindow

    window = MonitorWindow()
    window.resize(1280, 760)
    populate_for_screenshot(window)
    window.show()
    ctx.keep.append(window)
    return window


async def _wizard_window(ctx: ScreenshotContext, step: str, done: tuple[str, ...],
                         confirmed: bool = True) -> tuple[QWidget, object]:
    """The main window on the setup wizard, with ``done`` steps ticked and ``step`` shown."""
    from qp_desktop.ui import wizard_steps as W
    from qp_desktop.ui.wizard import SetupWizardPage

    window, page = await _main_window_on(ctx, "setup", (1180, 860), refresh=True)
    assert isinstance(page, SetupWizardPage)
    page.start_over()
    for key, _text in W.CONFIRMATIONS[: None if confirmed else 2]:
        page.progress.set_confirmed(key, True)
    # Nothing ticked against what the tenant knows.
    if page.agent_count == 0:
        page.progress.set_confirmed("agent", False)
    if page.matched_count == 0:
        page.progress.set_confirmed("matched", False)
    for key in done:
        page.progress.mark_done(key)
    page._render()
    page.go_to(step)
    return window, page


async def _wizard_prereqs_shot(ctx: ScreenshotContext) -> QWidget:
    from qp_desktop.ui import wizard_steps as W

    window, _page = await _wizard_window(ctx, W.PREREQUISITES, (), confirmed=False)
    return window


async def _wizard_url_shot(ctx: ScreenshotContext) -> QWidget:
    from qp_desktop.ui import wizard_steps as W

    window, _page = await _wizard_window(ctx, W.URL, (
        W.OPEN_WORKFLOWS, W.TRIGGER_PASSWORD, W.TRIGGER_NAME, W.ACTION_WEBHOOK))
    return window


async def _wizard_test_shot(ctx: ScreenshotContext) -> QWidget:
    from qp_desktop.ui import wizard_steps as W
    from qp_desktop.ui.wizard import SetupWizardPage

    window, page = await _wizard_window(ctx, W.TEST_ACTION, (
        W.OPEN_WORKFLOWS, W.TRIGGER_PASSWORD, W.TRIGGER_NAME, W.ACTION_WEBHOOK, W.URL,
        W.PAYLOAD))
    assert isinstance(page, SetupWizardPage)
    await page.send_test()
    for _ in range(200):  # the tick comes through the event stream (or the catch-up)
        if page.progress.is_done(W.TEST_ACTION) and not page.tasks.busy:
            break
        await asyncio.sleep(0.05)
    return window


async def _tray_menu_shot(ctx: ScreenshotContext) -> QWidget:
    from qp_desktop.app import DesktopApp

    app = ctx.app
    assert isinstance(app, DesktopApp)
    await app.alerts.refresh()  # the tray's status line comes from the real token
    menu = app.tray.menu
    assert menu is not None
    app.tray.build_menu()  # what opening it does (aboutToShow)
    menu.ensurePolished()
    menu.resize(menu.sizeHint())
    return menu


async def _banner_expiring_shot(ctx: ScreenshotContext) -> QWidget:
    """The main window on IT Glue with the token 5 days from expiry (a synthetic state)."""
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from qp_desktop.app import DesktopApp
    from qp_desktop.ui.itglue import ITGluePage

    app = ctx.app
    assert isinstance(app, DesktopApp)
    integration = await app.client.get_itglue()
    assert integration.workflow_token is not None
    token = replace(integration.workflow_token, status="expiring", days_left=5,
                    expires_at=datetime.now(UTC) + timedelta(days=5, hours=3))
    window, page = await _main_window_on(ctx, "itglue", (1120, 900))
    assert isinstance(page, ITGluePage)
    page.integration = replace(integration, workflow_token=token)
    page._render()
    window.alert_banner.show_token(token)
    return window


async def _accounts_shot(ctx: ScreenshotContext) -> QWidget:
    """Reset pipeline → Accounts, with demo accounts seeded through the tenant's API."""
    from qp_desktop.app import DesktopApp
    from qp_desktop.demo.accounts import seed
    from qp_desktop.ui.accounts.page import AccountsPage

    app = ctx.app
    assert isinstance(app, DesktopApp)
    await seed(app.client, app.http)
    window, page = await _main_window_on(ctx, "accounts", (1480, 860), refresh=True)
    assert isinstance(page, AccountsPage)
    return window


register_screenshot("sign-in", _sign_in_shot)
register_screenshot("integration", _integration_shot)
register_screenshot("monitor", _monitor_shot)
register_screenshot("tray-menu", _tray_menu_shot)
register_screenshot("banner-expiring", _banner_expiring_shot)
register_screenshot("wizard-prereqs", _wizard_prereqs_shot)
register_screenshot("wizard-url", _wizard_url_shot)
register_screenshot("wizard-test", _wizard_test_shot)
register_screenshot("accounts", _accounts_shot)


async def _cloud_accounts_window(ctx: ScreenshotContext) -> tuple[QWidget, QWidget]:
    """The main window at 1024×700 on Accounts, filtered to the customer linked to the
    Microsoft 365 emulator's demo tenant; returns (window, page)."""
    from qp_desktop.app import DesktopApp
    from qp_desktop.demo.accounts import seed
    from qp_desktop.demo.m365 import seed_cloud
    from qp_desktop.ui.accounts.page import AccountsPage

    app = ctx.app
    assert isinstance(app, DesktopApp)
    await seed(app.client, app.http)
    customer_id = await seed_cloud(app.client)
    window, page = await _main_window_on(ctx, "accounts", (1024, 700), refresh=True)
    assert isinstance(page, AccountsPage)
    index = page.customer_combo.findData(customer_id)
    page.customer_combo.setCurrentIndex(max(index, 0))
    return window, page


async def _cloud_accounts_shot(ctx: ScreenshotContext) -> QWidget:
    window, _ = await _cloud_accounts_window(ctx)
    return window


async def _m365_link_shot(ctx: ScreenshotContext) -> QWidget:
    """Accounts → Microsoft 365…: the link dialog after a verified link and a sync."""
    from qp_desktop.ui.accounts.page import AccountsPage

    window, page = await _cloud_accounts_window(ctx)
    assert isinstance(page, AccountsPage)
    page.m365_button.click()
    dialog = page.m365_dialog
    assert dialog is not None
    await _until_idle(dialog)
    await dialog.sync()
    dialog.resize(dialog.minimumWidth(), min(dialog.sizeHint().height(), 680))
    ctx.keep.append(dialog)
    return dialog


register_screenshot("accounts-cloud", _cloud_accounts_shot)
register_screenshot("m365-link", _m365_link_shot)


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
    # No QApplication.processEvents() here: called from inside a qasync task it steps other
    # tasks re-entrantly ("Cannot enter into task ..."); run_screenshots awaits instead.
    if not widget.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path}", flush=True)


async def run_screenshots(out_dir: Path, check_layout: bool = False) -> int:
    """Render all registered screenshots into ``out_dir``, then every page and dialog at its
    default size and at 1024\u00d7700 (see :mod:`qp_desktop.demo.layout_check`). Returns the exit
    code.

    With ``check_layout`` only the sized pictures are made, each is audited, and the exit
    code is 3 when a problem was found (``layout-report.json`` lists them).
    """
    import keyring

    from qp_desktop.app import DesktopApp, http_client
    from qp_desktop.demo.layout_check import run_size_passes
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
        m365 = ChildServer("Microsoft 365 emulator",
                           [sys.executable, "-m", "qp_tenant.m365.emulator", "--port", "0",
                            "--tls-dir", str(workdir / "m365-tls"), "--seed-demo"])
        app: DesktopApp | None = None
        try:
            emulator_url = await emulator.start()
            m365_url = await m365.start()
            async with http_client() as http:
                prefs = Preferences(QSettings(str(workdir / "settings.ini"),
                                              QSettings.Format.IniFormat))
                app = DesktopApp(prefs, SecretStore(), http, local_data_dir=workdir / "tenant",
                                 local_env={"QP_ITGLUE_BASE_URL": emulator_url,
                                            "QP_PUBLIC_URL": "",
                                            "QP_M365_LOGIN_URL": m365_url,
                                            "QP_M365_GRAPH_URL": m365_url,
                                            "QP_M365_CA_FILE": str(workdir / "m365-tls"
                                                                   / "ca.pem")})
                await _prepare(app, emulator_key)
                for dark in () if check_layout else (False, True):
                    apply_theme(qapp, dark=dark)
                    ctx = ScreenshotContext(app, out_dir, workdir, dark=dark)
                    for name, render in SCREENSHOTS:
                        widget = await render(ctx)
                        await asyncio.sleep(0.1)  # let Qt lay out and paint on the loop
                        _grab(widget, out_dir / (f"dark-{name}.png" if dark else f"{name}.png"))
                    for widget in ctx.keep:
                        shutdown_pages = getattr(widget, "shutdown_pages", None)
                        if callable(shutdown_pages):
                            shutdown_pages()  # stop the pages' timers and tasks first
                        widget.hide()
                        widget.deleteLater()
                apply_theme(qapp, dark=False)
                if check_layout:  # the documentation pass (skipped) seeds them otherwise
                    from qp_desktop.demo.accounts import seed

                    await seed(app.client, app.http)
                report = await run_size_passes(app, out_dir, check_layout)
                if not report.clean:
                    print(f"qp-desktop: layout problems, see {out_dir / 'layout-report.json'}",
                          file=sys.stderr)
                    return 3
        except ChildServerError as exc:
            print(f"qp-desktop: {exc.message}\n{exc.details}", file=sys.stderr)
            return 1
        finally:
            if app is not None:
                app.shutdown()
                app.sign_in.deleteLater()
            emulator.stop()
            m365.stop()
    return 0
