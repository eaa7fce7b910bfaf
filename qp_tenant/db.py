"""Engine, sessions and migrations (Alembic) for SQLite (WAL) and PostgreSQL.

Several tenant processes may share one PostgreSQL database. Two rules keep that safe:

* Migrations run under a PostgreSQL advisory lock, so processes starting together never race
  on ``alembic upgrade``; the later ones find the schema already current.
* **Event ids are visible in id order.** A ``BIGSERIAL``/identity hands out ids at INSERT time
  but rows become visible at COMMIT time, so without care a transaction holding id 7 could
  commit after another's id 8 was already streamed, and a reader resuming "after 8" would
  never see 7. Every transaction that adds events therefore takes one transaction-scoped
  advisory lock (:data:`EVENT_LOG_LOCK`) just before its first event INSERT and holds it until
  it ends. PostgreSQL makes a commit visible before it releases the transaction's locks, so
  the next event writer gets its ids only after the previous one is visible: commit order
  equals id order. The same transaction also ``pg_notify``s the tenant id on
  :data:`EVENTS_CHANNEL`; PostgreSQL delivers that only if and when the transaction commits,
  which is what wakes stream subscribers in other processes (``domain/notify.py``).
  SQLite has a single writer, so id order already is commit order there.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event, pool, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from qp_tenant.config import Settings
from qp_tenant.models import Event

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Advisory lock keys (any constant bigint unique to this application) and the NOTIFY channel.
MIGRATION_LOCK = 0x5150_0001
EVENT_LOG_LOCK = 0x5150_0002
EVENTS_CHANNEL = "qp_events"
# Appended to the NOTIFY payload by the webhook writer: other processes learn that webhooks are
# arriving (their reset pipelines then wait out the burst, as this process's does).
WEBHOOK_TAG = ":hook"

_LOCK_EVENT_LOG = text("SELECT pg_advisory_xact_lock(:key)")
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def create_engine(settings: Settings) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and the configured fsync level."""
    url = settings.effective_database_url
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_size"] = 10
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        _apply_sqlite_pragmas(engine.sync_engine, settings.sqlite_synchronous)
    return engine


def _apply_sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


@dataclass
class SqliteWriter:
    """The webhook writer's own synchronous engine on the SQLite file, and how it makes its
    commits survive a power cut.

    With ``synchronous=FULL`` SQLite would ``fsync`` the WAL inside every commit, holding the
    database's write lock meanwhile, so no other batch could be written during that
    millisecond or three. Instead this connection commits with ``NORMAL`` (the commit is in
    the WAL file, so it survives the process being killed) and ``flush_wal`` then does the
    same ``fdatasync`` of the WAL FULL would have done, outside the write lock: the next batch
    is written while this one is flushed, and one flush covers every commit made before it
    began. What a commit survives once its flush has returned is exactly what FULL gives it;
    the writer answers no webhook before that (see ``TriggerIngest``).

    ``flush_wal`` is None when the configured level does not promise power-loss safety
    (NORMAL, OFF) or already syncs more than the WAL (EXTRA: left to SQLite).
    """

    engine: Engine
    flush_wal: Callable[[], None] | None


def create_sqlite_writer(settings: Settings) -> SqliteWriter | None:
    """The webhook writer's engine (None on PostgreSQL).

    The async engine (aiosqlite) hops to a worker thread and back for every statement; the
    webhook batch instead runs whole on one thread with this engine.
    """
    url = make_url(settings.effective_database_url)
    if not url.drivername.startswith("sqlite"):
        return None
    # One thread uses it at a time; check_same_thread=False only lets stop() close it.
    engine = sa_create_engine(url.set(drivername="sqlite"),
                              connect_args={"timeout": 30, "check_same_thread": False},
                              poolclass=pool.StaticPool)
    level = settings.sqlite_synchronous
    flush = None
    if level == "FULL" and url.database:
        level = "NORMAL"
        flush = functools.partial(flush_file, f"{url.database}-wal")
    _apply_sqlite_pragmas(engine, level)
    return SqliteWriter(engine, flush)


def flush_file(path: str) -> None:
    """Make what was written to ``path`` survive a power cut (``fdatasync``, as SQLite
    does). A file that does not exist holds nothing to flush."""
    try:
        fd = os.open(path, os.O_RDWR)  # Windows flushes only a handle open for writing
    except FileNotFoundError:
        return
    try:
        _datasync(fd)
    finally:
        os.close(fd)


# Windows has no fdatasync; its fsync (FlushFileBuffers) is what SQLite uses there.
_datasync = getattr(os, "fdatasync", os.fsync)


def is_postgresql(bind: Any) -> bool:
    return bool(bind is not None and bind.dialect.name == "postgresql")


def _event_log_statements(tenant_ids: Iterable[int], tag: str = ""
                          ) -> list[tuple[Any, dict[str, Any]]]:
    statements: list[tuple[Any, dict[str, Any]]] = [(_LOCK_EVENT_LOG, {"key": EVENT_LOG_LOCK})]
    statements += [(_NOTIFY, {"channel": EVENTS_CHANNEL, "payload": f"{t}{tag}"})
                   for t in sorted(set(tenant_ids))]
    return statements


def lock_event_log(connection: Connection, tenant_ids: Iterable[int],
                   tag: str = "") -> None:
    """Call in the transaction, right before a Core INSERT into ``events`` (see module doc).

    ``tag`` rides along on the NOTIFY (``WEBHOOK_TAG``: these events are webhooks).
    ORM inserts (``session.add(Event(...))``) need no call: a ``before_flush`` hook does it.
    """
    if not is_postgresql(connection):
        return
    for statement, params in _event_log_statements(tenant_ids, tag):
        connection.execute(statement, params)


@event.listens_for(Session, "before_flush")
def _events_in_commit_order(session: Session, _context: Any, _instances: Any) -> None:
    """Serialise event writers and queue the cross-process wake-up (PostgreSQL only)."""
    tenants = {obj.tenant_id for obj in session.new if isinstance(obj, Event)}
    if not tenants or not is_postgresql(session.get_bind()):
        return
    connection = session.connection()
    for statement, params in _event_log_statements(tenants):
        connection.execute(statement, params)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema up to the newest migration."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Held until this transaction ends; PostgreSQL DDL is transactional, so a process
            # that waited here then finds the schema already at head.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": MIGRATION_LOCK})
        await conn.run_sync(_upgrade)


class WriteGate:
    """Lets one background writer at a time into SQLite, the webhook writer first.

    SQLite has a single write lock, and a connection that finds it taken sleeps in
    sqlite3's busy handler (1 ms, 2 ms, ... up to 100 ms a try). Waiting on this gate
    instead hands the lock over the moment it is free, and the webhook writer
    (``priority()``) goes ahead of queued reset-pipeline writes, so a backlog of pipeline
    work never delays a 202. PostgreSQL locks rows, so there the gate lets everyone through.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._held = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()

    async def _acquire(self, queue: collections.deque[asyncio.Future[None]]) -> None:
        if not self.enabled:
            return
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter  # the releaser hands the gate over by resolving this
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed over just as we were cancelled: pass it on
            else:
                queue.remove(waiter)
            raise

    def _release(self) -> None:
        if not self.enabled:
            return
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._held = False

    async def __aenter__(self) -> None:
        await self._acquire(self._normal)

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    @contextlib.asynccontextmanager
    async def priority(self) -> AsyncIterator[None]:
        """Enter ahead of every ordinary waiter (the webhook writer)."""
        await self._acquire(self._urgent)
        try:
            yield
        finally:
            self._release()
