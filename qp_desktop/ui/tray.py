"""The tray icon: state (ok / warning / error) in the icon and tooltip, and a menu built each
time it opens: Open, Event monitor, Setup wizard, Copy workflow URL, Generate new token…,
Sign out, Quit.

The tray knows only the session (signed in, role), the workflow URL service, the token and
which pages the main window has (both told by the app); everything else it asks for with a
signal, which the app connects.

Without a system tray (offscreen, bare X servers, GNOME without the AppIndicator extension)
nothing is shown and the app quits when its window closes; the menu can still be built (the
screenshots and tests do).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from qp_desktop.services.alert_policy import STATE_ERROR, STATE_OK, STATE_WARNING, AlertStatus
from qp_desktop.services.session import Session
from qp_desktop.services.tasks import TaskSet
from qp_desktop.services.tenant_client import SessionExpired, TenantError, WorkflowToken
from qp_desktop.services.workflow_url import LABEL, WorkflowUrl, may_copy
from qp_desktop.ui.roles import ADMIN, TECHNICIAN, gate

log = logging.getLogger(__name__)

STATE_COLOURS = {STATE_OK: "#2e9d5b", STATE_WARNING: "#e6a118", STATE_ERROR: "#d33a3a"}
COPY_LABEL = LABEL


def drawn_status_icon(state: str, size: int = 64) -> QIcon:
    """A stand-in tray icon drawn in code: the app's blue tile with a status dot."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("#2f6fde"))
    tile = QRectF(size * 0.04, size * 0.04, size * 0.84, size * 0.84)
    painter.drawRoundedRect(tile, size * 0.18, size * 0.18)
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(size * 0.38))
    painter.setFont(font)
    painter.setPen(QColor("white"))
    painter.drawText(tile, Qt.AlignmentFlag.AlignCenter, "QP")
    if state != STATE_OK:
        radius = size * 0.22
        centre = QPointF(size - radius - 1, size - radius - 1)
        painter.setPen(QPen(QColor("white"), size * 0.05))
        painter.setBrush(QColor(STATE_COLOURS.get(state, STATE_COLOURS[STATE_ERROR])))
        painter.drawEllipse(centre, radius, radius)
    painter.end()
    return QIcon(pixmap)


def status_icon(state: str) -> QIcon:
    """The packaged tray icon for ``state``, or one drawn in code if it is missing."""
    try:
        from qp_desktop import resources

        icon = resources.tray_icon(state)
        if not icon.isNull():
            return icon
    except (ImportError, KeyError, OSError) as exc:
        log.debug("no packaged tray icon for %s: %s", state, exc)
    return drawn_status_icon(state)


