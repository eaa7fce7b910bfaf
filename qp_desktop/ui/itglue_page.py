"""Integrations → IT Glue: the connection, the Workflow Trigger Token and the webhook payload."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.itglue_watcher import watcher_covers, watcher_instead, watcher_status
from qp_desktop.services.tenant_client import (
    ITGlueIntegration,
    TenantClient,
    WorkflowToken,
)
from qp_desktop.services.workflow_url import (
    LABEL,
    WorkflowUrl,
    masked,
    may_copy,
    refusal,
    unreachable_warning,
)
from qp_desktop.ui import roles
from qp_desktop.ui.page import Page
from qp_desktop.ui.theme import monospace_font
from qp_desktop.ui.timefmt import friendly
from qp_desktop.ui.widgets import (
    Banner,
    ClipboardNote,
    CopyButton,
    SecretField,
    StatusBadge,
)

log = logging.getLogger(__name__)

REGIONS = (("us", "United States"), ("eu", "Europe"), ("au", "Australia"))
REFRESH_INTERVAL_MS = 60_000




def _label(text: str = "", name: str | None = None, selectable: bool = True,
           wrap: bool = True) -> QLabel:
    label = QLabel(text)
    if name:
        label.setObjectName(name)
    label.setWordWrap(wrap)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _form() -> QFormLayout:
    form = QFormLayout()
    form.setHorizontalSpacing(18)
    form.setVerticalSpacing(9)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


class GenerateTokenDialog(QDialog):
    """Confirms "Generate New" and offers a grace period for the old URL."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("generate_dialog")
        self.setWindowTitle("Generate a new workflow URL?")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 16)
        layout.setSpacing(12)
        heading = QLabel("Generate a new workflow URL?")
        heading.setProperty("role", "heading")
        layout.addWidget(heading)
        text = _label(
            "The current URL stops working. Until you paste the new URL into the Webhook "
            "action of your IT Glue workflow, password changes in IT Glue will not reach "
            "this tenant.", selectable=False)
        text.setMinimumWidth(420)
        layout.addWidget(text)
        grace_row = QHBoxLayout()
        self.grace = QCheckBox("Keep the current URL working for")
        self.grace.setObjectName("grace_checkbox")
        self.grace.setChecked(True)
        self.grace_hours = QSpinBox()
        self.grace_hours.setObjectName("grace_hours")
        self.grace_hours.setRange(1, 168)
        self.grace_hours.setValue(24)
        self.grace_hours.setSuffix(" hours")
        self.grace.toggled.connect(self.grace_hours.setEnabled)
        grace_row.addWidget(self.grace)
        grace_row.addWidget(self.grace_hours)
        grace_row.addStretch(1)
        layout.addLayout(grace_row)
        hint = _label("A grace period lets the IT Glue workflow keep working while you "
                      "update it.", selectable=False)
        hint.setProperty("role", "muted")
        layout.addWidget(hint)
        buttons = QDialogButtonBox()
        self.confirm_button = buttons.addButton("Generate New URL",
                                                QDialogButtonBox.ButtonRole.AcceptRole)
        self.confirm_button.setObjectName("confirm_generate_button")
        self.confirm_button.setProperty("role", "primary")
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setObjectName("cancel_generate_button")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    @property
    def grace_hours_value(self) -> int:
        return self.grace_hours.value() if self.grace.isChecked() else 0


