"""A throw-away PostgreSQL server for tests, run from Debian's binaries on a loopback port.

PostgreSQL refuses to run as root, so when the tests run as root the cluster is created and
started as the ``postgres`` system user in a folder that user owns. Databases are cloned from
a template database (``CREATE DATABASE … TEMPLATE …``), which copies files and takes well
under a second, so every test can have a fresh database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PG_BIN_CANDIDATES = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14, 13)]
# A file in a tenant data folder saying which PostgreSQL database that folder's tenant uses.
DB_MARKER = ".qp-test-database.json"


def find_pg_bin() -> Path:
    for folder in PG_BIN_CANDIDATES:
        if (folder / "postgres").exists() and (folder / "initdb").exists():
            return folder
    raise RuntimeError(
        "PostgreSQL server binaries are missing: install Debian's `postgresql` package "
        "(scripts/system-deps.sh test does)."
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, listening on 127.0.0.1 only."""

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self.bin = find_pg_bin()
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="qp-pg-"))
        self.data = self.root / "data"
        self._as_user: list[str] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*self._as_user, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )
        self.port = free_port()
        # Tests: fsync off (a test cluster need not survive a power cut; saves seconds).
        # Benchmarks ask for ``durable``: the settings a deployment runs with.
        speed = [] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                         "-c", "full_page_writes=off"]
        self.proc = subprocess.Popen(
            [*self._as_user, str(self.bin / "postgres"), "-D", str(self.data),
             "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
             "-c", f"unix_socket_directories={self.root}", *speed,
             "-c", "max_connections=300", "-c", "shared_buffers=64MB"],
            stdout=subprocess.DEVNULL, stderr=open(self.root / "postgres.log", "wb"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 30
        while True:
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.root / "postgres.log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"PostgreSQL did not start:\n{log}")
            time.sleep(0.1)  # polling for readiness with a deadline

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: "smart" shutdown would wait; postgres does fast
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases ------------------------------------------------------------------------
    def url(self, database: str) -> str:
        """The SQLAlchemy URL the tenant uses."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
        )
        return done.stdout

    def new_name(self, prefix: str = "qp") -> str:
        with self._lock:
            return f"{prefix}_{os.getpid()}_{next(self._counter)}"

    def create_database(self, template: str | None = None, prefix: str = "qp") -> str:
        name = self.new_name(prefix)
        clause = f" TEMPLATE {template}" if template else ""
        self.psql(f"CREATE DATABASE {name}{clause}")
        return name


# --- the data-folder marker: lets every helper that copies a template folder get its own DB --
def write_marker(data_dir: Path, server: PostgresServer, database: str, role: str) -> None:
    """``role`` is ``template`` (copies clone it) or ``live`` (the folder's own database)."""
    (Path(data_dir) / DB_MARKER).write_text(json.dumps(
        {"port": server.port, "database": database, "role": role}))


def read_marker(data_dir: Path) -> dict[str, Any] | None:
    path = Path(data_dir) / DB_MARKER
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


_servers: dict[int, PostgresServer] = {}


def register(server: PostgresServer) -> None:
    _servers[server.port] = server


def database_url_for(data_dir: Path) -> str | None:
    """The PostgreSQL URL of a tenant data folder, cloning its template database on first use.

    None for a folder without a marker (the tenant then uses SQLite in the folder).
    """
    marker = read_marker(data_dir)
    if marker is None:
        return None
    server = _servers.get(int(marker["port"]))
    if server is None:
        raise RuntimeError(f"{data_dir} names a PostgreSQL server this test run did not start")
    if marker["role"] == "template":
        database = server.create_database(template=marker["database"])
        write_marker(data_dir, server, database, "live")
    else:
        database = marker["database"]
    return server.url(database)


def query(url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Run one query against a PostgreSQL URL from synchronous test code (``?`` placeholders)."""
    import asyncpg

    parts = sql.split("?")
    sql_pg = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    result: list[dict[str, Any]] = []
    error: list[BaseException] = []

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            result.extend(dict(r) for r in await conn.fetch(sql_pg, *params))
        finally:
            await conn.close()

    def thread() -> None:  # its own loop: callers may be inside a running event loop
        try:
            asyncio.run(run())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            error.append(exc)

    t = threading.Thread(target=thread)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result


class AdvisoryLock:
    """Holds a session-level advisory lock from a ``psql`` process while the block runs."""

    def __init__(self, database_url: str, key: int) -> None:
        self._dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        self._key = key
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> AdvisoryLock:
        self._proc = subprocess.Popen(
            [str(find_pg_bin() / "psql"), "-X", "-q", "-A", "-t", self._dsn],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"SELECT 'held', pg_advisory_lock({self._key});\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        assert line.startswith("held"), f"could not take advisory lock {self._key}: {line!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(f"SELECT pg_advisory_unlock({self._key});\n\\q\n")
        self._proc.stdin.close()
        self._proc.wait(timeout=30)
