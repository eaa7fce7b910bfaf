"""Accounts → "Microsoft 365…": link a customer to its Microsoft 365 tenant.

The dialog walks the technician through registering the app in the customer's Entra admin
center (each name to type has a Copy button), sends the three values to the tenant, which
verifies them with Microsoft before saving, and shows the result, the linked state, "Sync
now" and "Unlink". The client secret lives only in the field until the tenant has it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.tasks import TaskSet
from qp_desktop.services.tenant_client import (
    CloudPrerequisite,
    Customer,
    Microsoft365Link,
    TenantClient,
)
from qp_desktop.ui import roles
from qp_desktop.ui.tasks import TenantCallsMixin
from qp_desktop.ui.timefmt import friendly
from qp_desktop.ui.widgets import Banner, BusyBar, CopyButton, SecretField

APP_NAME = "QP password resets"
PERMISSION = "User.ReadWrite.All"
USER_ADMIN = "User Administrator"
PRIVILEGED_ADMIN = "Privileged Authentication Administrator"

# (step text, value to copy or None, what the value is)
SETUP_STEPS: tuple[tuple[str, str | None, str], ...] = (
    (f"In the customer\u2019s Entra admin center: <b>App registrations \u2192 New "
     f"registration</b>, named <code>{APP_NAME}</code>.", APP_NAME, "the app name"),
    (f"<b>API permissions \u2192 Microsoft Graph \u2192 Application permissions</b>: add "
     f"<code>{PERMISSION}</code>, then <b>Grant admin consent</b>.", PERMISSION,
     "the permission name"),
    (f"<b>Roles &amp; admins</b>: assign the app the role <code>{USER_ADMIN}</code> (it "
     "resets users\u2019 passwords)\u2026", USER_ADMIN, "the role name"),
    (f"\u2026 or <code>{PRIVILEGED_ADMIN}</code> to reset administrators\u2019 passwords "
     "too.", PRIVILEGED_ADMIN, "the role name"),
    ("<b>Certificates &amp; secrets \u2192 New client secret</b>: paste its <b>Value</b> (not "
     "its Secret ID) below, with the two IDs from the app\u2019s <b>Overview</b>.", None, ""),
)


def link_state_text(link: Microsoft365Link | None) -> tuple[str, str]:
    """The linked state as shown, and its kind for the banner (``success``, ``warning`` …)."""
    if link is None:
        return "Checking whether this customer is linked\u2026", "info"
    if not link.linked:
        return ("Not linked yet: its cloud accounts cannot be reset until the app below is "
                "set up and verified."), "info"
    roles = ", ".join(link.directory_roles) if link.directory_roles else "not stated"
    text = (f"Linked to tenant {link.tenant_id} with app {link.client_id} (secret "
            f"{link.secret_hint}). Verified {friendly(link.last_verified_at, empty='never')}; "
            f"directory roles: {roles}.")
    if link.last_sync_at:
        text += f" Users last synced {friendly(link.last_sync_at)}."
    if link.last_error:
        return f"{text}\n\nThe last attempt failed: {link.last_error}", "warning"
    return text, "success"


class Microsoft365Dialog(TenantCallsMixin, QDialog):
    """Signals:
        changed: the link or the accounts changed (the page refreshes its table).
    """

    changed = Signal()

    def __init__(self, client: TenantClient, clipboard: SecretClipboard, customer: Customer,
                 parent: QWidget | None = None, user_role: str | None = None):
        super().__init__(parent)
        self.user_role = user_role  # the signed-in user's role; None: not known, nothing gated
        self.setObjectName("m365_dialog")
        self.setWindowTitle(f"Microsoft 365 \u2014 {customer.name}")
        self.setMinimumWidth(860)
        self.client = client
        self.customer = customer
        self.link: Microsoft365Link | None = None
        self.tasks = TaskSet()
        self._busy = 0
        self._closed = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 16, 22, 12)
        layout.setSpacing(8)
        heading = QLabel(f"Link {customer.name} to Microsoft 365")
        heading.setProperty("role", "heading")
        layout.addWidget(heading)
        intro = QLabel("The tenant resets this customer\u2019s cloud passwords itself, through "
                       "Microsoft Graph, with an app registered in the customer\u2019s "
                       "Microsoft 365 tenant. No agent is needed.")
        intro.setWordWrap(True)
        intro.setProperty("role", "muted")
        layout.addWidget(intro)
        self.state_banner = Banner("m365_state")
        layout.addWidget(self.state_banner)

        steps = QGridLayout()
        steps.setHorizontalSpacing(10)
        steps.setVerticalSpacing(6)
        for row, (text, value, what) in enumerate(SETUP_STEPS):
            number = QLabel(f"{row + 1}.")
            number.setProperty("role", "field-label")
            steps.addWidget(number, row, 0, Qt.AlignmentFlag.AlignTop)
            label = QLabel(text)
            label.setObjectName(f"m365_step_{row + 1}")
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)
            steps.addWidget(label, row, 1)
            if value is not None:
                copy = CopyButton(f"m365_copy_{row + 1}", clipboard, _const(value), what)
                copy.setToolTip(f"Copy {what}: {value}")
                steps.addWidget(copy, row, 2, Qt.AlignmentFlag.AlignTop)
        steps.setColumnStretch(1, 1)
        layout.addLayout(steps)

        form = QFormLayout()
        form.setHorizontalSpacing(18)
        form.setVerticalSpacing(8)
        self.tenant_edit = QLineEdit()
        self.tenant_edit.setObjectName("m365_tenant_id")
        self.tenant_edit.setPlaceholderText("Directory (tenant) ID, e.g. 8a6b1c2d-\u2026")
        form.addRow("Directory (tenant) ID", self.tenant_edit)
        self.client_edit = QLineEdit()
        self.client_edit.setObjectName("m365_client_id")
        self.client_edit.setPlaceholderText("Application (client) ID")
        form.addRow("Application (client) ID", self.client_edit)
        self.secret_field = SecretField("m365_client_secret", "The client secret\u2019s Value")
        form.addRow("Client secret", self.secret_field)
        layout.addLayout(form)
        self.busy_bar = BusyBar("m365_busy")
        layout.addWidget(self.busy_bar)
        self.banner = Banner("m365_result")
        layout.addWidget(self.banner)

        buttons = QDialogButtonBox()
        self.link_button = buttons.addButton("Verify and link",
                                             QDialogButtonBox.ButtonRole.ActionRole)
        self.link_button.setObjectName("m365_link_button")
        self.link_button.setProperty("role", "primary")
        self.link_button.clicked.connect(lambda: self.tasks.start(self.verify_and_link()))
        self.sync_button = buttons.addButton("Sync users now",
                                             QDialogButtonBox.ButtonRole.ActionRole)
        self.sync_button.setObjectName("m365_sync_button")
        self.sync_button.clicked.connect(lambda: self.tasks.start(self.sync()))
        self.unlink_button = buttons.addButton("Unlink", QDialogButtonBox.ButtonRole.ActionRole)
        self.unlink_button.setObjectName("m365_unlink_button")
        self.unlink_button.clicked.connect(lambda: self.tasks.start(self.unlink()))
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.setObjectName("m365_close_button")
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        for edit in (self.tenant_edit, self.client_edit, self.secret_field.edit):
            edit.textChanged.connect(self._update_enabled)
        self.secret_field.returnPressed.connect(self._link_if_ready)
        self.finished.connect(self._forget)
        self._render()

    # -- state ------------------------------------------------------------------------------

    def _render(self) -> None:
        text, kind = link_state_text(self.link)
        self.state_banner.show_message(kind, text)
        if self.link is not None and self.link.linked:
            if not self.tenant_edit.text():
                self.tenant_edit.setText(self.link.tenant_id or "")
            if not self.client_edit.text():
                self.client_edit.setText(self.link.client_id or "")
            self.secret_field.edit.setPlaceholderText(
                f"Stored ({self.link.secret_hint}); paste a new Value to replace it")
        self.link_button.setText("Verify and save" if self.link and self.link.linked
                                 else "Verify and link")
        self._update_enabled()

    def _update_enabled(self) -> None:
        if self._closed:
            return
        busy = self._busy > 0
        self.busy_bar.setVisible(busy)
        filled = all(e.text().strip() for e in (self.tenant_edit, self.client_edit,
                                                 self.secret_field.edit))
        linked = self.link is not None and self.link.linked
        self.link_button.setEnabled(not busy and filled)
        roles.gate(self.link_button, self.user_role, roles.ADMIN, "link Microsoft 365")
        # The primary look only when it can act: a disabled primary button reads as enabled
        # in the dark palette.
        role = "primary" if self.link_button.isEnabled() else ""
        if self.link_button.property("role") != role:
            self.link_button.setProperty("role", role)
            self.link_button.style().unpolish(self.link_button)
            self.link_button.style().polish(self.link_button)
        self.sync_button.setEnabled(not busy and linked)
        self.unlink_button.setEnabled(not busy and linked)
        roles.gate(self.unlink_button, self.user_role, roles.ADMIN, "unlink Microsoft 365")
        roles.gate(self.sync_button, self.user_role, roles.TECHNICIAN,
                   "sync accounts from Microsoft 365")

    def _link_if_ready(self) -> None:
        if self.link_button.isEnabled():
            self.tasks.start(self.verify_and_link())

    def _forget(self) -> None:
        """Closed: the typed secret leaves memory and background calls stop."""
        self._closed = True
        self.secret_field.clear()
        self.tasks.cancel_all()

    # -- tenant calls -----------------------------------------------------------------------

    async def load(self) -> bool:
        async def get() -> None:
            self.link = await self.client.get_m365_link(self.customer.id)
            self._render()
        return await self._run(get)

    async def verify_and_link(self) -> bool:
        async def put() -> None:
            self.banner.show_message("info", "Asking Microsoft to sign the app in and to list "
                                             "one user\u2026")
            self.link = await self.client.link_m365(
                self.customer.id, self.tenant_edit.text().strip(),
                self.client_edit.text().strip(), self.secret_field.text().strip())
            self.secret_field.clear()
            roles = ", ".join(self.link.directory_roles or ()) or "not stated by Microsoft"
            self.banner.show_message(
                "success", f"Verified: Microsoft signed the app in and it may read users "
                           f"(directory roles: {roles}). {self.customer.name} is linked; "
                           "press Sync users now to list its cloud accounts.")
            self._render()
            self.changed.emit()
        return await self._run(put)

    async def sync(self) -> bool:
        async def post() -> None:
            result = await self.client.sync_m365(self.customer.id)
            self.changed.emit()  # the accounts changed, whatever happens to this dialog next
            text = (f"Synced {result.users} users: {result.created} new, {result.gone} gone, "
                    f"{result.on_premises} synced from on-premises AD (reset those through "
                    "the agent).")
            if result.matched is not None:
                text += f" Automatch paired {result.matched} with IT Glue passwords."
            elif result.automatch_error:
                text += f" Automatch did not run: {result.automatch_error}"
            self.link = await self.client.get_m365_link(self.customer.id)
            self._render()
            self.banner.show_message("success", text)
        return await self._run(post)

    async def unlink(self) -> bool:
        async def delete() -> None:
            await self.client.unlink_m365(self.customer.id)
            self.changed.emit()
            self.link = await self.client.get_m365_link(self.customer.id)
            self.tenant_edit.clear()
            self.client_edit.clear()
            self.secret_field.edit.setPlaceholderText("The client secret\u2019s Value")
            self.banner.show_message("info", f"{self.customer.name} is no longer linked; its "
                                             "stored client secret was deleted.")
            self._render()
        return await self._run(delete)


def _const(value: str) -> Callable[[], str]:
    return lambda: value


def link_button_for(parent: QWidget) -> QPushButton:
    """The Accounts page's "Microsoft 365…" button (enabled once a customer is chosen)."""
    button = QPushButton("Microsoft 365\u2026", parent)
    button.setObjectName("m365_button")
    button.setToolTip("Link the chosen customer to its Microsoft 365 tenant, and sync its "
                      "cloud accounts.")
    return button


def cloud_prerequisite_text(rows: Sequence[CloudPrerequisite] | None) -> tuple[str, str]:
    """The setup checklist's Microsoft 365 line, and its mark: ``done``, ``problem`` or
    ``todo`` (not known yet)."""
    if rows is None:
        return ("Microsoft 365 links are checked once IT Glue is connected (they depend on "
                "which customers keep cloud passwords in IT Glue)."), "todo"
    cloud = [r for r in rows if r.cloud_passwords]
    unlinked = [r for r in cloud if not r.linked]
    if not cloud:
        return "No customer keeps Microsoft 365 passwords in IT Glue: no link needed.", "done"
    if not unlinked:
        names = ", ".join(r.name for r in cloud)
        return f"Every customer with Microsoft 365 passwords is linked ({names}).", "done"
    described = "; ".join(f"{r.name} ({r.cloud_passwords} in cloud categories)"
                          for r in unlinked[:3])
    more = f" and {len(unlinked) - 3} more" if len(unlinked) > 3 else ""
    return (f"Not linked to Microsoft 365 yet: {described}{more}. Their cloud passwords cannot "
            "be reset until each is linked (Accounts \u2192 Microsoft 365\u2026)."), "problem"
