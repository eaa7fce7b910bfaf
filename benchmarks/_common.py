"""Shared pieces of the benchmarks: a tenant process, the bare floor, ``wrk`` as the load
generator for throughput, a lean HTTP/1.1 client for what a Python client should measure
(SSE fan-out), and output."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# A benchmarked tenant starts as it is shipped, in a fresh interpreter, not forked from the
# test suite's preloaded process (tests/support/forkserver.py).
os.environ.setdefault("QP_TEST_FORKSERVER", "0")

from tests.support.processes import ServerProcess, TenantProcess  # noqa: E402
from tests.support.tenant_api import sign_in  # noqa: E402

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk" / "itglue.lua"
#: wrk's connections and threads for every throughput figure (the issue's 16 connections).
WRK_CONNECTIONS = 16

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


def summary(values: list[float]) -> dict[str, float]:
    """Median and spread (min, max) of a few runs."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def machine() -> dict[str, Any]:
    """Where the figures came from, and how busy it was when they were taken."""
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        ram_kib = int(meminfo.readline().split()[1])
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(ram_kib / 1024**2, 1),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def _stat_cpu_seconds(stat: str) -> float:
    """utime + stime from the text of a /proc stat file."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a running process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        return _stat_cpu_seconds(stat.read())


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """utime + stime of each thread of a running process, summed by what the thread is: the
    main thread (the tenant's event loop), a thread the tenant named for the operating
    system (``qp-hook-writer``…: ``qp_tenant.domain.webhook.name_os_thread``), or "other"
    (the database driver's and executor threads)."""
    seconds: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                text = stat.read()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        kind = ("event loop" if tid == str(pid)
                else name if name.startswith("qp-") else "other")
        seconds[kind] = seconds.get(kind, 0.0) + _stat_cpu_seconds(text)
    return seconds


def start_floor() -> ServerProcess:
    """The bare uvicorn 202 callable (benchmarks/bare_floor.py) in its own process."""
    floor = ServerProcess([sys.executable, str(HERE / "bare_floor.py"), "--port", "0"])
    floor.start()
    return floor


def start_durable_floor(dsn: str | None = None, count: int = 1) -> Servers:
    """``count`` durable floors (benchmarks/durable_floor.py: the bare floor plus a
    one-statement group commit), each in its own process, with their URLs: on a fresh SQLite
    database each, or all on PostgreSQL at ``dsn``."""
    floors = _start_floors("durable_floor.py", dsn, count)
    return floors, [floor.url + "/" for floor in floors]


def start_lean_floor(dsn: str | None = None, count: int = 1) -> Servers:
    """``count`` lean floors (benchmarks/lean_floor.py: the product's least work per webhook
    on the durable floor), as ``start_durable_floor``, with the URLs of the one token they
    know."""
    from lean_floor import TOKEN

    floors = _start_floors("lean_floor.py", dsn, count)
    return floors, [f"{floor.url}/hooks/itglue/{TOKEN}" for floor in floors]


def _start_floors(script: str, dsn: str | None, count: int) -> list[ServerProcess]:
    floors = [ServerProcess([sys.executable, str(HERE / script), "--port", "0",
                             *(["--dsn", dsn] if dsn else [])]) for _ in range(count)]
    for floor in floors:
        floor.start()
    return floors


def wrk(urls: list[str], *, seconds: float, connections: int = WRK_CONNECTIONS,
        offset: int = 0, servers: list[int] | None = None) -> dict[str, Any]:
    """Drive ``urls`` with wrk (one wrk per URL, the connections split evenly, all at once).

    Returns the 2xx answers per second, latency p50/p99 (ms, the worst of the wrk processes),
    wrk's own CPU share (its utime+stime over the wall time, in cores: what the load generator
    took from the machine), and the servers' (``servers``: their pids) the same way, in all
    and by kind of thread (CPU seconds, ``server_cpu_by_thread``).
    """
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `bash scripts/system-deps.sh test`")
    share = max(1, connections // len(urls))
    server_before = [process_cpu_seconds(p) for p in servers or []]
    threads_before = [thread_cpu_seconds(p) for p in servers or []]
    began = time.monotonic()
    procs = [subprocess.Popen(
        ["wrk", "-t1", f"-c{share}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
         "-s", str(WRK_SCRIPT), url, "--", str(offset * len(urls) + n)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n, url in enumerate(urls)]
    wrk_cpu = 0.0
    outputs = []
    for proc in procs:
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0  # reaped by wait4 above
        wrk_cpu += usage.ru_utime + usage.ru_stime
        assert proc.stdout is not None
        outputs.append(proc.stdout.read())
    wall = time.monotonic() - began
    server_cpu = sum(process_cpu_seconds(p) for p in servers or []) - sum(server_before)
    by_thread: dict[str, float] = {}  # CPU seconds of the run, by kind of thread
    for pid, before in zip(servers or [], threads_before, strict=True):
        for kind, spent in thread_cpu_seconds(pid).items():
            by_thread[kind] = by_thread.get(kind, 0.0) + spent - before.get(kind, 0.0)
    runs = []
    for text in outputs:
        line = next((ln for ln in text.splitlines() if ln.startswith("WRK_JSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no summary:\n{text}")
        runs.append(json.loads(line.split(" ", 1)[1]))
    duration = max(r["duration_us"] for r in runs) / 1e6
    ok = sum(r["requests"] - r["non_2xx"] for r in runs)
    errors = sum(r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
                 for r in runs)
    return {"per_second": ok / duration, "wall": wall, "ok": ok,
            "requests": sum(r["requests"] for r in runs),
            "non_2xx": sum(r["non_2xx"] for r in runs), "socket_errors": errors,
            "p50": max(r["p50_us"] for r in runs) / 1000,
            "p99": max(r["p99_us"] for r in runs) / 1000,
            "wrk_cpu": wrk_cpu / wall, "server_cpu": server_cpu / wall if servers else None,
            "server_cpu_by_thread": by_thread}


def wait_quiet(pids: list[int], *, below: float = 0.05, deadline: float = 60.0) -> None:
    """Wait until the processes together use less than ``below`` of a core over half a second
    (what a previous round left them to do is done), or ``deadline`` seconds have passed."""
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        before = sum(process_cpu_seconds(p) for p in pids)
        time.sleep(0.5)  # the measuring window itself, not a wait for a condition
        if sum(process_cpu_seconds(p) for p in pids) - before < below * 0.5:
            return
    print(f"# servers {pids} still busy after {deadline:.0f} s; measuring anyway",
          file=sys.stderr, flush=True)


def warm_up(urls: list[str], requests: int = 20) -> None:
    """A few unique webhooks per URL: first connections, caches and imports, little backlog."""
    import httpx

    with httpx.Client(timeout=30) as http:
        for url in urls:
            for n in range(requests):
                http.post(url, json={
                    "resourceUrl": f"https://acme.itglue.com/2412/passwords/{9_000_000_000 + n}",
                    "resourceName": f"Warm-up {n}"})


Servers = tuple[list[ServerProcess], list[str]]


def compare(start: Callable[[], Servers], *, floors: int, runs: int, seconds: float,
            after_round: Callable[[list[ServerProcess], dict[str, Any]], None] | None = None,
            references: Mapping[str, Callable[[], Servers]] | None = None,
            ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]],
                       list[dict[str, Any]]]:
    """``runs`` rounds of the floor, then the real path, each driven by wrk the same way.

    ``start()`` starts fresh servers for every round and returns them with the URLs to load:
    each accepted webhook queues a reset job that the tenant works through after the burst,
    and that backlog would otherwise take CPU from the next round (the floor's included).
    Each round waits until both sides are quiet. ``after_round(servers, result)`` runs once
    the servers have stopped (to count rows). Every round also measures each of the
    ``references`` (name -> a starter like ``start``: the durable floor, the lean floor) on
    fresh servers, between the two, driven the same way. Returns the rounds' results:
    (floor, {reference name: its rounds}, real).
    """
    floor_servers = [start_floor() for _ in range(floors)]
    floor_urls = [f.url + "/" for f in floor_servers]
    floor_pids = [f.proc.pid for f in floor_servers if f.proc is not None]
    floor_runs: list[dict[str, Any]] = []
    reference_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in references or {}}
    real_runs: list[dict[str, Any]] = []
    try:
        wrk(floor_urls, seconds=1, offset=900)
        for n in range(runs):
            servers, urls = start()
            pids = [s.proc.pid for s in servers if s.proc is not None]
            try:
                warm_up(urls)
                wait_quiet(pids + floor_pids)
                floor_runs.append(wrk(floor_urls, seconds=seconds, offset=n, servers=floor_pids))
                for name, start_reference in (references or {}).items():
                    reference_runs[name].append(_measure(start_reference, seconds, n))
                real_runs.append(wrk(urls, seconds=seconds, offset=n, servers=pids))
            finally:
                for server in servers:
                    server.stop()
            if after_round is not None:
                after_round(servers, real_runs[-1])
    finally:
        for floor in floor_servers:
            floor.stop()
    return floor_runs, reference_runs, real_runs


def _measure(start: Callable[[], Servers], seconds: float, offset: int) -> dict[str, Any]:
    """One wrk run on servers started for it alone, stopped afterwards."""
    servers, urls = start()
    try:
        pids = [s.proc.pid for s in servers if s.proc is not None]
        warm_up(urls)
        wait_quiet(pids)
        return wrk(urls, seconds=seconds, offset=offset, servers=pids)
    finally:
        for server in servers:
            server.stop()


def _by_thread_per_request(runs: list[dict[str, Any]]) -> dict[str, int]:
    """Where the server's CPU went: microseconds per answered request for each kind of
    thread (the median over the rounds), the most expensive first."""
    kinds = {kind for run in runs for kind in run["server_cpu_by_thread"]}
    medians = {kind: statistics.median(run["server_cpu_by_thread"].get(kind, 0.0)
                                       / max(1, run["ok"]) * 1e6 for run in runs)
               for kind in kinds}
    return {kind: round(us) for kind, us in sorted(medians.items(), key=lambda kv: -kv[1])
            if round(us) > 0}


def emit_comparison(name: str, floors: list[dict[str, Any]], reals: list[dict[str, Any]],
                    unit: str = "accepted/s",
                    references: Mapping[str, list[dict[str, Any]]] | None = None,
                    **extra: Any) -> None:
    """``NAME_throughput`` (medians, the ratio's median and spread over the rounds), then
    ``NAME_p50`` and ``NAME_p99``: every figure against the floor of the same rounds. Given
    the same rounds of reference paths (name -> rounds: the durable floor, the lean floor),
    the throughput line also says what share of each the real path reached
    (``ratio_to_durable_floor``, ``ratio_to_lean_floor``)."""
    for reference, runs in (references or {}).items():
        extra[f"ratio_to_{reference}"] = round(statistics.median(
            r["per_second"] / d["per_second"] for r, d in zip(reals, runs, strict=True)), 3)
    ratios = [r["per_second"] / f["per_second"] for f, r in zip(floors, reals, strict=True)]
    spread = summary(ratios)

    def cpu_per_request(run: dict[str, Any]) -> float:
        # Server CPU seconds per answered request, in microseconds: unlike requests/s it
        # hardly moves when other work on the machine takes CPU away.
        return run["server_cpu"] * run["wall"] / max(1, run["ok"]) * 1e6

    real = summary([r["per_second"] for r in reals])
    floor = summary([f["per_second"] for f in floors])
    emit(f"{name}_throughput", real["median"], unit, floor["median"],
         ratio_median=round(spread["median"], 3),
         ratio_spread=[round(spread["min"], 3), round(spread["max"], 3)],
         runs=[round(r["per_second"]) for r in reals],
         floor_runs=[round(f["per_second"]) for f in floors],
         wrk_cpu=round(statistics.median(r["wrk_cpu"] for r in reals), 2),
         floor_wrk_cpu=round(statistics.median(f["wrk_cpu"] for f in floors), 2),
         server_cpu=round(statistics.median(r["server_cpu"] for r in reals), 2),
         floor_server_cpu=round(statistics.median(f["server_cpu"] for f in floors), 2),
         cpu_us_per_request=round(statistics.median(cpu_per_request(r) for r in reals)),
         floor_cpu_us_per_request=round(statistics.median(cpu_per_request(f) for f in floors)),
         cpu_us_per_request_by_thread=_by_thread_per_request(reals),
         non_2xx=sum(r["non_2xx"] for r in reals),
         socket_errors=sum(r["socket_errors"] for r in reals),
         connections=WRK_CONNECTIONS, load_generator="wrk", **extra)
    for p in ("p50", "p99"):
        emit(f"{name}_{p}", statistics.median(r[p] for r in reals), "ms",
             statistics.median(f[p] for f in floors),
             spread=[round(min(r[p] for r in reals), 2), round(max(r[p] for r in reals), 2)])


def emit_references(name: str, floors: list[dict[str, Any]],
                    references: Mapping[str, list[dict[str, Any]]], **extra: Any) -> None:
    """The reference paths' own lines (``NAME_durable_floor_*``, ``NAME_lean_floor_*``), each
    against the same rounds' floor; the lean floor's also against the durable floor it is
    built on (``ratio_to_durable_floor``)."""
    for reference, runs in references.items():
        below = ({"durable_floor": references["durable_floor"]}
                 if reference == "lean_floor" and "durable_floor" in references else {})
        emit_comparison(f"{name}_{reference}", floors, runs, references=below, **extra)


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
