"""Two tenant processes on one PostgreSQL database watch IT Glue once, not twice."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.cluster.conftest import Cluster
from tests.support.pipeline import wait_for
from tests.support.processes import EmulatorProcess
from tests.tenant.conftest import sign_in
from tests.tenant.test_watcher import DOMAIN_ADMIN, Watched

INTERVAL = 1.0


def list_requests(emulator: EmulatorProcess) -> int:
    state = httpx.get(f"{emulator.url}/_emulator/state").json()
    return int(state["requests_by_route"].get("GET /passwords", 0))


def test_two_processes_on_one_database_watch_a_tenant_once(
        tmp_path: Path, pg_template: Path, emulator: EmulatorProcess) -> None:
    cluster = Cluster(tmp_path, pg_template, env={
        "QP_ITGLUE_BASE_URL": emulator.url, "QP_PUBLIC_URL": "",
        "QP_SECRET_KEY": "one-key-for-the-whole-cluster-0123456789",
        "QP_ITGLUE_WATCH_SECONDS": f"{INTERVAL:g}", "QP_PIPELINE_POLL_SECONDS": "0.2",
        "QP_SHUTDOWN_GRACE_SECONDS": "3"})
    try:
        first, second = cluster.start(2)
        with httpx.Client(base_url=first.url, timeout=10) as http:
            world = Watched(first, emulator, http)
            started_requests = list_requests(emulator)
            started = time.monotonic()
            for n in range(3):
                world.change(f"Cluster-Change-{n}-2031!")
                world.wait_for_watcher_trigger(n + 1)
            elapsed = time.monotonic() - started
            requests = list_requests(emulator) - started_requests

            # Each change was recorded once, and one process held the lease.
            triggers = world.watcher_triggers()
            assert len(triggers) == 3
            assert {t["details"]["password_id"] for t in triggers} == {str(DOMAIN_ADMIN)}
            owners = cluster.rows("SELECT lease_owner FROM itglue_watch")
            assert len(owners) == 1 and owners[0]["lease_owner"]
            # One watcher lists at most once per interval (plus the check under way); two
            # would list about twice as often.
            assert requests <= elapsed / INTERVAL + 2, (requests, elapsed)

            # The watching process stops: the other one takes over and finds the next change.
            owner = owners[0]["lease_owner"]
            by_pid = {str(p.proc.pid): p for p in (first, second) if p.proc is not None}
            holder = by_pid[owner.split(":")[1]]
            survivor = second if holder is first else first
            holder.stop()
            with httpx.Client(base_url=survivor.url, timeout=10) as other:
                world.http, world.api = other, sign_in(other)
                world.change("After-Takeover-2031!")
                world.wait_for_watcher_trigger(4)
                wait_for(lambda: cluster.rows("SELECT lease_owner FROM itglue_watch")[0]
                         ["lease_owner"] not in (None, owner), 20, "the lease to move")
                assert len(world.watcher_triggers()) == 4
    finally:
        cluster.close()
