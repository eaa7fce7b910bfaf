"""Accounts → "Microsoft 365…": linking a customer against a real tenant, the IT Glue
emulator and the TLS Microsoft 365 emulator, driven the way a technician does."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from qp_desktop.ui.accounts.model import AccountsTableModel as M
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ITGLUE_KEY
from tests.desktop.helpers import WAIT, sign_in_app
from tests.support.m365 import M365EmulatorProcess
from tests.support.processes import EmulatorProcess, TenantProcess

SECRET = "desk~client-secret-VALUE-42"  # noqa: S105 - a throw-away test secret


@pytest.fixture
def m365_tenant(tmp_path: Path, tenant_template: Path, itglue_emulator: EmulatorProcess
                ) -> Iterator[tuple[TenantProcess, M365EmulatorProcess]]:
    emulator = M365EmulatorProcess(tmp_path / "m365-tls")
    emulator.start()
    data = tmp_path / "tenant-data"
    shutil.copytree(tenant_template, data)
    tenant = TenantProcess(data, env={"QP_ITGLUE_BASE_URL": itglue_emulator.url,
                                      "QP_PUBLIC_URL": "", **emulator.tenant_env()})
    tenant.start()
    with httpx.Client(base_url=tenant.url, timeout=20) as http:
        token = http.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL,
                                                      "password": ADMIN_PASSWORD}
                          ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert http.put("/api/v1/integrations/itglue", headers=headers,
                        json={"region": "us", "api_key": ITGLUE_KEY}).status_code == 200
        assert http.post("/api/v1/customers/import-itglue", headers=headers).status_code == 200
    try:
        yield tenant, emulator
    finally:
        tenant.stop()
        emulator.stop()


def test_linking_a_customer_verifies_shows_the_state_and_lists_its_cloud_accounts(
        qtbot, make_app, memory_keyring, m365_tenant) -> None:
    tenant, emulator = m365_tenant
    entra = emulator.add_tenant([
        {"upn": "admin@northwindtraders.onmicrosoft.com", "display_name": "Global admin",
         "administrator": True},
        {"upn": "jsmith@northwindtraders.com", "display_name": "John Smith",
         "on_premises_sync_enabled": True}], secret=SECRET)
    app = make_app(tenant_url=tenant.url, clear_after_ms=30_000)
    sign_in_app(qtbot, app)
    app.main_window.show_page("accounts")
    page = app.main_window.page("accounts")
    page.activate()
    qtbot.waitUntil(lambda: page.loaded and not page.tasks.busy, timeout=WAIT)
    assert not page.m365_button.isEnabled()  # no customer chosen yet
    combo = page.customer_combo
    combo.setCurrentIndex(next(i for i in range(combo.count())
                               if combo.itemText(i) == "Northwind Traders"))
    assert page.m365_button.isEnabled()

    qtbot.mouseClick(page.m365_button, Qt.MouseButton.LeftButton)
    dialog = page.m365_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: not dialog.tasks.busy, timeout=WAIT)
    assert "Not linked yet" in dialog.state_banner.label.text()
    assert not dialog.link_button.isEnabled() and not dialog.sync_button.isEnabled()

    # Each name to type in the admin center has a Copy button.
    qtbot.mouseClick(dialog.findChild(type(dialog.link_button), "m365_copy_2"),
                     Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "User.ReadWrite.All"

    # A wrong secret: Microsoft's refusal and what to do, verbatim.
    qtbot.keyClicks(dialog.tenant_edit, entra.tenant_id)
    qtbot.keyClicks(dialog.client_edit, entra.client_id)
    qtbot.keyClicks(dialog.secret_field.edit, "the-secret-ID-not-its-value")
    qtbot.mouseClick(dialog.link_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.banner.kind == "error", timeout=WAIT)
    assert "AADSTS7000215: Invalid client secret provided." in dialog.banner.label.text()
    assert "Value (not its Secret ID)" in dialog.banner.label.text()

    dialog.secret_field.clear()
    qtbot.keyClicks(dialog.secret_field.edit, SECRET)
    qtbot.mouseClick(dialog.link_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.banner.kind == "success", timeout=WAIT)
    assert "Northwind Traders is linked" in dialog.banner.label.text()
    assert dialog.secret_field.text() == ""  # the secret left the form
    state = dialog.state_banner.label.text()
    assert f"Linked to tenant {entra.tenant_id}" in state and SECRET not in state
    assert f"secret \u2026{SECRET[-4:]}" in state

    qtbot.mouseClick(dialog.sync_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Synced 2 users" in dialog.banner.label.text(), timeout=WAIT)
    assert "1 synced from on-premises AD" in dialog.banner.label.text()
    assert "Automatch paired 1" in dialog.banner.label.text()
    dialog.reject()
    qtbot.waitUntil(lambda: not page.tasks.busy, timeout=WAIT)
    proxy = page.table.model()
    qtbot.waitUntil(lambda: len({proxy.index(r, M.ACCOUNT).data()
                                 for r in range(proxy.rowCount())}) == 2, timeout=WAIT)
    sources = {proxy.index(r, M.ACCOUNT).data(): proxy.index(r, M.SOURCE).data()
               for r in range(proxy.rowCount())}
    assert sources["Global admin"] == ("Microsoft 365 \u00b7 "
                                       "admin@northwindtraders.onmicrosoft.com")
    assert sources["John Smith"] == ("Microsoft 365 \u00b7 jsmith@northwindtraders.com \u00b7 "
                                     "synced from on-premises AD")


def test_the_checklist_names_customers_whose_cloud_passwords_have_no_link() -> None:
    from qp_desktop.services.tenant_client import CloudPrerequisite
    from qp_desktop.ui.m365_dialog import cloud_prerequisite_text

    text, kind = cloud_prerequisite_text([
        CloudPrerequisite(1, "Northwind Traders", 2, linked=False),
        CloudPrerequisite(2, "Contoso Dental", 1, linked=True),
        CloudPrerequisite(3, "Fabrikam Logistics", 0, linked=False)])
    assert kind == "problem"
    assert text.startswith("Not linked to Microsoft 365 yet: Northwind Traders (2 in cloud "
                           "categories).")
    assert "Contoso" not in text and "Fabrikam" not in text
    text, kind = cloud_prerequisite_text([CloudPrerequisite(2, "Contoso Dental", 1, True)])
    assert kind == "done" and "Every customer with Microsoft 365 passwords is linked" in text
    assert cloud_prerequisite_text([CloudPrerequisite(3, "Fabrikam", 0, False)])[1] == "done"
    assert cloud_prerequisite_text(None)[1] == "todo"


@pytest.mark.parametrize(("role", "may_link", "may_sync"), [
    ("viewer", False, False), ("technician", False, True), ("admin", True, True)])
def test_the_link_dialog_follows_the_users_role(qtbot, role: str, may_link: bool,
                                                may_sync: bool) -> None:
    from datetime import UTC, datetime

    from qp_desktop.services.clipboard import SecretClipboard
    from qp_desktop.services.tenant_client import Customer, Microsoft365Link
    from qp_desktop.ui.m365_dialog import Microsoft365Dialog

    customer = Customer(id=1, name="Northwind Traders", itglue_organization_id="101")
    dialog = Microsoft365Dialog(None, SecretClipboard(QGuiApplication.clipboard()),  # type: ignore[arg-type]
                                customer, user_role=role)
    qtbot.addWidget(dialog)
    dialog.link = Microsoft365Link(linked=True, tenant_id="contoso.onmicrosoft.com",
                                   client_id="app-id", secret_hint="…ab12",
                                   last_verified_at=datetime.now(UTC), last_error=None,
                                   directory_roles=None, last_sync_at=None)
    dialog._render()
    dialog.secret_field.edit.setText("a new secret value")
    assert dialog.link_button.isEnabled() is may_link
    assert dialog.unlink_button.isEnabled() is may_link
    assert dialog.sync_button.isEnabled() is may_sync
    if not may_link:
        assert "administrator" in dialog.link_button.toolTip()
    if not may_sync:
        assert "technician" in dialog.sync_button.toolTip()
