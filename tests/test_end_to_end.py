"""End to end: a password changed in (emulated) IT Glue lands in a real OpenLDAP directory.

IT Glue emulator → the workflow's webhook POST → tenant pipeline → the real ``qp-agent run``
subprocess (enrolled with a code from the API) → Password Modify in a real slapd → events
show queued then succeeded, and a bind with the new password works.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import (
    ADMIN_DN,
    ADMIN_PASSWORD,
    PEOPLE_DN,
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
from tests.support.tenant_api import sign_in

# The real slapd fixtures of the agent suite.
slapd = agent_fixtures.slapd
ldap_user = agent_fixtures.ldap_user

DOMAIN_ADMIN = 5001  # the emulator's demo "Domain Admin" password in Northwind Traders

pytestmark = pytest.mark.slapd


def test_a_password_changed_in_itglue_is_applied_to_ldap_by_the_agent(
        tmp_path: Path, tenant_template: Path, emulator: EmulatorProcess, slapd: Slapd,
        ldap_user: LdapUser) -> None:
    tenant = start_tenant(tmp_path, tenant_template, emulator.url)
    agent: subprocess.Popen[str] | None = None
    try:
        with httpx.Client(base_url=tenant.url, timeout=10) as http:
            api = sign_in(http)
            connect_itglue(api)
            assert api.post("/api/v1/customers/import-itglue").status_code == 200
            northwind = next(c["id"] for c in api.get("/api/v1/customers").json()["customers"]
                             if c["name"] == "Northwind Traders")
            workflow_url = api.generate()

            # Enroll the real agent with a code from the API.
            code = api.post("/api/v1/agents/enrollment-codes", json={"name": "ldap-1"})
            assert code.status_code == 201, code.text
            agent = start_ldap_agent(tmp_path, tenant.url, code.json()["code"], slapd.url)
            agent_id = wait_for(
                lambda: next((a["id"] for a in api.get("/api/v1/agents").json()["agents"]
                              if a["status"] == "online"
                              and [(d["name"], d["kind"]) for d in a["directories"]]
                              == [("corp-ldap", "openldap")]), None),
                30, "the agent online with its directory")

            account = api.post("/api/v1/accounts", json={
                "customer_id": northwind, "kind": "administrator",
                "display_name": "Northwind directory admin",
                "source": {"type": "openldap", "agent_id": agent_id,
                           "directory": "corp-ldap", "identity": ldap_user.dn},
                "itglue_password_id": DOMAIN_ADMIN,
            })
            assert account.status_code == 201, account.text

            # A technician changes the password in IT Glue; its workflow posts the webhook.
            new_password = "Harbor-Lights-2031!"
            changed = httpx.post(f"{emulator.url}/_emulator/passwords/{DOMAIN_ADMIN}/change",
                                 json={"password": new_password, "updated_by": "Dana Whitfield"})
            assert changed.status_code == 200, changed.text
            hook = httpx.post(workflow_url, json={"resourceUrl": changed.json()["resource_url"],
                                                  "resourceName": changed.json()["resource_name"]})
            assert hook.status_code == 202 and hook.json()["status"] == "accepted", hook.text
            trigger = hook.json()["event_id"]

            succeeded = wait_for_trigger_event(api, trigger, "password_reset.succeeded", 60)
            queued = wait_for_trigger_event(api, trigger, "password_reset.queued")
            assert queued["id"] < succeeded["id"]
            assert succeeded["account"] == "Northwind directory admin"
            assert succeeded["resource_name"] == "Domain Admin"
            assert slapd.can_bind(ldap_user.dn, new_password)
            assert not slapd.can_bind(ldap_user.dn, ldap_user.password)

            after = api.get(f"/api/v1/accounts/{account.json()['id']}").json()
            assert after["last_result"] == "succeeded"
            assert after["last_reset_by"] == "Dana Whitfield"
            assert new_password not in str(api.events(limit=500))

            # The account is pointed at the directory's own administrator, outside the
            # agent's base DN: the agent refuses, and the refusal is the event's reason.
            moved = http.patch(f"/api/v1/accounts/{account.json()['id']}", headers=api.h(),
                               json={"source": {"identity": ADMIN_DN}})
            assert moved.status_code == 200, moved.text
            changed = httpx.post(f"{emulator.url}/_emulator/passwords/{DOMAIN_ADMIN}/change",
                                 json={"password": "Taken-Over-2031!"})
            hook = httpx.post(workflow_url, json={"resourceUrl": changed.json()["resource_url"],
                                                  "resourceName": "Domain Admin",
                                                  "note": "second change"})
            assert hook.status_code == 202 and hook.json()["status"] == "accepted", hook.text
            failed = wait_for_trigger_event(api, hook.json()["event_id"],
                                            "password_reset.failed", 60)
            refusal = (f"The agent refused: {ADMIN_DN} is outside the directory's base DN "
                       f"{PEOPLE_DN} (directory 'corp-ldap')")
            assert failed["details"]["reason"].startswith(refusal)
            assert refusal in failed["summary"]
            assert slapd.can_bind(ADMIN_DN, ADMIN_PASSWORD)
    finally:
        if agent is not None:
            agent.terminate()
            try:
                output, _ = agent.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                agent.kill()
                output, _ = agent.communicate()
            assert "Harbor-Lights-2031!" not in output
            assert "Taken-Over-2031!" not in output
        tenant.stop()

