"""Delivery latency: from a webhook's 202 to its event arriving at an SSE subscriber.

Posts IT Glue-shaped webhooks at a steady rate (default 100/s) while one subscriber reads the
stream; both run in this process, so one clock measures both ends. The baseline is the
round-trip of the webhook itself (POST → 202) at the same rate.

Run: .venv/bin/python benchmarks/bench_delivery.py [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from urllib.parse import urlsplit

from _common import (
    Connection,
    emit,
    open_stream,
    percentile,
    record_arrivals,
    sign_in_and_generate,
    start_tenant,
)


async def measure(base: str, access_token: str, url: str, rate: float, seconds: float
                  ) -> tuple[list[float], list[float], int, int]:
    loop = asyncio.get_running_loop()
    reader, writer = await open_stream(base, access_token)
    acked: dict[int, float] = {}
    arrived: dict[int, float] = {}
    done = asyncio.Event()
    expected: set[int] = set()

    stream_task = asyncio.create_task(record_arrivals(
        reader, arrived, lambda: done.is_set() and expected <= arrived.keys()))
    hook = urlsplit(url)
    round_trips: list[float] = []
    workers = 8  # enough connections that a slow answer never holds back the schedule
    began = loop.time() + 0.05
    total = int(rate * seconds)

    async def worker(k: int) -> None:
        conn = Connection(hook.hostname or "127.0.0.1", hook.port or 80)
        await conn.open()
        for n in range(k, total, workers):
            delay = began + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body = json.dumps({"resourceUrl": f"https://acme.itglue.com/1/passwords/{n}",
                               "resourceName": f"Latency {n}"}).encode()
            sent = loop.time()
            status, payload = await conn.post(hook.path, body)
            got = loop.time()
            round_trips.append((got - sent) * 1000)
            if status == 202:
                event_id = json.loads(payload)["event_id"]
                acked[event_id] = got
                expected.add(event_id)
        await conn.close()

    await asyncio.gather(*(worker(k) for k in range(workers)))
    done.set()
    try:
        await asyncio.wait_for(stream_task, 10)
    except TimeoutError:
        stream_task.cancel()
    writer.close()
    # Arrival can beat the 202 by a hair (same commit); count that as zero, not negative.
    latencies = [max(0.0, (arrived[i] - acked[i]) * 1000) for i in acked if i in arrived]
    missed = len(set(acked) - set(arrived))
    return latencies, round_trips, missed, len(acked)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    tenant = start_tenant()
    try:
        token, url = sign_in_and_generate(tenant.url)
        latencies, round_trips, missed, sent = asyncio.run(
            measure(tenant.url, token, url, args.rate, args.seconds))
    finally:
        tenant.stop()
    emit("sse_delivery_p50", statistics.median(latencies), "ms",
         statistics.median(round_trips), rate_per_s=args.rate, events=sent)
    emit("sse_delivery_p99", percentile(latencies, 99), "ms", percentile(round_trips, 99))
    emit("sse_delivery_missed", missed, "events", None, events=sent)


if __name__ == "__main__":
    main()
