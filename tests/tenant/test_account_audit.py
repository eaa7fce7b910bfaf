"""Changes to accounts are recorded, mailed when they move a matched password's target, and
never clear loop protection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL
from tests.support.pipeline import start_tenant, wait_for, wait_for_trigger_event
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.support.smtp import SmtpServer, smtp_server
from tests.tenant.conftest import sign_in
from tests.tenant.test_pipeline import BACKUP_SERVICE, DOMAIN_ADMIN, DOMAIN_ADMIN_VALUE, World

__all__ = ["smtp_server"]  # fixture used by name below

ADMINISTRATOR_DN = "cn=Administrator,cn=Users,dc=example,dc=test"


@pytest.fixture
def mailed_world(tmp_path: Path, tenant_template: Path, itglue_emulator: EmulatorProcess,
                 smtp_server: SmtpServer) -> Iterator[World]:
    """The pipeline world with alert mail going to a real SMTP server."""
    tenant: TenantProcess = start_tenant(tmp_path, tenant_template, itglue_emulator.url,
                                         env={"QP_ALERT_BATCH_SECONDS": "0",
                                              **smtp_server.env()})
    try:
        with httpx.Client(base_url=tenant.url, timeout=10) as http:
            world = World(tenant, http, sign_in(http))
            r = world.api.put("/api/v1/alerts", json={"recipients": ["ops@acme.test"]})
            assert r.status_code == 200, r.text
            yield world
    finally:
        tenant.stop()


def _patch(world: World, account_id: int, body: dict[str, Any]) -> dict[str, Any]:
    r = world.http.patch(f"/api/v1/accounts/{account_id}", json=body, headers=world.api.h())
    assert r.status_code == 200, r.text
    return dict(r.json())


def _account_events(world: World, type_: str, account_id: int) -> list[dict[str, Any]]:
    return [e for e in world.api.events(type=type_)
            if e["details"].get("account_id") == account_id]


def test_a_change_of_identity_and_match_is_logged_with_old_and_new_values_and_the_actor(
        mailed_world: World) -> None:
    world = mailed_world
    account = world.account
    created = _account_events(world, "account.created", account["id"])
    assert len(created) == 1
    assert created[0]["details"]["changes"]["source.identity"] == {
        "old": None, "new": "uid=administrator,ou=people,dc=example,dc=test"}
    assert created[0]["details"]["actor"] == ADMIN_EMAIL

    _patch(world, account["id"], {"source": {"identity": ADMINISTRATOR_DN},
                                  "itglue_password_id": BACKUP_SERVICE})

    [updated] = _account_events(world, "account.updated", account["id"])
    assert updated["details"]["changes"] == {
        "source.identity": {"old": "uid=administrator,ou=people,dc=example,dc=test",
                            "new": ADMINISTRATOR_DN},
        "itglue_password_id": {"old": str(DOMAIN_ADMIN), "new": str(BACKUP_SERVICE)},
    }
    assert updated["details"]["actor"] == ADMIN_EMAIL and updated["details"]["actor_id"]
    assert updated["severity"] == "warning"
    assert ADMIN_EMAIL in updated["summary"] and ADMINISTRATOR_DN in updated["summary"]

    # A PATCH that changes nothing logs nothing; a rename logs only the rename.
    _patch(world, account["id"], {"source": {"identity": ADMINISTRATOR_DN}})
    _patch(world, account["id"], {"display_name": "Renamed"})
    updates = _account_events(world, "account.updated", account["id"])
    assert len(updates) == 2
    assert updates[0]["details"]["changes"] == {
        "display_name": {"old": "Northwind domain admin", "new": "Renamed"}}
    assert updates[0]["severity"] == "info"

    r = world.api.delete(f"/api/v1/accounts/{account['id']}")
    assert r.status_code == 204
    [deleted] = _account_events(world, "account.deleted", account["id"])
    assert deleted["details"]["changes"]["source.identity"] == {"old": ADMINISTRATOR_DN,
                                                                "new": None}
    for event in [*created, *updates, deleted]:
        assert DOMAIN_ADMIN_VALUE not in str(event)


def test_a_source_change_on_a_matched_account_mails_the_alert_recipients(
        mailed_world: World, smtp_server: SmtpServer) -> None:
    world = mailed_world
    _patch(world, world.account["id"], {"source": {"identity": ADMINISTRATOR_DN}})

    [mail] = smtp_server.wait_for(1)
    assert mail.recipients == ["ops@acme.test"]
    assert "source of account Northwind domain admin" in mail.subject
    assert (f"{ADMIN_EMAIL} changed the source of account Northwind domain admin (matched to "
            f"IT Glue password {DOMAIN_ADMIN}) from openldap account "
            "'uid=administrator,ou=people,dc=example,dc=test'") in " ".join(mail.text.split())
    assert ADMINISTRATOR_DN in mail.text
    wait_for(lambda: world.api.events(type="alert.sent"), 20, "alert.sent")

    # An unmatched account's source may move without mail; a rename never mails.
    other = world.add_account("Spare", None, identity="uid=spare,ou=people,dc=example,dc=test")
    _patch(world, other["id"], {"source": {"identity": "uid=spare2,ou=people,dc=example,dc=test"}})
    _patch(world, world.account["id"], {"display_name": "Renamed"})
    _patch(world, world.account["id"], {"source": {"directory": "other-ldap"}})
    assert len(smtp_server.wait_for(2)) == 2
    wait_for(lambda: len(world.api.events(type="alert.sent")) == 2, 20, "the second alert.sent")
    assert len(smtp_server.messages) == 2


def test_a_rematch_keeps_loop_protection_so_a_replayed_trigger_is_not_applied_again(
        mailed_world: World) -> None:
    world = mailed_world
    trigger = world.fire()
    job = world.next_job()
    assert world.result(job["id"], ok=True).status_code == 200
    wait_for_trigger_event(world.api, trigger, "password_reset.succeeded")

    # Re-match away and back (what the probe did to clear loop protection), then replay.
    _patch(world, world.account["id"], {"itglue_password_id": BACKUP_SERVICE})
    _patch(world, world.account["id"], {"itglue_password_id": DOMAIN_ADMIN})
    replay = world.api.post(f"/api/v1/events/{trigger}/replay")
    assert replay.status_code == 202 and replay.json()["status"] == "started"

    skipped = wait_for(lambda: [e for e in world.api.events(type="password_reset.skipped")
                                if e["details"]["job_id"] == replay.json()["job_id"]],
                       20, "the skip")[0]
    assert "already applied" in skipped["summary"]
    queued = [e for e in world.api.events(type="password_reset.queued")
              if e["details"].get("trigger_event_id") == trigger]
    assert len(queued) == 1
    assert world.poll(wait=0).status_code == 204
