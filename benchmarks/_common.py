"""Shared pieces of the benchmarks: a tenant process, a lean HTTP/1.1 load client, output."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.processes import TenantProcess  # noqa: E402
from tests.support.tenant_api import sign_in  # noqa: E402

EMAIL = "bench@acme.test"
PASSWORD = "benchmark password 1"


def emit(name: str, value: float, unit: str, baseline: float | None = None,
         **extra: Any) -> None:
    ratio = round(value / baseline, 3) if baseline else None
    record = {"name": name, "value": round(value, 3), "unit": unit,
              "baseline": round(baseline, 3) if baseline is not None else None, "ratio": ratio}
    record.update(extra)
    print(json.dumps(record), flush=True)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def start_tenant(env: dict[str, str] | None = None) -> TenantProcess:
    folder = Path(tempfile.mkdtemp(prefix="qp-bench-"))
    tenant = TenantProcess(folder / "data", env={"QP_BENCH_BASELINE": "1", **(env or {})})
    tenant.create_tenant("acme", "Acme MSP")
    tenant.create_user("acme", EMAIL, PASSWORD)
    tenant.start()
    return tenant


def sign_in_and_generate(base_url: str) -> tuple[str, str]:
    import httpx

    with httpx.Client(base_url=base_url, timeout=30) as http:
        api = sign_in(http, EMAIL, PASSWORD)
        return api.access_token, api.generate()


class Connection:
    """One keep-alive HTTP/1.1 connection with just enough parsing for 202/JSON answers."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        payload = await self.reader.readexactly(length)
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load(url: str, *, connections: int, duration: float,
               rate: float | None = None) -> dict[str, Any]:
    """POST unique IT Glue-shaped bodies to ``url`` for ``duration`` seconds."""
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    ids: list[int] = []
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + duration
    counter = 0
    interval = (connections / rate) if rate else 0.0

    async def worker(n: int) -> None:
        nonlocal counter
        conn = Connection(host, port)
        await conn.open()
        next_at = loop.time() + (n * interval / connections if interval else 0)
        try:
            while loop.time() < stop_at:
                if interval:
                    delay = next_at - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at += interval
                counter += 1
                body = json.dumps({
                    "resourceUrl": f"https://acme.itglue.com/2412/passwords/{counter}",
                    "resourceName": f"Bench account {counter}",
                }).encode()
                started = loop.time()
                status, payload = await conn.post(path, body)
                latencies.append((loop.time() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 202:
                    event_id = json.loads(payload).get("event_id")
                    if event_id:
                        ids.append(event_id)
        finally:
            await conn.close()

    began = loop.time()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    elapsed = loop.time() - began
    return {
        "elapsed": elapsed,
        "statuses": statuses,
        "accepted": statuses.get(202, 0),
        "per_second": statuses.get(202, 0) / elapsed,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": percentile(latencies, 99),
        "ids": ids,
    }


async def open_stream(base_url: str, access_token: str
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``GET /api/v1/events/stream`` on a raw connection; returns once the stream said hello."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"GET /api/v1/events/stream HTTP/1.1\r\nHost: {parts.hostname}\r\n"
                 f"Authorization: Bearer {access_token}\r\nAccept: text/event-stream\r\n\r\n"
                 .encode())
    await reader.readuntil(b"\r\n\r\n")
    await reader.readuntil(b": connected")
    return reader, writer


async def record_arrivals(reader: asyncio.StreamReader, arrived: dict[int, float],
                          done: Callable[[], bool] = lambda: False) -> None:
    """Note the loop time each event id first arrives, until EOF or ``done()`` after a chunk."""
    loop = asyncio.get_running_loop()
    buffer = b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return
        now = loop.time()
        *lines, buffer = (buffer + chunk).split(b"\n")
        for line in lines:
            if line.startswith(b"id:"):
                arrived.setdefault(int(line[3:]), now)
        if done():
            return
