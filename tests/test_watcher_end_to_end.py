"""End to end without any webhook: the tenant's IT Glue watcher finds a change itself.

A local tenant (no public URL, no workflow URL) with the watcher every second: a password
changed in (emulated) IT Glue → the watcher lists it → tenant pipeline → the real
``qp-agent run`` subprocess → Password Modify in a real slapd.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import (
    LdapUser,
    Slapd,
)
from tests.support.pipeline import (
    connect_itglue,
    start_ldap_agent,
    start_tenant,
    wait_for,
    wait_for_trigger_event,
)
from tests.support.processes import EmulatorProcess
from tests.tenant.conftest import sign_in

# The real slapd fixtures of the agent suite.
slapd = agent_fixtures.slapd
ldap_user = agent_fixtures.ldap_user

DOMAIN_ADMIN = 5001  # the emulator's demo "Domain Admin" password in Northwind Traders

pytestmark = pytest.mark.slapd


def test_with_no_webhook_at_all_a_change_reaches_the_directory_through_the_watcher(
        tmp_path: Path, tenant_template: Path, emulator: EmulatorProcess, slapd: Slapd,
        ldap_user: LdapUser) -> None:
    tenant = start_tenant(tmp_path, tenant_template, emulator.url,
                          env={"QP_ITGLUE_WATCH_SECONDS": "1"})
    agent: subprocess.Popen[str] | None = None
    try:
        with httpx.Client(base_url=tenant.url, timeout=10) as http:
            api = sign_in(http)
            connect_itglue(api)
            assert api.post("/api/v1/customers/import-itglue").status_code == 200
            northwind = next(c["id"] for c in api.get("/api/v1/customers").json()["customers"]
                             if c["name"] == "Northwind Traders")
            code = api.post("/api/v1/agents/enrollment-codes", json={"name": "ldap-1"})
            assert code.status_code == 201, code.text
            agent = start_ldap_agent(tmp_path, tenant.url, code.json()["code"], slapd.url)
            agent_id = wait_for(
                lambda: next((a["id"] for a in api.get("/api/v1/agents").json()["agents"]
                              if a["status"] == "online" and a["directories"]), None),
                30, "the agent online with its directory")
            account = api.post("/api/v1/accounts", json={
                "customer_id": northwind, "kind": "administrator",
                "display_name": "Northwind directory admin",
                "source": {"type": "openldap", "agent_id": agent_id,
                           "directory": "corp-ldap", "identity": ldap_user.dn},
                "itglue_password_id": DOMAIN_ADMIN,
            })
            assert account.status_code == 201, account.text

            # A technician changes the password in IT Glue; nothing calls the tenant.
            new_password = "Watched-Harbor-2031!"
            changed = httpx.post(f"{emulator.url}/_emulator/passwords/{DOMAIN_ADMIN}/change",
                                 json={"password": new_password, "updated_by": "Dana Whitfield"})
            assert changed.status_code == 200, changed.text

            trigger = wait_for(
                lambda: next((e for e in api.events(type="workflow_trigger.received")
                              if e["details"].get("found_by") == "watcher"), None),
                30, "the watcher finding the change")
            succeeded = wait_for_trigger_event(api, trigger["id"], "password_reset.succeeded",
                                               60)
            assert succeeded["account"] == "Northwind directory admin"
            assert slapd.can_bind(ldap_user.dn, new_password)
            assert not slapd.can_bind(ldap_user.dn, ldap_user.password)
            after = api.get(f"/api/v1/accounts/{account.json()['id']}").json()
            assert after["last_result"] == "succeeded"
            assert after["last_reset_by"] == "Dana Whitfield"
            assert not api.events(type="workflow_trigger.webhook_missing")
            assert new_password not in str(api.events(limit=500))
    finally:
        if agent is not None:
            agent.terminate()
            try:
                output, _ = agent.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                agent.kill()
                output, _ = agent.communicate()
            assert "Watched-Harbor-2031!" not in output
        tenant.stop()
    assert "Watched-Harbor-2031!" not in tenant.log_text()
