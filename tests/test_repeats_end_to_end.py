"""End to end: two changes of one IT Glue password inside the duplicate window both reach a
real OpenLDAP directory, and the same delivery sent again is not applied twice.

IT Glue's workflow posts the same body (``resourceUrl`` + ``resourceName``) for every change
of a password, so the second change's webhook is answered ``duplicate``; the tenant still
reads the current value and the real ``qp-agent`` writes it to slapd.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import LdapUser, Slapd
from tests.support.pipeline import DOMAIN_ADMIN, change_in_itglue, ldap_world, wait_for
from tests.support.processes import EmulatorProcess
from tests.tenant.conftest import Api

slapd = agent_fixtures.slapd
ldap_user = agent_fixtures.ldap_user

# Two processes, slapd and two resets through the real agent: more than the default
# per-test limit on a loaded machine.
pytestmark = [pytest.mark.slapd, pytest.mark.timeout(300)]


def _hook(workflow_url: str, body: dict[str, str]) -> dict[str, Any]:
    hook = httpx.post(workflow_url, json=body)
    assert hook.status_code == 202, hook.text
    return dict(hook.json())


def _change_and_hook(emulator: EmulatorProcess, workflow_url: str, password: str
                     ) -> dict[str, Any]:
    """The technician's change in IT Glue, then the workflow's webhook for it."""
    changed = change_in_itglue(emulator.url, DOMAIN_ADMIN, password, "Dana Whitfield")
    return _hook(workflow_url, {"resourceUrl": changed["resource_url"],
                                "resourceName": changed["resource_name"]})


def _succeeded(api: Api) -> list[dict[str, Any]]:
    return api.events(type="password_reset.succeeded", limit=500)


def test_two_changes_within_the_window_both_reach_ldap_and_a_redelivery_applies_once(
        tmp_path: Path, tenant_template: Path, emulator: EmulatorProcess, slapd: Slapd,
        ldap_user: LdapUser) -> None:
    with ldap_world(tmp_path, tenant_template, emulator.url, slapd.url,
                    ldap_user.dn) as world:
        api, workflow_url = world.api, world.workflow_url
        assert workflow_url is not None

        first = _change_and_hook(emulator, workflow_url, "Morning-Tide-2031!")
        assert first["status"] == "accepted"
        wait_for(lambda: len(_succeeded(api)) == 1, 60, "the first change applied")
        assert slapd.can_bind(ldap_user.dn, "Morning-Tide-2031!")

        # Thirty seconds later (inside the 10-minute window) the technician changes it
        # again: IT Glue's body is identical, so the webhook is a "duplicate".
        second = _change_and_hook(emulator, workflow_url, "Evening-Tide-2031!")
        assert second == {"event_id": first["event_id"], "status": "duplicate"}
        wait_for(lambda: len(_succeeded(api)) == 2, 60, "the second change applied")
        assert slapd.can_bind(ldap_user.dn, "Evening-Tide-2031!")
        assert not slapd.can_bind(ldap_user.dn, "Morning-Tide-2031!")

        # IT Glue delivers the same webhook once more: checked, skipped, said so.
        delivered = api.get(f"/api/v1/events/{first['event_id']}").json()
        again = _hook(workflow_url, {"resourceUrl": delivered["resource_url"],
                                     "resourceName": delivered["resource_name"]})
        assert again == {"event_id": first["event_id"], "status": "duplicate"}
        skipped = wait_for(lambda: api.events(type="password_reset.skipped"), 30,
                           "the redelivery's skipped event")
        assert skipped[0]["summary"].startswith(
            "Triggered again; the value in IT Glue is unchanged")
        assert len(_succeeded(api)) == 2
        assert slapd.can_bind(ldap_user.dn, "Evening-Tide-2031!")
    assert "Morning-Tide-2031!" not in world.agent_output
    assert "Evening-Tide-2031!" not in world.agent_output
