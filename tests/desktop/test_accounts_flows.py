"""The daily loop in the app against a real tenant and the IT Glue emulator: unmatch, add /
edit / delete a local account, the alert settings and their validation, and a failed reset
("No matched account") fixed by matching in the dialog, then Retry."""

from __future__ import annotations

from typing import Any

import httpx
from PySide6.QtWidgets import QPushButton

from qp_desktop.ui.accounts.model import SHOW_UNMATCHED
from qp_desktop.ui.accounts.model import AccountsTableModel as M
from qp_desktop.ui.alerts_dialog import AlertsDialog
from tests.desktop.helpers import WAIT
from tests.desktop.test_accounts_page import Seeder, rows, seeder, signed_in  # noqa: F401
from tests.support.pipeline import trigger_body

BACKUP = "5002"  # the emulator's demo "Backup service account" (Northwind Traders)


def tenant_accounts(seeder: Seeder) -> dict[str, dict[str, Any]]:  # noqa: F811
    return {a["display_name"]: a for a in seeder.call("GET", "/api/v1/accounts")["accounts"]}


def select(qtbot, page, name: str) -> None:
    """Select the shown account called ``name`` (as a click on its row does)."""
    ids = [page.model.account(r).id for r in range(page.model.rowCount())
           if page.model.account(r).display_name == name]
    assert ids and page.select_account(ids[0]), name


def idle(qtbot, page) -> None:
    qtbot.waitUntil(lambda: not page.tasks.busy and page._busy == 0, timeout=WAIT)


def test_unmatch_then_add_edit_and_delete_a_local_account(qtbot, signed_in, seeder) -> None:  # noqa: F811
    seeder.connect_itglue()
    seeder.call("POST", "/api/v1/customers/import-itglue")
    northwind = seeder.customers()["Northwind Traders"]
    seeder.account(northwind["id"], "Backup service", "svc-backup", kind="service",
                   itglue_password_id=BACKUP)
    _app, page = signed_in()
    asked: list[str] = []
    page.confirm = lambda _parent, _title, question: asked.append(question) or True

    select(qtbot, page, "Backup service")
    assert page.unmatch_button.isEnabled() and page.reset_button.isEnabled()
    page.unmatch_button.click()
    idle(qtbot, page)
    assert "Changes to that IT Glue password will no longer reach this account" in asked[-1]
    assert tenant_accounts(seeder)["Backup service"]["itglue_password_id"] is None
    assert rows(page)["Backup service"][M.PASSWORD] == "Not matched"

    # Add a local account no agent reports.
    dialog = page.open_account_dialog()
    dialog.customer_combo.setCurrentIndex(dialog.customer_combo.findData(northwind["id"]))
    qtbot.keyClicks(dialog.name_edit, "Reception PC")
    dialog.type_combo.setCurrentIndex(dialog.type_combo.findData("local"))
    qtbot.keyClicks(dialog.identity_edit, "localadmin")
    dialog.save_button.click()
    idle(qtbot, page)
    added = tenant_accounts(seeder)["Reception PC"]
    assert added["source"]["type"] == "local" and added["source"]["identity"] == "localadmin"
    assert "Reception PC" in rows(page)

    # Edit its name and kind.
    select(qtbot, page, "Reception PC")
    assert page.edit_account_button.isEnabled() and page.delete_account_button.isEnabled()
    dialog = page.open_account_dialog(page.selected_account())
    dialog.name_edit.setText("Reception PC admin")
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("administrator"))
    assert dialog.changes() == {"display_name": "Reception PC admin", "kind": "administrator"}
    dialog.save_button.click()
    idle(qtbot, page)
    edited = tenant_accounts(seeder)["Reception PC admin"]
    assert edited["kind"] == "administrator"

    # Delete it (after a confirmation that says the account itself is not touched).
    select(qtbot, page, "Reception PC admin")
    page.delete_account_button.click()
    idle(qtbot, page)
    assert "the account itself is not touched" in asked[-1]
    assert "Reception PC admin" not in tenant_accounts(seeder)
    assert "Reception PC admin" not in rows(page)


