"""Reset pipeline → Accounts: each account, the IT Glue password it follows, its last reset,
and the agents that apply resets (with "Add agent…" for a new enrollment code)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QLabel,
    QPushButton,
    QWidget,
)

from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.tenant_client import (
    Account,
    Agent,
    Customer,
    TenantClient,
)
from qp_desktop.ui import roles
from qp_desktop.ui.accounts.actions import AccountActionsMixin, ask
from qp_desktop.ui.accounts.agent_row import agent_row
from qp_desktop.ui.accounts.dialogs import AccountDialog, AddAgentDialog, AutomatchResultDialog
from qp_desktop.ui.accounts.formatting import (
    _plural,
)
from qp_desktop.ui.accounts.layout import AccountsLayout
from qp_desktop.ui.accounts.match_dialog import MatchDialog
from qp_desktop.ui.accounts.model import (
    ALL_AGENTS,
    ALL_CUSTOMERS,
    AccountsFilter,
    AccountsTableModel,
)
from qp_desktop.ui.m365_dialog import Microsoft365Dialog
from qp_desktop.ui.page import Page

M = AccountsTableModel


class AccountsPage(AccountsLayout, AccountActionsMixin, Page):
    """The accounts the tenant resets, their IT Glue match, and the agents.

    Every call runs in the background with a busy bar; failures show the tenant's sentence.
    """

    def __init__(self, client: TenantClient, clipboard: SecretClipboard,
                 parent: QWidget | None = None):
        super().__init__("accounts_page", parent)
        self.client = client
        self.clipboard = clipboard
        self.customers: list[Customer] = []
        self.agents: list[Agent] = []
        self.loaded = False
        self.add_agent_dialog: AddAgentDialog | None = None
        self.role: str | None = None  # the signed-in user's; None: not known, nothing gated
        self.m365_dialog: Microsoft365Dialog | None = None
        self.match_dialog: MatchDialog | None = None
        self.account_dialog: AccountDialog | None = None
        self.automatch_dialog: AutomatchResultDialog | None = None
        self.confirm = ask  # (parent, title, question) -> confirmed; a seam for tests
        self.sync_buttons: list[QPushButton] = []  # Sync now, one per agent row
        self.model = AccountsTableModel(self)
        self.proxy = AccountsFilter(self)
        self.proxy.setSourceModel(self.model)
        self._build()
        self._render()

    # -- layout -------------------------------------------------------------------------------

    def _render(self) -> None:
        self._render_customers()
        self._render_agent_filter()
        self._render_agents()
        self._render_table_state()
        self._update_enabled()

    def _render_customers(self) -> None:
        current = self.selected_customer_id()
        combo = self.customer_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("All customers", ALL_CUSTOMERS)
        for customer in self.customers:
            linked = "" if customer.itglue_organization_id else " (not in IT Glue)"
            combo.addItem(customer.name + linked, customer.id)
        index = combo.findData(current)
        combo.setCurrentIndex(max(index, 0))
        combo.blockSignals(False)
        self.proxy.set_customer(self.selected_customer_id())

    def _render_agents(self) -> None:
        self.sync_buttons = []
        while self.agents_grid.rowCount():
            self.agents_grid.removeRow(0)
        if not self.agents:
            empty = QLabel("No agents yet. Add one, run the command it gives you on a server "
                           "that can reach the directory, then give accounts its name.")
            empty.setObjectName("agents_empty")
            empty.setWordWrap(True)
            self.agents_grid.addRow(empty)
            return
        for i, agent in enumerate(self.agents):
            name, right, sync = agent_row(
                i, agent, lambda a=agent: self.tasks.start(self.sync_agent(a)))
            self.sync_buttons.append(sync)
            self.agents_grid.addRow(name, right)

    def _render_agent_filter(self) -> None:
        combo = self.agent_combo
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("All agents", ALL_AGENTS)
        for agent in self.agents:
            combo.addItem(agent.name, agent.id)
        combo.setCurrentIndex(max(combo.findData(current), 0))
        combo.blockSignals(False)
        self.proxy.set_agent(int(combo.currentData()))

    def set_filters(self, *, customer_id: int | None = None, agent_id: int | None = None,
                    show: str | None = None) -> None:
        """Show one customer's / one agent's accounts (``None`` leaves a filter alone)."""
        for combo, value in ((self.customer_combo, customer_id), (self.agent_combo, agent_id),
                             (self.show_combo, show)):
            if value is not None:
                index = combo.findData(value)
                if index < 0 and combo is self.agent_combo:
                    combo.addItem(f"Agent {value}", value)  # not loaded yet
                    index = combo.count() - 1
                combo.setCurrentIndex(max(index, 0))
        self._filters_changed()

    def _filters_changed(self) -> None:
        self.proxy.set_customer(self.selected_customer_id())
        self.proxy.set_agent(int(self.agent_combo.currentData()))
        self.proxy.set_kind(str(self.kind_combo.currentData() or ""))
        self.proxy.set_show(str(self.show_combo.currentData()))
        self._render_table_state()
        self._update_enabled()

    def selected_account(self) -> Account | None:
        index = self.table.currentIndex()
        if not index.isValid() or not self.table.selectionModel().hasSelection():
            return None
        return self.model.account(self.proxy.mapToSource(index).row())

    def select_account(self, account_id: int) -> bool:
        """Select the shown row of ``account_id``; True when it is shown."""
        for row in range(self.proxy.rowCount()):
            if self._proxy_account(row).id == account_id:
                self.table.selectRow(row)
                return True
        return False

    def _render_table_state(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        if total == 0:
            if not self.loaded:
                text = "Loading accounts\u2026"
            elif not self.customers:
                text = ("No accounts yet. Import customers from IT Glue first, then add each "
                        "customer\u2019s accounts with their source and run Automatch to pair "
                        "them with IT Glue passwords.")
            else:
                text = ("No accounts yet. Add the customers\u2019 accounts with their source "
                        "(an agent, a directory and the user\u2019s name), then run Automatch "
                        "to pair them with IT Glue passwords.")
        elif shown == 0:
            text = ("No accounts match these filters. Choose another customer, agent or "
                    "kind, show all accounts, or clear the search.")
        else:
            text = ""
        self.empty_label.setText(text)
        self.stack.setCurrentWidget(self.empty_label if text else self.table)
        matched = sum(1 for row in range(self.proxy.rowCount())
                      if self._proxy_account(row).itglue_password_id)
        if shown:
            unmatched = shown - matched
            self.summary.setText(f"{_plural(shown, 'account')} \u00b7 {matched} matched"
                                 + (f" \u00b7 {unmatched} not matched" if unmatched else ""))
        else:
            self.summary.setText("")
        self.summary.setVisible(bool(shown))

    def _proxy_account(self, row: int) -> Account:
        return self.model.account(self.proxy.mapToSource(self.proxy.index(row, 0)).row())

    def selected_customer_id(self) -> int:
        data = self.customer_combo.currentData()
        return ALL_CUSTOMERS if data is None else int(data)

    def _selected_customer(self) -> Customer | None:
        wanted = self.selected_customer_id()
        return next((c for c in self.customers if c.id == wanted), None)

    def _customer_changed(self) -> None:
        self.proxy.set_customer(self.selected_customer_id())
        self._render_table_state()
        self._update_enabled()

    def _search_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._render_table_state()

    # -- busy state ---------------------------------------------------------------------------

    def _update_enabled(self) -> None:
        if self._closed:
            return
        busy = self._busy > 0
        self.busy_bar.setVisible(busy)
        for widget in (self.refresh_button, self.import_button, self.add_agent_button):
            widget.setEnabled(not busy)
        customer = self._selected_customer()
        can_match = customer is not None and bool(customer.itglue_organization_id)
        self.automatch_button.setEnabled(not busy and can_match)
        self.m365_button.setEnabled(not busy and customer is not None)
        # The primary look only when it can act: a disabled primary button reads as enabled
        # in the dark palette.
        role = "primary" if can_match else ""
        if self.automatch_button.property("role") != role:
            self.automatch_button.setProperty("role", role)
            self.automatch_button.style().unpolish(self.automatch_button)
            self.automatch_button.style().polish(self.automatch_button)
        if customer is None:
            self.automatch_button.setToolTip("Choose a customer to match its accounts to IT "
                                             "Glue passwords by username.")
        elif not customer.itglue_organization_id:
            self.automatch_button.setToolTip(f"{customer.name} is not linked to an IT Glue "
                                             "organization: import customers from IT Glue.")
        else:
            self.automatch_button.setToolTip(f"Match {customer.name}\u2019s unmatched accounts "
                                             "to IT Glue passwords with the same username.")
        if self.add_agent_dialog is not None:
            self.add_agent_dialog.set_busy(busy)
        roles.gate(self.add_agent_button, self.role, roles.ADMIN, "add an agent")
        roles.gate(self.import_button, self.role, roles.TECHNICIAN,
                   "import customers from IT Glue")
        roles.gate(self.automatch_button, self.role, roles.TECHNICIAN,
                   "match accounts to IT Glue passwords")
        self._update_account_actions(busy)
        for sync in self.sync_buttons:
            sync.setEnabled(not busy)
            roles.gate(sync, self.role, roles.TECHNICIAN, "sync an agent")

    def _update_account_actions(self, busy: bool) -> None:
        account = self.selected_account()
        chosen = account is not None and not busy
        matched = account is not None and account.itglue_password_id is not None
        gone = account is not None and account.state == "gone"
        synced = account is not None and account.reported_by_agent
        self.match_button.setEnabled(chosen and not gone)
        self.match_button.setText("Match again\u2026" if matched else "Match\u2026")
        self.unmatch_button.setEnabled(chosen and matched)
        self.reset_button.setEnabled(chosen and matched and not gone)
        self.reset_button.setToolTip(
            "Write IT Glue\u2019s current value to this account now." if matched and not gone
            else "Match the account to an IT Glue password first." if not gone
            else "The account is gone from its directory.")
        self.add_account_button.setEnabled(not busy and bool(self.customers))
        self.edit_account_button.setEnabled(chosen and not synced)
        self.delete_account_button.setEnabled(chosen and not synced)
        hand = ("Change the account\u2019s name, kind or source." if not synced else
                "Its agent reports this account: it changes in the directory, not here.")
        self.edit_account_button.setToolTip(hand)
        self.delete_account_button.setToolTip(
            "Stop resetting this account (it is not touched)." if not synced else hand)
        roles.gate(self.match_button, self.role, roles.TECHNICIAN,
                   "match accounts to IT Glue passwords")
        roles.gate(self.unmatch_button, self.role, roles.TECHNICIAN, "unmatch accounts")
        roles.gate(self.reset_button, self.role, roles.TECHNICIAN, "reset an account again")
        roles.gate(self.add_account_button, self.role, roles.ADMIN, "add accounts")
        roles.gate(self.edit_account_button, self.role, roles.TECHNICIAN, "edit accounts")
        roles.gate(self.delete_account_button, self.role, roles.ADMIN, "delete accounts")

    def set_role(self, role: str | None) -> None:
        """Disable what the signed-in user's role may not do (see qp_desktop.ui.roles)."""
        self.role = role
        self._render_agents()
        self._update_enabled()


    # -- actions ------------------------------------------------------------------------------

    def activate(self) -> None:
        """Refresh from the tenant (called when the page is shown)."""
        self.tasks.start(self.refresh())

    async def refresh(self, keep_banner: bool = False) -> bool:
        async def load() -> None:
            customers = await self.client.list_customers()
            accounts = await self.client.list_accounts()
            agents = await self.client.list_agents()
            self.customers, self.agents = customers, agents
            self.model.set_names(customers, agents)
            self.model.set_accounts(accounts)
            self.loaded = True
            if not keep_banner:
                self.banner.clear()
            self._render()
        return await self._run(load)

    def _import_clicked(self) -> None:
        self.tasks.start(self.import_customers())

    async def import_customers(self) -> bool:
        async def post() -> None:
            result = await self.client.import_itglue_customers()
            if result.created or result.linked:
                parts = []
                if result.created:
                    parts.append(f"added {_plural(result.created, 'customer')}")
                if result.linked:
                    parts.append(f"linked {_plural(result.linked, 'existing customer')}")
                text = "Imported from IT Glue: " + " and ".join(parts) + "."
            else:
                text = "Every IT Glue organization already has a customer here."
            self.banner.show_message("success", text)
            await self.refresh(keep_banner=True)
        return await self._run(post)

    def _automatch_clicked(self) -> None:
        customer = self._selected_customer()
        if customer is not None:
            self.tasks.start(self.automatch(customer))

    def _m365_clicked(self) -> None:
        customer = self._selected_customer()
        if customer is None:
            return
        dialog = Microsoft365Dialog(self.client, self.clipboard, customer, self,
                                    user_role=self.role)
        self.m365_dialog = dialog
        dialog.changed.connect(lambda: self.tasks.start(self.refresh(keep_banner=True)))

        def finished() -> None:
            if self.m365_dialog is dialog:
                self.m365_dialog = None
            dialog.deleteLater()
        dialog.finished.connect(finished)
        dialog.open()
        dialog.tasks.start(dialog.load())

    def _add_agent_clicked(self) -> None:
        dialog = AddAgentDialog(self.clipboard, self)
        self.add_agent_dialog = dialog
        dialog.create_button.clicked.connect(self._create_code_clicked)
        dialog.name_edit.returnPressed.connect(self._create_code_clicked)

        def finished() -> None:
            code_shown = bool(dialog.command)
            dialog.forget()
            if self.add_agent_dialog is dialog:
                self.add_agent_dialog = None
            dialog.deleteLater()
            if code_shown and not self._closed:
                self.activate()  # the new agent shows up once it has enrolled
        dialog.finished.connect(finished)
        dialog.open()

    def _create_code_clicked(self) -> None:
        dialog = self.add_agent_dialog
        if dialog is not None and dialog.agent_name and not dialog.command:
            self.tasks.start(self.create_enrollment_code(dialog))

    async def create_enrollment_code(self, dialog: AddAgentDialog) -> bool:
        async def post() -> None:
            code = await self.client.create_enrollment_code(dialog.agent_name)
            if self.add_agent_dialog is dialog:
                dialog.show_code(self.client.base_url, code)
        return await self._run(post, dialog.message)

    def shutdown(self) -> None:
        """The window is going away: stop background work and drop any shown code."""
        super().shutdown()
        self.forget_secrets()
        if self.m365_dialog is not None:
            self.m365_dialog.reject()

    def forget_secrets(self) -> None:
        """Sign-out: drop an enrollment code the add-agent dialog shows."""
        if self.add_agent_dialog is not None:
            self.add_agent_dialog.forget()


