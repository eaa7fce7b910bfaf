"""The Accounts page's dialogs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.tenant_client import (
    Account,
    Agent,
    AutomatchResult,
    Customer,
    EnrollmentCode,
)
from qp_desktop.ui.theme import monospace_font
from qp_desktop.ui.timefmt import friendly
from qp_desktop.ui.widgets import Banner, CopyButton


class AddAgentDialog(QDialog):
    """Names a new agent, then shows its enrollment command once (with a Copy button).

    The page makes the tenant call; the dialog only collects the name and shows the result.
    """

    def __init__(self, clipboard: SecretClipboard, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("add_agent_dialog")
        self.setWindowTitle("Add an agent")
        self.setMinimumWidth(860)
        self._command = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 16)
        layout.setSpacing(12)
        heading = QLabel("Add an agent")
        heading.setProperty("role", "heading")
        layout.addWidget(heading)
        intro = QLabel("An agent runs on a server that can reach the customer\u2019s directory "
                       "(a domain controller, an LDAP host, or the machine with the local "
                       "accounts) and applies password resets there.")
        intro.setWordWrap(True)
        intro.setProperty("role", "muted")
        layout.addWidget(intro)
        form = QFormLayout()
        form.setHorizontalSpacing(18)
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("agent_name")
        self.name_edit.setPlaceholderText("e.g. northwind-dc01")
        form.addRow("Agent name", self.name_edit)
        layout.addLayout(form)
        self.message = Banner("add_agent_message")
        layout.addWidget(self.message)

        self.result_box = QWidget()
        self.result_box.setObjectName("enrollment_result")
        result = QVBoxLayout(self.result_box)
        result.setContentsMargins(0, 0, 0, 0)
        result.setSpacing(8)
        caption = QLabel("Run this on the agent\u2019s machine:")
        caption.setProperty("role", "field-label")
        result.addWidget(caption)
        row = QHBoxLayout()
        row.setSpacing(8)
        self.command_field = QLineEdit()
        self.command_field.setObjectName("enroll_command")
        self.command_field.setReadOnly(True)
        self.command_field.setFont(monospace_font())
        self.command_field.setAccessibleName("Enrollment command")
        row.addWidget(self.command_field, 1)
        self.copy_button = CopyButton("copy_enroll_command", clipboard, lambda: self._command,
                                      "the enrollment command", secret=True)
        self.copy_button.setProperty("role", "primary")
        row.addWidget(self.copy_button)
        result.addLayout(row)
        self.expiry_label = QLabel()
        self.expiry_label.setObjectName("enroll_expiry")
        self.expiry_label.setWordWrap(True)
        self.expiry_label.setProperty("role", "muted")
        result.addWidget(self.expiry_label)
        self.result_box.setVisible(False)
        layout.addWidget(self.result_box)

        buttons = QDialogButtonBox()
        self.create_button = buttons.addButton("Create enrollment code",
                                               QDialogButtonBox.ButtonRole.ActionRole)
        self.create_button.setObjectName("create_code_button")
        self.create_button.setProperty("role", "primary")
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.close_button.setObjectName("close_add_agent_button")
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.name_edit.textChanged.connect(self._update_enabled)
        self._update_enabled()

    @property
    def agent_name(self) -> str:
        return self.name_edit.text().strip()

    @property
    def command(self) -> str:
        return self._command

    def set_busy(self, busy: bool) -> None:
        self.name_edit.setEnabled(not busy and not self._command)
        self.create_button.setEnabled(not busy and bool(self.agent_name) and not self._command)

    def _update_enabled(self) -> None:
        self.set_busy(False)

    def show_code(self, tenant_url: str, code: EnrollmentCode) -> None:
        self._command = f"qp-agent enroll --tenant {tenant_url} --code {code.code}"
        self.command_field.setText(self._command)
        self.command_field.setCursorPosition(0)
        expires = friendly(code.expires_at, empty="soon")
        self.expiry_label.setText(
            f"The code works once and expires {expires}. It is shown only now: copy it before "
            "you close this window. Then start the agent with qp-agent run.")
        self.message.clear()
        self.result_box.setVisible(True)
        self.create_button.setVisible(False)
        self.close_button.setText("Done")
        self.set_busy(False)
        self.copy_button.setFocus()
        self.command_field.home(False)  # show the start of the command, not its end
        self.grow_to_fit()

    def grow_to_fit(self) -> None:
        """Make room for what was just shown (the result box and its wrapped sentence):
        a dialog keeps its size when a child appears, which would clip the last line."""
        layout = self.layout()
        layout.activate()
        width = self.width()
        height = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() \
            else layout.sizeHint().height()
        if height > self.height():
            self.resize(width, height)

    def forget(self) -> None:
        """Drop the code from memory and the screen."""
        self._command = ""
        self.command_field.clear()




SOURCE_CHOICES = (("local", "Local account"), ("openldap", "OpenLDAP"),
                  ("active_directory", "Active Directory"))
KIND_CHOICES = (("end_user", "End user"), ("service", "Service"),
                ("administrator", "Administrator"))


class AccountDialog(QDialog):
    """Add or edit an account no agent reports (e.g. a local account on a server).

    The page makes the tenant call; the dialog collects the fields. ``can_set_source``:
    only an administrator sets the source (and the customer) of an existing account.
    """

    def __init__(self, customers: Sequence[Customer], agents: Sequence[Agent],
                 account: Account | None = None, *, customer_id: int | None = None,
                 can_set_source: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("account_dialog")
        self.account = account
        title = "Edit account" if account else "Add an account"
        self.setWindowTitle(title)
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 16)
        layout.setSpacing(12)
        heading = QLabel(title)
        heading.setProperty("role", "heading")
        layout.addWidget(heading)
        intro = QLabel("For an account no agent reports, such as a local account. Accounts "
                       "in a synced directory come from the agent by themselves.")
        intro.setWordWrap(True)
        intro.setProperty("role", "muted")
        layout.addWidget(intro)
        form = QFormLayout()
        form.setHorizontalSpacing(18)
        self.customer_combo = QComboBox()
        self.customer_combo.setObjectName("account_customer")
        for customer in customers:
            self.customer_combo.addItem(customer.name, customer.id)
        wanted = account.customer_id if account else customer_id
        if wanted is not None:
            self.customer_combo.setCurrentIndex(max(self.customer_combo.findData(wanted), 0))
        self.customer_combo.setEnabled(account is None)
        form.addRow("Customer", self.customer_combo)
        self.name_edit = QLineEdit(account.display_name if account else "")
        self.name_edit.setObjectName("account_name")
        self.name_edit.setPlaceholderText("e.g. Backup service")
        form.addRow("Name", self.name_edit)
        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("account_kind")
        for value, label in KIND_CHOICES:
            self.kind_combo.addItem(label, value)
        if account:
            self.kind_combo.setCurrentIndex(max(self.kind_combo.findData(account.kind), 0))
        form.addRow("Kind", self.kind_combo)
        self.type_combo = QComboBox()
        self.type_combo.setObjectName("account_source_type")
        for value, label in SOURCE_CHOICES:
            self.type_combo.addItem(label, value)
        self.agent_combo = QComboBox()
        self.agent_combo.setObjectName("account_agent")
        self.agent_combo.addItem("No agent yet", None)
        for agent in agents:
            self.agent_combo.addItem(agent.name, agent.id)
        self.directory_edit = QLineEdit()
        self.directory_edit.setObjectName("account_directory")
        self.directory_edit.setPlaceholderText("the directory's name in the agent's config")
        self.identity_edit = QLineEdit()
        self.identity_edit.setObjectName("account_identity")
        self.identity_edit.setPlaceholderText("user name, or the DN in a directory")
        if account:
            src = account.source
            self.type_combo.setCurrentIndex(max(self.type_combo.findData(src.type), 0))
            if src.agent_id is not None:
                self.agent_combo.setCurrentIndex(max(self.agent_combo.findData(src.agent_id),
                                                     0))
            self.directory_edit.setText(src.directory)
            self.identity_edit.setText(src.identity)
        form.addRow("Source", self.type_combo)
        form.addRow("Agent", self.agent_combo)
        form.addRow("Directory", self.directory_edit)
        form.addRow("User", self.identity_edit)
        self._source_widgets = (self.type_combo, self.agent_combo, self.directory_edit,
                                self.identity_edit)
        if not can_set_source:
            for widget in self._source_widgets:
                widget.setEnabled(False)
                widget.setToolTip("Only an administrator can change an account\u2019s source.")
        layout.addLayout(form)
        self.message = Banner("account_message")
        layout.addWidget(self.message)
        buttons = QDialogButtonBox()
        self.save_button = buttons.addButton("Save" if account else "Add account",
                                             QDialogButtonBox.ButtonRole.AcceptRole)
        self.save_button.setObjectName("account_save_button")
        self.save_button.setProperty("role", "primary")
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.can_set_source = can_set_source
        self.name_edit.textChanged.connect(self._update_enabled)
        self.identity_edit.textChanged.connect(self._update_enabled)
        self._update_enabled()

    def _update_enabled(self) -> None:
        self.save_button.setEnabled(bool(self.name_edit.text().strip())
                                    and bool(self.identity_edit.text().strip())
                                    and self.customer_combo.currentData() is not None)

    def source(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type_combo.currentData(),
                                "identity": self.identity_edit.text().strip()}
        if self.agent_combo.currentData() is not None:
            body["agent_id"] = int(self.agent_combo.currentData())
        if self.directory_edit.text().strip():
            body["directory"] = self.directory_edit.text().strip()
        return body

    def changes(self) -> dict[str, Any]:
        """The PATCH body for an edit: only what changed (and the source only when allowed)."""
        assert self.account is not None
        body: dict[str, Any] = {}
        name = self.name_edit.text().strip()
        if name != self.account.display_name:
            body["display_name"] = name
        if self.kind_combo.currentData() != self.account.kind:
            body["kind"] = self.kind_combo.currentData()
        if self.can_set_source:
            src = self.account.source
            current = {"type": src.type, "identity": src.identity}
            if src.agent_id is not None:
                current["agent_id"] = src.agent_id
            if src.directory:
                current["directory"] = src.directory
            if self.source() != current:
                body["source"] = self.source()
        return body


class AutomatchResultDialog(QDialog):
    """What automatch paired, and on both sides what it could not pair and why."""

    def __init__(self, customer_name: str, result: AutomatchResult,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("automatch_result_dialog")
        self.setWindowTitle("Automatch")
        self.setMinimumSize(860, 440)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 16)
        layout.setSpacing(10)
        heading = QLabel(f"Automatch for {customer_name}")
        heading.setProperty("role", "heading")
        layout.addWidget(heading)
        paired = len(result.matched)
        summary = QLabel(
            (f"Paired {paired} account{'s' if paired != 1 else ''} with IT Glue passwords "
             "of the same username." if paired else "No new pairs.")
            + (" Match the rest by hand with Match\u2026 on the Accounts page."
               if result.unmatched_accounts else ""))
        summary.setObjectName("automatch_summary")
        summary.setWordWrap(True)
        layout.addWidget(summary)
        self.accounts_list = self._list(
            "automatch_unmatched_accounts", ["Account", "Why it was not paired"],
            [[a.display_name, a.reason] for a in result.unmatched_accounts])
        self.passwords_list = self._list(
            "automatch_unmatched_passwords", ["IT Glue password", "Username", "Why"],
            [[p.name, p.username, p.reason] for p in result.unmatched_passwords])
        for caption, widget, count in (
                ("Accounts without a password", self.accounts_list,
                 len(result.unmatched_accounts)),
                ("IT Glue passwords without an account", self.passwords_list,
                 len(result.unmatched_passwords))):
            label = QLabel(f"{caption} ({count})")
            label.setProperty("role", "field-label")
            layout.addWidget(label)
            layout.addWidget(widget, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    @staticmethod
    def _list(name: str, headers: list[str], rows: list[list[str]]) -> QTreeWidget:
        tree = QTreeWidget()
        tree.setObjectName(name)
        tree.setRootIsDecorated(False)
        tree.setHeaderLabels(headers)
        tree.setWordWrap(True)
        header = tree.header()
        header.setStretchLastSection(True)
        header.resizeSection(0, 220)
        if len(headers) == 3:
            header.resizeSection(1, 150)
        for row in rows:
            item = QTreeWidgetItem(row)
            for col, text in enumerate(row):
                item.setToolTip(col, text)
            tree.addTopLevelItem(item)
        if not rows:
            tree.addTopLevelItem(QTreeWidgetItem(["None"] + [""] * (len(headers) - 1)))
        return tree
