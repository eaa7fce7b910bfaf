"""Integrations → IT Glue: the connection, the Workflow Trigger Token and the webhook payload."""

from __future__ import annotations

import logging

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QDialog,
    QMessageBox,
    QWidget,
)

from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.tenant_client import (
    ITGlueIntegration,
    TenantClient,
    WorkflowToken,
)
from qp_desktop.services.workflow_url import WorkflowUrl
from qp_desktop.ui import roles
from qp_desktop.ui.itglue.dialogs import GenerateTokenDialog
from qp_desktop.ui.itglue.formatting import REFRESH_INTERVAL_MS
from qp_desktop.ui.itglue.layout import ITGlueLayout
from qp_desktop.ui.itglue.render import ITGlueRender
from qp_desktop.ui.page import Page

log = logging.getLogger(__name__)


class ITGluePage(ITGlueLayout, ITGlueRender, Page):
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
