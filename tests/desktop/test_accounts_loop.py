"""The daily loop's widgets fed with plain data (no tenant): the Accounts filters and columns,
the Match dialog, Automatch's result, the failure table and the Events page's failure box,
the alert settings' parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qp_common import wire
from qp_desktop.services.tenant_client import (
    Account,
    AccountSource,
    AutomatchResult,
    ITGluePassword,
    UnpairedAccount,
    UnpairedPassword,
)
from qp_desktop.ui.accounts.dialogs import AutomatchResultDialog
from qp_desktop.ui.accounts.match_dialog import MatchDialog, passwords_matching
from qp_desktop.ui.accounts.model import (
    SHOW_GONE,
    SHOW_MATCHED,
    SHOW_UNMATCHED,
    AccountsFilter,
    AccountsTableModel,
)
from qp_desktop.ui.alerts_dialog import parse_days, parse_recipients
from qp_desktop.ui.events import failures
from qp_desktop.ui.events.failures import FIXES, GENERIC, advice_for
from qp_desktop.ui.events.page import MonitorWindow

M = AccountsTableModel
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def account(id_: int, name: str, *, agent: int | None = 1, kind: str = "end_user",
            password: str | None = None, password_name: str | None = None,
            state: str = "present", enabled: bool | None = True,
            reported: datetime | None = NOW) -> Account:
    return Account(id=id_, customer_id=1, kind=kind, display_name=name,
                   source=AccountSource(type="openldap", agent_id=agent, directory="corp",
                                        identity=name.lower()),
                   itglue_password_id=password, last_reset_at=None, last_reset_by=None,
                   last_result=None, state=state, itglue_password_name=password_name,
                   enabled=enabled, last_reported_at=reported)


ACCOUNTS = [
    account(1, "Backup", kind="service", password="5002", password_name="Backup service"),
    account(2, "Jane", agent=2),
    account(3, "Old admin", kind="administrator", state="gone",
            reported=NOW - timedelta(days=3)),
    account(4, "Kiosk", enabled=False, agent=2),
    account(5, "Reception PC", agent=None, enabled=None, reported=None),
]


@pytest.fixture
def table(qapp):
    model = AccountsTableModel()
    model.now = NOW
    model.set_accounts(ACCOUNTS)
    proxy = AccountsFilter()
    proxy.setSourceModel(model)
    return model, proxy


def shown(proxy) -> list[str]:
    return sorted(proxy.sourceModel().account(proxy.mapToSource(proxy.index(r, 0)).row())
                  .display_name for r in range(proxy.rowCount()))


def test_the_password_column_names_the_password_never_its_id(table) -> None:
    model, _ = table
    texts = [model.index(r, M.PASSWORD).data() for r in range(model.rowCount())]
    assert texts[0] == "Backup service"
    assert texts[1] == "Not matched"
    assert not any(t.startswith("#") or "5002" in t for t in texts)
    # Matched, but the tenant has not told the name yet: still no id.
    model.set_accounts([account(9, "X", password="7007")])
    assert model.index(0, M.PASSWORD).data() == "Matched"


def test_gone_accounts_are_muted_and_say_when_they_were_last_reported(table) -> None:
    model, _ = table
    gone = model.index(2, M.ACCOUNT)
    tip = gone.data(0x03)  # ToolTipRole
    assert tip.startswith("Gone from its directory; last reported")
    assert model.index(2, M.SOURCE).data(0x09) is not None  # ForegroundRole: muted
    assert model.index(3, M.ACCOUNT).data() == "Kiosk (disabled)"
    assert "Disabled in its directory" in model.index(3, M.ACCOUNT).data(0x03)


def test_filters_by_agent_kind_and_matched_unmatched_gone(table) -> None:
    _, proxy = table
    assert len(shown(proxy)) == 5
    proxy.set_agent(2)
    assert shown(proxy) == ["Jane", "Kiosk"]
    proxy.set_agent(-1)
    proxy.set_kind("service")
    assert shown(proxy) == ["Backup"]
    proxy.set_kind("")
    proxy.set_show(SHOW_MATCHED)
    assert shown(proxy) == ["Backup"]
    proxy.set_show(SHOW_UNMATCHED)
    assert shown(proxy) == ["Jane", "Kiosk", "Old admin", "Reception PC"]
    proxy.set_show(SHOW_GONE)
    assert shown(proxy) == ["Old admin"]
    proxy.set_text("zzz")
    assert shown(proxy) == []


PASSWORDS = [
    ITGluePassword("5001", "Domain Admin", "NWT\\administrator", "Active Directory", None),
    ITGluePassword("5002", "Backup service account", "svc-backup", "Active Directory", 1),
    ITGluePassword("5003", "Reception PC local admin", "localadmin", "Local Account", None),
]


def test_the_match_list_filters_on_name_username_and_category() -> None:
    assert [p.id for p in passwords_matching(PASSWORDS, "local")] == ["5003"]
    assert [p.id for p in passwords_matching(PASSWORDS, "svc")] == ["5002"]
    assert [p.id for p in passwords_matching(PASSWORDS, "active admin")] == ["5001"]
    assert len(passwords_matching(PASSWORDS, "")) == 3


def test_the_match_dialog_marks_passwords_matched_elsewhere_and_refuses_them(qtbot) -> None:
    jane = ACCOUNTS[1]
    dialog = MatchDialog(None, jane, lambda i: {1: "Backup"}.get(i, "?"))  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    dialog.set_passwords(PASSWORDS)
    assert dialog.list.topLevelItemCount() == 3
    taken = dialog.list.topLevelItem(1)
    assert taken.text(3) == "Backup"
    assert not dialog.choose("Backup service account")  # matched to Backup: not selectable
    assert not dialog.match_button.isEnabled()
    qtbot.keyClicks(dialog.search, "reception")
    assert dialog.list.topLevelItemCount() == 1
    assert dialog.count_label.text() == "1 of 3 IT Glue passwords match the filter"
    assert dialog.choose("Reception PC local admin")
    assert dialog.match_button.isEnabled()
    dialog.match_button.click()
    assert dialog.chosen is not None and dialog.chosen.id == "5003"


def test_automatch_result_shows_both_sides_of_what_it_could_not_pair(qtbot) -> None:
    result = AutomatchResult(
        matched=[ACCOUNTS[0]],
        unmatched_accounts=[UnpairedAccount(2, "Jane", "no IT Glue password has username "
                                                       "jane")],
        unmatched_passwords=[UnpairedPassword("5003", "Reception PC local admin",
                                              "localadmin", "fits 2 accounts: A, B")])
    dialog = AutomatchResultDialog("Northwind Traders", result)
    qtbot.addWidget(dialog)
    accounts = dialog.accounts_list.topLevelItem(0)
    assert (accounts.text(0), accounts.text(1)) == ("Jane",
                                                    "no IT Glue password has username jane")
    passwords = dialog.passwords_list.topLevelItem(0)
    assert passwords.text(0) == "Reception PC local admin"
    assert passwords.text(2) == "fits 2 accounts: A, B"


def test_every_failure_code_has_a_sentence_and_an_action_unknown_ones_retry() -> None:
    actions = {failures.MATCH, failures.RETRY, failures.OPEN_AGENT, failures.OPEN_ITGLUE,
               failures.OPEN_ACCOUNTS}
    for code, (sentence, action) in FIXES.items():
        assert sentence.endswith(".") and action in actions, code
    # The tenant's own list of codes and kinds of fix, where this branch has it.
    tenant_codes: dict[str, str] = getattr(wire, "RESET_FAILURE_CODES", {})
    kind_to_action = {"match": failures.MATCH, "agent": failures.OPEN_AGENT,
                      "retry": failures.RETRY, "itglue": failures.OPEN_ITGLUE,
                      "microsoft365": failures.OPEN_ACCOUNTS, "directory": failures.RETRY}
    for code, kind in tenant_codes.items():
        assert code in FIXES, f"no sentence for the tenant's failure code {code}"
        assert FIXES[code][1] == kind_to_action[kind], code
    unknown = advice_for("password_reset.failed", {"code": "brand_new", "trigger_event_id": 7})
    assert unknown is not None
    assert (unknown.sentence, unknown.action) == GENERIC and unknown.retry_event_id == 7
    assert advice_for("password_reset.succeeded", {}) is None


def _failed(event_id: int, code: str, **details) -> dict:
    return {"id": event_id, "occurred_at": "2026-11-29T11:00:00Z",
            "type": "password_reset.failed", "severity": "error",
            "summary": "No matched account for Backup service", "resource_name": "Backup",
            "details": {"code": code, "trigger_event_id": 1, "itglue_password_id": "5002",
                        **details}}


def test_the_failure_pane_says_what_to_do_and_offers_the_fix_and_retry(qtbot, qloop) -> None:
    monitor = MonitorWindow()
    qtbot.addWidget(monitor)
    replayed: list[int] = []

    async def replay(event_id: int) -> int:
        replayed.append(event_id)
        return 99
    monitor.replay = replay
    fixes: list = []
    monitor.fix_requested.connect(fixes.append)
    monitor.add_events([_failed(10, "no_matched_account"),
                        _failed(11, "agent_unavailable", agent_id=4)])
    monitor.flush_pending()
    assert monitor.select_event(10)
    box = monitor.failure_box
    assert not box.isHidden()
    assert box.sentence.text() == FIXES["no_matched_account"][0]
    assert box.fix_button.text() == "Match account\u2026"
    box.fix_button.click()
    assert fixes[-1].action == failures.MATCH and fixes[-1].password_id == "5002"
    box.retry_button.click()
    qtbot.waitUntil(lambda: replayed == [1] and "Retrying" in box.sentence.text())
    assert monitor.select_event(11)
    assert box.fix_button.text() == "Open agent"
    box.fix_button.click()
    assert fixes[-1].agent_id == 4

    monitor.set_role("viewer")  # Retry is a technician's
    assert not box.retry_button.isEnabled()
    assert box.retry_button.toolTip() == "Only a technician or an administrator can retry " \
                                         "a reset."


def test_alert_settings_fields_are_read_as_the_tenant_wants_them() -> None:
    assert parse_days("30, 7, 1") == [30, 7, 1]
    assert parse_days("14;3") == [14, 3]
    with pytest.raises(ValueError, match="not a number of days"):
        parse_days("30, soon")
    assert parse_recipients("a@x.test\n\n b@x.test , c@x.test") == ["a@x.test", "b@x.test",
                                                                     "c@x.test"]


def test_editing_only_the_name_sends_only_the_name(qtbot) -> None:
    from qp_desktop.services.tenant_client import Agent, Customer
    from qp_desktop.ui.accounts.dialogs import AccountDialog

    local = account(7, "Reception PC", agent=None, enabled=None, reported=None)
    dialog = AccountDialog([Customer(1, "Northwind Traders", "101")],
                           [Agent(1, "dc01", "dc01.test", "online", None)], local)
    qtbot.addWidget(dialog)
    assert dialog.changes() == {}  # nothing touched: nothing sent, the source stays
    dialog.name_edit.setText("Reception PC admin")
    assert dialog.changes() == {"display_name": "Reception PC admin"}
    dialog.agent_combo.setCurrentIndex(dialog.agent_combo.findData(1))
    assert dialog.changes()["source"]["agent_id"] == 1

