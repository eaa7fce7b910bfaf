"""The IT Glue watcher: what it costs in IT Glue requests, and how fast it applies a change.

1. Requests per hour at the default interval (60 s) for an account with 10,000 passwords
   and 100 changes an hour, from a SIMULATED hour: the watcher's own walk (``scan``) runs 60
   times against the in-process IT Glue emulator whose clock jumps a minute between checks,
   with the 100 changes spread at random over the hour. Every request it sends is counted
   (the emulator's log), and every change must be found. The baseline is IT Glue's limit for
   an hour (3,000 requests per 5 minutes = 36,000), so the ratio is the share of it spent;
   the peak 5-minute window is compared to the watcher's budget (QP_ITGLUE_WATCH_BUDGET).
   Not counted: the pipeline's read of each changed password (one GET per change, the same
   as with a webhook).
2. Change → applied latency in watch-only mode (no webhook at all), p50/p99, on a real tenant
   process with a short interval (reported with it): a password is changed in the emulator
   (its ``password-updated-at`` is the start), the watcher finds it, the pipeline queues it,
   an agent speaking the agent API reports success, and the tenant's
   ``password_reset.succeeded`` event is the end. Expect about half an interval plus the
   pipeline.

Run: .venv/bin/python benchmarks/bench_watcher.py [--changes 40] [--interval 1]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from _common import EMAIL, PASSWORD, emit, percentile, start_tenant

from qp_common.wire import parse_rfc3339
from qp_tenant.domain.watcher import ITGLUE_LIMIT, ITGLUE_WINDOW_SECONDS, PAGE_SIZE, scan
from qp_tenant.itglue.client import ITGlueClient
from qp_tenant.itglue.emulator import EmulatorState, create_app

KEY = "ITG.bench-0123456789abcdef0123456789abcdef"
HOUR_LIMIT = ITGLUE_LIMIT * 3600 / ITGLUE_WINDOW_SECONDS  # 36,000


class SimClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def simulated_hour(passwords: int, changes: int, interval: float, budget: float) -> None:
    clock = SimClock()
    state = EmulatorState(now=clock, rate_limit=10**9)
    state.add_api_key(KEY)
    orgs = [state.add_organization(f"Customer {n}") for n in range(50)]
    ids = [state.add_password(orgs[n % len(orgs)].id, f"pw {n}", f"user{n}", f"v{n}").id
           for n in range(passwords)]
    start = clock.now + timedelta(seconds=1)
    rng = random.Random(19)
    plan = sorted((start + timedelta(seconds=rng.uniform(0, 3600)), rng.choice(ids))
                  for _ in range(changes))
    checks = int(3600 // interval)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state))) as http:
        client = ITGlueClient(http, "https://api.itglue.test", KEY, max_retries=0)
        cursor_at, cursor_ids = start, []
        found: set[tuple[str, str]] = set()
        per_check: list[int] = []
        pending = list(plan)
        for n in range(1, checks + 1):
            check_at = start + timedelta(seconds=n * interval)
            while pending and pending[0][0] <= check_at:
                when, pw_id = pending.pop(0)
                clock.now = when
                state.change_password(pw_id, f"changed at {when.isoformat()}")
            clock.now = check_at
            before = len(state.requests)
            result = await scan(client, cursor_at, cursor_ids, page_size=PAGE_SIZE)
            per_check.append(len(state.requests) - before)
            cursor_at, cursor_ids = result.cursor_at or cursor_at, result.cursor_ids
            found |= {(p.id, str(p.password_updated_at)) for p in result.changes}
    expected = {(str(pw), str(when)) for when, pw in plan}
    missed = len({pw for pw, _ in expected} - {pw for pw, _ in found})
    total = sum(per_check)
    window = max(1, int(ITGLUE_WINDOW_SECONDS // interval))
    peak = max(sum(per_check[i:i + window]) for i in range(max(1, len(per_check) - window + 1)))
    emit("watcher_requests_per_hour", total, "requests/h", baseline=HOUR_LIMIT,
         method="simulated hour (fast clock), requests counted by the emulator",
         interval_seconds=interval, passwords=passwords, changes_per_hour=changes,
         page_size=PAGE_SIZE, checks=checks, changed_passwords_missed=missed)
    emit("watcher_requests_peak_5min", peak, "requests/5min",
         baseline=ITGLUE_LIMIT * budget, budget_share=budget,
         note="baseline: the watcher's budget (share of 3,000 per 5 minutes)")


def serve(app: Any) -> tuple[str, uvicorn.Server]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


def agent_loop(base_url: str, token: str, stop: threading.Event) -> None:
    """An agent that applies every job at once (the directory write is not measured)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        while not stop.is_set():
            r = http.get("/api/v1/agent/jobs", params={"wait": 2}, headers=headers)
            if r.status_code == 200 and r.json().get("job"):
                job = r.json()["job"]
                http.post(f"/api/v1/agent/jobs/{job['id']}/result", json={"ok": True},
                          headers=headers)


