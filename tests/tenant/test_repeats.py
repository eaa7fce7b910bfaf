"""Repeated triggers and "Reset again from IT Glue", through a real tenant process.

IT Glue sends the same body (``resourceUrl`` + ``resourceName``) for every change of one
password, so a second real change within the duplicate window looks like a retry of the
first. The tenant answers it ``duplicate`` but still checks the password: a changed value is
applied, an unchanged one is skipped with an event that says so. The agent here is this test
speaking the agent contract over HTTP; tests/test_repeats_end_to_end.py runs the real agent
against slapd.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.pipeline import change_in_itglue, db_rows, start_tenant, wait_for
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.support.tenant_api import ADMIN_EMAIL, sign_in
from tests.tenant.test_pipeline import DOMAIN_ADMIN, World


class RepeatWorld(World):
    """test_pipeline's world, with an IT Glue emulator of its own."""

    emulator_url = ""


@pytest.fixture
def world(tmp_path: Path, tenant_template: Path, emulator: EmulatorProcess
          ) -> Iterator[RepeatWorld]:
    tenant = start_tenant(tmp_path, tenant_template, emulator.url)
    try:
        with httpx.Client(base_url=tenant.url, timeout=10) as http:
            w = RepeatWorld(tenant, http, sign_in(http))
            w.emulator_url = emulator.url
            yield w
    finally:
        tenant.stop()


def change(world: RepeatWorld, password: str, password_id: int = DOMAIN_ADMIN) -> None:
    """A technician changes the password in IT Glue (the webhook is sent separately)."""
    change_in_itglue(world.emulator_url, password_id, password, "Dana Whitfield")


def webhook(world: RepeatWorld) -> dict[str, Any]:
    """IT Glue's workflow call for the password: the same body for every change."""
    r = httpx.post(world.url, json={
        "resourceUrl": "https://acme.itglue.com/101/passwords/5001",
        "resourceName": "Domain Admin"}, timeout=10)
    assert r.status_code == 202, r.text
    return dict(r.json())


def jobs(world: RepeatWorld) -> list[Any]:
    return db_rows(world.tenant, "SELECT * FROM reset_jobs ORDER BY id")


def settled(world: RepeatWorld) -> list[Any]:
    """Every check has left ``pending`` (resolved into a queued job or ended)."""
    rows = jobs(world)
    return rows if rows and all(r["state"] != "pending" for r in rows) else []


def events_of(world: RepeatWorld, type_: str) -> list[dict[str, Any]]:
    return world.api.events(type=type_, limit=500)


def test_two_changes_of_one_password_within_the_window_are_both_applied(
        world: World) -> None:
    change(world, "First-Change-2031!")
    first = webhook(world)
    assert first["status"] == "accepted"
    job = world.next_job()
    assert job["password"] == "First-Change-2031!"
    assert world.result(job["id"], ok=True).status_code == 200

    # Thirty seconds later, well inside the 10-minute window, the password changes again.
    change(world, "Second-Change-2031!")
    second = webhook(world)
    assert second == {"event_id": first["event_id"], "status": "duplicate"}
    job = world.next_job()
    assert job["password"] == "Second-Change-2031!"
    assert world.result(job["id"], ok=True).status_code == 200

    succeeded = events_of(world, "password_reset.succeeded")
    assert len(succeeded) == 2
    repeat = next(e for e in succeeded if e["details"].get("job_id") == job["id"])
    assert repeat["details"]["origin"] == "repeat"
    assert repeat["details"]["trigger_event_id"] == first["event_id"]
    queued = [e for e in events_of(world, "password_reset.queued")
              if e["details"].get("job_id") == job["id"]]
    assert "IT Glue triggered this password again" in queued[0]["summary"]
    assert "Second-Change-2031!" not in str(world.api.events(limit=500))


def test_the_same_delivery_sent_twice_applies_once_and_says_so(world: RepeatWorld) -> None:
    change(world, "Only-Once-2031!")
    first = webhook(world)
    job = world.next_job()
    assert world.result(job["id"], ok=True).status_code == 200

    again = webhook(world)  # IT Glue retries the delivery: nothing changed
    assert again == {"event_id": first["event_id"], "status": "duplicate"}
    skipped = wait_for(lambda: events_of(world, "password_reset.skipped"), 20,
                       "the repeat's skipped event")
    assert len(skipped) == 1
    assert skipped[0]["summary"].startswith(
        "Triggered again; the value in IT Glue is unchanged (Northwind domain admin)")
    assert skipped[0]["details"]["code"] == "already_applied"
    assert skipped[0]["details"]["origin"] == "repeat"
    assert world.poll(wait=0).status_code == 204  # nothing more for the agent
    assert len(events_of(world, "password_reset.queued")) == 1


