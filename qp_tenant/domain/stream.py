"""One shared tail of the event log per tenant and process, behind the live SSE stream.

Without it every subscriber ran its own ``events_after`` query and JSON encoding on every
wake-up: 200 subscribers at 200 events/s made 40,000 queries and encodings a second. Now one
:class:`EventTail` per tenant with subscribers in this process reads the log once per wake-up
and keeps the newest events already encoded as SSE messages; every subscriber of that tenant
takes what it has not seen from that buffer, as one chunk of bytes per wake-up.

The database stays the only source of truth, and the buffer is only a cache of its tail:

* ``head_id``: every event of the tenant with ``id <= head_id`` is in the buffer or has
  ``id <= floor_id``. The tail reads "everything after ``head_id``", which never misses a row
  because event ids become visible in id order (see ``qp_tenant/db.py``).
* ``floor_id``: ids ``<= floor_id`` are not in the buffer (never read, or evicted).
* A subscriber whose last id is ``>= floor_id`` is served from the buffer: exactly the
  buffered events after its last id, which are all of the tenant's events in
  ``(last_id, head_id]``. One further behind (a Last-Event-ID far back, or a slow reader the
  buffer has moved past) replays from the database in pages until it reaches the buffer.
  Either way it gets every id once, in order.
* The refresher is woken by :class:`~qp_tenant.domain.events.EventBroker` (commits of this
  process, and of others on PostgreSQL through LISTEN/NOTIFY) and polls every
  ``poll_seconds`` besides, so a missed wake-up costs latency, never an event.

The tails of a process read through one shared autocommit connection (:class:`LogReader`):
a refresh is a single round trip, with no pool checkout, ping, BEGIN or ROLLBACK around it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
from collections import Counter, OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Row, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sse_starlette import ServerSentEvent

from qp_tenant.domain import events
from qp_tenant.domain.events import EventBroker
from qp_tenant.models import Event

log = logging.getLogger(__name__)

#: How many encoded events a tail keeps (older ones are replayed from the database).
BUFFER_EVENTS = 2048
#: The most bytes a tail keeps in joined chunks (what subscribers at one last id take), the
#: least recently used dropped first. Every distinct Last-Event-ID in the buffer has its own
#: chunk, up to the whole buffer long: unbounded, a few hundred ids held gigabytes.
JOINED_BYTES = 8 * 1024 * 1024
#: Live streams one user may hold open at once on one process.
STREAMS_PER_USER = 8
#: Rows per query (a tail, or a replaying subscriber, pages until a page comes back short).
PAGE = events.MAX_PAGE
#: Wait after a failed read of the log before the tail tries again.
RETRY_SECONDS = 1.0

_EVENTS = Event.__table__


def _after(tenant_id: int, after_id: int, limit: int) -> Select[Any]:
    """Oldest first, as plain rows (the same columns ``event_to_dict`` reads from an Event)."""
    return (select(_EVENTS)
            .where(Event.tenant_id == tenant_id, Event.id > after_id)
            .order_by(Event.id).limit(limit))


def encode_event(row: Any) -> bytes:
    """One SSE message for an event row, exactly as :class:`ServerSentEvent` writes it."""
    return ServerSentEvent(
        id=str(row.id), event=row.type,
        data=json.dumps(events.event_to_dict(row), separators=(",", ":")),
    ).encode()


class LogReader:
    """One autocommit connection, shared by this process's tails (one query at a time)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def rows_after(self, tenant_id: int, after_id: int, limit: int) -> Sequence[Row[Any]]:
        return await self._read(_after(tenant_id, after_id, limit))

    async def last_id(self, tenant_id: int) -> int:
        rows = await self._read(select(func.max(Event.id)).where(Event.tenant_id == tenant_id))
        return int(rows[0][0] or 0)

    async def _read(self, stmt: Any) -> Sequence[Row[Any]]:
        # Shielded: a tail stopping mid-query must not cancel a query on the shared
        # connection (that could leave it unusable); the query finishes, nobody reads it.
        return await asyncio.shield(self._locked_read(stmt))

    async def _locked_read(self, stmt: Any) -> Sequence[Row[Any]]:
        async with self._lock:
            try:
                if self._conn is None:
                    conn = await self._engine.connect()
                    try:
                        self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    except BaseException:
                        await conn.close()
                        raise
                return (await self._conn.execute(stmt)).all()
            except Exception:
                await self._discard()  # a broken connection: the next read opens another
                raise

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()


