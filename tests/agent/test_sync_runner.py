"""The runner's directory sync: beside the job loop, in pages, and what it says when the
tenant cannot take the accounts."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qp_agent import runner as runner_module
from qp_agent.backends import DirectoryAccount, build_backends
from qp_agent.client import AgentClient, make_http_client
from qp_agent.config import DirectoryConfig
from qp_agent.runner import AgentRunner, Backoff
from tests.support.pipeline import enroll_agent
from tests.support.processes import TenantProcess
from tests.tenant.conftest import sign_in

from .conftest import AGENT_TOKEN, FakeTenant

PASSWD = "".join(f"user{n}:x:{1000 + n}:{1000 + n}:User {n}:/home/u{n}:/bin/bash\n"
                 for n in range(5))


def _local(tmp_path: Path) -> DirectoryConfig:
    passwd = tmp_path / "passwd"
    passwd.write_text(PASSWD)
    return DirectoryConfig(name="box", kind="local", passwd_file=passwd)


async def test_an_agent_without_a_customer_says_so_once_and_reports_in_pages_once_assigned(
        tenant_proc: TenantProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "SYNC_PAGE_ACCOUNTS", 2)  # 5 users: 3 pages
    with httpx.Client(base_url=tenant_proc.url, timeout=10) as http:
        api = sign_in(http)
        agent_id, token = enroll_agent(api, http)
    caplog.set_level(logging.INFO, logger="qp_agent")
    async with make_http_client(tenant_proc.url, wait_seconds=1) as client:
        runner = AgentRunner(AgentClient(client, token), build_backends([_local(tmp_path)]),
                             sync_interval_seconds=3600)
        await runner.sync_all()
        await runner.sync_all()
        said = [r.getMessage() for r in caplog.records if "not assigned to a customer" in
                r.getMessage()]
        assert len(said) == 1, said  # once, not per page or per sync
        assert "assign" in said[0]

        with httpx.Client(base_url=tenant_proc.url, timeout=10) as http:
            api = sign_in(http)
            customer = api.post("/api/v1/customers", json={"name": "Walk-in"}).json()["id"]
            r = http.patch(f"/api/v1/agents/{agent_id}", headers=api.h(),
                           json={"customer_id": customer})
            assert r.status_code == 200, r.text
            totals = await runner.sync_directory("box")
            accounts = api.get("/api/v1/accounts", params={"agent_id": agent_id}).json()
    assert totals == {"received": 5, "created": 5, "updated": 0, "gone": 0}
    assert sorted(a["source"]["identity"] for a in accounts["accounts"]) == [
        f"user{n}" for n in range(5)]
    assert all(a["customer_id"] == customer and a["source"]["type"] == "local"
               for a in accounts["accounts"])


class _HeldListing:
    """A directory whose listing blocks until the test lets it go."""

    def __init__(self, directory: DirectoryConfig) -> None:
        self.directory = directory
        self.started = threading.Event()
        self.release = threading.Event()

    async def set_password(self, identity: str, password: str) -> str:
        return f"password changed for {identity}"

    def list_accounts(self) -> Iterator[DirectoryAccount]:
        self.started.set()
        self.release.wait(30)
        yield DirectoryAccount(identity="u1", display_name="U1", login_names=("u1",))


async def test_a_reset_is_applied_while_a_directory_listing_is_still_running(
        tenant: FakeTenant, tmp_path: Path) -> None:
    held = _HeldListing(DirectoryConfig(name="box", kind="local"))
    async with make_http_client(tenant.url, wait_seconds=1) as client:
        runner = AgentRunner(AgentClient(client, AGENT_TOKEN), {"box": held},
                             heartbeat_seconds=0.2, wait_seconds=1,
                             backoff=Backoff(base=0.01, cap=0.05, rng=random.Random(1)),
                             sync_interval_seconds=3600)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        try:
            assert await asyncio.to_thread(held.started.wait, 15)
            tenant.add_job({"id": 7, "directory": "box", "kind": "local", "identity": "u1",
                            "password": "Fresh-Value-1!"})
            job_id, body = await asyncio.to_thread(tenant.results.get, True, 15)
            assert (job_id, body) == ("7", {"ok": True})
            assert not held.release.is_set()  # the listing is still going
        finally:
            held.release.set()
            stop.set()
            await asyncio.wait_for(task, 15)
