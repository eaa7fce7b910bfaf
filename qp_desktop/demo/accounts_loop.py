"""Demo data for the daily loop's dialogs in the screenshots and the real-size layout check:
the Match dialog's list of IT Glue passwords, Automatch's unpaired sides, alert settings.

Plain data fed to the dialogs (no tenant), so the pictures show a full list whatever the
tenant in use holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from qp_desktop.services.tenant_client import (
    Account,
    AccountSource,
    AlertSettings,
    AutomatchResult,
    ITGluePassword,
    UnpairedAccount,
    UnpairedPassword,
)

DEMO_PASSWORDS = (
    ITGluePassword("5001", "Domain Admin", "NWT\\administrator", "Active Directory", 1),
    ITGluePassword("5002", "Backup service account", "svc-backup", "Active Directory", 2),
    ITGluePassword("5003", "Reception PC local admin", "localadmin", "Local Account", None),
    ITGluePassword("5004", "Global admin", "admin@northwindtraders.onmicrosoft.com",
                   "Microsoft 365", None),
    ITGluePassword("5005", "Jane Cooper (workstation)", "jcooper", "Active Directory", None),
    ITGluePassword("5006", "SQL service", "svc-sql", "Active Directory", None),
    ITGluePassword("5007", "Firewall admin", "admin", "Network device", None),
)
DEMO_ACCOUNT = Account(
    id=4, customer_id=1, kind="end_user", display_name="Jane Cooper",
    source=AccountSource(type="active_directory", agent_id=1, directory="northwind-ad",
                         identity="jcooper"),
    itglue_password_id=None, last_reset_at=None, last_reset_by=None, last_result=None)
DEMO_AUTOMATCH = AutomatchResult(
    matched=[],
    unmatched_accounts=[
        UnpairedAccount(4, "Jane Cooper", "Two IT Glue passwords have the username jcooper: "
                                          "Jane Cooper (workstation), Jane Cooper (VPN)"),
        UnpairedAccount(7, "Dispatch kiosk", "No IT Glue password has the username kiosk")],
    unmatched_passwords=[
        UnpairedPassword("5006", "SQL service", "svc-sql", "No account has the login name "
                                                           "svc-sql"),
        UnpairedPassword("5007", "Firewall admin", "admin", "Its category (Network device) "
                                                            "names no directory")])
DEMO_ALERTS = AlertSettings(recipients=["alerts@msp.example", "dana.whitfield@msp.example"],
                            expiry_warning_days=[30, 7, 1], smtp_configured=True)

Record = Callable[[str, Any], Awaitable[None]]


async def record_loop_dialogs(page: Any, record: Record) -> None:
    """Open each of the loop's dialogs over ``page`` with demo data and ``record`` it."""
    from qp_desktop.ui.accounts.dialogs import AccountDialog, AutomatchResultDialog
    from qp_desktop.ui.accounts.match_dialog import MatchDialog
    from qp_desktop.ui.alerts_dialog import AlertsDialog

    names = {1: "Domain Admin", 2: "Backup service"}
    match = MatchDialog(page.client, DEMO_ACCOUNT, lambda i: names.get(i, "another account"),
                        page)
    match.set_passwords(DEMO_PASSWORDS)
    match.open()
    await record("dialog-match", match)
    match.reject()
    match.deleteLater()
    automatch = AutomatchResultDialog("Northwind Traders", DEMO_AUTOMATCH, page)
    automatch.open()
    await record("dialog-automatch-result", automatch)
    automatch.reject()
    automatch.deleteLater()
    account = AccountDialog(page.customers, page.agents, None, parent=page)
    account.open()
    await record("dialog-add-account", account)
    account.reject()
    account.deleteLater()
    alerts = AlertsDialog(page.client, "admin", page)
    alerts.show_settings(DEMO_ALERTS)
    alerts.open()
    await record("dialog-alert-settings", alerts)
    alerts.recipients_error.setText("\u201cops@\u201d is not an e-mail address: the part "
                                    "after the @ is missing.")
    alerts.recipients_error.setVisible(True)
    await record("dialog-alert-settings-error", alerts)
    alerts.reject()
    alerts.deleteLater()