class Tray(QObject):
    """The tray icon and its menu.

    Implements ``notifier.TrayPort`` so that ``TrayNotifier`` can show messages through it.

    Args:
        session: who is signed in (None: a tray that only shows messages).
        workflow_url: copies the workflow URL (None: copying is not offered).
        available: whether the desktop has a system tray (default: ask Qt).

    Signals:
        open_requested: bring the app's window forward (sign-in when signed out).
        page_requested(str): show this page of the main window.
        generate_requested: start the IT Glue page's Generate New flow.
        sign_out_requested, quit_requested: what the menu items say.
        url_copied(int): the workflow URL is on the clipboard, cleared after so many s.
    """

    open_requested = Signal()
    page_requested = Signal(str)
    generate_requested = Signal()
    sign_out_requested = Signal()
    quit_requested = Signal()
    url_copied = Signal(int)

    def __init__(self, session: Session | None = None, workflow_url: WorkflowUrl | None = None,
                 *, available: bool | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.workflow_url = workflow_url
        self.tasks = TaskSet()
        self.token: WorkflowToken | None = None
        self.pages: frozenset[str] = frozenset()  # the main window's, while it exists
        self.available = (QSystemTrayIcon.isSystemTrayAvailable() if available is None
                          else available)
        self.status = AlertStatus(STATE_OK, ("Not signed in",))
        menu = QMenu()
        menu.setObjectName("tray_menu")
        menu.aboutToShow.connect(self.build_menu)
        self.menu: QMenu | None = menu
        self.icon = QSystemTrayIcon(self)
        self.icon.setContextMenu(menu)
        self.icon.activated.connect(self._on_activated)
        self._message_clicked: Callable[[], None] | None = None
        self.icon.messageClicked.connect(self._on_message_clicked)
        self.set_status(self.status)

    # -- TrayPort -----------------------------------------------------------------------------

    def is_available(self) -> bool:
        return self.available

    def show_message(self, title: str, body: str, severity: str) -> None:
        icon = {"error": QSystemTrayIcon.MessageIcon.Critical,
                "warning": QSystemTrayIcon.MessageIcon.Warning}.get(
                    severity, QSystemTrayIcon.MessageIcon.Information)
        self.icon.showMessage(title, body, icon, 15_000)

    def set_message_clicked_handler(self, handler: Callable[[], None]) -> None:
        self._message_clicked = handler

    def _on_message_clicked(self) -> None:
        if self._message_clicked is not None:
            self._message_clicked()

    # -- icon and state -----------------------------------------------------------------------

    def show(self) -> None:
        if self.available:
            self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def set_status(self, status: AlertStatus) -> None:
        self.status = status
        self.icon.setIcon(status_icon(status.state))
        self.icon.setToolTip(status.tooltip)
        # Some trays (D-Bus menus) may show the menu without asking again: keep it fresh.
        self.build_menu()

    def set_token(self, token: WorkflowToken | None) -> None:
        """The workflow token as last fetched (None: none, or signed out)."""
        self.token = token
        self.build_menu()

    def set_pages(self, keys: Iterable[str]) -> None:
        """The main window's pages (empty: no main window, signed out)."""
        self.pages = frozenset(keys)
        self.build_menu()

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger,
                      QSystemTrayIcon.ActivationReason.DoubleClick):
            self.open_window()

    # -- the menu -----------------------------------------------------------------------------

    def _add(self, name: str, text: str, slot: Callable[[], object],
             enabled: bool = True) -> QAction:
        assert self.menu is not None
        action = self.menu.addAction(text)
        action.setObjectName(name)
        action.setEnabled(enabled)
        action.triggered.connect(lambda _=False: slot())
        return action

    @property
    def signed_in(self) -> bool:
        return self.session is not None and self.session.signed_in and bool(self.pages)

    def build_menu(self) -> None:
        """(Re)build the menu from the state now: called each time it opens."""
        if self.menu is None or self.session is None:
            return
        self.menu.clear()
        signed_in = self.signed_in
        token = self.token if signed_in else None
        headline = self.status.lines[0] if self.status.lines else ""
        if headline:
            marker = {STATE_WARNING: "\u26a0 ", STATE_ERROR: "\u2716 "}.get(self.status.state, "")
            status = self.menu.addAction(marker + headline)
            status.setObjectName("tray_status")
            status.setEnabled(False)
            for line in self.status.lines[1:]:
                extra = self.menu.addAction(line)
                extra.setEnabled(False)
            self.menu.addSeparator()
        self._add("tray_open", "Open QP Desktop", self.open_window)
        self._add("tray_monitor", "Event monitor", lambda: self.open_page("events"),
                  enabled=signed_in and "events" in self.pages)
        self._add("tray_setup", "Setup wizard\u2026", lambda: self.open_page("setup"),
                  enabled=signed_in and "setup" in self.pages)
        self.menu.addSeparator()
        copy = self._add("tray_copy_url", "Copy workflow URL", self.copy_workflow_url,
                         enabled=signed_in and self.workflow_url is not None
                         and may_copy(token))
        generate = self._add("tray_generate", "Generate new token\u2026",
                             self.generate_new_token, enabled=signed_in)
        user = self.session.user if signed_in else None
        role = user.role if user is not None else None
        gate(copy, role, TECHNICIAN, "copy the workflow URL")
        gate(generate, role, ADMIN, "generate a new workflow URL")
        self.menu.addSeparator()
        self._add("tray_sign_out", "Sign out", self.sign_out_requested.emit,
                  enabled=signed_in)
        self._add("tray_quit", "Quit", self.quit_requested.emit)

    def action(self, name: str) -> QAction:
        assert self.menu is not None
        for action in self.menu.actions():
            if action.objectName() == name:
                return action
        raise KeyError(name)

    # -- what the actions do ------------------------------------------------------------------

    def open_window(self) -> None:
        self.open_requested.emit()

    def open_page(self, key: str) -> None:
        self.page_requested.emit(key)

    def copy_workflow_url(self) -> None:
        self.tasks.start(self.copy_workflow_url_now())

    async def copy_workflow_url_now(self) -> bool:
        """Copy the URL through the workflow URL service (never one that stopped working)."""
        if self.workflow_url is None:
            return False
        try:
            await self.workflow_url.copy(self.token if self.signed_in else None)
        except SessionExpired:
            return False
        except TenantError as exc:
            self.show_message("Could not copy the workflow URL", exc.message, "error")
            return False
        self.url_copied.emit(self.workflow_url.clipboard.clear_seconds)
        return True

    def generate_new_token(self) -> None:
        self.generate_requested.emit()

    def shutdown(self) -> None:
        """At quit (safe to call twice)."""
        self.tasks.cancel_all()
        if self.menu is not None:
            self.icon.hide()
            self.menu.deleteLater()
            self.menu = None