class ITGluePage(Page):
    """The IT Glue integration page. Every call runs in the background with a busy bar."""

    def __init__(self, client: TenantClient, clipboard: SecretClipboard,
                 parent: QWidget | None = None, workflow_url: WorkflowUrl | None = None):
        super().__init__("itglue_page", parent)
        self.client = client
        self.clipboard = clipboard
        self.workflow_url = workflow_url or WorkflowUrl(client, clipboard)
        self.integration: ITGlueIntegration | None = None
        self.generate_dialog: GenerateTokenDialog | None = None
        self.disconnect_dialog: QMessageBox | None = None
        self.role: str | None = None  # the signed-in user's; None: not known, nothing gated
        # "Checked 12 s ago" stays true while the page is shown.
        self._watcher_clock = QTimer(self)
        self._watcher_clock.setInterval(1000)
        self._watcher_clock.timeout.connect(self._render_watcher)
        self._build()
        self._render()
        self.refresh_periodically(REFRESH_INTERVAL_MS)

    @property
    def token(self) -> WorkflowToken | None:
        return self.integration.workflow_token if self.integration else None

    @property
    def _full_url(self) -> str | None:
        """The current token's full URL while it is in memory (never logged)."""
        return self.workflow_url.known(self.token)

    @_full_url.setter
    def _full_url(self, value: None) -> None:
        assert value is None  # only forgetting; the service fetches and remembers
        self.workflow_url.forget()

    # -- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(28, 22, 28, 28)
        root.setSpacing(16)

        self.build_header(root, "IT Glue",
                          "Connect IT Glue and give its password workflow a URL to call.",
                          refresh="refresh_button", busy="itglue_busy", banner="itglue_banner")

        for box in (self._build_connection(), self._build_token(), self._build_payload()):
            # Never squeeze a group below its natural height: the scroll area scrolls instead
            # (wrapped labels make Qt underestimate the page's minimum height otherwise).
            box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            root.addWidget(box)
        root.addStretch(1)

    def _build_connection(self) -> QGroupBox:
        box = QGroupBox("Connection")
        box.setObjectName("connection_box")
        layout = QVBoxLayout(box)
        layout.setSpacing(12)
        form = _form()
        self.connection_badge = StatusBadge("connection_status")
        self.region_label = _label(name="region_label", wrap=False)
        self.key_hint_label = _label(name="key_hint_label", wrap=False)
        self.key_hint_label.setFont(monospace_font())
        self.last_verified_label = _label(name="last_verified_label", wrap=False)
        self.last_error_label = _label(name="last_error_label")
        form.addRow("Status", self.connection_badge)
        form.addRow("Region", self.region_label)
        form.addRow("API key", self.key_hint_label)
        form.addRow("Last verified", self.last_verified_label)
        form.addRow("Last error", self.last_error_label)
        # The tenant's watcher (absent on a tenant without one: the row stays hidden).
        self.watcher_label = _label(name="watcher_label")
        form.addRow("Watcher", self.watcher_label)
        self.connection_form = form
        form.setRowVisible(self.watcher_label, False)
        layout.addLayout(form)

        self.connect_heading = QLabel()
        self.connect_heading.setProperty("role", "heading")
        self.connect_heading.setContentsMargins(0, 8, 0, 0)
        layout.addWidget(self.connect_heading)
        connect_form = _form()
        self.region_combo = QComboBox()
        self.region_combo.setObjectName("region_combo")
        for code, name in REGIONS:
            self.region_combo.addItem(f"{name} ({code})", code)
        self.api_key = SecretField("api_key", "ITG.\u2026")
        connect_form.addRow("Region", self.region_combo)
        connect_form.addRow("API key", self.api_key)
        layout.addLayout(connect_form)
        self.connection_message = Banner("connection_message")
        layout.addWidget(self.connection_message)
        note = _label("The tenant checks the key with IT Glue before saving it. The key "
                      "needs the \u201cPassword Access\u201d option.", selectable=False)
        note.setProperty("role", "muted")
        layout.addWidget(note)
        buttons = QHBoxLayout()
        self.connect_button = QPushButton("Connect")
        self.connect_button.setObjectName("connect_button")
        self.connect_button.setProperty("role", "primary")
        self.connect_button.clicked.connect(self._connect_clicked)
        self.api_key.returnPressed.connect(self._connect_clicked)
        self.disconnect_button = QPushButton("Disconnect\u2026")
        self.disconnect_button.setObjectName("disconnect_button")
        self.disconnect_button.setProperty("role", "danger")
        self.disconnect_button.clicked.connect(self._disconnect_clicked)
        buttons.addWidget(self.connect_button)
        buttons.addStretch(1)
        buttons.addWidget(self.disconnect_button)
        layout.addLayout(buttons)
        return box

    def _build_token(self) -> QGroupBox:
        box = QGroupBox("Workflow Trigger Token")
        box.setObjectName("token_box")
        layout = QVBoxLayout(box)
        layout.setSpacing(12)
        intro = _label("IT Glue\u2019s workflow calls this secret URL when a password "
                       "changes. Treat it like a password.", selectable=False)
        intro.setProperty("role", "muted")
        layout.addWidget(intro)
        form = _form()
        self.token_badge = StatusBadge("token_status")
        self.created_label = _label(name="token_created_label", wrap=False)
        self.expires_label = _label(name="token_expires_label", wrap=False)
        self.days_left_label = _label(name="token_days_left_label", wrap=False)
        self.last_used_label = _label(name="token_last_used_label", wrap=False)
        form.addRow("Status", self.token_badge)
        form.addRow("Created", self.created_label)
        form.addRow("Expires", self.expires_label)
        form.addRow("Days left", self.days_left_label)
        form.addRow("Last used", self.last_used_label)

        layout.addLayout(form)

        url_caption = QLabel("Workflow URL")
        url_caption.setProperty("role", "field-label")
        layout.addWidget(url_caption)
        url_row = QHBoxLayout()
        url_row.setSpacing(8)
        self.url_field = QLineEdit()
        self.url_field.setObjectName("workflow_url")
        self.url_field.setReadOnly(True)
        self.url_field.setFont(monospace_font())
        self.url_field.setMinimumWidth(320)
        url_row.addWidget(self.url_field, 1)
        self.reveal_button = QPushButton("Reveal")
        self.reveal_button.setObjectName("reveal_button")
        self.reveal_button.setCheckable(True)
        self.reveal_button.setToolTip("Show the full URL (the tenant records that you did)")
        self.reveal_button.toggled.connect(self._reveal_toggled)
        url_row.addWidget(self.reveal_button)
        layout.addLayout(url_row)

        self.public_url_warning = Banner("public_url_warning")
        layout.addWidget(self.public_url_warning)

        buttons = QHBoxLayout()
        self.copy_url_button = QPushButton("Copy URL")
        self.copy_url_button.setObjectName("copy_url_button")
        self.copy_url_button.setProperty("role", "primary")
        self.copy_url_button.clicked.connect(self._copy_url_clicked)
        self.generate_button = QPushButton("Generate New\u2026")
        self.generate_button.setObjectName("generate_button")
        self.generate_button.clicked.connect(self._generate_clicked)
        buttons.addWidget(self.copy_url_button)
        buttons.addWidget(self.generate_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.clipboard_note = ClipboardNote(self.clipboard, LABEL, "clipboard_note")
        layout.addWidget(self.clipboard_note)
        return box

    def _build_payload(self) -> QGroupBox:
        box = QGroupBox("Webhook payload for IT Glue")
        box.setObjectName("payload_box")
        layout = QVBoxLayout(box)
        layout.setSpacing(10)
        intro = _label("In the Webhook action of the IT Glue workflow, add these rows under "
                       "JSON payload (Key / Value):", selectable=False)
        intro.setProperty("role", "muted")
        layout.addWidget(intro)
        self.payload_grid = QGridLayout()
        self.payload_grid.setHorizontalSpacing(12)
        self.payload_grid.setVerticalSpacing(8)
        layout.addLayout(self.payload_grid)
        self._payload_widgets: list[QWidget] = []
        return box

    # -- rendering ----------------------------------------------------------------------------

    def _render(self) -> None:
        integration = self.integration
        connected = bool(integration and integration.connected)
        if integration is None:
            self.connection_badge.set_status("none", "Unknown")
        elif integration.connected and integration.last_error:
            self.connection_badge.set_status("error", "Connected, with errors")
        else:
            self.connection_badge.set_status("connected" if connected else "disconnected")
        region = integration.region if integration else None
        self.region_label.setText(dict(REGIONS).get(region or "", "\u2014") if region else "\u2014")
        self.key_hint_label.setText((integration.api_key_hint if integration else None)
                                    or "\u2014")
        self.last_verified_label.setText(
            friendly(integration.last_verified_at if integration else None))
        last_error = integration.last_error if integration else None
        self.last_error_label.setText(last_error or "None")
        self.connect_heading.setText("Replace the API key" if connected
                                     else "Connect with an API key")
        self.connect_button.setText("Save new key" if connected else "Connect")
        if region:
            index = self.region_combo.findData(region)
            if index >= 0:
                self.region_combo.setCurrentIndex(index)
        self.disconnect_button.setVisible(connected)
        self._render_watcher()
        self._render_token(integration.workflow_token if integration else None)
        self._render_payload(integration)
        self._update_enabled()

    def _render_token(self, token: WorkflowToken | None) -> None:
        if token is None:
            self.token_badge.set_status("none")
            for label in (self.created_label, self.expires_label, self.days_left_label,
                          self.last_used_label):
                label.setText("\u2014")
            self.url_field.setText("")
            self.url_field.setPlaceholderText("No workflow URL yet. Generate one to paste "
                                              "into IT Glue.")
            self.public_url_warning.clear()
            self.generate_button.setText("Generate")
            self._set_revealed(False)
            return
        if self.workflow_url.known(token) is None:
            self._set_revealed(False)  # a new token: revealed again only on request
        self.token_badge.set_status(token.status)
        self.created_label.setText(friendly(token.created_at))
        self.expires_label.setText(friendly(token.expires_at))
        if token.days_left is None:
            self.days_left_label.setText("\u2014")
        else:
            self.days_left_label.setText("Expired" if token.days_left < 0
                                         else f"{token.days_left}")
        self.last_used_label.setText(friendly(token.last_used_at, empty="Not used yet"))
        self.generate_button.setText("Generate New\u2026")
        watcher = self.integration.watcher if self.integration else None
        if watcher is not None and watcher_covers(self.integration, self.client.base_url):
            self.public_url_warning.show_message("info", watcher_instead(watcher))
        elif warning := unreachable_warning(token):
            self.public_url_warning.show_message("warning", warning)
        else:
            self.public_url_warning.clear()
        self._show_url()

    def _render_watcher(self) -> None:
        kind, text = watcher_status(self.integration.watcher if self.integration else None)
        self.watcher_label.setText(text)
        self.watcher_label.setProperty("kind", kind)
        self.connection_form.setRowVisible(self.watcher_label, bool(text))
        if not text:
            self._watcher_clock.stop()
        elif self.isVisible() and not self._closed:
            self._watcher_clock.start()

    def _show_url(self) -> None:
        full = self._full_url
        if self.reveal_button.isChecked() and full:
            self.url_field.setText(full)
        else:
            self.url_field.setText(masked(self.token))
        self.url_field.setCursorPosition(0)

    def _set_revealed(self, revealed: bool) -> None:
        self.reveal_button.blockSignals(True)
        self.reveal_button.setChecked(revealed)
        self.reveal_button.setText("Hide" if revealed else "Reveal")
        self.reveal_button.blockSignals(False)

    def _render_payload(self, integration: ITGlueIntegration | None) -> None:
        for widget in self._payload_widgets:
            self.payload_grid.removeWidget(widget)
            widget.hide()
            widget.deleteLater()
        self._payload_widgets = []
        rows = integration.webhook_payload if integration else []
        if not rows:
            empty = _label("The payload rows appear once the page has loaded.",
                           selectable=False)
            empty.setProperty("role", "muted")
            self.payload_grid.addWidget(empty, 0, 0, 1, 4)
            self._payload_widgets.append(empty)
            return
        headers = ("Key", "Value")
        for col, text in enumerate(headers):
            header = QLabel(text)
            header.setProperty("role", "field-label")
            self.payload_grid.addWidget(header, 0, col * 2)
            self._payload_widgets.append(header)
        for i, row in enumerate(rows, start=1):
            for col, (value, what) in enumerate(((row.key, "key"), (row.value, "value"))):
                field = QLineEdit(value)
                field.setObjectName(f"payload_{what}_{i - 1}")
                field.setReadOnly(True)
                field.setFont(monospace_font())
                button = CopyButton(f"copy_payload_{what}_{i - 1}", self.clipboard,
                                    lambda v=value: v, f"\u201c{value}\u201d")
                self.payload_grid.addWidget(field, i, col * 2)
                self.payload_grid.addWidget(button, i, col * 2 + 1)
                self._payload_widgets += [field, button]
        self.payload_grid.setColumnStretch(0, 1)
        self.payload_grid.setColumnStretch(2, 1)

    # -- busy state ---------------------------------------------------------------------------

    def _update_enabled(self) -> None:
        if self._closed:
            return
        busy = self._busy > 0
        self.busy_bar.setVisible(busy)
        token = self.token
        has_url = token is not None and token.status != "revoked"
        for widget in (self.refresh_button, self.connect_button, self.disconnect_button,
                       self.generate_button, self.region_combo, self.api_key):
            widget.setEnabled(not busy)
        self.copy_url_button.setEnabled(not busy and may_copy(token))
        self.copy_url_button.setToolTip(refusal(token))
        self.reveal_button.setEnabled(not busy and has_url)
        for widget in (self.connect_button, self.region_combo, self.api_key):
            roles.gate(widget, self.role, roles.ADMIN, "connect IT Glue")
        roles.gate(self.disconnect_button, self.role, roles.ADMIN, "disconnect IT Glue")
        roles.gate(self.generate_button, self.role, roles.ADMIN, "generate a new workflow URL")
        roles.gate(self.reveal_button, self.role, roles.TECHNICIAN, "reveal the workflow URL")
        roles.gate(self.copy_url_button, self.role, roles.TECHNICIAN, "copy the workflow URL")

    def set_role(self, role: str | None) -> None:
        """Disable what the signed-in user's role may not do (see qp_desktop.ui.roles)."""
        self.role = role
        self._update_enabled()


    # -- actions ------------------------------------------------------------------------------

    def activate(self) -> None:
        """Refresh from the tenant (called when the page is shown)."""
        self.tasks.start(self.refresh())

    async def refresh(self) -> bool:
        async def load() -> None:
            self.integration = await self.client.get_itglue()
            self.banner.clear()
            self._render()
        return await self._run(load)

    def _connect_clicked(self) -> None:
        self.tasks.start(self.connect_itglue())

    async def connect_itglue(self) -> bool:
        key = self.api_key.text().strip()
        self.connection_message.clear()
        if not key:
            self.connection_message.show_message("error", "Enter the IT Glue API key.")
            return False
        region = str(self.region_combo.currentData())

        async def put() -> None:
            await self.client.connect_itglue(region, key)
            self.api_key.clear()
            self.integration = await self.client.get_itglue()
            self._render()
            self.connection_message.show_message("success", "IT Glue is connected.")
        return await self._run(put, self.connection_message)

    def _disconnect_clicked(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "Disconnect IT Glue?",
                          "Disconnect IT Glue?", parent=self)
        box.setObjectName("disconnect_dialog")
        box.setInformativeText("The tenant forgets the API key and can no longer read new "
                               "passwords from IT Glue, so password changes stop being "
                               "applied. The workflow URL stays as it is.")
        confirm = box.addButton("Disconnect", QMessageBox.ButtonRole.DestructiveRole)
        confirm.setObjectName("confirm_disconnect_button")
        box.addButton(QMessageBox.StandardButton.Cancel)
        self.disconnect_dialog = box

        def finished() -> None:
            if box.clickedButton() is confirm:
                self.tasks.start(self.disconnect_itglue())
            self.disconnect_dialog = None
            box.deleteLater()
        box.finished.connect(finished)
        box.open()

    async def disconnect_itglue(self) -> bool:
        async def delete() -> None:
            await self.client.disconnect_itglue()
            self.integration = await self.client.get_itglue()
            self._render()
            self.connection_message.show_message("info", "IT Glue is disconnected.")
        return await self._run(delete, self.connection_message)

    def _generate_clicked(self) -> None:
        token = self.integration.workflow_token if self.integration else None
        if token is None or token.status in {"revoked", "expired"}:
            self.tasks.start(self.generate(0))
            return
        dialog = GenerateTokenDialog(self)
        self.generate_dialog = dialog

        def finished(result: int) -> None:
            if result == QDialog.DialogCode.Accepted:
                self.tasks.start(self.generate(dialog.grace_hours_value))
            self.generate_dialog = None
            dialog.deleteLater()
        dialog.finished.connect(finished)
        dialog.open()

    async def ask_to_generate(self) -> None:
        """Generate New asked for from outside the page (the tray, the alert banner): load
        the current token first, so that a live one is confirmed before it is replaced."""
        if not await self.refresh() or self._closed:
            return
        if roles.allows(self.role, roles.ADMIN) and self.generate_dialog is None:
            self._generate_clicked()

    async def generate(self, grace_hours: int) -> bool:
        async def post() -> None:
            generated = await self.client.generate_workflow_token(grace_hours)
            self.workflow_url.remember(generated.token, generated.url)
            self.integration = await self.client.get_itglue()
            self._set_revealed(False)
            self._render()
            self.banner.show_message(
                "success",
                "A new workflow URL is ready. Copy it into the Webhook action of your IT Glue "
                "workflow." + (f" The previous URL keeps working for {grace_hours} hours."
                               if grace_hours else ""))
        return await self._run(post)

    def _reveal_toggled(self, checked: bool) -> None:
        self.reveal_button.setText("Hide" if checked else "Reveal")
        if checked:
            self.tasks.start(self.reveal())
        else:
            self._show_url()

    async def reveal(self) -> bool:
        async def post() -> None:
            await self.workflow_url.fetch(self.token)
            self._show_url()
        ok = await self._run(post)
        if not ok:
            self._set_revealed(False)
            self._show_url()
        return ok

    def _copy_url_clicked(self) -> None:
        self.tasks.start(self.copy_url())

    async def copy_url(self) -> bool:
        """Copy the URL (the clipboard clears after its delay); never one that has stopped
        working."""
        async def copy() -> None:
            await self.workflow_url.copy(self.token)
        return await self._run(copy)


    def shutdown(self) -> None:
        """The window is going away: stop background work and forget the URL."""
        super().shutdown()
        self._watcher_clock.stop()
        self.workflow_url.forget()

    def forget_secrets(self) -> None:
        """On sign-out: drop the URL from memory and the screen."""
        self.workflow_url.forget()
        self._set_revealed(False)
        self.integration = None
        self._render()
