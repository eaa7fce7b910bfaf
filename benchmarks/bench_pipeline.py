"""Reset pipeline: triggers/s through the whole pipeline and webhook→applied latency.

A burst of IT Glue-shaped webhooks, each for a different matched account, goes through the
real tenant process: ingest → account → IT Glue read (an in-process emulator) → job → agents
(long-polling HTTP clients that report success at once, standing in for ``qp-agent`` so the
directory's own time is left out) → result. Latency is measured on the tenant's own clock,
from the ``workflow_trigger.received`` event to the terminal ``password_reset.*`` event.
Baseline: the same burst for passwords with no matched account (the pipeline without the IT
Glue read and the agent round trip).

Run: .venv/bin/python benchmarks/bench_pipeline.py [--triggers 300] [--agents 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sqlite3
import threading
import time
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from _common import EMAIL, PASSWORD, emit, percentile, sign_in, start_tenant

from qp_tenant.itglue.emulator import EmulatorState, create_app

KEY = "ITG.bench-0123456789abcdef0123456789abcdef"


def start_emulator(n: int) -> tuple[str, EmulatorState, uvicorn.Server]:
    state = EmulatorState(rate_limit=100_000)
    state.add_api_key(KEY)
    org = state.add_organization("Bench Customer")
    for i in range(n):
        state.add_password(org.id, f"Bench account {i}", f"user{i}", f"Bench-Value-{i}-x!",
                           category_name="Active Directory", updated_by="Bench Technician")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(state), log_level="warning",
                                           lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", state, server


def setup(base: str, n: int, state: EmulatorState) -> tuple[dict[str, str], str, str, int]:
    with httpx.Client(base_url=base, timeout=30) as http:
        api = sign_in(http, EMAIL, PASSWORD)
        h = api.h()
        api.connect_itglue(KEY)
        api.import_customers()
        customer = api.customers()[0]["id"]
        code = http.post("/api/v1/agents/enrollment-codes", headers=h,
                         json={"name": "bench"}).json()["code"]
        enrolled = http.post("/api/v1/agent/enroll",
                             json={"code": code, "hostname": "bench"}).json()
        for pw in list(state.passwords.values())[:n]:
            http.post("/api/v1/accounts", headers=h, json={
                "customer_id": customer, "kind": "service", "display_name": pw.name,
                "source": {"type": "openldap", "agent_id": enrolled["agent_id"],
                           "directory": "bench", "identity": pw.username},
                "itglue_password_id": str(pw.id)}).raise_for_status()
        url = http.post("/api/v1/integrations/itglue/workflow-token", headers=h).json()["url"]
    return h, url, enrolled["agent_token"], next(iter(state.organizations))


async def agents(base: str, token: str, count: int, stop: asyncio.Event) -> int:
    done = 0

    async def one() -> None:
        nonlocal done
        h = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, timeout=40, headers=h) as http:
            while not stop.is_set():
                r = await http.get("/api/v1/agent/jobs", params={"wait": 1})
                if r.status_code == 200:
                    job = r.json()["job"]
                    await http.post(f"/api/v1/agent/jobs/{job['id']}/result", json={"ok": True})
                    done += 1

    await asyncio.gather(*(one() for _ in range(count)))
    return done


async def fire(url: str, bodies: list[dict[str, str]], concurrency: int = 16) -> None:
    queue = list(bodies)
    async with httpx.AsyncClient(timeout=30) as http:
        async def worker() -> None:
            while queue:
                (await http.post(url, json=queue.pop())).raise_for_status()
        await asyncio.gather(*(worker() for _ in range(concurrency)))


def terminal_times(db_path: Any, trigger_ids: set[int] | None = None
                   ) -> dict[int, tuple[datetime, datetime]]:
    db = sqlite3.connect(db_path)
    try:
        received = {row[0]: row[1] for row in db.execute(
            "SELECT id, occurred_at FROM events WHERE type = 'workflow_trigger.received'")}
        ended: dict[int, str] = {}
        for details, at in db.execute(
                "SELECT details, occurred_at FROM events WHERE type IN "
                "('password_reset.succeeded', 'password_reset.failed')"):
            tid = json.loads(details).get("trigger_event_id")
            if tid is not None:
                ended[tid] = at
    finally:
        db.close()
    return {tid: (datetime.fromisoformat(received[tid]), datetime.fromisoformat(at))
            for tid, at in ended.items() if tid in received}


async def run_burst(tenant: Any, url: str, bodies: list[dict[str, str]], before: set[int]
                    ) -> tuple[float, list[float]]:
    await fire(url, bodies)
    deadline = time.monotonic() + 300
    while True:
        times = {k: v for k, v in terminal_times(tenant.data_dir / "qp-tenant.db").items()
                 if k not in before}
        if len(times) >= len(bodies) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    starts = [a for a, _ in times.values()]
    ends = [b for _, b in times.values()]
    span = (max(ends) - min(starts)).total_seconds()
    latencies = [(b - a).total_seconds() * 1000 for a, b in times.values()]
    return len(times) / span, latencies


async def main_async(args: argparse.Namespace) -> None:
    emu_url, state, server = start_emulator(args.triggers)
    tenant = start_tenant({"QP_ITGLUE_BASE_URL": emu_url})
    try:
        _, url, agent_token, org = setup(tenant.url, args.triggers, state)
        stop = asyncio.Event()
        fleet = asyncio.create_task(agents(tenant.url, agent_token, args.agents, stop))
        # Baseline: passwords nobody matched.
        base_bodies = [{"resourceUrl": f"https://acme.itglue.com/{org}/passwords/{900000 + i}",
                        "resourceName": f"Unmatched {i}"} for i in range(args.triggers)]
        base_rate, base_lat = await run_burst(tenant, url, base_bodies, set())
        seen = set(terminal_times(tenant.data_dir / "qp-tenant.db"))
        bodies = [{"resourceUrl": f"https://acme.itglue.com/{org}/passwords/{pw.id}",
                   "resourceName": pw.name} for pw in state.passwords.values()]
        rate, lat = await run_burst(tenant, url, bodies, seen)
        stop.set()
        applied = await fleet
    finally:
        tenant.stop()
        server.should_exit = True
    emit("pipeline_throughput", rate, "triggers/s", base_rate, triggers=args.triggers,
         agents=args.agents, applied=applied)
    emit("pipeline_webhook_to_applied_p50", percentile(lat, 50), "ms", percentile(base_lat, 50))
    emit("pipeline_webhook_to_applied_p99", percentile(lat, 99), "ms", percentile(base_lat, 99))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--triggers", type=int, default=300)
    parser.add_argument("--agents", type=int, default=4)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
