"""Composition root: the services, created once, and the windows they are handed to.

The command line, the QApplication and the event loop are :mod:`qp_desktop.main`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from qp_common.urls import normalise_tenant_url
from qp_desktop import APP_NAME
from qp_desktop.services import settings as S
from qp_desktop.services.alerts import AlertCenter
from qp_desktop.services.autostart import Autostart
from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.event_stream import EventStream
from qp_desktop.services.local_tenant import LocalTenant
from qp_desktop.services.notifier import (
    BannerNotifier,
    DbusNotifier,
    Notification,
    NotificationAdapter,
    Notifier,
    TrayNotifier,
)
from qp_desktop.services.secret_store import SecretStore
from qp_desktop.services.session import Session
from qp_desktop.services.settings import Preferences, WindowState
from qp_desktop.services.tasks import TaskSet
from qp_desktop.services.tenant_client import TenantClient
from qp_desktop.services.workflow_url import WorkflowUrl
from qp_desktop.ui.sign_in import LOCAL_TENANT_KEY, SignInWindow
from qp_desktop.ui.tray import Tray

if TYPE_CHECKING:  # the main window and its pages are imported once someone signs in
    from qp_desktop.ui.main_window import MainWindow

log = logging.getLogger(__name__)



def http_client() -> httpx.AsyncClient:
    """The one long-lived HTTP client the services share."""
    return httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0),
                             headers={"User-Agent": f"{APP_NAME}/0.1"})


@dataclass(frozen=True)
class PageSpec:
    """A page of the main window. ``factory`` builds it from the running app."""

    key: str
    title: str
    section: str | None
    factory: Callable[[DesktopApp], QWidget]
    scroll: bool = True  # False: the page scrolls inside itself (its buttons stay in view)


def _user_role(app: DesktopApp) -> str | None:
    return app.session.user.role if app.session.user else None


def _itglue_page(app: DesktopApp) -> QWidget:
    from qp_desktop.ui.itglue import ITGluePage

    page = ITGluePage(app.client, app.clipboard, workflow_url=app.workflow_url)
    page.set_role(_user_role(app))
    return page


def _events_page(app: DesktopApp) -> QWidget:
    from qp_desktop.ui.events.page import MonitorWindow

    assert app.event_stream is not None
    monitor = MonitorWindow(app.event_stream, app.client.event_page,
                            newest_first=app.prefs.get(S.EVENTS_NEWEST_FIRST))
    monitor.newest_first_changed.connect(
        lambda value: app.prefs.set(S.EVENTS_NEWEST_FIRST, value))
    from qp_desktop.ui.events.wiring import connect_fixes
    connect_fixes(monitor, app.client.replay_event, _user_role(app))
    monitor.start()
    return monitor


def _setup_page(app: DesktopApp) -> QWidget:
    from qp_desktop.ui.main_window import MainWindow
    from qp_desktop.ui.wizard import SetupWizardPage

    page = SetupWizardPage(app.client, app.clipboard, app.prefs, app.session, app.http,
                           app.event_stream, workflow_url=app.workflow_url)

    def open_page(key: str) -> None:
        window = page.window()
        if isinstance(window, MainWindow):
            window.show_page(key)
    page.open_page_requested.connect(open_page)
    return page


def _accounts_page(app: DesktopApp) -> QWidget:
    from qp_desktop.ui.accounts.page import AccountsPage

    page = AccountsPage(app.client, app.clipboard)
    page.set_role(_user_role(app))
    return page


def _prefs_page(app: DesktopApp) -> QWidget:
    from qp_desktop.ui.preferences import PreferencesPage

    page = PreferencesPage(app.prefs, app.clipboard, app.autostart, app.notifier,
                           local_url=app.local_tenant.url)

    def open_alerts() -> None:
        from qp_desktop.ui.alerts_dialog import AlertsDialog

        dialog = AlertsDialog(app.client, _user_role(app), page)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        dialog.tasks.start(dialog.load())
    page.set_alerts(open_alerts)
    return page


# The main window's pages in navigation order (``DesktopApp.pages`` may be changed before sign-in).
DEFAULT_PAGES: list[PageSpec] = [
    PageSpec("itglue", "IT Glue", "Integrations", _itglue_page),
    PageSpec("events", "Events", "Monitor", _events_page),
    PageSpec("accounts", "Accounts", "Monitor", _accounts_page),
    PageSpec("setup", "IT Glue workflow", "Setup", _setup_page, scroll=False),
]
DEFAULT_PAGES.append(PageSpec("preferences", "Preferences", "App", _prefs_page))


class DesktopApp(QObject):
    """Creates the services once and moves between the sign-in and main windows.

    Signals:
        quit_requested: the app should end (Quit in the tray, or the window closed without
            a tray to hide in).
    """

    quit_requested = Signal()

    def __init__(self, prefs: Preferences, store: SecretStore, http: httpx.AsyncClient, *,
                 tenant_url: str | None = None, local_data_dir: Path | None = None,
                 local_env: dict[str, str] | None = None, clear_after_ms: int | None = None,
                 window_state: WindowState | None = None, parent: QObject | None = None,
                 tray_available: bool | None = None, dbus_bus: str | None = "SESSION",
                 autostart: Autostart | None = None, sign_in: SignInWindow | None = None):
        """``sign_in``: the sign-in window when it is already built (and perhaps shown) before
        the services, as :mod:`qp_desktop.main` does to show it sooner; it is attached here."""
        super().__init__(parent)
        self.prefs = prefs
        self.store = store
        self.http = http
        self.window_state = window_state
        self.tasks = TaskSet()
        self.client = TenantClient(http)
        self.session = Session(self.client, store, parent=self)
        self.local_tenant = LocalTenant(self.client, local_data_dir, local_env, parent=self,
                                        port=prefs.get(S.LOCAL_TENANT_PORT),
                                        public_url=prefs.get(S.LOCAL_PUBLIC_URL))
        self.local_tenant.ready.connect(self._remember_local_port)
        if clear_after_ms is None:
            clear_after_ms = prefs.get(S.CLIPBOARD_CLEAR_SECONDS) * 1000
        self.clipboard = SecretClipboard(clear_after_ms, parent=self)
        self.workflow_url = WorkflowUrl(self.client, self.clipboard)
        self.autostart = autostart or Autostart()
        # Notifications: D-Bus, else the tray icon's message, else the window's banner.
        self.tray = Tray(self.session, self.workflow_url, available=tray_available,
                         parent=self)
        self.tray.open_requested.connect(self.open_window)
        self.tray.page_requested.connect(self.show_page)
        self.tray.generate_requested.connect(self.generate_new_token)
        self.tray.sign_out_requested.connect(self._sign_out)
        self.tray.quit_requested.connect(self.quit_requested)
        self.tray.url_copied.connect(self._on_url_copied)
        self.banner_notifier = BannerNotifier()
        adapters: list[NotificationAdapter] = [TrayNotifier(self.tray), self.banner_notifier]
        if dbus_bus:
            adapters.insert(0, DbusNotifier(dbus_bus))
        self.notifier = Notifier(adapters, parent=self)
        self.alerts = AlertCenter(self.client, prefs, self.notifier, scope=self._alert_scope,
                                  parent=self)
        self.alerts.status_changed.connect(self.tray.set_status)
        self.alerts.token_changed.connect(self.tray.set_token)
        self.alerts.open_requested.connect(self.show_page)
        self.pages: list[PageSpec] = list(DEFAULT_PAGES)
        if sign_in is None:
            sign_in = SignInWindow(self.session, self.local_tenant, prefs)
        else:
            sign_in.attach(self.session, self.local_tenant)
        self.sign_in = sign_in
        if tenant_url:
            self.sign_in.set_tenant_url(tenant_url)
        self.main_window: MainWindow | None = None
        # One live event stream per sign-in, shared by the monitor, the setup wizard and
        # notifications.
        self.event_stream: EventStream | None = None
        self.session.changed.connect(self._on_signed_in)
        self.session.signed_out.connect(self._on_signed_out)
        self.session.expired.connect(self._on_expired)
        self.local_tenant.stopped_unexpectedly.connect(self._on_local_tenant_died)
        self.tray.build_menu()
        self.tray.show()

    async def start(self) -> None:
        """Show sign-in, start the local tenant if chosen, and try a silent sign-in."""
        self.sign_in.show()
        if self.sign_in.local_mode:
            if not await self.sign_in.prepare_local():
                return
            base_url, key = self.local_tenant.url, LOCAL_TENANT_KEY
            if self.sign_in.first_run:
                return
        else:
            try:
                base_url = normalise_tenant_url(self.sign_in.tenant_url.text())
            except ValueError:
                return
            key = base_url
        if self.prefs.get(S.REMEMBER_ME) and self.session.has_remembered(key):
            await self.sign_in.resume(base_url, key)

    def _remember_local_port(self, _url: str) -> None:
        if self.local_tenant.port and self.local_tenant.port != self.prefs.get(
                S.LOCAL_TENANT_PORT):
            self.prefs.set(S.LOCAL_TENANT_PORT, self.local_tenant.port)
            self.prefs.sync()

    # -- window switching ---------------------------------------------------------------------

    def _start_event_stream(self) -> EventStream:
        if self.event_stream is None:
            session = self.session

            async def auth_headers() -> dict[str, str]:
                return {"Authorization": f"Bearer {session.access_token or ''}"}

            async def on_unauthorized() -> bool:
                return await session.refresh_after_rejection(session.access_token)

            self.event_stream = EventStream(self.http, self.client.base_url, auth_headers,
                                            on_unauthorized, parent=self)
            self.event_stream.start(None)
        return self.event_stream

    def _stop_event_stream(self) -> None:
        stream, self.event_stream = self.event_stream, None
        if stream is not None:
            stream.stop()
            stream.deleteLater()

    def _build_main_window(self) -> MainWindow:
        from qp_desktop.ui.main_window import MainWindow
        from qp_desktop.ui.screen import fit_on_screen

        self._start_event_stream()
        window = MainWindow(self.session, self.clipboard)
        for spec in self.pages:
            window.add_page(spec.key, spec.title, spec.factory(self), spec.section,
                            scroll=spec.scroll)
        window.sign_out_requested.connect(self._sign_out)
        window.closed.connect(self._on_window_closed)
        window.alert_banner.open_requested.connect(self.show_page)
        window.alert_banner.generate_requested.connect(self.generate_new_token)
        self.alerts.token_changed.connect(window.alert_banner.show_token)
        self.banner_notifier.attach(window.alert_banner)
        window.navigation.currentItemChanged.connect(self._on_page_changed)
        geometry = self.window_state.load("main") if self.window_state is not None else None
        if geometry is not None:
            window.restoreGeometry(geometry)
        # Never open beyond a screen edge: a first start (centred), or a saved geometry from
        # a bigger screen.
        fit_on_screen(window, move=geometry is None)
        self.tray.set_pages(spec.key for spec in self.pages)
        return window

    def _on_signed_in(self) -> None:
        if self.main_window is None:
            self.main_window = self._build_main_window()
            self.tasks.start(self.notifier.start())
            self.alerts.start(self.event_stream)
        self.main_window.update_header()
        self.main_window.show()
        self.main_window.activate_current()
        self.sign_in.hide()

    def _drop_main_window(self) -> None:
        window, self.main_window = self.main_window, None
        if window is None:
            return
        self.alerts.stop()
        self.tray.set_pages(())
        self.tray.set_token(None)
        self.workflow_url.forget()
        self.banner_notifier.attach(None)
        if self.window_state is not None:
            self.window_state.save("main", window.saveGeometry())
        window.shutdown_pages()
        window.hide()
        window.deleteLater()
        self._stop_event_stream()

    def _back_to_sign_in(self, message: str | None) -> None:
        self.sign_in.show()
        if message:
            self.sign_in.show_expired(message)
        self._drop_main_window()

    def _on_signed_out(self) -> None:
        self._back_to_sign_in(None)
        self.sign_in.message.show_message("info", "You are signed out.")

    def _on_expired(self, message: str) -> None:
        self._back_to_sign_in(message)

    def _on_local_tenant_died(self) -> None:
        if self.session.tenant_key == LOCAL_TENANT_KEY and self.session.signed_in:
            self.session.expired.emit("The tenant on this computer stopped unexpectedly. "
                                      "Sign in to start it again.")

    def _sign_out(self) -> None:
        self.tasks.start(self.session.sign_out())

    # -- tray, notifications, closing ---------------------------------------------------------

    def _alert_scope(self) -> str:
        tenant = self.session.tenant
        return f"{self.session.tenant_key}|{tenant.id if tenant else ''}"

    def open_window(self) -> None:
        """Bring the main window forward (sign-in when signed out)."""
        window = self.main_window if self.session.signed_in else None
        target = window or self.sign_in
        target.show()
        target.raise_()
        target.activateWindow()

    def generate_new_token(self) -> None:
        """Show the IT Glue page and start its own Generate New flow (with its confirmation)."""
        window = self.main_window
        if window is None or not window.has_page("itglue"):
            return
        self.show_page("itglue")
        page = window.page("itglue")
        from qp_desktop.ui.itglue import ITGluePage

        if isinstance(page, ITGluePage):
            self.tasks.start(page.ask_to_generate())

    def _on_url_copied(self, seconds: int) -> None:
        if self.main_window is None or not self.main_window.isVisible():
            self.tray.show_message("Workflow URL copied",
                                   f"The clipboard clears in {seconds} s.", "info")

    def show_page(self, key: str) -> None:
        """Bring the main window forward on page ``key`` (sign-in when signed out)."""
        window = self.main_window if self.session.signed_in else None
        target = window or self.sign_in
        target.show()
        target.raise_()
        target.activateWindow()
        if window is not None and window.has_page(key):
            window.show_page(key)

    def _on_page_changed(self, *_: object) -> None:
        if self.main_window is not None and self.main_window.current_page_key() == "events":
            self.alerts.acknowledge_failures()

    def _on_window_closed(self) -> None:
        """The main window was closed: with a tray it hides there (saying so the first
        time); without one the app quits."""
        if not self.tray.is_available():
            self.quit_requested.emit()
            return
        if not self.prefs.get(S.TRAY_HINT_SHOWN):
            self.prefs.set(S.TRAY_HINT_SHOWN, True)
            self.prefs.sync()
            self.tasks.start(self.notifier.notify(Notification(
                "tray-hint", "QP Desktop is still running",
                "It keeps watching the workflow URL and failed password resets from the "
                "tray. To exit, choose Quit in the tray icon's menu.")))

    def on_last_window_closed(self) -> None:
        """No window is left open: quit, unless the tray keeps the app reachable."""
        if not self.tray.is_available():
            self.quit_requested.emit()

    def shutdown(self) -> None:
        """At quit: clear a copied secret, stop the local tenant, remember geometry."""
        self.tasks.cancel_all()
        self.sign_in.tasks.cancel_all()
        self.clipboard.clear_now()
        self._drop_main_window()
        self.tray.shutdown()
        if self.notifier.active:
            self.tasks.start(self.notifier.close())
        self.local_tenant.stop()
        self.prefs.sync()
