"""The durable floor: a webhook path that answers 202 only after its commit and does nothing
else, on this stack. The bare floor (benchmarks/bare_floor.py, served the same way) plus a
group commit: requests queue, one thread inserts each waiting body into a one-column SQLite
table (WAL, ``synchronous=FULL`` like the tenant's default: on the disk before the answer)
in one statement and commits, then every request of the batch gets its 202 with its row id.

No token, no duplicate check, no event or job rows, no logging: the gap between this and the
bare floor is what durability costs here; the gap between the tenant and this is ours.

Run: .venv/bin/python benchmarks/durable_floor.py [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bare_floor import lifespan, serve

HEADERS = [(b"content-type", b"application/json")]


class GroupCommit:
    """One writer thread; each batch is one INSERT … RETURNING and one commit."""

    def __init__(self, path: Path):
        self._path = path
        self._db: sqlite3.Connection | None = None  # used on the writer thread only
        self._thread = ThreadPoolExecutor(1)
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[int]]] = asyncio.Queue()

    def start(self) -> None:
        asyncio.get_running_loop().create_task(self._run())

    async def submit(self, body: str) -> int:
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((body, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            ids = await loop.run_in_executor(self._thread, self._write,
                                             [body for body, _ in batch])
            for (_, future), row_id in zip(batch, ids, strict=True):
                future.set_result(row_id)

    def _write(self, bodies: list[str]) -> list[int]:
        if self._db is None:
            self._db = sqlite3.connect(self._path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS inbox "
                             "(id INTEGER PRIMARY KEY, body TEXT)")
        self._db.execute("BEGIN")
        # One statement whatever the batch size: the bodies go in as one JSON array.
        rows = self._db.execute("INSERT INTO inbox (body) SELECT value FROM json_each(?) "
                                "RETURNING id", (json.dumps(bodies),)).fetchall()
        self._db.execute("COMMIT")
        return [row_id for (row_id,) in rows]


def make_app(path: Path) -> Any:
    commit = GroupCommit(path)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, startup=commit.start)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        row_id = await commit.submit(b"".join(chunks).decode("utf-8", "replace"))
        answer = b'{"event_id":%d,"status":"accepted"}' % row_id
        await send({"type": "http.response.start", "status": 202,
                    "headers": [*HEADERS, (b"content-length", b"%d" % len(answer))]})
        await send({"type": "http.response.body", "body": answer})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    import uvloop

    with tempfile.TemporaryDirectory(prefix="qp-durable-floor-") as folder:
        uvloop.run(serve(make_app(Path(folder) / "floor.db"), args.port))


if __name__ == "__main__":
    main()
