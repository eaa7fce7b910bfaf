"""Cross-process wake-up of stream subscribers through PostgreSQL LISTEN/NOTIFY.

Every transaction that adds events NOTIFYs :data:`qp_tenant.db.EVENTS_CHANNEL` with the tenant
id (see ``qp_tenant/db.py``); PostgreSQL delivers it to every listening process once the
transaction commits. :class:`EventListener` keeps one dedicated asyncpg connection per process
LISTENing on that channel and turns each notification into :meth:`EventBroker.notify`, so an
SSE subscriber attached to this process wakes up for events accepted by any other process.

A notification only says "look again": the stream's tail of that tenant re-reads the database
after the last id it has (``domain/stream.py``), so a lost notification (connection dropped,
listener restarting) costs latency, never an event. After every (re)connect the listener wakes
everybody once, for whatever it may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from sqlalchemy.engine import make_url

from qp_tenant.db import EVENTS_CHANNEL, WEBHOOK_TAG
from qp_tenant.domain.events import EventBroker

log = logging.getLogger(__name__)


def asyncpg_dsn(database_url: str) -> str:
    """``postgresql+asyncpg://…`` (SQLAlchemy) → a libpq-style DSN asyncpg accepts."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class EventListener:
    """LISTENs for committed events of any process and wakes this process's subscribers."""

    def __init__(self, database_url: str, broker: EventBroker, *,
                 retry_seconds: float = 1.0, max_retry_seconds: float = 10.0):
        self._dsn = asyncpg_dsn(database_url)
        self._broker = broker
        self._retry = retry_seconds
        self._max_retry = max_retry_seconds
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self.connected = asyncio.Event()
        self.notifications = 0
        self._webhooks_at = float("-inf")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="listen")

    async def wait_connected(self, seconds: float) -> bool:
        """True once LISTEN is in place (start-up waits briefly so the first events wake)."""
        try:
            await asyncio.wait_for(self.connected.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)

    def webhooks_arriving(self, within: float = 0.2) -> bool:
        """Whether some process committed webhooks in the last ``within`` seconds."""
        return time.monotonic() - self._webhooks_at < within

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.notifications += 1
        tenant, _, tag = payload.partition(":")
        if tag and f":{tag}" == WEBHOOK_TAG:
            self._webhooks_at = time.monotonic()
        try:
            tenant_id = int(tenant)
        except ValueError:
            self._broker.notify_all()
            return
        self._broker.notify(tenant_id)

    async def _run(self) -> None:
        import asyncpg

        delay = self._retry
        while True:
            lost = asyncio.Event()
            try:
                self._conn = await asyncpg.connect(self._dsn, timeout=10)
                self._conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await self._conn.add_listener(EVENTS_CHANNEL, self._on_notify)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("Cannot LISTEN for events of other processes (retrying in %.0f s):"
                            " %s", delay, exc)
                await self._close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry)
                continue
            delay = self._retry
            self.connected.set()
            # Anything committed while we were not listening: subscribers look again.
            self._broker.notify_all()
            log.info("Listening for events of other tenant processes")
            await lost.wait()
            self.connected.clear()
            log.warning("Lost the event LISTEN connection; reconnecting")
            await self._close()
