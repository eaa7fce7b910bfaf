"""Revoking an agent, and the customer an agent serves, through a real tenant process."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from tests.support.pipeline import agent_headers, wait_for, wait_for_trigger_event
from tests.tenant.conftest import sign_in
from tests.tenant.test_pipeline import DOMAIN_ADMIN_VALUE, World, tenant, world

__all__ = ["tenant", "world"]  # fixtures used by name below

DIRECTORIES = [{"name": "corp-ldap", "kind": "openldap"}]


def _enroll(world: World, name: str, customer_id: int | None = None) -> tuple[int, str]:
    body: dict[str, Any] = {"name": name}
    if customer_id is not None:
        body["customer_id"] = customer_id
    code = world.api.post("/api/v1/agents/enrollment-codes", json=body)
    assert code.status_code == 201, code.text
    r = world.http.post("/api/v1/agent/enroll",
                        json={"code": code.json()["code"], "hostname": f"{name}.test"})
    assert r.status_code == 201, r.text
    return int(r.json()["agent_id"]), str(r.json()["agent_token"])


def _poll(world: World, token: str, wait: int) -> httpx.Response:
    return world.http.get("/api/v1/agent/jobs", params={"wait": wait},
                          headers=agent_headers(token), timeout=wait + 10)


def _agents(world: World, **params: Any) -> dict[int, dict[str, Any]]:
    r = world.api.get("/api/v1/agents", params=params)
    assert r.status_code == 200, r.text
    return {a["id"]: a for a in r.json()["agents"]}


def test_a_revoked_agent_is_refused_at_once_and_its_leased_job_goes_to_another_agent(
        world: World) -> None:
    r = world.http.patch(f"/api/v1/agents/{world.agent_id}",
                         json={"customer_id": world.northwind}, headers=world.api.h())
    assert r.status_code == 200, r.text
    spare_id, spare_token = _enroll(world, "dc2", customer_id=world.northwind)
    beat = world.http.post("/api/v1/agent/heartbeat", json={"directories": DIRECTORIES},
                           headers=agent_headers(spare_token))
    assert beat.status_code == 200, beat.text

    trigger = world.fire()
    leased = world.next_job()
    assert world.job_row(leased["id"])["state"] == "leased"

    # A second long poll of the same agent is waiting when the revocation comes.
    answers: list[httpx.Response] = []
    waiting = threading.Thread(target=lambda: answers.append(_poll(world, world.agent_token,
                                                                   wait=30)))
    waiting.start()
    world.api.events(limit=1)  # gives the poll a head start (a 401 either way)
    r = world.api.delete(f"/api/v1/agents/{world.agent_id}")
    assert r.status_code == 204, r.text
    waiting.join(15)
    assert not waiting.is_alive(), "the waiting long poll did not end"
    assert answers[0].status_code == 401, answers[0].text

    token = agent_headers(world.agent_token)
    assert world.result(leased["id"], ok=True).status_code == 401
    assert _poll(world, world.agent_token, wait=0).status_code == 401
    assert world.http.post("/api/v1/agent/heartbeat", json={"directories": DIRECTORIES},
                           headers=token).status_code == 401

    # The other agent of the same customer serving the same directory takes the job over.
    taken = wait_for(lambda: (lambda a: a.json()["job"] if a.status_code == 200 else None)(
        _poll(world, spare_token, wait=5)), 30, "the job to reach the other agent")
    assert taken["id"] == leased["id"] and taken["password"] == DOMAIN_ADMIN_VALUE
    done = world.http.post(f"/api/v1/agent/jobs/{taken['id']}/result", json={"ok": True},
                           headers=agent_headers(spare_token))
    assert done.status_code == 200, done.text
    succeeded = wait_for_trigger_event(world.api, trigger, "password_reset.succeeded")
    assert succeeded["details"]["agent_id"] == spare_id

    [revoked] = world.api.events(type="agent.revoked")
    assert revoked["details"]["agent_id"] == world.agent_id
    assert revoked["details"]["requeued_job_ids"] == [leased["id"]]
    assert "admin@acme.test" in revoked["summary"]
    assert world.agent_id not in _agents(world)
    assert _agents(world, include_revoked="true")[world.agent_id]["status"] == "revoked"
    # Revoking again changes nothing; an unknown agent is a 404.
    assert world.api.delete(f"/api/v1/agents/{world.agent_id}").status_code == 204
    assert len(world.api.events(type="agent.revoked")) == 1
    assert world.api.delete("/api/v1/agents/999999").status_code == 404


def test_a_job_of_a_revoked_agent_waits_for_a_newly_enrolled_agent_of_the_customer(
        world: World) -> None:
    world.http.patch(f"/api/v1/agents/{world.agent_id}", json={"customer_id": world.northwind},
                     headers=world.api.h())
    trigger = world.fire()
    job = world.next_job()
    assert world.api.delete(f"/api/v1/agents/{world.agent_id}").status_code == 204
    assert world.job_row(job["id"])["state"] == "pending"
    assert world.job_row(job["id"])["password_encrypted"] is None
    waiting = wait_for_trigger_event(world.api, trigger, "password_reset.waiting")
    assert waiting["severity"] == "warning"
    assert "agent dc1 was revoked" in waiting["summary"]
    assert "enroll an agent for the customer" in waiting["summary"]

    new_id, new_token = _enroll(world, "dc1-reinstalled", customer_id=world.northwind)
    world.http.post("/api/v1/agent/heartbeat", json={"directories": DIRECTORIES},
                    headers=agent_headers(new_token))
    taken = wait_for(lambda: (lambda a: a.json()["job"] if a.status_code == 200 else None)(
        _poll(world, new_token, wait=5)), 30, "the job to reach the re-enrolled agent")
    assert taken["id"] == job["id"] and taken["password"] == DOMAIN_ADMIN_VALUE
    queued = [e for e in world.api.events(type="password_reset.queued")
              if e["details"]["trigger_event_id"] == trigger]
    assert [e["details"]["agent_id"] for e in reversed(queued)] == [world.agent_id, new_id]
    assert len(world.api.events(type="password_reset.waiting")) == 1


def test_an_agent_is_assigned_to_a_customer_by_code_or_later(world: World) -> None:
    agent_id, _ = _enroll(world, "fab-dc", customer_id=world.fabrikam)
    assert _agents(world)[agent_id]["customer_id"] == world.fabrikam
    assert _agents(world)[world.agent_id]["customer_id"] is None

    r = world.http.patch(f"/api/v1/agents/{world.agent_id}",
                         json={"customer_id": world.northwind}, headers=world.api.h())
    assert r.status_code == 200 and r.json()["customer_id"] == world.northwind
    [assigned] = world.api.events(type="agent.updated")
    assert assigned["details"]["changes"] == {"customer_id": {"old": None,
                                                              "new": world.northwind}}

    bad = world.http.patch(f"/api/v1/agents/{world.agent_id}", json={"customer_id": 999999},
                           headers=world.api.h())
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_customer"
    bad = world.api.post("/api/v1/agents/enrollment-codes",
                         json={"name": "x", "customer_id": 999999})
    assert bad.status_code == 422 and "no customer 999999" in bad.json()["error"]["message"]


def test_revoke_agent_on_the_command_line_refuses_the_credential_of_a_running_tenant(
        world: World) -> None:
    assert _poll(world, world.agent_token, wait=0).status_code == 204
    done = world.tenant.cli("revoke-agent", "--tenant", "acme", "--agent", str(world.agent_id))
    assert f"agent {world.agent_id} (dc1) is revoked" in done.stdout
    assert _poll(world, world.agent_token, wait=0).status_code == 401
    [revoked] = world.api.events(type="agent.revoked")
    assert "command line" in revoked["summary"]

    missing = world.tenant.cli("revoke-agent", "--tenant", "nope", "--agent", "1", check=False)
    assert missing.returncode == 1 and "no tenant 'nope'" in missing.stderr


def test_only_an_administrator_revokes_or_assigns_an_agent(world: World) -> None:
    world.tenant.create_user("acme", "tech@acme.test", "tech password 123", role="technician")
    tech = sign_in(world.http, "tech@acme.test", "tech password 123")
    refused = tech.delete(f"/api/v1/agents/{world.agent_id}")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    refused = world.http.patch(f"/api/v1/agents/{world.agent_id}",
                               json={"customer_id": world.northwind}, headers=tech.h())
    assert refused.status_code == 403
    assert _poll(world, world.agent_token, wait=0).status_code == 204
    assert world.api.events(type="agent.revoked") == []
