"""Reset pipeline → Accounts against a real tenant and the IT Glue emulator (demo data)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from qp_desktop.services.clipboard import PASSWORD_HINT_MIME
from qp_desktop.ui.accounts.model import AccountsTableModel as M
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ITGLUE_KEY
from tests.desktop.helpers import WAIT, click_and_settle, fill_sign_in, start, submit_and_wait


class Seeder:
    """Seeds the tenant over its HTTP API as another signed-in technician would."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=20)
        r = self.http.post("/api/v1/auth/login",
                           json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def call(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        r = self.http.request(method, path, headers=self.headers, **kw)
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    def connect_itglue(self) -> None:
        self.call("PUT", "/api/v1/integrations/itglue",
                  json={"region": "us", "api_key": ITGLUE_KEY})

    def customers(self) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.call("GET", "/api/v1/customers")["customers"]}

    def account(self, customer_id: int, name: str, identity: str, *,
                source_type: str = "active_directory", kind: str = "administrator",
                itglue_password_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"customer_id": customer_id, "kind": kind, "display_name": name,
                                "source": {"type": source_type, "directory": "corp-ad",
                                           "identity": identity}}
        if itglue_password_id:
            body["itglue_password_id"] = itglue_password_id
        return dict(self.call("POST", "/api/v1/accounts", 201, json=body))


@pytest.fixture
def seeder(tenant_proc) -> Iterator[Seeder]:
    seeder = Seeder(tenant_proc.url)
    yield seeder
    seeder.http.close()


@pytest.fixture
def signed_in(qtbot, make_app, tenant_proc, memory_keyring):
    """Returns ``open_page()``: signs in to ``tenant_proc`` and shows Accounts (loaded)."""
    def open_page():
        app = make_app(tenant_url=tenant_proc.url, clear_after_ms=30_000)
        start(qtbot, app)
        fill_sign_in(qtbot, app.sign_in, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
        submit_and_wait(qtbot, app.sign_in)
        qtbot.waitUntil(lambda: app.main_window is not None and app.main_window.isVisible(),
                        timeout=WAIT)
        app.main_window.show_page("accounts")
        page = app.main_window.page("accounts")
        page.activate()  # what showing the page does in the app
        qtbot.waitUntil(lambda: page.loaded and not page.tasks.busy, timeout=WAIT)
        return app, page
    return open_page


def rows(page) -> dict[str, list[str]]:
    """Visible rows of the table, by account name, as displayed."""
    proxy = page.table.model()
    return {proxy.index(r, M.ACCOUNT).data(): [proxy.index(r, c).data()
                                               for c in range(proxy.columnCount())]
            for r in range(proxy.rowCount())}


def password_shown(account: dict[str, Any]) -> str:
    """What the IT Glue password column shows for a tenant account: its name, never its id."""
    if not account.get("itglue_password_id"):
        return "Not matched"
    return account.get("itglue_password_name") or "Matched"


def select_customer(page, name: str) -> None:
    combo = page.customer_combo
    index = next(i for i in range(combo.count()) if combo.itemText(i) == name)
    combo.setCurrentIndex(index)


def test_empty_tenant_says_what_to_do(qtbot, signed_in):
    _app, page = signed_in()
    assert page.stack.currentWidget() is page.empty_label
    assert "Import customers from IT Glue" in page.empty_label.text()
    assert page.findChild(type(page.empty_label), "agents_empty") is not None
    assert not page.automatch_button.isEnabled()  # no customer chosen


def test_seeded_accounts_show_their_match_state(qtbot, signed_in, seeder):
    seeder.connect_itglue()
    seeder.call("POST", "/api/v1/customers/import-itglue")
    northwind = seeder.customers()["Northwind Traders"]
    backup = seeder.account(northwind["id"], "Backup service", "svc-backup", kind="service",
                            itglue_password_id="9001")
    seeder.account(northwind["id"], "Jane Cooper", "jcooper", kind="end_user")

    _app, page = signed_in()
    shown = rows(page)
    assert shown["Backup service"][M.KIND] == "Service"
    assert shown["Backup service"][M.CUSTOMER] == "Northwind Traders"
    assert shown["Backup service"][M.SOURCE] == "Active Directory \u00b7 corp-ad \u00b7 svc-backup"
    assert shown["Backup service"][M.PASSWORD] == password_shown(backup)
    assert "9001" not in shown["Backup service"][M.PASSWORD]
    assert shown["Jane Cooper"][M.PASSWORD] == "Not matched"
    assert shown["Jane Cooper"][M.LAST_RESET] == "Never"
    assert shown["Jane Cooper"][M.RESULT] == "\u2014"
    assert page.summary.text() == "2 accounts \u00b7 1 matched \u00b7 1 not matched"

    # The text filter narrows the table; a filter with no hits says so.
    qtbot.keyClicks(page.search, "jcoop")
    assert list(rows(page)) == ["Jane Cooper"]
    qtbot.keyClicks(page.search, "zzz")
    assert page.stack.currentWidget() is page.empty_label
    assert "No accounts match these filters" in page.empty_label.text()


def test_automatch_from_the_page_updates_the_table(qtbot, signed_in, seeder):
    seeder.connect_itglue()
    seeder.call("POST", "/api/v1/customers/import-itglue")
    customers = seeder.customers()
    northwind, contoso = customers["Northwind Traders"], customers["Contoso Dental"]
    seeder.account(northwind["id"], "Domain Admin", "NWT\\administrator")
    seeder.account(northwind["id"], "Backup service", "svc-backup", kind="service")
    seeder.account(northwind["id"], "Reception PC", "localadmin", source_type="local")
    seeder.account(northwind["id"], "Jane Cooper", "jcooper", kind="end_user")
    seeder.account(contoso["id"], "Practice manager", "jsmith", kind="end_user")

    _app, page = signed_in()
    assert all(row[M.PASSWORD] == "Not matched" for row in rows(page).values())
    select_customer(page, "Northwind Traders")
    assert set(rows(page)) == {"Domain Admin", "Backup service", "Reception PC", "Jane Cooper"}
    assert page.automatch_button.isEnabled()

    click_and_settle(qtbot, page.automatch_button, page)
    assert page.banner.kind == "success"
    assert page.banner.label.text() == "Matched 3 accounts for Northwind Traders."
    expected = {a["display_name"]: a for a in seeder.call("GET", "/api/v1/accounts")["accounts"]}
    shown = rows(page)
    for name in ("Domain Admin", "Backup service", "Reception PC"):
        assert expected[name]["itglue_password_id"]
        assert shown[name][M.PASSWORD] == password_shown(expected[name])
    assert shown["Jane Cooper"][M.PASSWORD] == "Not matched"  # no IT Glue password "jcooper"
    select_customer(page, "All customers")
    assert rows(page)["Practice manager"][M.PASSWORD] == "Not matched"  # other customer

    # Again: nothing new to match, and the page says so rather than staying silent.
    select_customer(page, "Northwind Traders")
    click_and_settle(qtbot, page.automatch_button, page)
    assert page.banner.kind == "info"
    assert page.banner.label.text().startswith("No new matches for Northwind Traders")


def test_import_customers_fills_the_customer_filter(qtbot, signed_in, seeder):
    seeder.connect_itglue()
    seeder.call("POST", "/api/v1/customers", 201, json={"name": "Contoso Dental"})
    _app, page = signed_in()
    assert page.customer_combo.count() == 2  # All customers + the unlinked one
    assert page.customer_combo.itemText(1) == "Contoso Dental (not in IT Glue)"

    click_and_settle(qtbot, page.import_button, page)
    assert page.banner.kind == "success"
    assert page.banner.label.text() == ("Imported from IT Glue: added 2 customers and linked "
                                        "1 existing customer.")
    names = [page.customer_combo.itemText(i) for i in range(page.customer_combo.count())]
    assert names == ["All customers", "Contoso Dental", "Fabrikam Logistics",
                     "Northwind Traders"]
    assert "Automatch" in page.empty_label.text()

    click_and_settle(qtbot, page.import_button, page)
    assert page.banner.label.text() == "Every IT Glue organization already has a customer here."


def test_add_agent_shows_a_working_enrollment_command_once(qtbot, signed_in, tenant_proc):
    app, page = signed_in()
    qtbot.mouseClick(page.add_agent_button, Qt.MouseButton.LeftButton)
    dialog = page.add_agent_dialog
    assert dialog is not None and dialog.isVisible()
    assert not dialog.create_button.isEnabled()  # a name first
    qtbot.keyClicks(dialog.name_edit, "dc1")
    click_and_settle(qtbot, dialog.create_button, page)

    command = dialog.command_field.text()
    prefix = f"qp-agent enroll --tenant {tenant_proc.url} --code "
    assert command.startswith(prefix)
    code = command.removeprefix(prefix)
    assert code and " " not in code
    assert "expires" in dialog.expiry_label.text() and "only now" in dialog.expiry_label.text()
    # The dialog grew to show the whole sentence under the command, not a clipped line.
    label = dialog.expiry_label
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()), timeout=WAIT)
    assert dialog.rect().contains(label.geometry().translated(
        label.parentWidget().mapTo(dialog, label.parentWidget().rect().topLeft())))

    # Copy goes through the safe clipboard: the password-manager hint and the clear.
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    mime = QGuiApplication.clipboard().mimeData()
    assert mime.text() == command
    assert bytes(mime.data(PASSWORD_HINT_MIME).data()) == b"secret"
    assert app.clipboard.pending_clear
    assert code not in tenant_proc.log_text()

    # The code really enrolls an agent; closing the dialog refreshes the agents.
    with httpx.Client(base_url=tenant_proc.url, timeout=20) as http:
        r = http.post("/api/v1/agent/enroll",
                      json={"code": code, "name": "dc1", "hostname": "dc1.acme.test"})
        assert r.status_code == 201, r.text
        token = r.json()["agent_token"]
        r = http.post("/api/v1/agent/heartbeat", json={"directories": []},
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert page.add_agent_dialog is None
    qtbot.waitUntil(lambda: page.findChild(type(page.summary), "agent_status_0") is not None,
                    timeout=WAIT)
    qtbot.waitUntil(lambda: not page.tasks.busy, timeout=WAIT)
    name = page.findChild(type(page.summary), "agent_name_0")
    status = page.findChild(type(page.summary), "agent_status_0")
    assert "dc1" in name.text() and "dc1.acme.test" in name.text()
    assert status.text().startswith("Online")


def test_a_tenant_error_shows_its_sentence(qtbot, signed_in, seeder):
    # IT Glue is not connected: the tenant refuses the import with a sentence to act on.
    r = seeder.http.post("/api/v1/customers/import-itglue", headers=seeder.headers)
    assert r.status_code == 409
    expected = r.json()["error"]["message"]

    _app, page = signed_in()
    click_and_settle(qtbot, page.import_button, page)
    assert page.banner.kind == "error"
    assert page.banner.label.text() == expected
    assert page.import_button.isEnabled()  # ready to try again
