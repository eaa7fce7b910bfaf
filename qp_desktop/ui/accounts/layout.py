"""The Accounts page's widgets and their layout: filters, the table, the account
actions under it, and the agents. A mixin of
:class:`~qp_desktop.ui.accounts.page.AccountsPage`, which wires and renders them."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    Qt,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
)

from qp_desktop.ui.accounts.formatting import (
    KIND_LABELS,
)
from qp_desktop.ui.accounts.model import (
    ALL_AGENTS,
    SHOW_CHOICES,
    AccountsTableModel,
)
from qp_desktop.ui.m365_dialog import link_button_for
from qp_desktop.ui.widgets import FittedTable

M = AccountsTableModel


class AccountsLayout:
    """Builds the page's widgets (``_build``) and the table's context menu."""

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

        filters = QHBoxLayout()
        filters.setSpacing(8)
        self.agent_combo = QComboBox()
        self.agent_combo.setObjectName("agent_filter")
        self.agent_combo.setAccessibleName("Agent")
        self.agent_combo.setMinimumContentsLength(12)
        self.agent_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.agent_combo.addItem("All agents", ALL_AGENTS)
        self.agent_combo.currentIndexChanged.connect(self._filters_changed)
        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("kind_filter")
        self.kind_combo.setAccessibleName("Kind")
        self.kind_combo.addItem("All kinds", "")
        for value, label in KIND_LABELS.items():
            self.kind_combo.addItem(label, value)
        self.kind_combo.currentIndexChanged.connect(self._filters_changed)
        self.show_combo = QComboBox()
        self.show_combo.setObjectName("show_filter")
        self.show_combo.setAccessibleName("Show")
        for value, label in SHOW_CHOICES:
            self.show_combo.addItem(label, value)
        self.show_combo.currentIndexChanged.connect(self._filters_changed)
        for combo in (self.agent_combo, self.kind_combo, self.show_combo):
            filters.addWidget(combo)
        filters.addStretch(1)
        layout.addLayout(filters)

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
             M.PASSWORD: metrics.horizontalAdvance("Backup service account") + 28,
             M.LAST_RESET: metrics.horizontalAdvance("29 Nov 2026, 10:41") + 28,
             M.RESULT: 210},
            flexible=(M.ACCOUNT, M.CUSTOMER, M.PASSWORD, M.LAST_RESET, M.RESULT, M.SOURCE))
        self.table.setMinimumHeight(200)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.selectionModel().selectionChanged.connect(
            lambda *_: self._update_account_actions(self._busy > 0))
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
        layout.addLayout(self._build_actions())
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
        # An agent's status and Sync now go under its name when the window is too narrow
        # for both on one line (a long status would otherwise widen the whole page).
        self.agents_grid.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        agents_layout.addLayout(self.agents_grid)
        root.addWidget(agents_box)

    def _build_actions(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(8)

        def button(text: str, name: str, slot: Any, tip: str) -> QPushButton:
            widget = QPushButton(text)
            widget.setObjectName(name)
            widget.setToolTip(tip)
            widget.clicked.connect(slot)
            return widget
        self.match_button = button("Match\u2026", "match_button",
                                   lambda: self.open_match_dialog(),
                                   "Choose the IT Glue password this account follows.")
        self.unmatch_button = button("Unmatch", "unmatch_button", self._unmatch_clicked,
                                     "Stop following the IT Glue password.")
        self.reset_button = button("Reset again from IT Glue", "reset_again_button",
                                   self._reset_clicked,
                                   "Write IT Glue\u2019s current value to this account now.")
        self.add_account_button = button("Add account\u2026", "add_account_button",
                                         lambda: self.open_account_dialog(),
                                         "Add an account no agent reports, such as a local "
                                         "account.")
        self.edit_account_button = button("Edit\u2026", "edit_account_button",
                                          self._edit_clicked, "Change the account\u2019s name, "
                                          "kind or source.")
        self.delete_account_button = button("Delete", "delete_account_button",
                                            self._delete_clicked,
                                            "Stop resetting this account (it is not touched).")
        for widget in (self.match_button, self.unmatch_button, self.reset_button):
            row.addWidget(widget)
        row.addStretch(1)
        for widget in (self.add_account_button, self.edit_account_button,
                       self.delete_account_button):
            row.addWidget(widget)
        return row

    def _context_menu(self, pos: Any) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        self.table.selectRow(index.row())
        menu = QMenu(self)
        menu.setObjectName("account_menu")
        for widget in (self.match_button, self.unmatch_button, self.reset_button,
                       self.edit_account_button, self.delete_account_button):
            action = menu.addAction(widget.text())
            action.setEnabled(widget.isEnabled())
            action.setToolTip(widget.toolTip())
            action.triggered.connect(widget.click)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    # -- rendering ----------------------------------------------------------------------------

