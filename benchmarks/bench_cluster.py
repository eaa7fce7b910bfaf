"""Growing past one process: webhook ingest on PostgreSQL with 1 and 2 tenant processes against
1 on SQLite, each driven by wrk against as many bare floor processes (benchmarks/bare_floor.py)
and as many durable floors (benchmarks/durable_floor.py) and lean floors
(benchmarks/lean_floor.py) on the same kind of database in the same rounds, three of them; then
SSE fan-out: 200 subscribers spread over 2 processes while webhooks arrive at 200/s, reporting
delivery p99 (202 → event at the subscriber) and missed events.

PostgreSQL runs from Debian's binaries with fsync and synchronous commit ON (a 202 must survive
a crash), on a loopback port, in a temporary folder.

Run: .venv/bin/python benchmarks/bench_cluster.py [--seconds 8] [--runs 3]
     [--only ingest|fanout]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from _common import (
    EMAIL,
    PASSWORD,
    Connection,
    ServerProcess,
    compare,
    emit,
    emit_comparison,
    emit_references,
    machine,
    open_stream,
    percentile,
    record_arrivals,
    sign_in_and_generate,
    start_durable_floor,
    start_lean_floor,
)

from tests.support import postgres
from tests.support.processes import TenantProcess


def start_nodes(count: int, database_url: str | None) -> list[TenantProcess]:
    """``count`` tenant processes on one database (SQLite: one process, its own folder)."""
    template = Path(tempfile.mkdtemp(prefix="qp-bench-cluster-"))
    # No IT Glue here: a dead loopback port, so the pipeline never waits on DNS.
    # One user holds every subscriber of the fan-out: lift the per-user stream cap for it.
    # The per-token webhook budget (2,000/s) is far above IT Glue but not above wrk: lifted.
    env = {"QP_SECRET_KEY": "bench-cluster-key", "QP_ITGLUE_BASE_URL": "http://127.0.0.1:9",
           "QP_STREAMS_PER_USER": "1000", "QP_WEBHOOK_RATE_LIMIT_PER_MINUTE": "100000000"}
    if database_url:
        env["QP_DATABASE_URL"] = database_url
    maker = TenantProcess(template / "data", env=env)
    maker.create_tenant("acme", "Acme MSP")
    maker.create_user("acme", EMAIL, PASSWORD)
    nodes = []
    for n in range(count):
        data = template / f"node-{n}"
        if database_url:
            data.mkdir()
        else:
            shutil.copytree(template / "data", data)
        nodes.append(TenantProcess(data, env=env))
    for node in nodes:
        node.start()
    return nodes


def ingest(label: str, count: int, server: postgres.PostgresServer | None, seconds: float,
           runs: int) -> None:
    """wrk against the webhook on every process (the 16 connections split evenly), against as
    many bare floor processes driven the same way (the honest floor of that process count).
    Every round gets fresh processes on a fresh database."""

    def start() -> tuple[list[ServerProcess], list[str]]:
        url = server.url(server.create_database()) if server is not None else None
        nodes = start_nodes(count, url)
        path = urlsplit(sign_in_and_generate(nodes[0].url)[1]).path
        return list(nodes), [n.url + path for n in nodes]

    def fresh_dsn() -> str | None:
        # The reference paths get a fresh database of the same server each round (SQLite:
        # each process its own, as a SQLite tenant is one process).
        return server.dsn(server.create_database()) if server is not None else None

    floor_runs, references, real_runs = compare(
        start, floors=count, runs=runs, seconds=seconds,
        references={"durable_floor": lambda: start_durable_floor(fresh_dsn(), count),
                    "lean_floor": lambda: start_lean_floor(fresh_dsn(), count)})
    emit_comparison(f"cluster_ingest_{label}", floor_runs, real_runs, references=references,
                    processes=count, seconds=seconds, machine=machine())
    emit_references(f"cluster_ingest_{label}", floor_runs, references, processes=count,
                    seconds=seconds)


async def fan_out(nodes: list[TenantProcess], subscribers: int, rate: float,
                  seconds: float, post_to: list[TenantProcess] | None = None
                  ) -> tuple[list[float], int, int]:
    """Subscribers spread over ``nodes``; webhooks spread over ``post_to`` (default: nodes)."""
    token, url = sign_in_and_generate(nodes[0].url)
    senders = post_to or nodes
    loop = asyncio.get_running_loop()
    hook = urlsplit(url).path
    acked: dict[int, float] = {}
    arrivals: list[dict[int, float]] = [{} for _ in range(subscribers)]
    writers: list[asyncio.StreamWriter] = []

    async def subscribe(k: int) -> asyncio.Task[None]:
        reader, writer = await open_stream(nodes[k % len(nodes)].url, token)
        writers.append(writer)
        return asyncio.create_task(record_arrivals(reader, arrivals[k]))

    readers = [await subscribe(k) for k in range(subscribers)]
    total = int(rate * seconds)
    workers = 8
    began = loop.time() + 0.1

    async def post(k: int) -> None:
        node = urlsplit(senders[k % len(senders)].url)
        conn = Connection(node.hostname or "127.0.0.1", node.port or 80)
        await conn.open()
        for n in range(k, total, workers):
            delay = began + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body = json.dumps({"resourceUrl": f"https://acme.itglue.com/1/passwords/{n}",
                               "resourceName": f"Fan-out {n}"}).encode()
            status, payload = await conn.post(hook, body)
            if status == 202:
                acked[json.loads(payload)["event_id"]] = loop.time()
        await conn.close()

    await asyncio.gather(*(post(k) for k in range(workers)))
    deadline = loop.time() + 15
    while loop.time() < deadline:  # polling for every delivery, with a deadline
        if all(acked.keys() <= a.keys() for a in arrivals):
            break
        await asyncio.sleep(0.05)
    for task in readers:
        task.cancel()
    for writer in writers:
        writer.close()
    latencies = [max(0.0, (a[i] - t) * 1000) for a in arrivals for i, t in acked.items()
                 if i in a]
    missed = sum(len(acked.keys() - a.keys()) for a in arrivals)
    return latencies, missed, len(acked)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--only", choices=("ingest", "fanout"), default=None,
                        help="run only one part (default: both)")
    args = parser.parse_args()

    server = postgres.PostgresServer(durable=True)
    server.start()
    try:
        for label, count, database in [
            ("sqlite_1_process", 1, None),
            ("postgresql_1_process", 1, server),
            ("postgresql_2_processes", 2, server),
        ] if args.only != "fanout" else []:
            ingest(label, count, database, args.seconds, args.runs)
        if args.only == "ingest":
            return

        nodes = start_nodes(2, server.url(server.create_database()))
        try:
            latencies, missed, sent = asyncio.run(
                fan_out(nodes, args.subscribers, args.rate, args.seconds))
        finally:
            for node in nodes:
                node.stop()
        emit("cluster_sse_fanout_delivery_p99", percentile(latencies, 99), "ms", None,
             subscribers=args.subscribers, rate=args.rate, processes=2, events=sent,
             p50_ms=round(percentile(latencies, 50), 2), deliveries=len(latencies))
        emit("cluster_sse_fanout_missed", missed, "events", None,
             subscribers=args.subscribers, events=sent)

        # One subscriber on process A at 100 webhooks/s (bench_delivery's load): webhooks to
        # A itself (the one-process figure, the baseline) and then to process B.
        nodes = start_nodes(2, server.url(server.create_database()))
        try:
            same, _, _ = asyncio.run(fan_out(nodes[:1], 1, 100.0, args.seconds))
            cross, cross_missed, sent = asyncio.run(
                fan_out(nodes[:1], 1, 100.0, args.seconds, post_to=nodes[1:]))
        finally:
            for node in nodes:
                node.stop()
        emit("cluster_cross_process_delivery_p99", percentile(cross, 99), "ms",
             percentile(same, 99), rate=100.0, events=sent, missed=cross_missed,
             p50_ms=round(percentile(cross, 50), 2),
             same_process_p50_ms=round(percentile(same, 50), 2))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
