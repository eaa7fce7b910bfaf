"""Reset pipeline → Accounts: each account, the IT Glue password it follows, its last reset,
and the agents that apply resets (with "Add agent…" for a new enrollment code)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.tenant_client import (
    Account,
    Agent,
    Customer,
    EnrollmentCode,
    TenantClient,
)
from qp_desktop.ui import roles
from qp_desktop.ui.m365_dialog import Microsoft365Dialog, link_button_for
from qp_desktop.ui.page import Page
from qp_desktop.ui.theme import DARK, LIGHT, Colours, monospace_font
from qp_desktop.ui.timefmt import friendly, relative
from qp_desktop.ui.widgets import Banner, CopyButton, FittedTable

log = logging.getLogger(__name__)

DASH = "\u2014"
KIND_LABELS = {"administrator": "Administrator", "service": "Service", "end_user": "End user"}
SOURCE_LABELS = {"active_directory": "Active Directory", "openldap": "OpenLDAP",
                 "local": "Local account", "entra_id": "Microsoft 365"}
ALL_CUSTOMERS = -1
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def _colours() -> Colours:
    """The theme's colours for the palette in use (light or dark)."""
    window = QGuiApplication.palette().color(QPalette.ColorRole.Window)
    return DARK if window.lightness() < 128 else LIGHT


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one}" if n == 1 else f"{n} {many or one + 's'}"


def source_text(account: Account) -> str:
    """``Active Directory · corp-ad · jdoe``: the source type, directory and identity."""
    parts = [SOURCE_LABELS.get(account.source.type or "", account.source.type or "Unknown")]
    if account.source.directory:
        parts.append(account.source.directory)
    if account.source.identity:
        parts.append(account.source.identity)
    if account.source.on_premises_sync:
        parts.append("synced from on-premises AD")
    if account.state == "gone":
        parts.append("gone from its source")
    return " \u00b7 ".join(parts)


def short_time(when: datetime | None, now: datetime | None = None, empty: str = "Never"
               ) -> str:
    """A compact local time for a table cell: ``Today 09:38``, ``3 Jun 14:05``,
    ``3 Jun 2025, 14:05`` (another year)."""
    if when is None:
        return empty
    local = when.astimezone()
    today = (now or datetime.now(UTC)).astimezone()
    if local.date() == today.date():
        return f"Today {local:%H:%M}"
    day = local.strftime("%d %b").lstrip("0")
    if local.year != today.year:
        return f"{day} {local.year}, {local:%H:%M}"
    return f"{day} {local:%H:%M}"


def result_text(result: str | None) -> tuple[str, str]:
    """The last result as shown, and its kind: ``ok``, ``error`` or ``none``."""
    if not result:
        return DASH, "none"
    if result == "succeeded":
        return "Succeeded", "ok"
    if result.startswith("failed"):
        reason = result.partition(":")[2].strip()
        return (f"Failed: {reason}" if reason else "Failed"), "error"
    return result[:1].upper() + result[1:], "none"


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
                return int(account.itglue_password_id or 0)
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
            return account.display_name
        if col == self.KIND:
            return KIND_LABELS.get(account.kind, account.kind.replace("_", " ").title())
        if col == self.CUSTOMER:
            return self.customer_name(account.customer_id)
        if col == self.SOURCE:
            return source_text(account)
        if col == self.PASSWORD:
            return (f"#{account.itglue_password_id}" if account.itglue_password_id
                    else "Not matched")
        if col == self.LAST_RESET:
            return short_time(account.last_reset_at, self.now)
        if col == self.RESULT:
            return result_text(account.last_result)[0]
        return ""

    def _tooltip(self, account: Account, col: int) -> str | None:
        if col == self.SOURCE:
            agent = account.source.agent_id
            where = (f" on agent {self._agents.get(agent, f'#{agent}')}"
                     if agent is not None else " (no agent assigned yet)")
            return source_text(account) + where
        if col == self.PASSWORD:
            if account.itglue_password_id:
                return f"Follows IT Glue password {account.itglue_password_id}"
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
        if col == self.PASSWORD and account.itglue_password_id is None:
            return QColor(c.warn_fg)
        if col == self.RESULT:
            kind = result_text(account.last_result)[1]
            return QColor({"ok": c.ok_fg, "error": c.error_fg}.get(kind, c.muted))
        if col == self.LAST_RESET and account.last_reset_at is None:
            return QColor(c.muted)
        return None


