"""The Accounts page's table model and its filter: plain data, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor, QFont

from qp_desktop.services.tenant_client import (
    Account,
    Agent,
    Customer,
)
from qp_desktop.ui.accounts.formatting import (
    KIND_LABELS,
    _colours,
    result_text,
    short_time,
    source_text,
)
from qp_desktop.ui.timefmt import friendly

ALL_CUSTOMERS = -1
ALL_AGENTS = -1
SORT_ROLE = Qt.ItemDataRole.UserRole + 1

# The Show filter: every account, or only those matched / not matched / gone.
SHOW_ALL, SHOW_MATCHED, SHOW_UNMATCHED, SHOW_GONE = "all", "matched", "unmatched", "gone"
SHOW_CHOICES = ((SHOW_ALL, "All accounts"), (SHOW_MATCHED, "Matched"),
                (SHOW_UNMATCHED, "Not matched"), (SHOW_GONE, "Gone from directory"))


def password_text(account: Account) -> str:
    """The IT Glue password an account follows, by name (never its id)."""
    if account.itglue_password_id is None:
        return "Not matched"
    return account.itglue_password_name or "Matched"


def account_text(account: Account) -> str:
    """The account's name, marked when its directory reports it disabled."""
    return account.display_name + (" (disabled)" if account.enabled is False else "")


def gone_tooltip(account: Account, now: datetime | None = None) -> str:
    when = (f"; last reported {friendly(account.last_reported_at, now)}"
            if account.last_reported_at else "")
    return (f"Gone from its directory{when}. A change in IT Glue fails until it is back or "
            "matched to another account.")


