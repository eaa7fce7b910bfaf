"""Showing the IT Glue integration: connection, watcher, token, URL, payload, and
which controls are enabled."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QLabel,
    QLineEdit,
)

from qp_desktop.services.itglue_watcher import watcher_covers, watcher_instead, watcher_status
from qp_desktop.services.tenant_client import (
    ITGlueIntegration,
    WorkflowToken,
)
from qp_desktop.services.workflow_url import (
    masked,
    may_copy,
    refusal,
    unreachable_warning,
)
from qp_desktop.ui import roles
from qp_desktop.ui.itglue.formatting import REGIONS, _label
from qp_desktop.ui.theme import monospace_font
from qp_desktop.ui.timefmt import friendly
from qp_desktop.ui.widgets import CopyButton


class ITGlueRender:
    """Mixin of :class:`~qp_desktop.ui.itglue.page.ITGluePage`: rendering."""

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