def watch_only_latency(changes: int, interval: float) -> None:
    state = EmulatorState(rate_limit=10**9)
    state.add_api_key(KEY)
    org = state.add_organization("Latency Co")
    pws = [state.add_password(org.id, f"Account {n}", f"user{n}", f"v{n}") for n in range(changes)]
    itglue_url, itglue = serve(create_app(state))
    tenant = start_tenant({"QP_ITGLUE_BASE_URL": itglue_url, "QP_PUBLIC_URL": "",
                           "QP_ITGLUE_WATCH_SECONDS": f"{interval:g}",
                           "QP_PIPELINE_POLL_SECONDS": "0.2",
                           "QP_AGENT_POLL_FALLBACK_SECONDS": "0.5"})
    stop = threading.Event()
    try:
        with httpx.Client(base_url=tenant.url, timeout=30) as http:
            access = http.post("/api/v1/auth/login",
                               json={"email": EMAIL, "password": PASSWORD}).json()["access_token"]
            h = {"Authorization": f"Bearer {access}"}
            http.put("/api/v1/integrations/itglue", headers=h,
                     json={"region": "us", "api_key": KEY}).raise_for_status()
            http.post("/api/v1/customers/import-itglue", headers=h).raise_for_status()
            customer = http.get("/api/v1/customers", headers=h).json()["customers"][0]["id"]
            code = http.post("/api/v1/agents/enrollment-codes", headers=h,
                             json={"name": "bench"}).json()["code"]
            enrolled = http.post("/api/v1/agent/enroll", json={
                "code": code, "name": "bench", "hostname": "bench.test"}).json()
            for pw in pws:
                http.post("/api/v1/accounts", headers=h, json={
                    "customer_id": customer, "kind": "service", "display_name": pw.name,
                    "source": {"type": "openldap", "agent_id": enrolled["agent_id"],
                               "directory": "corp", "identity": f"uid={pw.username},dc=test"},
                    "itglue_password_id": pw.id}).raise_for_status()
            threading.Thread(target=agent_loop, args=(tenant.url, enrolled["agent_token"], stop),
                             daemon=True).start()
            rng = random.Random(7)
            started: dict[str, datetime] = {}
            for pw in pws:  # spread over the interval's phases
                time.sleep(rng.uniform(0.2, interval * 1.5))  # pacing the load, not a wait
                state.change_password(pw.id, f"Latency-{pw.id}-x!")
                assert pw.password_updated_at is not None
                started[pw.name] = pw.password_updated_at
            deadline = time.monotonic() + 120
            done: dict[str, datetime] = {}
            while len(done) < len(started) and time.monotonic() < deadline:
                events = http.get("/api/v1/events", headers=h, params={
                    "type": "password_reset.succeeded", "limit": 500}).json()["events"]
                for e in events:
                    moment = parse_rfc3339(e["occurred_at"])
                    if e["account"] in started and moment is not None:
                        done[e["account"]] = moment
                time.sleep(0.2)  # polling the tenant's event log for completion
        latencies = [(done[name] - started[name]).total_seconds() for name in done]
        emit("watch_only_change_to_applied_p50", percentile(latencies, 50), "s",
             baseline=interval, interval_seconds=interval, changes=len(latencies),
             lost=len(started) - len(done),
             note="baseline: the watch interval")
        emit("watch_only_change_to_applied_p99", percentile(latencies, 99), "s",
             baseline=interval, interval_seconds=interval, changes=len(latencies))
    finally:
        stop.set()
        tenant.stop()
        itglue.should_exit = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passwords", type=int, default=10_000)
    parser.add_argument("--changes-per-hour", type=int, default=100)
    parser.add_argument("--default-interval", type=float, default=60.0)
    parser.add_argument("--budget", type=float, default=0.2)
    parser.add_argument("--changes", type=int, default=40, help="latency samples")
    parser.add_argument("--interval", type=float, default=1.0, help="watch-only interval")
    args = parser.parse_args()
    asyncio.run(simulated_hour(args.passwords, args.changes_per_hour, args.default_interval,
                               args.budget))
    watch_only_latency(args.changes, args.interval)


if __name__ == "__main__":
    main()
