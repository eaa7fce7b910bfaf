"""The reset pipeline through a real tenant process, the IT Glue emulator and the agent API.

The agent here is this test speaking the agent contract over HTTP, so it can stay silent
(lease expiry) or refuse (directory failure) on cue; the real ``qp-agent`` against slapd is
in tests/test_end_to_end.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ITGLUE_KEY
from tests.support.pipeline import (
    DOMAIN_ADMIN,  # "NWT\administrator", Winter-Harbor-42!, changed by Dana Whitfield
    agent_headers,
    connect_itglue,
    db_rows,
    enroll_agent,
    event_for_trigger,
    fire,
    import_customers,
    start_tenant,
    trigger_body,
    wait_for,
    wait_for_trigger_event,
)
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.tenant.conftest import Api, sign_in

# The emulator's demo data (qp_tenant.itglue.emulator.EmulatorState.seed_demo).
NORTHWIND = 101
FABRIKAM = 103
BACKUP_SERVICE = 5002
FIREWALL_VAULT = 5010  # kept in the Vault: the API answers 404
DOMAIN_ADMIN_VALUE = "Winter-Harbor-42!"




class World:
    """A tenant with IT Glue connected, one agent, Northwind imported, one matched account."""

    def __init__(self, tenant: TenantProcess, http: httpx.Client, api: Api):
        self.tenant = tenant
        self.http = http
        self.api = api
        customers = import_customers(api)
        self.northwind = customers["Northwind Traders"]
        self.fabrikam = customers["Fabrikam Logistics"]
        self.agent_id, self.agent_token = enroll_agent(api, http)
        self.account = self.add_account("Northwind domain admin", DOMAIN_ADMIN)
        self.url = api.generate()

    def add_account(self, name: str, password_id: int | None, customer: int | None = None,
                    identity: str = "uid=administrator,ou=people,dc=example,dc=test"
                    ) -> dict[str, Any]:
        r = self.api.post("/api/v1/accounts", json={
            "customer_id": customer or self.northwind, "kind": "administrator",
            "display_name": name,
            "source": {"type": "openldap", "agent_id": self.agent_id, "directory": "corp-ldap",
                       "identity": identity},
            "itglue_password_id": password_id,
        })
        assert r.status_code == 201, r.text
        return dict(r.json())

    def poll(self, wait: int = 0) -> httpx.Response:
        return self.http.get("/api/v1/agent/jobs", params={"wait": wait},
                             headers=agent_headers(self.agent_token), timeout=wait + 10)

    def next_job(self, timeout: float = 20.0) -> dict[str, Any]:
        """Poll as an agent until the tenant hands out a job."""
        def once() -> dict[str, Any] | None:
            r = self.poll(wait=5)
            return dict(r.json()["job"]) if r.status_code == 200 else None
        return wait_for(once, timeout, "a job")

    def result(self, job_id: int, ok: bool, error: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"ok": ok}
        if error is not None:
            body["error"] = error
        return self.http.post(f"/api/v1/agent/jobs/{job_id}/result", json=body,
                              headers=agent_headers(self.agent_token))

    def fire(self, password_id: int = DOMAIN_ADMIN, name: str = "Domain Admin",
             org: int = NORTHWIND, extra: str = "") -> int:
        body = trigger_body(org, password_id, name)
        if extra:
            body["note"] = extra  # a different body, so it is not a duplicate
        return fire(self.url, body)

    def job_row(self, job_id: int) -> Any:
        return db_rows(self.tenant, "SELECT * FROM reset_jobs WHERE id = ?", job_id)[0]


@pytest.fixture
def tenant(tmp_path: Path, tenant_template: Path,
           itglue_emulator: EmulatorProcess) -> Iterator[TenantProcess]:
    proc = start_tenant(tmp_path, tenant_template, itglue_emulator.url)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def world(tenant: TenantProcess) -> Iterator[World]:
    with httpx.Client(base_url=tenant.url, timeout=10) as http:
        yield World(tenant, http, sign_in(http))


def test_long_poll_answers_204_then_hands_out_the_queued_job(world: World) -> None:
    assert world.poll(wait=0).status_code == 204

    answers: list[httpx.Response] = []
    waiting = threading.Thread(target=lambda: answers.append(world.poll(wait=20)))
    waiting.start()
    trigger = world.fire()
    waiting.join(30)

    assert answers and answers[0].status_code == 200, answers
    job = answers[0].json()["job"]
    assert job["directory"] == "corp-ldap" and job["kind"] == "openldap"
    assert job["identity"] == "uid=administrator,ou=people,dc=example,dc=test"
    assert job["password"] == DOMAIN_ADMIN_VALUE
    assert job["account_id"] == world.account["id"] and job["lease_expires_at"]
    row = world.job_row(job["id"])
    assert row["state"] == "leased" and row["password_encrypted"]
    assert DOMAIN_ADMIN_VALUE not in row["password_encrypted"]

    queued = wait_for_trigger_event(world.api, trigger, "password_reset.queued")
    assert queued["account"] == "Northwind domain admin"
    assert queued["resource_name"] == "Domain Admin" and queued["resource_url"]

    assert world.result(job["id"], ok=True).status_code == 200
    done = wait_for_trigger_event(world.api, trigger, "password_reset.succeeded")
    assert done["id"] > queued["id"]
    account = world.api.get(f"/api/v1/accounts/{world.account['id']}").json()
    assert account["last_result"] == "succeeded"
    assert account["last_reset_by"] == "Dana Whitfield" and account["last_reset_at"]
    row = world.job_row(job["id"])
    assert row["state"] == "succeeded" and row["password_encrypted"] is None
    everything = json.dumps(world.api.events(limit=500))
    assert DOMAIN_ADMIN_VALUE not in everything


def test_a_lapsed_lease_requeues_and_the_retry_limit_fails_and_erases_the_password(
        world: World) -> None:
    trigger = world.fire()
    job_id = world.next_job()["id"]
    # Say nothing: the lease (1.5 s) lapses and the job comes back after a short back-off.
    second = world.poll(wait=15)
    assert second.status_code == 200 and second.json()["job"]["id"] == job_id
    assert world.job_row(job_id)["attempts"] == 2

    failed = wait_for_trigger_event(world.api, trigger, "password_reset.failed")
    assert failed["details"]["code"] == "lease_expired"
    assert "never reported a result" in failed["summary"]
    row = world.job_row(job_id)
    assert row["state"] == "failed" and row["password_encrypted"] is None
    late = world.result(job_id, ok=True)
    assert late.status_code == 409 and late.json()["error"]["code"] == "job_not_leased"


def test_a_trigger_without_a_matched_account_fails_with_a_clear_event(world: World) -> None:
    trigger = world.fire(BACKUP_SERVICE, "Backup service account")
    failed = wait_for_trigger_event(world.api, trigger, "password_reset.failed")
    assert failed["summary"] == "No matched account for Backup service account"
    assert failed["severity"] == "error"
    assert failed["details"]["code"] == "no_matched_account"
    assert failed["details"]["itglue_password_id"] == str(BACKUP_SERVICE)


@pytest.mark.parametrize("password_id", [FIREWALL_VAULT, 99999], ids=["vault", "deleted"])
def test_vault_and_deleted_passwords_fail_with_a_specific_reason(
        world: World, password_id: int) -> None:
    world.add_account("Firewall admin", password_id, customer=world.fabrikam)
    trigger = world.fire(password_id, "Firewall admin", org=FABRIKAM)
    failed = wait_for_trigger_event(world.api, trigger, "password_reset.failed")
    assert failed["details"]["code"] == "itglue_password_unreachable"
    assert "deleted" in failed["summary"] and "Vault" in failed["summary"]
    assert "Only Me" in failed["summary"]
    assert failed["account"] == "Firewall admin"


def test_a_directory_refusal_reaches_the_event_verbatim(world: World) -> None:
    trigger = world.fire()
    job = world.next_job()
    reason = "LDAP constraint violation (19): Password fails quality checking policy"
    assert world.result(job["id"], ok=False, error=reason).status_code == 200

    failed = wait_for_trigger_event(world.api, trigger, "password_reset.failed")
    assert failed["details"]["reason"] == reason
    assert reason in failed["summary"]
    assert world.job_row(job["id"])["password_encrypted"] is None
    account = world.api.get(f"/api/v1/accounts/{world.account['id']}").json()
    assert account["last_result"] == f"failed: {reason}"


def test_replay_is_idempotent_in_flight_and_an_applied_value_is_skipped(world: World) -> None:
    trigger = world.fire()
    wait_for_trigger_event(world.api, trigger, "password_reset.queued")
    first = world.api.post(f"/api/v1/events/{trigger}/replay")
    again = world.api.post(f"/api/v1/events/{trigger}/replay")
    assert first.status_code == again.status_code == 202
    assert first.json()["status"] == again.json()["status"] == "in_progress"
    assert first.json()["job_id"] == again.json()["job_id"]

    job = world.next_job()
    assert world.result(job["id"], ok=True).status_code == 200
    wait_for_trigger_event(world.api, trigger, "password_reset.succeeded")

    # Loop protection: the same value again (a replay, or IT Glue echoing our own write).
    replay = world.api.post(f"/api/v1/events/{trigger}/replay")
    assert replay.status_code == 202 and replay.json()["status"] == "started"
    skipped = wait_for(lambda: [e for e in world.api.events(type="password_reset.skipped")
                                if e["details"]["job_id"] == replay.json()["job_id"]],
                       20, "the skip")[0]
    assert skipped["severity"] == "info"
    assert "already applied" in skipped["summary"]
    assert world.poll(wait=0).status_code == 204


def test_replay_refuses_an_event_that_is_not_a_trigger(world: World) -> None:
    not_trigger = world.api.events(type="integration.connected")[0]
    r = world.api.post(f"/api/v1/events/{not_trigger['id']}/replay")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "not_a_trigger"
    assert "integration.connected" in r.json()["error"]["message"]
    assert world.api.post("/api/v1/events/999999/replay").status_code == 404


def test_queued_work_survives_a_tenant_restart(world: World) -> None:
    trigger = world.fire()
    wait_for_trigger_event(world.api, trigger, "password_reset.queued")
    world.tenant.restart(kill=True)
    job = world.next_job()
    assert job["password"] == DOMAIN_ADMIN_VALUE
    assert world.result(job["id"], ok=True).status_code == 200
    wait_for_trigger_event(world.api, trigger, "password_reset.succeeded")


def test_a_key_without_password_access_and_an_unreachable_itglue_fail_specifically(
        tmp_path: Path, tenant_template: Path) -> None:
    no_access_key = "ITG.no-password-access-0123456789abcdef"
    emulator = EmulatorProcess(api_key=ITGLUE_KEY)
    emulator.args += ["--api-key-without-password-access", no_access_key]
    emulator.start()
    tenant = start_tenant(tmp_path, tenant_template, emulator.url,
                          env={"QP_ITGLUE_MAX_ATTEMPTS": "2"})
    try:
        with httpx.Client(base_url=tenant.url, timeout=10) as http:
            world = World(tenant, http, sign_in(http))
            connect_itglue(world.api, no_access_key)
            trigger = world.fire()
            failed = wait_for_trigger_event(world.api, trigger, "password_reset.failed")
            assert failed["details"]["code"] == "itglue_no_password_access"
            assert "Password Access" in failed["summary"]

            emulator.stop()
            trigger = world.fire(extra="IT Glue is gone")
            failed = wait_for_trigger_event(world.api, trigger, "password_reset.failed")
            assert failed["details"]["code"] == "itglue_unreachable"
            assert "could not be reached after 2 attempts" in failed["summary"]
            assert event_for_trigger(world.api, trigger, "password_reset.queued") is None
    finally:
        tenant.stop()
        emulator.stop()