class AccountsTableModel(QAbstractTableModel):
    """Accounts with their IT Glue match and last reset. Pure data: no I/O.

    :meth:`set_accounts` updates rows in place (by account id), removes the gone and appends
    the new, so a refresh keeps the selection and the scroll position.
    """

    ACCOUNT, KIND, CUSTOMER, SOURCE, PASSWORD, LAST_RESET, RESULT = range(7)
    HEADERS = ("Account", "Kind", "Customer", "Source", "IT Glue password", "Last reset",
               "Result")

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._rows: list[Account] = []
        self._customers: dict[int, str] = {}
        self._agents: dict[int, str] = {}
        self.now: datetime | None = None  # fixed "now" for tests; None means the clock

    # -- data in ------------------------------------------------------------------------------

    def set_names(self, customers: Sequence[Customer], agents: Sequence[Agent]) -> None:
        self._customers = {c.id: c.name for c in customers}
        self._agents = {a.id: a.name for a in agents}
        if self._rows:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._rows) - 1, len(self.HEADERS) - 1))

    def set_accounts(self, accounts: Sequence[Account]) -> None:
        wanted = {a.id: a for a in accounts}
        for row in range(len(self._rows) - 1, -1, -1):
            if self._rows[row].id not in wanted:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
        self.update_accounts([a for a in accounts if any(r.id == a.id for r in self._rows)])
        known = {r.id for r in self._rows}
        new = [a for a in accounts if a.id not in known]
        if new:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._rows.extend(new)
            self.endInsertRows()

    def update_accounts(self, accounts: Sequence[Account]) -> None:
        """Replace the rows of these accounts (e.g. the ones automatch just matched)."""
        positions = {r.id: i for i, r in enumerate(self._rows)}
        for account in accounts:
            row = positions.get(account.id)
            if row is not None and self._rows[row] != account:
                self._rows[row] = account
                self.dataChanged.emit(self.index(row, 0),
                                      self.index(row, len(self.HEADERS) - 1))

    def by_id(self, account_id: int) -> Account | None:
        return next((a for a in self._rows if a.id == account_id), None)

    def account(self, row: int) -> Account:
        return self._rows[row]

    def customer_name(self, customer_id: int) -> str:
        return self._customers.get(customer_id, f"Customer {customer_id}")

    # -- Qt model -----------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # The tool tip names a column whose header is elided in a narrow window.
        if orientation == Qt.Orientation.Horizontal and role in (
                Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self.HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        account, col = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(account, col)
        if role == SORT_ROLE:
            if col == self.LAST_RESET:
                return account.last_reset_at.timestamp() if account.last_reset_at else 0.0
            if col == self.PASSWORD:
                return (password_text(account) if account.itglue_password_id else "").casefold()
            return (self._display(account, col) or "").casefold()
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(account, col)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(account, col)
        if role == Qt.ItemDataRole.FontRole:
            if col == self.ACCOUNT:
                font = QFont()
                font.setWeight(QFont.Weight.DemiBold)
                return font
            if col == self.PASSWORD and account.itglue_password_id is None:
                font = QFont()
                font.setItalic(True)
                return font
        return None

    def _display(self, account: Account, col: int) -> str:
        if col == self.ACCOUNT:
            return account_text(account)
        if col == self.KIND:
            return KIND_LABELS.get(account.kind, account.kind.replace("_", " ").title())
        if col == self.CUSTOMER:
            return self.customer_name(account.customer_id)
        if col == self.SOURCE:
            return source_text(account)
        if col == self.PASSWORD:
            return password_text(account)
        if col == self.LAST_RESET:
            return short_time(account.last_reset_at, self.now)
        if col == self.RESULT:
            return result_text(account.last_result)[0]
        return ""

    def _tooltip(self, account: Account, col: int) -> str | None:
        if account.state == "gone" and col in (self.ACCOUNT, self.SOURCE):
            return gone_tooltip(account, self.now)
        if col == self.ACCOUNT and account.enabled is False:
            return "Disabled in its directory: resets still apply, but nobody can sign in."
        if col == self.SOURCE:
            agent = account.source.agent_id
            where = (f" on agent {self._agents.get(agent, f'#{agent}')}"
                     if agent is not None else " (no agent assigned yet)")
            return source_text(account) + where
        if col == self.PASSWORD:
            if account.itglue_password_id and not account.itglue_password_name:
                return ("Follows an IT Glue password whose name the tenant has not read yet "
                        "(IT Glue did not answer when it was matched).")
            if account.itglue_password_id:
                return f"Follows the IT Glue password \u201c{password_text(account)}\u201d"
            return ("No IT Glue password yet: run Automatch for this customer, or match it "
                    "by hand.")
        if col == self.LAST_RESET and account.last_reset_at:
            by = f" by {account.last_reset_by}" if account.last_reset_by else ""
            return f"Last reset {friendly(account.last_reset_at, self.now)}{by}"
        if col == self.RESULT and account.last_result:
            return result_text(account.last_result)[0]
        return None

    def _foreground(self, account: Account, col: int) -> QColor | None:
        c = _colours()
        if account.state == "gone" and col != self.RESULT:
            return QColor(c.muted)
        if col == self.PASSWORD and account.itglue_password_id is None:
            return QColor(c.warn_fg)
        if col == self.RESULT:
            kind = result_text(account.last_result)[1]
            return QColor({"ok": c.ok_fg, "error": c.error_fg}.get(kind, c.muted))
        if col == self.LAST_RESET and account.last_reset_at is None:
            return QColor(c.muted)
        return None


class AccountsFilter(QSortFilterProxyModel):
    """Shows the accounts that pass the customer, agent, kind and Show filters and whose
    text contains the search."""

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.customer_id = ALL_CUSTOMERS
        self.agent_id = ALL_AGENTS
        self.kind = ""  # "" for every kind
        self.show = SHOW_ALL
        self.text = ""
        self.setSortRole(SORT_ROLE)

    def set_customer(self, customer_id: int) -> None:
        self.beginFilterChange()
        self.customer_id = customer_id
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_agent(self, agent_id: int) -> None:
        self.beginFilterChange()
        self.agent_id = agent_id
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_kind(self, kind: str) -> None:
        self.beginFilterChange()
        self.kind = kind
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_show(self, show: str) -> None:
        self.beginFilterChange()
        self.show = show
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def accepts(self, account: Account) -> bool:
        """Whether the customer, agent, kind and Show filters let ``account`` through."""
        if self.customer_id != ALL_CUSTOMERS and account.customer_id != self.customer_id:
            return False
        if self.agent_id != ALL_AGENTS and account.source.agent_id != self.agent_id:
            return False
        if self.kind and account.kind != self.kind:
            return False
        if self.show == SHOW_GONE:
            return account.state == "gone"
        if self.show == SHOW_MATCHED:
            return account.itglue_password_id is not None
        if self.show == SHOW_UNMATCHED:
            return account.itglue_password_id is None
        return True

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self.text = text.strip().casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int,  # noqa: N802
                         source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        assert isinstance(model, AccountsTableModel)
        account = model.account(source_row)
        if not self.accepts(account):
            return False
        if not self.text:
            return True
        return any(self.text in (model._display(account, col) or "").casefold()
                   for col in range(len(model.HEADERS)))


