"""What the Accounts page does to one account or agent: Match, Unmatch, Reset again, Add /
Edit / Delete, Sync now, and Automatch's result. A mixin of
:class:`~qp_desktop.ui.accounts.page.AccountsPage`, which owns the widgets and the tenant
calls' busy state (``_run``)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDialog, QMessageBox

from qp_desktop.services.tenant_client import Account, Agent, Customer
from qp_desktop.ui.accounts.dialogs import AccountDialog, AutomatchResultDialog
from qp_desktop.ui.accounts.formatting import _plural
from qp_desktop.ui.accounts.match_dialog import MatchDialog
from qp_desktop.ui.accounts.model import SHOW_UNMATCHED, password_text
from qp_desktop.ui.events.failures import MATCH, OPEN_AGENT, FailureAdvice

# Seam for tests: (parent, title, question) -> whether the person confirmed.
Confirm = Any


def ask(parent: Any, title: str, question: str) -> bool:
    answer = QMessageBox.question(parent, title, question,
                                  QMessageBox.StandardButton.Yes
                                  | QMessageBox.StandardButton.Cancel,
                                  QMessageBox.StandardButton.Cancel)
    return answer == QMessageBox.StandardButton.Yes


class AccountActionsMixin:
    """Account and agent actions; see the module docstring."""

    client: Any
    banner: Any
    tasks: Any
    model: Any
    customers: list[Customer]
    agents: list[Agent]
    role: str | None
    match_dialog: MatchDialog | None
    account_dialog: AccountDialog | None
    automatch_dialog: AutomatchResultDialog | None
    confirm: Confirm

    _run: Any  # the page provides these three
    refresh: Any
    selected_account: Any

    def _account_name(self, account_id: int) -> str:
        account = self.model.by_id(account_id)
        return account.display_name if account else f"another account ({account_id})"

    # -- Match / Unmatch ----------------------------------------------------------------------

    def open_match_dialog(self, account: Account | None = None) -> MatchDialog | None:
        """Match…: the searchable list of the account's IT Glue passwords."""
        account = account or self.selected_account()
        if account is None:
            return None
        dialog = MatchDialog(self.client, account, self._account_name, self)  # type: ignore[arg-type]
        self.match_dialog = dialog

        def finished(result: int) -> None:
            if self.match_dialog is dialog:
                self.match_dialog = None
            if result == QDialog.DialogCode.Accepted and dialog.chosen is not None:
                self.tasks.start(self.match(account, dialog.chosen.id, dialog.chosen.name))
            dialog.deleteLater()
        dialog.finished.connect(finished)
        dialog.open()
        dialog.tasks.start(dialog.load())
        return dialog

    async def match(self, account: Account, password_id: str, password_name: str) -> bool:
        async def patch() -> None:
            updated = await self.client.update_account(account.id,
                                                       itglue_password_id=password_id)
            self.model.update_accounts([updated])
            name = updated.itglue_password_name or password_name
            self.banner.show_message("success", f"{account.display_name} now follows the IT "
                                     f"Glue password \u201c{name}\u201d.")
            await self.refresh(keep_banner=True)
        return await self._run(patch)

    def _unmatch_clicked(self) -> None:
        account = self.selected_account()
        if account is None or account.itglue_password_id is None:
            return
        if self.confirm(self, "Unmatch account",
                        f"Stop following \u201c{password_text(account)}\u201d for "
                        f"{account.display_name}? Changes to that IT Glue password will no "
                        "longer reach this account."):
            self.tasks.start(self.unmatch(account))

    async def unmatch(self, account: Account) -> bool:
        async def patch() -> None:
            updated = await self.client.update_account(account.id, itglue_password_id=None)
            self.model.update_accounts([updated])
            self.banner.show_message("info", f"{account.display_name} no longer follows an "
                                     "IT Glue password.")
            await self.refresh(keep_banner=True)
        return await self._run(patch)

    # -- Reset again --------------------------------------------------------------------------

    def _reset_clicked(self) -> None:
        account = self.selected_account()
        if account is not None:
            self.tasks.start(self.reset_again(account))

    async def reset_again(self, account: Account) -> bool:
        """Reset again from IT Glue: the pipeline runs with IT Glue's current value."""
        async def post() -> None:
            await self.client.reset_account(account.id)
            self.banner.show_message(
                "info", f"Resetting {account.display_name} with the current value in IT "
                "Glue. The Events page shows how it goes.")
        return await self._run(post)

    # -- Add / Edit / Delete ------------------------------------------------------------------

    def open_account_dialog(self, account: Account | None = None) -> AccountDialog:
        from qp_desktop.ui import roles
        dialog = AccountDialog(self.customers, self.agents, account,
                               customer_id=self.selected_customer_id(),  # type: ignore[attr-defined]
                               can_set_source=account is None
                               or roles.allows(self.role, roles.ADMIN),
                               parent=self)  # type: ignore[arg-type]
        self.account_dialog = dialog
        dialog.save_button.clicked.connect(lambda: self.tasks.start(self.save_account(dialog)))

        def finished() -> None:
            if self.account_dialog is dialog:
                self.account_dialog = None
            dialog.deleteLater()
        dialog.finished.connect(finished)
        dialog.open()
        return dialog

    async def save_account(self, dialog: AccountDialog) -> bool:
        async def post() -> None:
            if dialog.account is None:
                saved = await self.client.create_account(
                    int(dialog.customer_combo.currentData()), dialog.kind_combo.currentData(),
                    dialog.name_edit.text().strip(), dialog.source())
                text = f"Added {saved.display_name}."
            else:
                changes = dialog.changes()
                saved = (await self.client.update_account(dialog.account.id, **changes)
                         if changes else dialog.account)
                text = f"Saved {saved.display_name}."
            dialog.accept()
            self.banner.show_message("success", text)
            await self.refresh(keep_banner=True)
        return await self._run(post, dialog.message)

    def _edit_clicked(self) -> None:
        account = self.selected_account()
        if account is not None:
            self.open_account_dialog(account)

    def _delete_clicked(self) -> None:
        account = self.selected_account()
        if account is None:
            return
        if self.confirm(self, "Delete account",
                        f"Delete {account.display_name}? QP stops resetting it; the account "
                        "itself is not touched."):
            self.tasks.start(self.delete_account(account))

    async def delete_account(self, account: Account) -> bool:
        async def delete() -> None:
            await self.client.delete_account(account.id)
            self.banner.show_message("info", f"Deleted {account.display_name}.")
            await self.refresh(keep_banner=True)
        return await self._run(delete)

    # -- agents and automatch -----------------------------------------------------------------

    async def sync_agent(self, agent: Agent) -> bool:
        """Sync now: the agent reports its directories' accounts at once."""
        async def post() -> None:
            await self.client.sync_agent(agent.id)
            self.banner.show_message("info", f"Asked {agent.name} to report its directories "
                                     "now. New accounts appear here when it has.")
        return await self._run(post)

    async def automatch(self, customer: Customer) -> bool:
        async def post() -> None:
            result = await self.client.automatch_report(customer.id)
            self.model.update_accounts(result.matched)
            if result.matched:
                text = (f"Matched {_plural(len(result.matched), 'account')} for "
                        f"{customer.name}.")
                kind = "success"
            else:
                text = (f"No new matches for {customer.name}: no unmatched account has the "
                        "same username as exactly one of its IT Glue passwords.")
                kind = "info"
            self.banner.show_message(kind, text)
            if result.unmatched_accounts or result.unmatched_passwords:
                dialog = AutomatchResultDialog(customer.name, result, self)  # type: ignore[arg-type]
                self.automatch_dialog = dialog
                dialog.finished.connect(dialog.deleteLater)
                dialog.open()
            await self.refresh(keep_banner=True)
        return await self._run(post)

    # -- entry points from other pages --------------------------------------------------------

    def show_agent(self, agent_id: int) -> None:
        """Open agent: the accounts of that agent."""
        self.set_filters(agent_id=agent_id)  # type: ignore[attr-defined]

    def show_unmatched(self, customer_id: int | None = None) -> None:
        """The accounts still without an IT Glue password (of one customer, if known)."""
        self.set_filters(customer_id=customer_id, show=SHOW_UNMATCHED)  # type: ignore[attr-defined]

    async def fix_failure(self, advice: FailureAdvice) -> None:
        """The Events page's fixing action for a failed reset, done here: Match account…
        opens the Match dialog for the event's account (or, with no account, shows the
        unmatched accounts to choose from); Open agent filters to the event's agent."""
        await self.refresh()
        if advice.action == OPEN_AGENT and advice.agent_id is not None:
            self.show_agent(advice.agent_id)
            return
        if advice.action != MATCH:
            return
        account = self.model.by_id(advice.account_id) if advice.account_id else None
        if account is not None and account.state != "gone":
            self.select_account(account.id)  # type: ignore[attr-defined]
            self.open_match_dialog(account)
            return
        self.show_unmatched()
        self.banner.show_message("info", "Choose the account that should follow this IT "
                                 "Glue password, then Match\u2026 and Retry on the Events page.")