class AccountsFilter(QSortFilterProxyModel):
    """Shows the accounts of one customer (or all) whose text contains the filter."""

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.customer_id = ALL_CUSTOMERS
        self.text = ""
        self.setSortRole(SORT_ROLE)

    def set_customer(self, customer_id: int) -> None:
        self.beginFilterChange()
        self.customer_id = customer_id
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self.text = text.strip().casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int,  # noqa: N802
                         source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        assert isinstance(model, AccountsTableModel)
        account = model.account(source_row)
        if self.customer_id != ALL_CUSTOMERS and account.customer_id != self.customer_id:
            return False
        if not self.text:
            return True
        return any(self.text in (model._display(account, col) or "").casefold()
                   for col in range(len(model.HEADERS)))


def agent_status_text(agent: Agent, now: datetime | None = None) -> str:
    """``Online · seen just now`` or ``Offline since 3 Jun 2026, 09:12 (2 hours ago)``."""
    if agent.status == "online":
        seen = relative(agent.last_seen_at, now) if agent.last_seen_at else "just now"
        return f"Online \u00b7 seen {seen}"
    if agent.last_seen_at is None:
        return "Offline \u00b7 never connected"
    return f"Offline since {friendly(agent.last_seen_at, now)}"


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


M = AccountsTableModel


