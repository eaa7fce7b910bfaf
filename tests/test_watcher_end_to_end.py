"""End to end without any webhook: the tenant's IT Glue watcher finds a change itself.

A local tenant (no public URL, no workflow URL) with the watcher every second: a password
changed in (emulated) IT Glue → the watcher lists it → tenant pipeline → the real
``qp-agent run`` subprocess → Password Modify in a real slapd.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import (
    LdapUser,
    Slapd,
)
from tests.support.pipeline import (
    DOMAIN_ADMIN,
    change_in_itglue,
    ldap_world,
    wait_for,
    wait_for_trigger_event,
)
from tests.support.processes import EmulatorProcess

# The real slapd fixtures of the agent suite.
slapd = agent_fixtures.slapd
ldap_user = agent_fixtures.ldap_user

pytestmark = pytest.mark.slapd


def test_with_no_webhook_at_all_a_change_reaches_the_directory_through_the_watcher(
        tmp_path: Path, tenant_template: Path, emulator: EmulatorProcess, slapd: Slapd,
        ldap_user: LdapUser) -> None:
    with ldap_world(tmp_path, tenant_template, emulator.url, slapd.url, ldap_user.dn,
                    env={"QP_ITGLUE_WATCH_SECONDS": "1"}, workflow_url=False) as world:
        api = world.api
        # A technician changes the password in IT Glue; nothing calls the tenant.
        new_password = "Watched-Harbor-2031!"
        change_in_itglue(emulator.url, DOMAIN_ADMIN, new_password, "Dana Whitfield")

        trigger = wait_for(
            lambda: next((e for e in api.events(type="workflow_trigger.received")
                          if e["details"].get("found_by") == "watcher"), None),
            30, "the watcher finding the change")
        succeeded = wait_for_trigger_event(api, trigger["id"], "password_reset.succeeded", 60)
        assert succeeded["account"] == "Northwind directory admin"
        world.assert_applied(slapd, ldap_user, new_password, by="Dana Whitfield")
        assert not api.events(type="workflow_trigger.webhook_missing")
    assert "Watched-Harbor-2031!" not in world.agent_output
    assert "Watched-Harbor-2031!" not in world.tenant.log_text()
