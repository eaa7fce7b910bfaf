"""Microsoft 365 resets: webhook → applied in Microsoft 365, under a Graph-like rate limit.

A burst of IT Glue-shaped webhooks, each for a different cloud account (source ``entra_id``),
goes through the real tenant process: ingest → account → IT Glue read (an in-process IT Glue
emulator) → app-only token (MSAL, cached) → ``PATCH /users/{id}`` on the in-process TLS
Microsoft 365 emulator → ``password_reset.succeeded``. Latency is measured on the tenant's
own clock, from the ``workflow_trigger.received`` event to the terminal ``password_reset.*``
event. The measured burst runs with the emulator enforcing a per-application rate limit
(429 + Retry-After past ``--rate-limit`` requests per ``--rate-window`` seconds), so the
tenant has to back off instead of failing; the baseline is the same burst with no limit.

Run: .venv/bin/python benchmarks/bench_m365.py [--triggers 300] [--rate-limit 25]
     [--rate-window 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sqlite3
import ssl
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from _common import EMAIL, PASSWORD, emit, percentile, sign_in, start_tenant

from qp_tenant.itglue.emulator import EmulatorState, create_app
from qp_tenant.m365 import emulator as m365_emulator

KEY = "ITG.bench-0123456789abcdef0123456789abcdef"
ENTRA_TENANT = "0b3e6c2a-0000-4000-8000-00000000be01"
CLIENT_ID = "0b3e6c2a-0000-4000-8000-00000000be02"
SECRET = "bench-client-secret-VALUE"  # noqa: S105 - the emulator's throw-away value
DOMAIN = "benchcustomer.onmicrosoft.com"


def serve(app: Any, tls_dir: Path | None = None) -> tuple[str, uvicorn.Server]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    options: dict[str, Any] = {}
    if tls_dir is not None:
        options = {"ssl_certfile": str(tls_dir / "server.pem"),
                   "ssl_keyfile": str(tls_dir / "server-key.pem"),
                   "ssl_version": ssl.PROTOCOL_TLS_SERVER}
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **options))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    scheme = "https" if tls_dir is not None else "http"
    return f"{scheme}://127.0.0.1:{sock.getsockname()[1]}", server


def start_emulators(n: int, tls_dir: Path
                    ) -> tuple[str, EmulatorState, str, m365_emulator.M365EmulatorState,
                               list[uvicorn.Server]]:
    itglue = EmulatorState(rate_limit=100_000)
    itglue.add_api_key(KEY)
    org = itglue.add_organization("Bench Customer")
    m365 = m365_emulator.M365EmulatorState()
    m365.add_tenant(ENTRA_TENANT, DOMAIN)
    m365.add_app(ENTRA_TENANT, CLIENT_ID, SECRET)
    for i in range(n):
        upn = f"user{i:04d}@{DOMAIN}"
        itglue.add_password(org.id, f"Cloud user {i}", upn, f"Cloud-Value-{i}-a!",
                            category_name="Microsoft 365", updated_by="Bench Technician")
        m365.add_user(ENTRA_TENANT, upn, f"Cloud user {i}")
    m365_emulator.make_test_ca(tls_dir)
    itglue_url, itglue_server = serve(create_app(itglue))
    m365_url, m365_server = serve(m365_emulator.create_app(m365), tls_dir)
    return itglue_url, itglue, m365_url, m365, [itglue_server, m365_server]


def setup(base: str) -> tuple[str, int]:
    """IT Glue connected, the customer linked and synced (automatch pairs every user)."""
    with httpx.Client(base_url=base, timeout=120) as http:
        api = sign_in(http, EMAIL, PASSWORD)
        h = api.h()
        api.connect_itglue(KEY)
        api.import_customers()
        customer = api.customers()[0]
        http.put(f"/api/v1/customers/{customer['id']}/microsoft365", headers=h,
                 json={"tenant_id": ENTRA_TENANT, "client_id": CLIENT_ID,
                       "client_secret": SECRET}).raise_for_status()
        synced = http.post(f"/api/v1/customers/{customer['id']}/microsoft365/sync", headers=h)
        synced.raise_for_status()
        url = http.post("/api/v1/integrations/itglue/workflow-token", headers=h).json()["url"]
    return url, int(synced.json()["matched"] or 0)


async def fire(url: str, bodies: list[dict[str, str]], concurrency: int = 16) -> None:
    queue = list(bodies)
    async with httpx.AsyncClient(timeout=30) as http:
        async def worker() -> None:
            while queue:
                (await http.post(url, json=queue.pop())).raise_for_status()
        await asyncio.gather(*(worker() for _ in range(concurrency)))


def terminal_times(db_path: Path) -> dict[int, tuple[datetime, datetime, str]]:
    db = sqlite3.connect(db_path)
    try:
        received = {row[0]: row[1] for row in db.execute(
            "SELECT id, occurred_at FROM events WHERE type = 'workflow_trigger.received'")}
        ended: dict[int, tuple[str, str]] = {}
        for type_, details, at in db.execute(
                "SELECT type, details, occurred_at FROM events WHERE type IN "
                "('password_reset.succeeded', 'password_reset.failed', "
                "'password_reset.skipped')"):
            tid = json.loads(details).get("trigger_event_id")
            if tid is not None:
                ended[tid] = (at, type_)
    finally:
        db.close()
    return {tid: (datetime.fromisoformat(received[tid]), datetime.fromisoformat(at), type_)
            for tid, (at, type_) in ended.items() if tid in received}


async def run_burst(db_path: Path, url: str, bodies: list[dict[str, str]], before: set[int]
                    ) -> tuple[float, list[float], dict[str, int]]:
    await fire(url, bodies)
    deadline = time.monotonic() + 600
    while True:
        times = {k: v for k, v in terminal_times(db_path).items() if k not in before}
        if len(times) >= len(bodies) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    starts = [a for a, _, _ in times.values()]
    ends = [b for _, b, _ in times.values()]
    span = (max(ends) - min(starts)).total_seconds()
    latencies = [(b - a).total_seconds() * 1000 for a, b, _ in times.values()]
    outcomes: dict[str, int] = {}
    for _, _, type_ in times.values():
        outcomes[type_] = outcomes.get(type_, 0) + 1
    return len(times) / span, latencies, outcomes


async def main_async(args: argparse.Namespace) -> None:
    tls_dir = Path(tempfile.mkdtemp(prefix="qp-bench-m365-"))
    itglue_url, itglue, m365_url, m365, servers = start_emulators(args.triggers, tls_dir)
    tenant = start_tenant({"QP_ITGLUE_BASE_URL": itglue_url, "QP_M365_LOGIN_URL": m365_url,
                           "QP_M365_GRAPH_URL": m365_url,
                           "QP_M365_CA_FILE": str(tls_dir / "ca.pem"),
                           "QP_M365_MAX_THROTTLE_SECONDS": "90"})
    db_path = tenant.data_dir / "qp-tenant.db"
    try:
        url, matched = setup(tenant.url)
        org = next(iter(itglue.organizations))
        passwords = list(itglue.passwords.values())

        def bodies(round_: int) -> list[dict[str, str]]:
            return [{"resourceUrl": f"https://acme.itglue.com/{org}/passwords/{pw.id}",
                     "resourceName": f"{pw.name} (round {round_})"} for pw in passwords]

        # Baseline: no rate limit in Graph.
        base_rate, base_lat, base_outcomes = await run_burst(db_path, url, bodies(1), set())
        seen = set(terminal_times(db_path))
        for i, pw in enumerate(passwords):  # new values, so nothing is skipped as applied
            itglue.change_password(pw.id, f"Cloud-Value-{i}-b!", updated_by="Bench Technician")
        m365.rate_limit, m365.rate_window_seconds = args.rate_limit, args.rate_window
        throttled_before = m365.throttled
        rate, lat, outcomes = await run_burst(db_path, url, bodies(2), seen)
        throttled = m365.throttled - throttled_before
    finally:
        tenant.stop()
        for server in servers:
            server.should_exit = True
    limit = f"{args.rate_limit}/{args.rate_window:g}s"
    emit("m365_throughput", rate, "resets/s", base_rate, triggers=args.triggers,
         matched=matched, rate_limit=limit)
    emit("m365_webhook_to_applied_p50", percentile(lat, 50), "ms", percentile(base_lat, 50),
         rate_limit=limit)
    emit("m365_webhook_to_applied_p99", percentile(lat, 99), "ms", percentile(base_lat, 99),
         rate_limit=limit)
    emit("m365_throttled_responses", throttled, "responses", None, rate_limit=limit)
    emit("m365_failed_resets", outcomes.get("password_reset.failed", 0), "resets",
         base_outcomes.get("password_reset.failed", 0),
         succeeded=outcomes.get("password_reset.succeeded", 0),
         tokens_issued=m365.tokens_issued)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--triggers", type=int, default=300)
    parser.add_argument("--rate-limit", type=int, default=25,
                        help="Graph requests per window per application (emulated)")
    parser.add_argument("--rate-window", type=float, default=5.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