class EventTail:
    """The newest events of one tenant, read once and encoded once for all its subscribers."""

    def __init__(self, tenant_id: int, engine: AsyncEngine, reader: LogReader,
                 broker: EventBroker, *, poll_seconds: float,
                 capacity: int = BUFFER_EVENTS, joined_bytes: int = JOINED_BYTES) -> None:
        self.tenant_id = tenant_id
        self.capacity = max(1, capacity)
        self.joined_limit = joined_bytes
        self.head_id = 0
        self.floor_id = 0
        self.ready = False  # head_id/floor_id are known (the first read has succeeded)
        self.subscribers = 0
        self._engine = engine
        self._reader = reader
        self._broker = broker
        self._poll = poll_seconds
        # Parallel lists, oldest first; evicted in batches so appending stays O(1) amortised.
        self._ids: list[int] = []
        self._chunks: list[bytes] = []
        # What subscribers at the same last id take, joined once per change of the buffer;
        # least recently used first, at most ``joined_limit`` bytes in all.
        self._joined: OrderedDict[int, bytes] = OrderedDict()
        self.joined_size = 0
        self._waiters: set[asyncio.Future[bool]] = set()
        self._task: asyncio.Task[None] | None = None

    # --- subscribers --------------------------------------------------------------------
    def serves(self, last_id: int) -> bool:
        """True if the buffer holds every event after ``last_id`` up to ``head_id``."""
        return self.ready and last_id >= self.floor_id

    def take(self, last_id: int) -> tuple[bytes, int]:
        """Every buffered event after ``last_id`` as one chunk, and the id it ends at.

        Only valid while :meth:`serves` is true for ``last_id``. Returns ``(b"", last_id)``
        when there is nothing new.
        """
        if last_id >= self.head_id:
            return b"", last_id
        chunk = self._joined.get(last_id)
        if chunk is not None:
            self._joined.move_to_end(last_id)
            return chunk, self.head_id
        start = bisect.bisect_right(self._ids, last_id)
        chunk = b"".join(self._chunks[start:])
        if len(chunk) <= self.joined_limit:
            self._joined[last_id] = chunk
            self.joined_size += len(chunk)
            while self.joined_size > self.joined_limit:
                _, dropped = self._joined.popitem(last=False)
                self.joined_size -= len(dropped)
        return chunk, self.head_id

    @property
    def joined_count(self) -> int:
        """How many joined chunks the tail holds (one per last id recently served)."""
        return len(self._joined)

    async def replay(self, last_id: int) -> tuple[bytes, int]:
        """One page of events after ``last_id`` straight from the database, for a subscriber
        the buffer does not serve (yet). Returns ``(b"", last_id)`` when there are none."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_after(self.tenant_id, last_id, PAGE))).all()
        if not rows:
            return b"", last_id
        return b"".join(encode_event(row) for row in rows), rows[-1].id

    def waiter(self) -> asyncio.Future[bool]:
        """A future resolved at the tail's next change (``True``) or quiet poll (``False``).

        Register it *before* an ``await`` that reads, so a change in between is not missed.
        """
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        fut.add_done_callback(self._waiters.discard)
        return fut

    def _wake(self, changed: bool) -> None:
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(changed)

    # --- the refresher ------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"event-tail-{self.tenant_id}")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._wake(False)

    async def _run(self) -> None:
        quiet = False
        failures = 0
        while True:
            # Register interest before reading, so a commit in between is never missed; a
            # wake-up that arrives during a read makes the next wait return at once (so
            # wake-ups that come in while a read is running are served by one more read).
            waiter = self._broker.waiter(self.tenant_id)
            try:
                try:
                    changed = await self.refresh()
                except Exception as exc:  # noqa: BLE001 - logged; the next round tries again
                    # Subscribers keep waiting (nothing is lost: the database still has it).
                    failures += 1
                    log.warning("Reading the event log of tenant %d failed (%d in a row); "
                                "retrying: %s", self.tenant_id, failures, exc,
                                exc_info=failures == 1)
                    self._wake(False)
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                failures = 0
                if changed or quiet:
                    # A quiet poll wakes idle subscribers too, to see if their client is gone.
                    self._wake(changed)
                try:
                    await asyncio.wait_for(asyncio.shield(waiter), self._poll)
                    quiet = False
                except TimeoutError:
                    quiet = True  # nothing for a while: read anyway (the fallback poll)
            finally:
                waiter.cancel()

    async def refresh(self) -> bool:
        """Read every event after ``head_id`` (a query per page); True if the tail moved."""
        if not self.ready:
            self.head_id = self.floor_id = await self._reader.last_id(self.tenant_id)
            self.ready = True
            return True
        added = False
        while True:
            rows = await self._reader.rows_after(self.tenant_id, self.head_id, PAGE)
            if rows:
                self._append(rows)
                added = True
            if len(rows) < PAGE:
                return added

    def _append(self, rows: Sequence[Row[Any]]) -> None:
        for row in rows:
            self._ids.append(row.id)
            self._chunks.append(encode_event(row))
        self.head_id = rows[-1].id
        self._joined.clear()
        self.joined_size = 0
        # Evict in batches (deleting a list's head one item at a time is costly); the floor
        # moves only when events actually leave the buffer.
        if len(self._ids) > self.capacity + max(1, self.capacity // 8):
            excess = len(self._ids) - self.capacity
            self.floor_id = self._ids[excess - 1]
            del self._ids[:excess]
            del self._chunks[:excess]


class EventTails:
    """This process's tails, one per tenant with at least one subscriber."""

    def __init__(self, engine: AsyncEngine, broker: EventBroker, *, poll_seconds: float,
                 capacity: int = BUFFER_EVENTS, joined_bytes: int = JOINED_BYTES,
                 streams_per_user: int = STREAMS_PER_USER) -> None:
        self._engine = engine
        self.joined_bytes = joined_bytes
        self.streams_per_user = streams_per_user
        self._streams: Counter[int] = Counter()  # user id -> streams open in this process
        self._reader = LogReader(engine)
        self._broker = broker
        self._poll = poll_seconds
        self.capacity = capacity
        self._tails: dict[int, EventTail] = {}
        self.closed = False

    def get(self, tenant_id: int) -> EventTail | None:
        return self._tails.get(tenant_id)

    @contextlib.contextmanager
    def attach(self, tenant_id: int) -> Iterator[EventTail]:
        """The tenant's tail for one subscriber; the last one to leave drops it."""
        tail = self._tails.get(tenant_id)
        if tail is None:
            tail = EventTail(tenant_id, self._engine, self._reader, self._broker,
                             poll_seconds=self._poll, capacity=self.capacity,
                             joined_bytes=self.joined_bytes)
            self._tails[tenant_id] = tail
            if not self.closed:
                tail.start()
        tail.subscribers += 1
        try:
            yield tail
        finally:
            tail.subscribers -= 1
            if tail.subscribers <= 0 and self._tails.get(tenant_id) is tail:
                del self._tails[tenant_id]
                tail.stop()

    def open_stream(self, user_id: int) -> Callable[[], None] | None:
        """Count one more live stream of ``user_id``: the function that ends it, or None when
        the user already holds ``streams_per_user`` (the caller refuses the stream)."""
        if self._streams[user_id] >= self.streams_per_user:
            return None
        self._streams[user_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._streams[user_id] -= 1
                if self._streams[user_id] <= 0:
                    del self._streams[user_id]

        return release

    def open_streams(self, user_id: int) -> int:
        return self._streams[user_id]

    async def close(self) -> None:
        """Stop every refresher, end every stream (shutdown) and close the connection."""
        self.closed = True
        for tail in list(self._tails.values()):
            tail.stop()
        await self._reader.close()


async def stream_chunks(tails: EventTails, tenant_id: int, last_id: int, *,
                        stopping: Callable[[], bool],
                        idle: Callable[[asyncio.Future[bool]], Awaitable[bool]]
                        ) -> AsyncGenerator[bytes, None]:
    """Every event of ``tenant_id`` after ``last_id``, in id order, each once, as SSE bytes.

    Yields one chunk per wake-up: everything new since the last one. Ends once ``stopping()``
    is true or the tails are closed. When there is nothing to send it awaits ``idle(waiter)``,
    which returns once ``waiter`` is resolved (see :meth:`EventTail.waiter`; the tail also
    resolves it every quiet poll) or earlier, and ``False`` to end the stream.
    """
    with tails.attach(tenant_id) as tail:
        while not stopping() and not tails.closed:
            if tail.serves(last_id):
                chunk, last_id = tail.take(last_id)
                if chunk:
                    yield chunk
                    continue
                waiter = tail.waiter()  # no await since take(): nothing can slip in between
            else:
                # Behind the buffer, or the tail has not read the log yet: replay from the
                # database a page at a time until the buffer covers what comes next.
                waiter = tail.waiter()  # before the read, so a change during it is seen
                try:
                    chunk, last_id = await tail.replay(last_id)
                except BaseException:
                    waiter.cancel()
                    raise
                if chunk:
                    waiter.cancel()
                    yield chunk
                    continue
            try:
                if not await idle(waiter):
                    return
            finally:
                waiter.cancel()
