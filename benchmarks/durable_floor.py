"""The durable floor: a webhook path that answers 202 only after its commit and does nothing
else, on this stack. The bare floor (benchmarks/bare_floor.py, served the same way) plus a
group commit: requests queue, one thread inserts each waiting body into a one-column SQLite
table (WAL, ``synchronous=FULL`` like the tenant's default: on the disk before the answer)
in one statement and commits, then every request of the batch gets its 202 with its row id.

No token, no duplicate check, no event or job rows, no logging: the gap between this and the
bare floor is what durability costs here; the gap between the tenant and this is ours.

With ``--dsn postgresql://…`` the batch goes to PostgreSQL instead, on one asyncpg connection
(one INSERT … RETURNING per batch; commits wait for the WAL flush, as the benchmarks' server is
set up): several processes may share one database, as tenant processes do.

Run: .venv/bin/python benchmarks/durable_floor.py [--port 0] [--dsn postgresql://… | --db FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bare_floor import lifespan, serve

HEADERS = [(b"content-type", b"application/json")]


class GroupCommit:
    """Requests wait in a queue; whatever is waiting is written as one batch, then answered.
    What a request hands over (here a body, in benchmarks/lean_floor.py an event row) is the
    subclass's business."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future[int]]] = asyncio.Queue()

    def start(self) -> None:
        asyncio.get_running_loop().create_task(self._run())

    async def submit(self, body: Any) -> int:
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((body, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            ids = await self.write([body for body, _ in batch])
            for (_, future), row_id in zip(batch, ids, strict=True):
                future.set_result(row_id)

    async def write(self, bodies: list[Any]) -> list[int]:
        raise NotImplementedError


class SqliteCommit(GroupCommit):
    """One writer thread; each batch is one INSERT … RETURNING and one commit.

    ``schema`` and ``insert`` say what is written; benchmarks/lean_floor.py writes more."""

    def __init__(self, path: Path):
        super().__init__()
        self._path = path
        self._db: sqlite3.Connection | None = None  # used on the writer thread only
        self._thread = ThreadPoolExecutor(1)

    def schema(self) -> list[str]:
        return ["CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, body TEXT)"]

    def insert(self, db: sqlite3.Connection, bodies: list[Any]) -> list[int]:
        # One statement whatever the batch size: the bodies go in as one JSON array.
        rows = db.execute("INSERT INTO inbox (body) SELECT value FROM json_each(?) "
                          "RETURNING id", (json.dumps(bodies),)).fetchall()
        return [row_id for (row_id,) in rows]

    async def write(self, bodies: list[Any]) -> list[int]:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._write,
                                                                bodies)

    def _write(self, bodies: list[Any]) -> list[int]:
        if self._db is None:
            self._db = sqlite3.connect(self._path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in self.schema():
                self._db.execute(statement)
        self._db.execute("BEGIN")
        ids = self.insert(self._db, bodies)
        self._db.execute("COMMIT")
        return ids


class PostgresCommit(GroupCommit):
    """One asyncpg connection; each batch is one INSERT … RETURNING in its own transaction.

    ``schema`` and ``insert`` say what is written; benchmarks/lean_floor.py writes more."""

    def __init__(self, dsn: str):
        super().__init__()
        self._dsn = dsn
        self._conn: Any = None

    def schema(self) -> list[str]:
        return ["CREATE TABLE IF NOT EXISTS inbox (id BIGSERIAL PRIMARY KEY, body TEXT)"]

    async def insert(self, conn: Any, bodies: list[Any]) -> list[int]:
        rows = await conn.fetch("INSERT INTO inbox (body) SELECT unnest($1::text[]) "
                                "RETURNING id", bodies)
        return [row["id"] for row in rows]

    async def write(self, bodies: list[Any]) -> list[int]:
        import asyncpg

        if self._conn is None:
            self._conn = await asyncpg.connect(self._dsn)
            for statement in self.schema():
                # Another process may make it at the same moment.
                with contextlib.suppress(asyncpg.UniqueViolationError,
                                         asyncpg.DuplicateTableError,
                                         asyncpg.DuplicateObjectError):
                    await self._conn.execute(statement)
        async with self._conn.transaction():
            return await self.insert(self._conn, bodies)


async def read_body(receive: Any) -> bytes:
    """The whole request body."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            return b"".join(chunks)


async def answer(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*HEADERS, (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def make_app(commit: GroupCommit) -> Any:

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, startup=commit.start)
            return
        body = await read_body(receive)
        row_id = await commit.submit(body.decode("utf-8", "replace"))
        await answer(send, 202, b'{"event_id":%d,"status":"accepted"}' % row_id)

    return app


def run(make_app: Any, sqlite_commit: type[SqliteCommit], postgres_commit: type[PostgresCommit],
        name: str) -> None:
    """A floor's command line: serve ``make_app(commit)`` on ``--port``, writing to PostgreSQL
    at ``--dsn``, else to the SQLite file ``--db`` (default: a temporary one)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dsn", default=None, help="PostgreSQL instead of SQLite")
    parser.add_argument("--db", type=Path, default=None,
                        help="the SQLite file to write (default: a temporary one)")
    args = parser.parse_args()
    import uvloop

    with contextlib.ExitStack() as stack:
        commit: GroupCommit
        if args.dsn:
            commit = postgres_commit(args.dsn)
        else:
            path = args.db or Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix=f"qp-{name}-"))) / f"{name}.db"
            commit = sqlite_commit(path)
        uvloop.run(serve(make_app(commit), args.port))


def main() -> None:
    run(make_app, SqliteCommit, PostgresCommit, "durable-floor")


if __name__ == "__main__":
    main()