def test_alert_settings_show_the_tenants_sentence_next_to_the_field(
        qtbot, qloop, signed_in, seeder) -> None:  # noqa: F811
    app, _page = signed_in()
    dialog = AlertsDialog(app.client, "admin")
    qtbot.addWidget(dialog)
    dialog.tasks.start(dialog.load())
    qtbot.waitUntil(lambda: dialog.settings is not None, timeout=WAIT)
    assert dialog.days_edit.text() == "30, 7, 1"  # the tenant's defaults

    dialog.recipients_edit.setPlainText("ops@msp.test\nnot an address")
    dialog.tasks.start(dialog.save())
    qtbot.waitUntil(lambda: dialog.recipients_error.isVisibleTo(dialog), timeout=WAIT)
    assert "not an address" in dialog.recipients_error.text()
    assert not dialog.days_error.isVisibleTo(dialog)

    dialog.recipients_edit.setPlainText("\n".join(f"ops{i}@msp.test" for i in range(11)))
    dialog.tasks.start(dialog.save())
    qtbot.waitUntil(lambda: "10" in dialog.recipients_error.text(), timeout=WAIT)

    dialog.recipients_edit.setPlainText("ops@msp.test\nlead@msp.test")
    dialog.days_edit.setText("14, 400")
    dialog.tasks.start(dialog.save())
    qtbot.waitUntil(lambda: dialog.days_error.isVisibleTo(dialog), timeout=WAIT)
    assert not dialog.recipients_error.isVisibleTo(dialog)

    dialog.days_edit.setText("14, 3")
    dialog.tasks.start(dialog.save())
    qtbot.waitUntil(lambda: dialog.message.kind == "success", timeout=WAIT)
    saved = seeder.call("GET", "/api/v1/alerts")
    assert saved["recipients"] == ["ops@msp.test", "lead@msp.test"]
    assert saved["expiry_warning_days"] == [14, 3]

    # The tray's own expiry warnings follow the tenant's days from now on.
    app.alerts.tasks.start(app.alerts.refresh_thresholds())
    qtbot.waitUntil(lambda: app.alerts.thresholds == (14, 3), timeout=WAIT)


def test_a_viewer_reads_the_alert_settings_but_cannot_save(qtbot, qloop, signed_in) -> None:  # noqa: F811
    app, _page = signed_in()
    dialog = AlertsDialog(app.client, "viewer")
    qtbot.addWidget(dialog)
    dialog.tasks.start(dialog.load())
    qtbot.waitUntil(lambda: dialog.settings is not None, timeout=WAIT)
    assert dialog.recipients_edit.isReadOnly() and dialog.days_edit.isReadOnly()
    assert not dialog.save_button.isEnabled()
    assert dialog.save_button.toolTip() == ("Only an administrator can change the alert "
                                            "settings.")


