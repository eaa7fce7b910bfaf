"""End to end: a password changed in (emulated) IT Glue lands in a real OpenLDAP directory.

IT Glue emulator → the workflow's webhook POST → tenant pipeline → the real ``qp-agent run``
subprocess (enrolled with a code from the API) → Password Modify in a real slapd → events
show queued then succeeded, and a bind with the new password works.
"""

from __future__ import annotations

from pathlib import Path

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
    DOMAIN_ADMIN,
    change_in_itglue,
    ldap_world,
    wait_for_trigger_event,
    workflow_call,
)
from tests.support.processes import EmulatorProcess

# The real slapd fixtures of the agent suite.
slapd = agent_fixtures.slapd
ldap_user = agent_fixtures.ldap_user

pytestmark = pytest.mark.slapd


def test_a_password_changed_in_itglue_is_applied_to_ldap_by_the_agent(
        tmp_path: Path, tenant_template: Path, emulator: EmulatorProcess, slapd: Slapd,
        ldap_user: LdapUser) -> None:
    with ldap_world(tmp_path, tenant_template, emulator.url, slapd.url,
                    ldap_user.dn) as world:
        api, workflow_url, account = world.api, world.workflow_url, world.account
        assert workflow_url is not None

        # A technician changes the password in IT Glue; its workflow posts the webhook.
        new_password = "Harbor-Lights-2031!"
        changed = change_in_itglue(emulator.url, DOMAIN_ADMIN, new_password, "Dana Whitfield")
        hook = workflow_call(workflow_url, changed)
        assert hook.status_code == 202 and hook.json()["status"] == "accepted", hook.text
        trigger = hook.json()["event_id"]

        succeeded = wait_for_trigger_event(api, trigger, "password_reset.succeeded", 60)
        queued = wait_for_trigger_event(api, trigger, "password_reset.queued")
        assert queued["id"] < succeeded["id"]
        assert succeeded["account"] == "Northwind directory admin"
        assert succeeded["resource_name"] == "Domain Admin"
        world.assert_applied(slapd, ldap_user, new_password, by="Dana Whitfield")

        # The account is pointed at the directory's own administrator, outside the
        # agent's base DN: the agent refuses, and the refusal is the event's reason.
        moved = world.http.patch(f"/api/v1/accounts/{account['id']}", headers=api.h(),
                                 json={"source": {"identity": ADMIN_DN}})
        assert moved.status_code == 200, moved.text
        changed = change_in_itglue(emulator.url, DOMAIN_ADMIN, "Taken-Over-2031!")
        hook = workflow_call(workflow_url, changed, note="second change")
        assert hook.status_code == 202 and hook.json()["status"] == "accepted", hook.text
        failed = wait_for_trigger_event(api, hook.json()["event_id"],
                                        "password_reset.failed", 60)
        refusal = (f"The agent refused: {ADMIN_DN} is outside the directory's base DN "
                   f"{PEOPLE_DN} (directory 'corp-ldap')")
        assert failed["details"]["reason"].startswith(refusal)
        assert refusal in failed["summary"]
        assert slapd.can_bind(ADMIN_DN, ADMIN_PASSWORD)
    assert "Harbor-Lights-2031!" not in world.agent_output
    assert "Taken-Over-2031!" not in world.agent_output
