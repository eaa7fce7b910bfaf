"""Webhook ingest: accepted webhooks/s and latency with durable commits, against a bare-ASGI
202 endpoint in the same server process (the floor of the stack); then counts the rows.

Run: .venv/bin/python benchmarks/bench_ingest.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3

from _common import emit, load, sign_in_and_generate, start_tenant


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    tenant = start_tenant()
    try:
        _, url = sign_in_and_generate(tenant.url)
        base = tenant.url
        # Warm both paths, then measure each for the same time with the same client.
        asyncio.run(load(base + "/__bench/baseline", connections=4, duration=1))
        asyncio.run(load(url, connections=4, duration=1))
        floor = asyncio.run(load(base + "/__bench/baseline", connections=args.connections,
                                 duration=args.seconds))
        real = asyncio.run(load(url, connections=args.connections, duration=args.seconds))
    finally:
        tenant.stop()
    db = sqlite3.connect(tenant.data_dir / "qp-tenant.db")
    stored = {row[0] for row in db.execute(
        "SELECT id FROM events WHERE type = 'workflow_trigger.received'")}
    lost = len(set(real["ids"]) - stored)
    emit("webhook_ingest_throughput", real["per_second"], "accepted/s", floor["per_second"],
         connections=args.connections, seconds=args.seconds, sqlite_synchronous="FULL")
    emit("webhook_ingest_p50", real["p50"], "ms", floor["p50"])
    emit("webhook_ingest_p99", real["p99"], "ms", floor["p99"])
    emit("webhook_ingest_lost_events", lost, "events", None, accepted=real["accepted"],
         rows=len(stored), statuses={str(k): v for k, v in real["statuses"].items()})


if __name__ == "__main__":
    main()
