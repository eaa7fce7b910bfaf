"""Preferences: which notifications to show, how long a copied secret stays, start at login,
and the public address of the tenant on this computer."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from qp_common.urls import normalise_tenant_url
from qp_desktop.services import settings as S
from qp_desktop.services.autostart import Autostart, AutostartError
from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.notifier import Notification, Notifier
from qp_desktop.services.settings import Preferences, Setting
from qp_desktop.ui.page import Page
from qp_desktop.ui.widgets import Banner

log = logging.getLogger(__name__)

NOTIFICATION_SETTINGS: tuple[tuple[str, Setting[bool]], ...] = (
    ("notify_expiry", S.NOTIFY_EXPIRY),
    ("notify_reset_failed", S.NOTIFY_RESET_FAILED),
    ("notify_trigger_rejected", S.NOTIFY_TRIGGER_REJECTED),
)


def _muted(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setProperty("role", "muted")
    return label


class PreferencesPage(Page):
    """Every change is saved at once; there is no OK button."""

    def __init__(self, prefs: Preferences, clipboard: SecretClipboard, autostart: Autostart,
                 notifier: Notifier | None = None, parent: QWidget | None = None,
                 local_url: str = ""):
        super().__init__("preferences_page", parent)
        self.prefs = prefs
        self.clipboard = clipboard
        self.autostart = autostart
        self.notifier = notifier
        self.local_url = local_url  # the tenant on this computer, when it runs
        root = QVBoxLayout(self)
        root.setContentsMargins(28, 22, 28, 28)
        root.setSpacing(16)
        self.build_header(root, "Preferences", banner="preferences_banner")
        for box in (self._build_notifications(), self._build_clipboard(),
                    self._build_startup(), self._build_local_tenant(), self._build_alerts()):
            box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            root.addWidget(box)
        root.addStretch(1)

    def _build_notifications(self) -> QGroupBox:
        box = QGroupBox("Notifications")
        layout = QVBoxLayout(box)
        layout.setSpacing(8)
        layout.addWidget(_muted("Tell me when:"))
        self.notify_boxes: dict[str, QCheckBox] = {}
        for name, setting in NOTIFICATION_SETTINGS:
            check = QCheckBox(setting.label)
            check.setObjectName(name)
            check.setChecked(self.prefs.get(setting))
            check.toggled.connect(lambda on, s=setting: self._save(s, on))
            layout.addWidget(check)
            self.notify_boxes[name] = check
        self.backend_label = _muted("")
        self.backend_label.setObjectName("notification_backend")
        self.backend_label.setVisible(False)
        layout.addWidget(self.backend_label)
        self.test_button = QPushButton("Send a test notification")
        self.test_button.setObjectName("test_notification_button")
        self.test_button.clicked.connect(lambda: self.tasks.start(self.send_test()))
        self.test_button.setEnabled(self.notifier is not None)
        layout.addWidget(self.test_button, 0, Qt.AlignmentFlag.AlignLeft)
        return box

    def _build_alerts(self) -> QGroupBox:
        box = QGroupBox("Alert e-mails")
        layout = QVBoxLayout(box)
        layout.setSpacing(8)
        layout.addWidget(_muted("Who the tenant mails, and when."))
        self.alerts_button = QPushButton("Alert settings\u2026")
        self.alerts_button.setObjectName("alert_settings_button")
        self.alerts_button.setToolTip("The tenant's alert recipients and the days before the "
                                      "workflow URL expires that it warns")
        self.alerts_button.setEnabled(False)  # until the app gives it a tenant (set_alerts)
        layout.addWidget(self.alerts_button, 0, Qt.AlignmentFlag.AlignLeft)
        return box

    def set_alerts(self, open_dialog: Callable[[], object]) -> None:
        """Alert settings… opens the tenant's alert settings (``open_dialog``)."""
        self.alerts_button.clicked.connect(open_dialog)
        self.alerts_button.setEnabled(True)

    def _build_clipboard(self) -> QGroupBox:
        box = QGroupBox("Clipboard")
        form = QFormLayout(box)
        form.setHorizontalSpacing(18)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.clear_seconds = QSpinBox()
        self.clear_seconds.setObjectName("clipboard_clear_seconds")
        self.clear_seconds.setRange(5, 600)
        self.clear_seconds.setSuffix(" s")
        self.clear_seconds.setValue(self.prefs.get(S.CLIPBOARD_CLEAR_SECONDS))
        self.clear_seconds.setMinimumWidth(110)
        self.clear_seconds.valueChanged.connect(self._clear_seconds_changed)
        form.addRow("Clear copied secrets after", self.clear_seconds)
        form.addRow(_muted("A copied workflow URL is removed from the clipboard after this "
                           "time, unless you copied something else meanwhile."))
        return box

    def _build_startup(self) -> QGroupBox:
        box = QGroupBox("Start-up")
        layout = QVBoxLayout(box)
        self.start_at_login = QCheckBox(S.START_AT_LOGIN.label)
        self.start_at_login.setObjectName("start_at_login")
        self.start_at_login.setChecked(self.autostart.is_enabled())
        self.start_at_login.toggled.connect(self._start_at_login_toggled)
        layout.addWidget(self.start_at_login)
        self.autostart_hint = _muted(f"Saved in {self.autostart.location}")
        self.autostart_hint.setObjectName("autostart_location")
        self.autostart_hint.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.autostart_hint)
        return box

    def _build_local_tenant(self) -> QGroupBox:
        box = QGroupBox("Tenant on this computer")
        box.setObjectName("local_tenant_box")
        layout = QVBoxLayout(box)
        layout.setSpacing(8)
        port = self.prefs.get(S.LOCAL_TENANT_PORT)
        here = self.local_url or (f"http://127.0.0.1:{port}" if port else "not started yet")
        self.local_address = _muted(f"It listens at {here} and keeps that port, so the "
                                    "workflow URL and your agents' address stay the same "
                                    "after a restart.")
        self.local_address.setObjectName("local_address")
        layout.addWidget(self.local_address)
        public_label = QLabel("Public address (a tunnel or reverse proxy in front of it)")
        public_label.setWordWrap(True)
        layout.addWidget(public_label)
        row = QHBoxLayout()
        row.setSpacing(8)
        self.public_url = QLineEdit(self.prefs.get(S.LOCAL_PUBLIC_URL))
        self.public_url.setObjectName("local_public_url")
        self.public_url.setPlaceholderText("https://qp.example.com")
        self.public_url.setAccessibleName("Public address of the tenant on this computer")
        self.public_url.returnPressed.connect(self.save_public_url)
        row.addWidget(self.public_url, 1)
        self.save_public_button = QPushButton("Save")
        self.save_public_button.setObjectName("save_public_url")
        self.save_public_button.clicked.connect(self.save_public_url)
        row.addWidget(self.save_public_button)
        layout.addLayout(row)
        layout.addWidget(_muted("IT Glue must reach the workflow URL from the internet. "
                                "The tenant builds its URLs from this address; it applies "
                                "the next time QP Desktop starts. Empty: its own address."))
        self.public_url_message = Banner("public_url_message")
        layout.addWidget(self.public_url_message)
        return box

    def save_public_url(self) -> bool:
        """Check and keep the public address (https only); False with a sentence if not."""
        text = self.public_url.text().strip()
        if text:
            try:
                text = normalise_tenant_url(text)
            except ValueError as exc:
                self.public_url_message.show_message("error", str(exc))
                return False
            if not text.startswith("https://"):
                self.public_url_message.show_message(
                    "error", "A public address must use https://: IT Glue sends the "
                             "workflow URL's secret in it.")
                return False
        self.public_url.setText(text)
        self.prefs.set(S.LOCAL_PUBLIC_URL, text)
        self.prefs.sync()
        self.public_url_message.show_message(
            "info", "Saved. Quit and start QP Desktop again to use it; then generate a new "
                    "workflow URL and paste it into IT Glue." if text else
                    "Saved. The tenant uses its own address from the next start.")
        return True

    # -- changes ------------------------------------------------------------------------------

    def _save(self, setting: Setting[bool], value: bool) -> None:
        self.prefs.set(setting, value)
        self.prefs.sync()

    def _clear_seconds_changed(self, seconds: int) -> None:
        self.prefs.set(S.CLIPBOARD_CLEAR_SECONDS, seconds)
        self.prefs.sync()
        self.clipboard.clear_after_ms = seconds * 1000

    def _start_at_login_toggled(self, enabled: bool) -> None:
        self.banner.clear()
        try:
            self.autostart.set_enabled(enabled)
        except AutostartError as exc:
            self.banner.show_message("error", str(exc))
            self.start_at_login.blockSignals(True)
            self.start_at_login.setChecked(self.autostart.is_enabled())
            self.start_at_login.blockSignals(False)
            return
        self.prefs.set(S.START_AT_LOGIN, enabled)
        self.prefs.sync()

    async def send_test(self) -> str | None:
        if self.notifier is None:
            return None
        used = await self.notifier.notify(Notification(
            "test", "QP Desktop notifications work",
            "Warnings about the workflow URL and failed password resets appear like this."))
        self._show_backend()
        return used

    def _show_backend(self) -> None:
        backend = self.notifier.backend if self.notifier else None
        self.backend_label.setText(
            f"Notifications appear as {backend.description}." if backend else "")
        self.backend_label.setVisible(backend is not None)

    def activate(self) -> None:
        """Shown: reflect the current state (the autostart file may have changed)."""
        self.start_at_login.blockSignals(True)
        self.start_at_login.setChecked(self.autostart.is_enabled())
        self.start_at_login.blockSignals(False)
        if self.notifier is not None:
            async def describe() -> None:
                assert self.notifier is not None
                await self.notifier.start()
                self._show_backend()
            self.tasks.start(describe())
