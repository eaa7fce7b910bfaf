"""Repeated triggers on two tenant processes sharing one PostgreSQL database: however the
checks of one password race between the processes, its value reaches the agent once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.cluster.conftest import Cluster, hook_path, signed_in
from tests.support.pipeline import (
    DOMAIN_ADMIN,  # the shared emulator's: its value is never changed here
    agent_headers,
    connect_itglue,
    enroll_agent,
    trigger_body,
    wait_for,
)

NORTHWIND_ORG = 101


def test_a_burst_of_repeats_across_two_processes_applies_the_value_once(
        cluster: Cluster) -> None:
    a, b = cluster.start(2)
    api = signed_in(a.url)
    connect_itglue(api)
    assert api.post("/api/v1/customers/import-itglue").status_code == 200
    northwind = next(c["id"] for c in api.get("/api/v1/customers").json()["customers"]
                     if c["name"] == "Northwind Traders")
    with httpx.Client(base_url=a.url, timeout=30) as http:
        agent_id, agent_token = enroll_agent(api, http)
        account = api.post("/api/v1/accounts", json={
            "customer_id": northwind, "kind": "administrator", "display_name": "NWT admin",
            "source": {"type": "openldap", "agent_id": agent_id, "directory": "corp",
                       "identity": "uid=administrator,ou=people,dc=example,dc=test"},
            "itglue_password_id": DOMAIN_ADMIN})
        assert account.status_code == 201, account.text
        path = hook_path(api.generate())
        payload = trigger_body(NORTHWIND_ORG, DOMAIN_ADMIN, "Domain Admin")

        def send(n: int) -> dict[str, str]:
            with httpx.Client(base_url=(a, b)[n % 2].url, timeout=30) as client:
                r = client.post(path, json=payload)
                assert r.status_code == 202, r.text
                return dict(r.json())

        # Two processes may each take the first of the burst for new (both look for an
        # earlier event before either commits); the checks still race to one reset.
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(20)))
        assert {x["status"] for x in answers} <= {"accepted", "duplicate"}

        def settled() -> list[dict[str, object]]:
            rows = cluster.rows("SELECT state FROM reset_jobs")
            return rows if rows and all(r["state"] != "pending" for r in rows) else []

        states = [r["state"] for r in wait_for(settled, 60, "every check resolved")]
        assert states.count("queued") == 1, states
        assert set(states) <= {"queued", "skipped"}

        r = http.get("/api/v1/agent/jobs", params={"wait": 5},
                     headers=agent_headers(agent_token), timeout=20)
        assert r.status_code == 200, r.text
        job = r.json()["job"]
        r = http.post(f"/api/v1/agent/jobs/{job['id']}/result", json={"ok": True},
                      headers=agent_headers(agent_token))
        assert r.status_code == 200, r.text
        assert http.get("/api/v1/agent/jobs", params={"wait": 0},
                        headers=agent_headers(agent_token)).status_code == 204
    assert len(api.events(type="password_reset.succeeded")) == 1
