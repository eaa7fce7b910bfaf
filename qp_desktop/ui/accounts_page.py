"""The names the main window, the layout check and the screenshots import the Accounts page
by."""

from qp_desktop.ui.accounts.dialogs import AddAgentDialog
from qp_desktop.ui.accounts.model import AccountsFilter, AccountsTableModel
from qp_desktop.ui.accounts.page import AccountsPage

__all__ = ["AccountsFilter", "AccountsPage", "AccountsTableModel", "AddAgentDialog"]
