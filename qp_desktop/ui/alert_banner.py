"""The main window's alert area: one strip per subject (token expiry, failures), with buttons.

It shows the workflow token's state whenever the token is expiring or expired, and it is the
last adapter of the notification chain (``BannerNotifier`` sends its notifications here).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from qp_desktop.services.alert_policy import expiry_text
from qp_desktop.services.notifier import ACTION_OPEN, Notification
from qp_desktop.services.tenant_client import WorkflowToken

EXPIRY_KEY = "expiry"
ACTION_DISMISS = "dismiss"
ACTION_GENERATE = "generate"


class AlertRow(QFrame):
    """One coloured strip: a bold title, a sentence, action buttons and a close button."""

    def __init__(self, notification: Notification, invoke: Callable[[str], None],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.notification = notification
        self.setObjectName(f"alert_{notification.key}")
        self.setProperty("role", "banner")
        self.setProperty("kind", notification.severity)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 10, 10, 10)
        layout.setSpacing(10)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        self.title = QLabel(notification.title)
        self.title.setObjectName(f"alert_{notification.key}_title")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.body = QLabel(notification.body)
        self.body.setObjectName(f"alert_{notification.key}_body")
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        texts.addWidget(self.title)
        texts.addWidget(self.body)
        layout.addLayout(texts, 1)
        self.buttons: dict[str, QPushButton] = {}
        for key, label in notification.actions:
            button = QPushButton(label)
            button.setObjectName(f"alert_{notification.key}_{key}")
            if key in (ACTION_OPEN, ACTION_GENERATE):
                button.setProperty("role", "primary")
            button.clicked.connect(lambda _=False, k=key: invoke(k))
            layout.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)
            self.buttons[key] = button
        close = QPushButton("\u2715")
        close.setObjectName(f"alert_{notification.key}_dismiss")
        close.setToolTip("Dismiss")
        close.setFlat(True)
        close.setCursor(Qt.CursorShape.PointingHandCursor)
        close.setStyleSheet("QPushButton { border: none; background: transparent; "
                            "padding: 2px 6px; font-size: 12pt; }")
        close.clicked.connect(lambda: invoke(ACTION_DISMISS))
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.buttons[ACTION_DISMISS] = close


class AlertBanner(QWidget):
    """The alert strips above the pages; hidden when there is nothing to say.

    Signals:
        open_requested(str): a status strip's button asks for a page (e.g. "itglue").
        generate_requested: the expiry strip's "Generate a new URL…" was pressed.
    """

    open_requested = Signal(str)
    generate_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("alert_banner")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(16, 10, 16, 6)
        self._layout.setSpacing(8)
        self.rows: dict[str, AlertRow] = {}
        self._dismissed_status: tuple[str, str, int | None] | None = None
        self.setVisible(False)

    # -- BannerSink ---------------------------------------------------------------------------

    def show_notification(self, notification: Notification,
                          invoke: Callable[[str], None]) -> None:
        def on_action(action: str) -> None:
            if action in (ACTION_DISMISS, "snooze") or notification.key != EXPIRY_KEY:
                self.withdraw_notification(notification.key)
            invoke(action)

        self.withdraw_notification(notification.key)
        row = AlertRow(notification, on_action, self)
        self.rows[notification.key] = row
        self._layout.addWidget(row)
        self.setVisible(True)

    def withdraw_notification(self, key: str) -> None:
        row = self.rows.pop(key, None)
        if row is not None:
            self._layout.removeWidget(row)
            row.hide()
            row.deleteLater()
        self.setVisible(bool(self.rows))

    def text(self, key: str) -> str:
        row = self.rows.get(key)
        return f"{row.title.text()} {row.body.text()}" if row else ""

    # -- the token's state --------------------------------------------------------------------

    def show_token(self, token: WorkflowToken | None) -> None:
        """Show (or clear) the expiry strip for the token's current state."""
        if token is None or token.status not in ("expiring", "expired"):
            self._dismissed_status = None
            self.withdraw_notification(EXPIRY_KEY)
            return
        state = (token.id, token.status, token.days_left)
        if state == self._dismissed_status:
            return
        expired = token.status == "expired"
        title, body = expiry_text(expired, token.days_left, token.expires_at)
        current = self.rows.get(EXPIRY_KEY)
        if current is not None and current.notification.title == title:
            return  # already says so (perhaps with the notification's Snooze button)
        notification = Notification(EXPIRY_KEY, title, body,
                                    severity="error" if expired else "warning",
                                    actions=((ACTION_GENERATE, "Generate a new URL\u2026"),))

        def invoke(action: str) -> None:
            if action == ACTION_GENERATE:
                self.generate_requested.emit()
            elif action == ACTION_DISMISS:
                self._dismissed_status = state
                self.withdraw_notification(EXPIRY_KEY)

        self.show_notification(notification, invoke)