def test_a_failed_reset_is_fixed_by_matching_in_the_dialog_then_retry(
        qtbot, signed_in, seeder) -> None:  # noqa: F811
    """Needs the tenant's Match list (GET /customers/{id}/itglue-passwords)."""
    seeder.connect_itglue()
    seeder.call("POST", "/api/v1/customers/import-itglue")
    northwind = seeder.customers()["Northwind Traders"]
    seeder.account(northwind["id"], "Backup service", "svc-backup", kind="service")
    url = seeder.call("POST", "/api/v1/integrations/itglue/workflow-token", 201, json={})["url"]
    app, page = signed_in()
    monitor = app.main_window.page("events")

    # IT Glue reports a change of a password no account follows: the reset fails.
    body = trigger_body(northwind["itglue_organization_id"], BACKUP, "Backup service account")
    assert httpx.post(url, json=body, timeout=10).status_code == 202

    def failed() -> dict[str, Any] | None:
        events = seeder.call("GET", "/api/v1/events?type=password_reset.failed")["events"]
        return events[0] if events else None
    qtbot.waitUntil(lambda: failed() is not None, timeout=WAIT)
    event = failed()
    assert event is not None and event["details"]["code"] == "no_matched_account"
    qtbot.waitUntil(lambda: monitor.select_event(event["id"]), timeout=WAIT)
    assert monitor.failure_box.fix_button.text() == "Match account\u2026"

    # Match account… shows the unmatched accounts to choose from.
    monitor.failure_box.fix_button.click()
    qtbot.waitUntil(lambda: app.main_window.current_page_key() == "accounts", timeout=WAIT)
    qtbot.waitUntil(lambda: page.show_combo.currentData() == SHOW_UNMATCHED, timeout=WAIT)
    idle(qtbot, page)
    select(qtbot, page, "Backup service")
    dialog = page.open_match_dialog()
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.list.topLevelItemCount() > 0, timeout=WAIT)
    qtbot.keyClicks(dialog.search, "backup")
    assert dialog.choose("Backup service account")
    dialog.match_button.click()
    qtbot.waitUntil(lambda: tenant_accounts(seeder)["Backup service"]["itglue_password_id"]
                    == BACKUP, timeout=WAIT)
    idle(qtbot, page)
    # Matched, it leaves the "Not matched" view; the banner names what it follows now.
    assert "Backup service" not in rows(page)
    assert page.banner.label.text().startswith("Backup service now follows the IT Glue "
                                               "password")

    # Retry: the pipeline runs again with IT Glue's value and now finds the account.
    assert monitor.select_event(event["id"])
    monitor.failure_box.retry_button.click()

    def retried() -> bool:
        events = seeder.call("GET", "/api/v1/events?limit=50")["events"]
        return any(e["type"].startswith("password_reset.") and e["id"] > event["id"]
                   and e.get("account") == "Backup service" for e in events)
    qtbot.waitUntil(retried, timeout=WAIT)
    assert "Retrying" in monitor.failure_box.sentence.text()


def test_sync_now_asks_the_agent_and_automatch_shows_what_it_could_not_pair(
        qtbot, signed_in, seeder) -> None:  # noqa: F811
    """Needs the tenant's directory sync (POST /agents/{id}/sync, automatch's unpaired
    sides)."""
    seeder.connect_itglue()
    seeder.call("POST", "/api/v1/customers/import-itglue")
    northwind = seeder.customers()["Northwind Traders"]
    code = seeder.call("POST", "/api/v1/agents/enrollment-codes", 201,
                       json={"name": "northwind-dc01"})["code"]
    enrolled = seeder.http.post("/api/v1/agent/enroll", json={
        "code": code, "name": "northwind-dc01", "hostname": "dc01.northwind.test"})
    assert enrolled.status_code == 201, enrolled.text
    token = enrolled.json()["agent_token"]
    seeder.account(northwind["id"], "Jane Cooper", "jcooper", kind="end_user")
    _app, page = signed_in()
    sync = page.findChild(QPushButton, "agent_sync_0")
    assert sync is not None and sync.isEnabled()
    sync.click()
    idle(qtbot, page)
    assert page.banner.label.text().startswith("Asked ")
    asked = seeder.http.get("/api/v1/agent/sync-request", params={"wait": 0},
                            headers={"Authorization": f"Bearer {token}"})
    assert asked.status_code == 200 and asked.json()["sync"] is True, asked.text

    page.set_filters(customer_id=northwind["id"])
    page.automatch_button.click()
    qtbot.waitUntil(lambda: page.automatch_dialog is not None, timeout=WAIT)
    dialog = page.automatch_dialog
    accounts = [dialog.accounts_list.topLevelItem(i).text(0)
                for i in range(dialog.accounts_list.topLevelItemCount())]
    passwords = [dialog.passwords_list.topLevelItem(i).text(0)
                 for i in range(dialog.passwords_list.topLevelItemCount())]
    assert "Jane Cooper" in accounts  # no IT Glue password has the username jcooper
    assert "Domain Admin" in passwords  # no account has its username
    assert all(dialog.accounts_list.topLevelItem(i).text(1)
               for i in range(dialog.accounts_list.topLevelItemCount()))