def test_a_repeat_while_the_value_is_still_with_the_agent_is_not_applied_twice(
        world: World) -> None:
    """Loop protection holds against a value in flight: queued for, or leased by, the agent."""
    change(world, "In-Flight-2031!")
    webhook(world)
    wait_for(lambda: events_of(world, "password_reset.queued"), 20, "the first reset queued")
    webhook(world)  # queued, not yet taken by the agent
    wait_for(lambda: len(settled(world)) == 2, 20, "the repeat's check")
    job = world.next_job()  # now leased
    webhook(world)
    wait_for(lambda: len(settled(world)) == 3, 20, "the second repeat's check")
    skipped = events_of(world, "password_reset.skipped")
    assert [e["details"]["code"] for e in skipped] == ["in_progress", "in_progress"]
    assert all(e["summary"].startswith("Triggered again; the value in IT Glue is unchanged")
               for e in skipped)
    assert world.result(job["id"], ok=True).status_code == 200
    assert world.poll(wait=0).status_code == 204
    assert len(events_of(world, "password_reset.succeeded")) == 1


def test_ten_identical_triggers_in_a_burst_make_one_reset(world: RepeatWorld) -> None:
    change(world, "Burst-2031!")
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def send() -> None:
        body = webhook(world)
        with lock:
            answers.append(body)

    threads = [threading.Thread(target=send) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({a["event_id"] for a in answers}) == 1
    rows = wait_for(lambda: settled(world), 30, "every check of the burst resolved")
    assert [r["state"] for r in rows].count("queued") == 1
    assert all(r["state"] == "skipped" for r in rows if r["state"] != "queued")
    job = world.next_job()
    assert job["password"] == "Burst-2031!"
    assert world.result(job["id"], ok=True).status_code == 200
    assert world.poll(wait=0).status_code == 204
    assert len(events_of(world, "password_reset.succeeded")) == 1


# ---------------------------------------------------------------- Reset again from IT Glue
def retry(world: RepeatWorld, account_id: int) -> httpx.Response:
    return world.api.post(f"/api/v1/accounts/{account_id}/reset")


def test_reset_again_applies_the_current_value_and_names_who_asked(world: RepeatWorld) -> None:
    change(world, "Asked-For-2031!")
    r = retry(world, world.account["id"])
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == {"event_id", "job_id"}
    requested = world.api.get(f"/api/v1/events/{body['event_id']}").json()
    assert requested["type"] == "password_reset.requested"
    assert requested["summary"] == (f"Reset again from IT Glue by {ADMIN_EMAIL}: "
                                    "Northwind domain admin")
    job = world.next_job()
    assert job["id"] == body["job_id"] and job["password"] == "Asked-For-2031!"
    assert world.result(job["id"], ok=True).status_code == 200

    # Asked again with nothing changed: said, not silently dropped, and not applied twice.
    r = retry(world, world.account["id"])
    assert r.status_code == 202, r.text
    skipped = wait_for(lambda: events_of(world, "password_reset.skipped"), 20, "skipped")
    assert skipped[0]["summary"] == ("Reset again from IT Glue for Northwind domain admin: "
                                     "the value in IT Glue is already applied; nothing to do")
    assert world.poll(wait=0).status_code == 204


def test_reset_again_after_a_failed_reset_makes_a_real_attempt(world: RepeatWorld) -> None:
    change(world, "Value-A-2031!")
    webhook(world)
    job = world.next_job()
    assert world.result(job["id"], ok=True).status_code == 200
    # The next change fails in the directory; IT Glue is then set back to the applied value.
    change(world, "Value-B-2031!")
    webhook(world)
    job = world.next_job()
    assert world.result(job["id"], ok=False, error="constraint violation").status_code == 200
    change(world, "Value-A-2031!")

    r = retry(world, world.account["id"])
    assert r.status_code == 202, r.text
    job = world.next_job()
    assert job["id"] == r.json()["job_id"] and job["password"] == "Value-A-2031!"
    requested = world.api.get(f"/api/v1/events/{r.json()['event_id']}").json()
    assert requested["details"]["after_failure"] is True


def test_reset_again_refuses_unmatched_gone_and_unknown_accounts(world: RepeatWorld) -> None:
    loose = world.add_account("Spare admin", None,
                              identity="uid=spare,ou=people,dc=example,dc=test")
    r = retry(world, loose["id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "account_not_matched"
    assert "Match it to its IT Glue password" in r.json()["error"]["message"]

    assert retry(world, 999_999).status_code == 404
    mark_gone(world.tenant, world.account["id"])
    r = retry(world, world.account["id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "account_gone"
    assert jobs(world) == []


def mark_gone(tenant: TenantProcess, account_id: int) -> None:
    """What a directory sync does to an account it no longer finds."""
    if tenant.database_url:
        db_rows(tenant, "UPDATE accounts SET state = 'gone' WHERE id = ? RETURNING id",
                account_id)
        return
    import sqlite3
    conn = sqlite3.connect(tenant.data_dir / "qp-tenant.db")
    try:
        conn.execute("UPDATE accounts SET state = 'gone' WHERE id = ?", (account_id,))
        conn.commit()
    finally:
        conn.close()
