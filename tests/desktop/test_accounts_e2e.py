"""End to end from the app: the technician matches an account to an IT Glue password in the
Match dialog, then a change of that password in (emulated) IT Glue reaches a real OpenLDAP
directory through the real agent."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import LdapUser, Slapd
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.desktop.helpers import WAIT, fill_sign_in, start, submit_and_wait
from tests.support.pipeline import (
    DOMAIN_ADMIN,
    change_in_itglue,
    import_customers,
    start_ldap_agent,
    start_tenant,
    stop_agent,
    workflow_call,
)
from tests.support.processes import EmulatorProcess
from tests.tenant.conftest import sign_in

slapd = agent_fixtures.slapd
ldap_user = agent_fixtures.ldap_user


pytestmark = pytest.mark.slapd


def test_matched_in_the_dialog_then_a_change_in_itglue_reaches_ldap(
        qtbot, make_app, memory_keyring, tmp_path: Path, tenant_template: Path,
        emulator: EmulatorProcess, slapd: Slapd, ldap_user: LdapUser) -> None:
    tenant = start_tenant(tmp_path, tenant_template, emulator.url)
    agent: subprocess.Popen[str] | None = None
    http = httpx.Client(base_url=tenant.url, timeout=10)
    try:
        api = sign_in(http)
        northwind = import_customers(api)["Northwind Traders"]
        workflow_url = api.generate()
        code = api.post("/api/v1/agents/enrollment-codes", json={"name": "ldap-1"}).json()
        agent = start_ldap_agent(tmp_path, tenant.url, code["code"], slapd.url)

        def online() -> int | None:
            return next((a["id"] for a in api.get("/api/v1/agents").json()["agents"]
                         if a["status"] == "online"), None)
        qtbot.waitUntil(lambda: online() is not None, timeout=60_000)
        agent_id = online()

        def account() -> dict[str, Any] | None:
            return next((a for a in api.get("/api/v1/accounts").json()["accounts"]
                         if a["source"].get("identity") == ldap_user.dn), None)
        # The agent's directory sync reports the user where the tenant has it; else the
        # admin adds it (the same source either way).
        if account() is None:
            created = api.post("/api/v1/accounts", json={
                "customer_id": northwind, "kind": "administrator",
                "display_name": "Northwind directory admin",
                "source": {"type": "openldap", "agent_id": agent_id, "directory": "corp-ldap",
                           "identity": ldap_user.dn}})
            assert created.status_code == 201, created.text
        target = account()
        assert target is not None and target["itglue_password_id"] is None

        # The technician matches it in the app, picking the password by name.
        app = make_app(tenant_url=tenant.url)
        start(qtbot, app)
        fill_sign_in(qtbot, app.sign_in, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
        submit_and_wait(qtbot, app.sign_in)
        qtbot.waitUntil(lambda: app.main_window is not None, timeout=WAIT)
        app.main_window.show_page("accounts")
        page = app.main_window.page("accounts")
        page.activate()
        qtbot.waitUntil(lambda: page.loaded and not page.tasks.busy, timeout=WAIT)
        assert page.select_account(target["id"])
        dialog = page.open_match_dialog()
        assert dialog is not None
        qtbot.waitUntil(lambda: dialog.list.topLevelItemCount() > 0, timeout=WAIT)
        qtbot.keyClicks(dialog.search, "domain")
        assert dialog.choose("Domain Admin")
        dialog.match_button.click()
        qtbot.waitUntil(lambda: (account() or {}).get("itglue_password_id") == str(DOMAIN_ADMIN),
                        timeout=WAIT)

        # A change in IT Glue reaches the directory.
        new_password = "Harbor-Lights-2031!"
        changed = change_in_itglue(emulator.url, DOMAIN_ADMIN, new_password, "Dana Whitfield")
        hook = workflow_call(workflow_url, changed)
        assert hook.status_code == 202, hook.text
        qtbot.waitUntil(lambda: slapd.can_bind(ldap_user.dn, new_password), timeout=60_000)
        page.activate()
        qtbot.waitUntil(lambda: not page.tasks.busy and page.model.by_id(target["id"])
                        .last_result == "succeeded", timeout=WAIT)
    finally:
        http.close()
        stop_agent(agent)
        tenant.stop()
