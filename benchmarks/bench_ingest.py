"""Webhook ingest on SQLite: accepted webhooks/s and latency, every 202 after its commit,
against the bare floor (benchmarks/bare_floor.py: uvicorn + a 202 callable, one process)
driven the same way: wrk, 16 connections, unique IT Glue-shaped bodies, the same duration,
three rounds, each on a fresh tenant. Then counts the rows: every 202 must have its event.

Each round also measures the durable floor (benchmarks/durable_floor.py: the bare floor plus a
one-statement group commit into SQLite with the same guarantee): what a path that answers after
its commit and does nothing else reaches on this machine, so the figures say how much of the
gap is durability and how much is the tenant's own work. And the lean floor
(benchmarks/lean_floor.py: the durable floor plus the least work the product needs per
webhook — parse, token and duplicate checks in memory, the event and job rows — with none of
the tenant's machinery): how far a Python tenant could get here at all.

The tenant runs as shipped (SQLite ``synchronous=FULL`` in WAL mode: a 202 survives the
process being killed and power loss; see docs/webhook.md), and once more with
``synchronous=NORMAL`` (kill -9 safe, not power-loss safe) for what that guarantee costs.

Run: .venv/bin/python benchmarks/bench_ingest.py [--seconds 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
from typing import Any

from _common import (
    ServerProcess,
    TenantProcess,
    compare,
    emit,
    emit_comparison,
    emit_references,
    machine,
    sign_in_and_generate,
    start_durable_floor,
    start_lean_floor,
    start_tenant,
)

# What the tenant's webhook writer logs when it stops (qp_tenant/domain/webhook.py).
WRITER_LINE = re.compile(r"Webhook writer: (\d+) accepted in (\d+) commits, (\d+) flushes")
# The per-token budget (2,000/s by default) is far above IT Glue but not above wrk.
UNLIMITED = {"QP_WEBHOOK_RATE_LIMIT_PER_MINUTE": "100000000"}


def run(name: str, env: dict[str, str], args: argparse.Namespace) -> None:
    tenants: list[TenantProcess] = []

    def start() -> tuple[list[ServerProcess], list[str]]:
        tenant = start_tenant({**UNLIMITED, **env})
        tenants.append(tenant)
        return [tenant], [sign_in_and_generate(tenant.url)[1]]

    accepted, rows = 0, 0
    batches: list[tuple[int, int, int]] = []  # per round: accepted, commits, flushes

    def count_rows(servers: list[ServerProcess], result: dict[str, Any]) -> None:
        nonlocal accepted, rows
        db = sqlite3.connect(tenants[-1].data_dir / "qp-tenant.db")
        rows += db.execute("SELECT COUNT(*) FROM events "
                           "WHERE type = 'workflow_trigger.received'").fetchone()[0]
        db.close()
        accepted += result["ok"]
        said = WRITER_LINE.search(tenants[-1].output)
        if said:
            batches.append((int(said[1]), int(said[2]), int(said[3])))

    # The two reference paths have the tenant's default guarantee (synchronous=FULL): they
    # are measured with it.
    floors, references, reals = compare(
        start, floors=1, runs=args.runs, seconds=args.seconds, after_round=count_rows,
        references=None if env else {"durable_floor": start_durable_floor,
                                     "lean_floor": start_lean_floor})
    emit_comparison(name, floors, reals, references=references, seconds=args.seconds, **env,
                    machine=machine())
    emit_references(name, floors, references, seconds=args.seconds)
    # wrk counts answers, not ids: a 202 whose event is missing shows as fewer rows than
    # 202s (the warm-up's are not counted, so more rows than 202s is expected).
    emit(f"{name}_lost_events", max(0, accepted - rows), "events", None, accepted=accepted,
         rows=rows)
    # How the group commit grouped: webhooks per commit and per WAL flush, as the tenant's
    # writer said at shutdown (warm-up included); no baseline, the floor writes nothing.
    if batches:
        per_commit = [a / max(1, c) for a, c, _ in batches]
        emit(f"{name}_webhooks_per_commit", round(statistics.median(per_commit), 1),
             "webhooks", None, spread=[round(min(per_commit), 1), round(max(per_commit), 1)],
             webhooks_per_flush=[round(a / f, 1) if f else None for a, _, f in batches])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=("default", "sync-normal"), default=None,
                        help="measure only the tenant as shipped, or only with NORMAL")
    args = parser.parse_args()
    if args.only != "sync-normal":
        run("webhook_ingest", {}, args)
    if args.only != "default":
        run("webhook_ingest_sync_normal", {"QP_SQLITE_SYNCHRONOUS": "NORMAL"}, args)


if __name__ == "__main__":
    main()