class AccountsPage(Page):
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
        self.model = AccountsTableModel(self)
        self.proxy = AccountsFilter(self)
        self.proxy.setSourceModel(self.model)
        self._build()
        self._render()

    # -- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(28, 22, 28, 28)
        root.setSpacing(14)

        self.build_header(root, "Accounts",
                          "The accounts the tenant resets, the IT Glue password each one "
                          "follows, and how its last reset went.", wrap_subtitle=True,
                          refresh="accounts_refresh_button", busy="accounts_busy",
                          banner="accounts_banner")

        box = QFrame()
        box.setObjectName("accounts_box")
        box.setProperty("role", "card")
        layout = QVBoxLayout(box)
        layout.setContentsMargins(14, 14, 14, 14)
        layout.setSpacing(10)
        toolbar = QHBoxLayout()
        toolbar.setSpacing(8)
        self.customer_combo = QComboBox()
        self.customer_combo.setObjectName("customer_filter")
        self.customer_combo.setAccessibleName("Customer")
        self.customer_combo.setMinimumContentsLength(14)
        self.customer_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.customer_combo.currentIndexChanged.connect(self._customer_changed)
        toolbar.addWidget(self.customer_combo)
        self.search = QLineEdit()
        self.search.setObjectName("account_filter")
        self.search.setPlaceholderText("Filter by name, source or password\u2026")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(140)
        self.search.textChanged.connect(self._search_changed)
        toolbar.addWidget(self.search, 1)
        self.import_button = QPushButton("Import customers from IT Glue")
        self.import_button.setObjectName("import_customers_button")
        self.import_button.setToolTip("Create a customer for every IT Glue organization (or "
                                      "link one with the same name). Safe to repeat.")
        self.import_button.clicked.connect(self._import_clicked)
        toolbar.addWidget(self.import_button)
        self.automatch_button = QPushButton("Automatch")
        self.automatch_button.setObjectName("automatch_button")
        self.automatch_button.setProperty("role", "primary")
        self.automatch_button.clicked.connect(self._automatch_clicked)
        toolbar.addWidget(self.automatch_button)
        layout.addLayout(toolbar)

        summary_row = QHBoxLayout()
        self.summary = QLabel()
        self.summary.setObjectName("accounts_summary")
        self.summary.setProperty("role", "muted")
        summary_row.setSpacing(16)
        summary_row.addWidget(self.summary)
        self.m365_button = link_button_for(self)
        self.m365_button.clicked.connect(self._m365_clicked)
        summary_row.addWidget(self.m365_button)
        summary_row.addStretch(1)
        layout.addLayout(summary_row)

        self.stack = QStackedWidget()
        self.table = FittedTable()
        self.table.setObjectName("accounts_table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(AccountsTableModel.ACCOUNT, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(30)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(70)
        header.setSectionResizeMode(M.SOURCE, QHeaderView.ResizeMode.Stretch)
        metrics = self.table.fontMetrics()
        self.table.set_column_widths(
            {M.ACCOUNT: 200, M.KIND: metrics.horizontalAdvance("Service") + 28,
             M.CUSTOMER: metrics.horizontalAdvance("Northwind Traders") + 28,
             M.SOURCE: 160,
             M.PASSWORD: metrics.horizontalAdvance("IT Glue password") + 28,
             M.LAST_RESET: metrics.horizontalAdvance("29 Nov 2026, 10:41") + 28,
             M.RESULT: 210},
            flexible=(M.ACCOUNT, M.CUSTOMER, M.PASSWORD, M.LAST_RESET, M.RESULT, M.SOURCE))
        self.table.setMinimumHeight(260)
        self.stack.addWidget(self.table)
        self.empty_label = QLabel()
        self.empty_label.setObjectName("accounts_empty")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setProperty("role", "muted")
        self.empty_label.setMinimumHeight(160)
        self.empty_label.setContentsMargins(40, 20, 40, 20)
        self.stack.addWidget(self.empty_label)
        layout.addWidget(self.stack, 1)
        root.addWidget(box, 1)

        agents_box = QGroupBox("Agents")
        agents_box.setObjectName("agents_box")
        agents_box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        agents_layout = QVBoxLayout(agents_box)
        agents_layout.setSpacing(8)
        agents_top = QHBoxLayout()
        agents_intro = QLabel("Agents apply resets inside the customer\u2019s network. Each "
                              "account names the agent and directory that hold it.")
        agents_intro.setProperty("role", "muted")
        agents_intro.setWordWrap(True)
        agents_top.addWidget(agents_intro, 1)
        self.add_agent_button = QPushButton("Add agent\u2026")
        self.add_agent_button.setObjectName("add_agent_button")
        self.add_agent_button.clicked.connect(self._add_agent_clicked)
        agents_top.addWidget(self.add_agent_button, 0, Qt.AlignmentFlag.AlignTop)
        agents_layout.addLayout(agents_top)
        self.agents_grid = QFormLayout()
        self.agents_grid.setHorizontalSpacing(24)
        self.agents_grid.setVerticalSpacing(6)
        agents_layout.addLayout(self.agents_grid)
        root.addWidget(agents_box)

    # -- rendering ----------------------------------------------------------------------------

    def _render(self) -> None:
        self._render_customers()
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
        while self.agents_grid.rowCount():
            self.agents_grid.removeRow(0)
        if not self.agents:
            empty = QLabel("No agents yet. Add one, run the command it gives you on a server "
                           "that can reach the directory, then give accounts its name.")
            empty.setObjectName("agents_empty")
            empty.setWordWrap(True)
            self.agents_grid.addRow(empty)
            return
        c = _colours()
        for i, agent in enumerate(self.agents):
            name = QLabel(f"<b>{_escape(agent.name)}</b>"
                          + (f" &nbsp;<span style='color:{c.muted}'>"
                             f"{_escape(agent.hostname)}</span>" if agent.hostname else ""))
            name.setObjectName(f"agent_name_{i}")
            online = agent.status == "online"
            status = QLabel(agent_status_text(agent))
            status.setObjectName(f"agent_status_{i}")
            status.setProperty("role", "badge")
            status.setProperty("kind", "ok" if online else "neutral")
            status.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
            if agent.directories:
                status.setToolTip("Directories: " + ", ".join(agent.directories))
            self.agents_grid.addRow(name, status)

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
            text = "No accounts match this filter. Choose another customer or clear the filter."
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

    def set_role(self, role: str | None) -> None:
        """Disable what the signed-in user's role may not do (see qp_desktop.ui.roles)."""
        self.role = role
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

    async def automatch(self, customer: Customer) -> bool:
        async def post() -> None:
            matched = await self.client.automatch(customer.id)
            self.model.update_accounts(matched)
            if matched:
                text = f"Matched {_plural(len(matched), 'account')} for {customer.name}."
                kind = "success"
            else:
                text = (f"No new matches for {customer.name}: no unmatched account has the "
                        "same username as exactly one of its IT Glue passwords.")
                kind = "info"
            self.banner.show_message(kind, text)
            await self.refresh(keep_banner=True)
        return await self._run(post)

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


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
