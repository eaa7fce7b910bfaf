"""Match…: pick the IT Glue password an account follows from its organization's list.

The list is the customer's IT Glue passwords by name, username and category (never a value,
never an id to type); typing filters it. A password already matched to another account is
listed, marked with that account, and cannot be picked (unmatch that account first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services.tasks import TaskSet
from qp_desktop.services.tenant_client import (
    Account,
    ITGluePassword,
    SessionExpired,
    TenantClient,
    TenantError,
)
from qp_desktop.ui.widgets import Banner, BusyBar

NAME, USERNAME, CATEGORY, MATCHED = range(4)


def passwords_matching(passwords: Sequence[ITGluePassword], text: str) -> list[ITGluePassword]:
    """The passwords whose name, username or category holds every word of ``text``."""
    words = text.casefold().split()
    return [p for p in passwords
            if all(w in f"{p.name}\x1f{p.username}\x1f{p.category}".casefold() for w in words)]


class MatchDialog(QDialog):
    """Lists the customer's IT Glue passwords; ``chosen`` is the picked one on accept.

    ``account_name(id)`` names the account a password is already matched to.
    """

    def __init__(self, client: TenantClient, account: Account,
                 account_name: Callable[[int], str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("match_dialog")
        self.setWindowTitle("Match to an IT Glue password")
        self.setMinimumSize(720, 460)
        self.client = client
        self.account = account
        self.account_name = account_name
        self.tasks = TaskSet()
        self.passwords: list[ITGluePassword] = []
        self.chosen: ITGluePassword | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 16)
        layout.setSpacing(10)
        heading = QLabel(f"Match \u201c{account.display_name}\u201d")
        heading.setProperty("role", "heading")
        layout.addWidget(heading)
        intro = QLabel("Choose the IT Glue password this account follows: when a technician "
                       "changes it in IT Glue, the new value is written to this account.")
        intro.setWordWrap(True)
        intro.setProperty("role", "muted")
        layout.addWidget(intro)
        self.search = QLineEdit()
        self.search.setObjectName("match_search")
        self.search.setPlaceholderText("Type to filter by name, username or category\u2026")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._render)
        layout.addWidget(self.search)
        self.busy_bar = BusyBar("match_busy")
        layout.addWidget(self.busy_bar)
        self.message = Banner("match_message")
        layout.addWidget(self.message)
        self.list = QTreeWidget()
        self.list.setObjectName("match_list")
        self.list.setRootIsDecorated(False)
        self.list.setAlternatingRowColors(True)
        self.list.setUniformRowHeights(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setHeaderLabels(["Name", "Username", "Category", "Matched to"])
        header = self.list.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        for col, width in ((USERNAME, 170), (CATEGORY, 140), (MATCHED, 150)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, width)
        self.list.itemSelectionChanged.connect(self._update_enabled)
        self.list.itemDoubleClicked.connect(lambda *_: self._accept_if_chosen())
        layout.addWidget(self.list, 1)
        self.count_label = QLabel()
        self.count_label.setObjectName("match_count")
        self.count_label.setProperty("role", "muted")
        layout.addWidget(self.count_label)
        buttons = QDialogButtonBox()
        self.match_button = buttons.addButton("Match", QDialogButtonBox.ButtonRole.AcceptRole)
        self.match_button.setObjectName("match_confirm_button")
        self.match_button.setProperty("role", "primary")
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setObjectName("match_cancel_button")
        buttons.accepted.connect(self._accept_if_chosen)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.busy_bar.setVisible(False)
        self._update_enabled()

    async def load(self) -> bool:
        """Fetch the customer's IT Glue passwords (once; typing filters them here)."""
        self.busy_bar.setVisible(True)
        self.count_label.setText("Loading the IT Glue passwords\u2026")
        try:
            self.passwords = await self.client.list_itglue_passwords(self.account.customer_id)
        except SessionExpired:
            return False
        except TenantError as exc:
            self.message.show_message("error", exc.message)
            self.count_label.setText("")
            return False
        finally:
            self.busy_bar.setVisible(False)
        self._render()
        self.search.setFocus()
        return True

    def set_passwords(self, passwords: Sequence[ITGluePassword]) -> None:
        """Show these (tests and screenshots feed the list without a tenant)."""
        self.passwords = list(passwords)
        self._render()

    def _render(self) -> None:
        self.list.clear()
        shown = passwords_matching(self.passwords, self.search.text())
        for password in shown:
            other = password.matched_account_id
            matched = ("This account" if other == self.account.id
                       else self.account_name(other) if other is not None else "")
            item = QTreeWidgetItem([password.name, password.username, password.category,
                                    matched])
            item.setData(NAME, Qt.ItemDataRole.UserRole, password.id)
            item.setToolTip(NAME, password.name)
            if other is not None and other != self.account.id:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                item.setToolTip(MATCHED, f"Already matched to {matched}: unmatch it there "
                                "first.")
                for col in range(4):
                    item.setForeground(col, self.palette().placeholderText())
            self.list.addTopLevelItem(item)
            if password.id == self.account.itglue_password_id:
                item.setSelected(True)
        total = len(self.passwords)
        if not total:
            self.count_label.setText("This customer\u2019s IT Glue organization has no "
                                     "passwords yet.")
        elif len(shown) == total:
            self.count_label.setText(f"{total} IT Glue passwords")
        else:
            self.count_label.setText(f"{len(shown)} of {total} IT Glue passwords match "
                                     "the filter")
        self._update_enabled()

    def _selected(self) -> ITGluePassword | None:
        items = self.list.selectedItems()
        if not items:
            return None
        wanted = items[0].data(NAME, Qt.ItemDataRole.UserRole)
        return next((p for p in self.passwords if p.id == wanted), None)

    def _update_enabled(self) -> None:
        picked = self._selected()
        self.match_button.setEnabled(picked is not None
                                     and picked.id != self.account.itglue_password_id)

    def _accept_if_chosen(self) -> None:
        picked = self._selected()
        if picked is not None and self.match_button.isEnabled():
            self.chosen = picked
            self.accept()

    def choose(self, name: str) -> bool:
        """Select the listed password called ``name`` (tests); True when it is selectable."""
        for i in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(i)
            if item.text(NAME) == name and item.flags() & Qt.ItemFlag.ItemIsSelectable:
                self.list.setCurrentItem(item)
                item.setSelected(True)
                return True
        return False
