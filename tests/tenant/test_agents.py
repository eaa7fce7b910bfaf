"""Agent enrollment, the agent credential, heartbeats and online/offline events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.support.pipeline import agent_headers, enroll_agent, start_tenant, wait_for
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.tenant.conftest import Api, sign_in


@pytest.fixture
def quick_tenant(tmp_path: Path, tenant_template: Path,
                 itglue_emulator: EmulatorProcess) -> Iterator[TenantProcess]:
    """Enrollment codes last half a second."""
    proc = start_tenant(tmp_path, tenant_template, itglue_emulator.url,
                        env={"QP_AGENT_ENROLLMENT_CODE_TTL_SECONDS": "0.5"})
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def quick_offline_tenant(tmp_path: Path, tenant_template: Path,
                         itglue_emulator: EmulatorProcess) -> Iterator[TenantProcess]:
    """Agents go offline after one silent second (enrollment codes keep their hour: on a
    loaded machine, making a code and enrolling with it can take longer than a short one)."""
    proc = start_tenant(tmp_path, tenant_template, itglue_emulator.url,
                        env={"QP_AGENT_OFFLINE_SECONDS": "1"})
    try:
        yield proc
    finally:
        proc.stop()


def test_an_enrollment_code_enrolls_one_agent_only(api: Api, http: httpx.Client) -> None:
    code = api.post("/api/v1/agents/enrollment-codes", json={"name": "dc1"})
    assert code.status_code == 201, code.text
    assert code.json()["code"].startswith("QPE-") and code.json()["expires_at"]

    first = http.post("/api/v1/agent/enroll",
                      json={"code": code.json()["code"], "name": "x", "hostname": "dc1.corp"})
    assert first.status_code == 201, first.text
    assert first.json()["agent_token"].startswith("qpag_")
    again = http.post("/api/v1/agent/enroll",
                      json={"code": code.json()["code"], "name": "x", "hostname": "dc2.corp"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "enrollment_code_used"
    assert "already used" in again.json()["error"]["message"]
    wrong = http.post("/api/v1/agent/enroll", json={"code": "QPE-NOPE", "hostname": "h"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "enrollment_code_invalid"

    agents = api.get("/api/v1/agents").json()["agents"]
    assert agents == [{"id": first.json()["agent_id"], "name": "dc1", "hostname": "dc1.corp",
                       "status": "offline", "last_seen_at": None, "directories": [],
                       "customer_id": None}]


def test_agent_and_user_credentials_are_not_interchangeable(api: Api, http: httpx.Client
                                                            ) -> None:
    _, token = enroll_agent(api, http)
    assert http.get("/api/v1/me", headers=agent_headers(token)).status_code == 401
    r = http.get("/api/v1/agent/jobs", params={"wait": 0}, headers=api.h())
    assert r.status_code == 401 and "Enroll the agent again" in r.json()["error"]["message"]
    assert http.get("/api/v1/agent/jobs", params={"wait": 0},
                    headers=agent_headers(token)).status_code == 204
    r = http.post("/api/v1/agents/enrollment-codes", json={"name": "x"},
                  headers=agent_headers(token))
    assert r.status_code == 401


def test_an_expired_enrollment_code_is_refused(quick_tenant: TenantProcess) -> None:
    with httpx.Client(base_url=quick_tenant.url, timeout=10) as http:
        api = sign_in(http)
        made = api.post("/api/v1/agents/enrollment-codes", json={"name": "late"}).json()
        expires_at = datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
        wait_for(lambda: datetime.now(UTC) > expires_at, 10, "the code's expiry time")
        refused = http.post("/api/v1/agent/enroll", json={"code": made["code"], "hostname": "h"})
        assert refused.status_code == 410, refused.text
        assert refused.json()["error"]["code"] == "enrollment_code_expired"
        assert "expired" in refused.json()["error"]["message"]


def test_heartbeats_bring_an_agent_online_and_silence_takes_it_offline(
        quick_offline_tenant: TenantProcess) -> None:
    with httpx.Client(base_url=quick_offline_tenant.url, timeout=10) as http:
        api = sign_in(http)
        agent_id, token = enroll_agent(api, http, "ldap-1")
        directories = [{"name": "corp-ldap", "kind": "openldap"}]
        r = http.post("/api/v1/agent/heartbeat", json={"directories": directories},
                      headers=agent_headers(token))
        assert r.status_code == 200, r.text
        agent = api.get("/api/v1/agents").json()["agents"][0]
        assert agent["status"] == "online"
        assert [{"name": d["name"], "kind": d["kind"]} for d in agent["directories"]] == \
            directories
        assert agent["directories"][0]["accounts"] == 0  # no sync reported yet
        assert agent["directories"][0]["last_sync_at"] is None
        assert agent["last_seen_at"]
        online = api.events(type="agent.online")
        assert [e["details"]["agent_id"] for e in online] == [agent_id]

        offline = wait_for(lambda: api.events(type="agent.offline"), 15, "agent.offline")
        assert offline[0]["severity"] == "warning" and "ldap-1" in offline[0]["summary"]
        assert api.get("/api/v1/agents").json()["agents"][0]["status"] == "offline"

        http.post("/api/v1/agent/heartbeat", json={"directories": directories},
                  headers=agent_headers(token))
        back = api.events(type="agent.online")
        assert len(back) == 2 and "back online" in back[0]["summary"]
