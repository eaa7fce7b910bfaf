"""Several tenant processes on one PostgreSQL database, optionally behind a real nginx."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import build_template
from tests.support import postgres
from tests.support.nginx import Nginx
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.support.tenant_api import Api, bearer, sign_in

STREAM_TIMEOUT = httpx.Timeout(10, read=60)


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory: pytest.TempPathFactory,
                postgres_server: postgres.PostgresServer) -> Path:
    """Like ``tenant_template``, always on PostgreSQL (clusters need a shared database)."""
    return build_template(tmp_path_factory.mktemp("cluster-template"), postgres_server)


@dataclass
class Cluster:
    """Tenant processes sharing one fresh PostgreSQL database (each its own data folder)."""

    root: Path
    template: Path
    env: dict[str, str]
    processes: list[TenantProcess] = field(default_factory=list)
    database_url: str = ""
    proxy: Nginx | None = None

    def add(self, **env: str) -> TenantProcess:
        data = self.root / f"node-{len(self.processes)}"
        shutil.copytree(self.template, data)
        if not self.database_url:
            url = postgres.database_url_for(data)
            assert url is not None
            self.database_url = url
        (data / postgres.DB_MARKER).unlink()
        proc = TenantProcess(data, env={**self.env, **env, "QP_DATABASE_URL": self.database_url})
        self.processes.append(proc)
        return proc

    def start(self, count: int, **env: str) -> list[TenantProcess]:
        started = [self.add(**env) for _ in range(count)]
        for proc in started:
            proc.start()
        return started

    def behind_nginx(self) -> Nginx:
        self.proxy = Nginx([p.url.removeprefix("http://") for p in self.processes])
        self.proxy.start()
        return self.proxy

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return postgres.query(self.database_url, sql, *params)

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        for proc in self.processes:
            proc.stop()


@pytest.fixture
def cluster(tmp_path: Path, pg_template: Path, itglue_emulator: EmulatorProcess
            ) -> Iterator[Cluster]:
    c = Cluster(tmp_path, pg_template,
                env={"QP_ITGLUE_BASE_URL": itglue_emulator.url, "QP_PUBLIC_URL": "",
                     "QP_ITGLUE_WATCH_SECONDS": "0",  # reads the shared emulator otherwise
                     # One key for all: tokens are looked up by an HMAC made with it.
                     "QP_SECRET_KEY": secrets.token_urlsafe(32),
                     "QP_STREAM_POLL_SECONDS": "30",  # wake-ups, not polling, must deliver
                     # Well inside the 15 s a test gives a process to stop after SIGTERM.
                     "QP_SHUTDOWN_GRACE_SECONDS": "3"})
    try:
        yield c
    finally:
        c.close()


def signed_in(url: str) -> Api:
    return sign_in(httpx.Client(base_url=url, timeout=10))


def hook_path(webhook_url: str) -> str:
    """The path part of a workflow URL (so it can be sent to any process or the proxy)."""
    return "/" + webhook_url.split("/", 3)[3]


# --- a resuming SSE reader ----------------------------------------------------------------
@dataclass
class StreamReader:
    """Reads the event stream in a thread and reconnects with ``Last-Event-ID`` like a client.

    ``events`` is every event message received, in arrival order, across reconnects.
    """

    base_url: str
    access_token: str
    last_id: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    connects: int = 0
    retry_hints: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _response: Any = None

    def start(self) -> StreamReader:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.connected.wait(20), f"stream did not connect: {self.errors}"
        return self

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # closing from another thread may race
                response.close()
        if self._thread is not None:
            self._thread.join(10)

    @property
    def ids(self) -> list[int]:
        return [int(e["id"]) for e in self.events]

    def _run(self) -> None:
        retry_ms = 1000
        with httpx.Client(base_url=self.base_url, timeout=STREAM_TIMEOUT) as client:
            while not self._stop.is_set():
                headers = {**bearer(self.access_token), "Accept": "text/event-stream"}
                if self.last_id is not None:
                    headers["Last-Event-ID"] = str(self.last_id)
                try:
                    with client.stream("GET", "/api/v1/events/stream", headers=headers) as r:
                        self._response = r
                        if r.status_code != 200:
                            self.errors.append(f"HTTP {r.status_code}")
                        else:
                            self.connects += 1
                            retry_ms = self._consume(r, retry_ms)
                except (httpx.HTTPError, OSError) as exc:
                    self.errors.append(repr(exc))
                self._response = None
                if self._stop.wait(min(retry_ms, 2000) / 1000):
                    return

    def _consume(self, response: httpx.Response, retry_ms: int) -> int:
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if self._stop.is_set():
                break
            if line == "":
                if "data" in fields and "id" in fields:
                    event = json.loads(fields["data"])
                    self.events.append(event)
                    self.last_id = int(fields["id"])
                fields = {}
                continue
            if line.startswith(":"):
                self.connected.set()
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "retry":
                retry_ms = int(value)
                self.retry_hints.append(retry_ms)
                self.connected.set()
            elif name in ("id", "event", "data"):
                fields[name] = value
        return retry_ms

