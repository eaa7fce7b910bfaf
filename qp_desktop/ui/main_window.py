"""The main window: header with the signed-in user, navigation on the left, pages on the right.

Pages plug in with :meth:`MainWindow.add_page`, which checks each one against
:class:`qp_desktop.ui.page.PageProtocol`: ``activate()`` runs whenever the page is shown,
``forget_secrets()`` then ``shutdown()`` when the window goes.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.session import Session
from qp_desktop.ui.alert_banner import AlertBanner
from qp_desktop.ui.logs_dialog import LogsDialog
from qp_desktop.ui.page import PageProtocol, check_page
from qp_desktop.ui.widgets import Banner

PAGE_KEY_ROLE = Qt.ItemDataRole.UserRole + 1
DEFAULT_SIZE = QSize(1120, 780)
class MainWindow(QMainWindow):
    """Signals:
        sign_out_requested: the technician pressed Sign out.
        closed: the window was closed.
    """

    sign_out_requested = Signal()
    closed = Signal()

    def __init__(self, session: Session, clipboard: SecretClipboard,
                 parent: QWidget | None = None, log_dir: Path | None = None):
        super().__init__(parent)
        self.setObjectName("main_window")
        self.log_dir = log_dir  # None: the platform's log folder
        self.setWindowTitle("QP Desktop")
        self.session = session
        self.clipboard = clipboard
        self._pages: dict[str, QWidget] = {}  # what the stack holds (maybe a scroll area)
        self._page_widgets: dict[str, PageProtocol] = {}
        self._sections: dict[str, QListWidgetItem] = {}

        central = QWidget()
        root = QVBoxLayout(central)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        root.addWidget(self._build_header())

        self.banner = Banner("main_banner")
        banner_holder = QWidget()
        banner_layout = QVBoxLayout(banner_holder)
        banner_layout.setContentsMargins(16, 10, 16, 0)
        banner_layout.addWidget(self.banner)
        self.banner_holder = banner_holder
        root.addWidget(banner_holder)
        # Token expiry and failure alerts (and notifications when there is no other way).
        self.alert_banner = AlertBanner()
        root.addWidget(self.alert_banner)

        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setFixedWidth(210)
        self.navigation.currentItemChanged.connect(self._on_navigate)
        body.addWidget(self.navigation)
        self.stack = QStackedWidget()
        self.stack.setObjectName("pages")
        body.addWidget(self.stack, 1)
        root.addLayout(body, 1)
        self.setCentralWidget(central)

        self.statusBar().setObjectName("status_bar")
        # The strip shows only while it has something to say.
        self.statusBar().messageChanged.connect(
            lambda text: self.statusBar().setVisible(bool(text)))
        self.statusBar().setVisible(False)
        self.logs_dialog: LogsDialog | None = None
        clipboard.copied.connect(self._on_copied)
        clipboard.cleared.connect(self._on_cleared)
        session.changed.connect(self.update_header)
        self.update_header()
        self.resize(DEFAULT_SIZE)

    def _build_header(self) -> QWidget:
        header = QFrame()
        header.setObjectName("header")
        layout = QHBoxLayout(header)
        layout.setContentsMargins(18, 10, 14, 10)
        layout.setSpacing(12)
        app_name = QLabel("QP Desktop")
        app_name.setProperty("role", "heading")
        layout.addWidget(app_name)
        self.tenant_label = QLabel()
        self.tenant_label.setObjectName("tenant_label")
        self.tenant_label.setProperty("role", "muted")
        layout.addWidget(self.tenant_label)
        layout.addStretch(1)
        self.user_label = QLabel()
        self.user_label.setObjectName("user_label")
        layout.addWidget(self.user_label)
        self.show_logs_button = QPushButton("Show logs")
        self.show_logs_button.setObjectName("show_logs_button")
        self.show_logs_button.setToolTip("Where QP Desktop's log files are")
        self.show_logs_button.clicked.connect(self.show_logs)
        layout.addWidget(self.show_logs_button)
        self.sign_out_button = QPushButton("Sign out")
        self.sign_out_button.setObjectName("sign_out_button")
        self.sign_out_button.clicked.connect(self.sign_out_requested)
        layout.addWidget(self.sign_out_button)
        return header

    def show_logs(self) -> LogsDialog:
        """The "Show logs" button: the log folder's path, to copy or open."""
        from qp_desktop.services.logs import default_log_dir

        if self.logs_dialog is None:
            self.logs_dialog = LogsDialog(self.log_dir or default_log_dir(), self)
        self.logs_dialog.open()
        return self.logs_dialog

    def update_header(self) -> None:
        tenant, user = self.session.tenant, self.session.user
        if tenant is None:
            text = ""
        elif self.session.tenant_key == "local":
            text = "Tenant on this computer"
        else:
            host = urlsplit(self.session.client.base_url).netloc
            text = f"{tenant.name} \u00b7 {host}"
        self.tenant_label.setText(text)
        self.user_label.setText(user.email if user else "")
        warning = self.session.store.warning
        if warning:
            self.banner.show_message("warning", warning)
        else:
            self.banner.clear()
        self.banner_holder.setVisible(bool(warning))

    # -- pages --------------------------------------------------------------------------------

    def add_page(self, key: str, title: str, widget: QWidget, section: str | None = None,
                 scroll: bool = True) -> QWidget:
        """Add a page under an optional navigation section (e.g. "Integrations").

        Args:
            key: stable id, used by :meth:`show_page` and as the nav item's object name
                (``nav_<key>``).
            scroll: wrap the page in a scroll area (off for pages that scroll themselves).

        Returns:
            The widget.

        Raises:
            TypeError: ``widget`` lacks a method of the page protocol.
        """
        check_page(widget)
        if section and section not in self._sections:
            header = QListWidgetItem(section.upper())
            header.setFlags(Qt.ItemFlag.NoItemFlags)
            font = header.font()
            font.setPointSizeF(max(7.5, font.pointSizeF() * 0.8))
            font.setBold(True)
            header.setFont(font)
            self.navigation.addItem(header)
            self._sections[section] = header
        item = QListWidgetItem(("    " if section else "") + title)
        item.setData(PAGE_KEY_ROLE, key)
        self.navigation.addItem(item)
        holder: QWidget = widget
        if scroll:
            area = QScrollArea()
            area.setWidgetResizable(True)
            area.setFrameShape(QFrame.Shape.NoFrame)
            if widget.hasHeightForWidth():
                # A page of wrapped text has a minimum height taken at its narrowest, taller
                # than it is at the width it has: the area would show a scroll bar over a page
                # that fits. Ignored lets the area size it by its height at that width.
                policy = widget.sizePolicy()
                policy.setVerticalPolicy(QSizePolicy.Policy.Ignored)
                widget.setSizePolicy(policy)
            area.setWidget(widget)
            holder = area
        self.stack.addWidget(holder)
        self._pages[key] = holder
        self._page_widgets[key] = cast(PageProtocol, widget)
        if self.navigation.currentItem() is None:
            self.navigation.setCurrentItem(item)
        return widget

    def page(self, key: str) -> QWidget:
        holder = self._pages[key]
        return holder.widget() if isinstance(holder, QScrollArea) else holder

    def has_page(self, key: str) -> bool:
        return key in self._pages

    def show_page(self, key: str) -> None:
        for row in range(self.navigation.count()):
            item = self.navigation.item(row)
            if item.data(PAGE_KEY_ROLE) == key:
                self.navigation.setCurrentItem(item)
                return
        raise KeyError(key)

    def current_page_key(self) -> str | None:
        item = self.navigation.currentItem()
        return None if item is None else item.data(PAGE_KEY_ROLE)

    def _on_navigate(self, current: QListWidgetItem | None, _previous: object) -> None:
        if current is None:
            return
        key = current.data(PAGE_KEY_ROLE)
        if key not in self._pages:
            return
        self.stack.setCurrentWidget(self._pages[key])
        if self.isVisible():
            self._page_widgets[key].activate()

    def activate_current(self) -> None:
        key = self.current_page_key()
        if key:
            self._page_widgets[key].activate()

    def shutdown_pages(self) -> None:
        """Before the window goes: every page forgets its secrets, then stops its timers and
        tasks."""
        for page in self._page_widgets.values():
            page.forget_secrets()
        for page in self._page_widgets.values():
            page.shutdown()

    # -- clipboard notes ----------------------------------------------------------------------

    def _on_copied(self, label: str, seconds: int) -> None:
        if seconds:
            self.statusBar().showMessage(
                f"{label[:1].upper()}{label[1:]} copied. The clipboard clears in {seconds} s.")
        else:
            self.statusBar().showMessage(f"Copied {label}.", 5000)

    def _on_cleared(self, cleared: bool) -> None:
        if cleared:
            self.statusBar().showMessage("Clipboard cleared.", 5000)
        else:
            self.statusBar().clearMessage()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt naming
        self.closed.emit()
        super().closeEvent(event)
