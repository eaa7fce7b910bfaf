"""Webhook ingest on SQLite: accepted webhooks/s and latency, every 202 after its commit,
against the bare floor (benchmarks/bare_floor.py: uvicorn + a 202 callable, one process)
driven the same way: wrk, 16 connections, unique IT Glue-shaped bodies, the same duration,
three rounds. Then counts the rows: every 202 must have its event.

The tenant runs as shipped (SQLite ``synchronous=NORMAL`` in WAL mode: a 202 survives the
process being killed; see docs/webhook.md), and once more with ``synchronous=FULL`` (a 202
also survives power loss) for the price of that guarantee.

Run: .venv/bin/python benchmarks/bench_ingest.py [--seconds 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import sqlite3

from _common import (
    compare,
    emit,
    emit_comparison,
    machine,
    sign_in_and_generate,
    start_floor,
    start_tenant,
)

# The per-token budget (2,000/s by default) is far above IT Glue but not above wrk.
UNLIMITED = {"QP_WEBHOOK_RATE_LIMIT_PER_MINUTE": "100000000"}


def run(name: str, env: dict[str, str], args: argparse.Namespace) -> None:
    floor = start_floor()
    tenant = start_tenant({**UNLIMITED, **env})
    try:
        _, url = sign_in_and_generate(tenant.url)
        assert floor.proc is not None and tenant.proc is not None
        floors, reals = compare([floor.url + "/"], [url], runs=args.runs, seconds=args.seconds,
                                floor_pids=[floor.proc.pid], real_pids=[tenant.proc.pid])
    finally:
        floor.stop()
        tenant.stop()
    db = sqlite3.connect(tenant.data_dir / "qp-tenant.db")
    rows = db.execute("SELECT COUNT(*) FROM events "
                      "WHERE type = 'workflow_trigger.received'").fetchone()[0]
    db.close()
    emit_comparison(name, floors, reals, seconds=args.seconds, **env, machine=machine())
    # wrk counts answers, not ids: a 202 whose event is missing shows as fewer rows than
    # 202s (the warm-up's are not counted, so more rows than 202s is expected).
    accepted = sum(r["ok"] for r in reals)
    emit(f"{name}_lost_events", max(0, accepted - rows), "events", None, accepted=accepted,
         rows=rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    run("webhook_ingest", {}, args)
    run("webhook_ingest_sync_full", {"QP_SQLITE_SYNCHRONOUS": "FULL"}, args)


if __name__ == "__main__":
    main()
