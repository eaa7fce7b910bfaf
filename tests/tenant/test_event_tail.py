"""The stream's shared per-tenant tail, in-process on a real database (``--db`` picks which).

The HTTP stream is covered against real processes in test_events.py; here the tail's buffer is
made tiny, so that subscribers behind it, and slow ones it moves past, can be checked cheaply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sse_starlette import ServerSentEvent

from qp_tenant.config import Settings
from qp_tenant.db import create_engine, migrate, session_factory
from qp_tenant.domain import stream
from qp_tenant.domain.auth import create_tenant
from qp_tenant.domain.events import EventBroker, NewEvent, add_event, event_to_dict
from qp_tenant.domain.stream import EventTail, EventTails, stream_chunks
from qp_tenant.models import Event


@dataclass
class Log:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: EventBroker
    acme: int
    beta: int
    made: list[EventTails] = field(default_factory=list)

    def tails(self, capacity: int = stream.BUFFER_EVENTS, poll_seconds: float = 30
              ) -> EventTails:
        tails = EventTails(self.engine, self.broker, poll_seconds=poll_seconds,
                           capacity=capacity)
        self.made.append(tails)
        return tails

    async def add(self, tenant_id: int, count: int = 1, notify: bool = True,
                  summary: str = "event") -> list[int]:
        """Commit ``count`` events in one transaction; returns their ids."""
        async with self.sessions() as session:
            rows = [add_event(session, tenant_id, NewEvent(
                type="token.revealed", severity="info", summary=f"{summary} {n}",
                details={"n": n})) for n in range(count)]
            await session.commit()
            ids = [row.id for row in rows]
        if notify:
            self.broker.notify(tenant_id)
        return ids

    async def ids(self, tenant_id: int, after: int = 0) -> list[int]:
        async with self.sessions() as session:
            stmt = (select(Event.id).where(Event.tenant_id == tenant_id, Event.id > after)
                    .order_by(Event.id))
            return list((await session.scalars(stmt)).all())


@pytest.fixture
async def log(tmp_path: Path, db_kind: str, request: pytest.FixtureRequest
              ) -> AsyncIterator[Log]:
    if db_kind == "postgresql":
        server = request.getfixturevalue("postgres_server")
        settings = Settings(data_dir=tmp_path, database_url=server.url(server.create_database()))
    else:
        settings = Settings(data_dir=tmp_path)
    engine = create_engine(settings)
    await migrate(engine)
    sessions = session_factory(engine)
    async with sessions() as session:
        acme = await create_tenant(session, "acme", "Acme MSP")
        beta = await create_tenant(session, "beta", "Beta MSP")
        await session.commit()
    world = Log(engine, sessions, EventBroker(), acme.id, beta.id)
    try:
        yield world
    finally:
        for tails in world.made:
            await tails.close()
        await engine.dispose()


def parse(chunk: bytes) -> list[int]:
    """The ids of the SSE messages in a chunk (checking each message is well formed)."""
    ids = []
    for message in chunk.split(b"\r\n\r\n")[:-1]:
        fields = dict(line.split(b": ", 1) for line in message.split(b"\r\n"))
        event = json.loads(fields[b"data"])
        assert int(fields[b"id"]) == event["id"] and fields[b"event"].decode() == event["type"]
        ids.append(event["id"])
    assert chunk.endswith(b"\r\n\r\n")
    return ids


class Subscriber:
    """One stream, read only when the test asks (so it can be made to lag)."""

    def __init__(self, tails: EventTails, tenant_id: int, last_id: int):
        self.ids: list[int] = []
        self.chunks = 0
        self.idling = asyncio.Event()  # set while the stream waits for something new
        self.gen = stream_chunks(tails, tenant_id, last_id, stopping=lambda: False,
                                 idle=self._idle)

    async def _idle(self, waiter: asyncio.Future[bool]) -> bool:
        self.idling.set()
        try:
            await waiter
        finally:
            self.idling.clear()
        return True

    async def read(self) -> list[int]:
        ids = parse(await anext(self.gen))
        self.ids += ids
        self.chunks += 1
        return ids

    async def until(self, last_id: int) -> list[int]:
        """Read until ``last_id`` has arrived; returns everything read so far."""
        while not self.ids or self.ids[-1] < last_id:
            await self.read()
        return self.ids

    async def until_count(self, count: int) -> list[int]:
        while len(self.ids) < count:
            await self.read()
        return self.ids

    async def close(self) -> None:
        await self.gen.aclose()


async def ready(tails: EventTails, tenant_id: int) -> EventTail:
    """The tenant's tail, once it has read the log."""
    tail = tails.get(tenant_id)
    assert tail is not None
    while not tail.ready:
        await tail.waiter()
    return tail


async def caught_up(tail: EventTail, last_id: int) -> None:
    """Wait until the tail has read ``last_id``."""
    while tail.head_id < last_id:
        await tail.waiter()


def assert_exactly_once_in_order(got: list[int], expected: list[int]) -> None:
    assert got == sorted(set(got)), "an event arrived twice or out of order"
    assert got == expected


async def test_many_subscribers_each_get_every_event_once_in_order_read_and_encoded_once(
        log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    start = (await log.add(log.acme))[-1]
    encoded: list[int] = []
    encode = stream.encode_event

    def counting(row: Any) -> bytes:
        encoded.append(row.id)
        return encode(row)

    monkeypatch.setattr(stream, "encode_event", counting)
    tails = log.tails()
    subscribers = [Subscriber(tails, log.acme, start) for _ in range(40)]
    sizes = [1 + n % 3 for n in range(12)]
    readers = [asyncio.create_task(s.until_count(sum(sizes))) for s in subscribers]
    await asyncio.gather(*(s.idling.wait() for s in subscribers))
    tail = await ready(tails, log.acme)
    sent: list[int] = []
    for size in sizes:  # events arrive while the subscribers stream
        sent += await log.add(log.acme, count=size)
        await caught_up(tail, sent[-1])
    for got in await asyncio.gather(*readers):
        assert_exactly_once_in_order(got, sent)
    # One read of the log and one encoding per event, however many subscribers; and one
    # chunk (one send) per subscriber per wake-up, not one per event.
    assert sorted(encoded) == sent
    assert all(s.chunks <= len(sizes) for s in subscribers)
    for s in subscribers:
        await s.close()
    assert tails.get(log.acme) is None  # the last one out dropped the tail


async def test_a_subscriber_behind_the_buffer_replays_from_the_database_then_goes_live(
        log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "PAGE", 3)  # the replay takes several pages
    before = await log.add(log.acme, count=7)
    tails = log.tails(capacity=4)
    live = Subscriber(tails, log.acme, before[-1])
    more: list[int] = []
    for _ in range(10):  # one commit at a time, so the tiny buffer evicts as it goes
        more += await log.add(log.acme)
        await live.until(more[-1])
    tail = tails.get(log.acme)
    assert tail is not None and tail.floor_id > more[0]

    behind = Subscriber(tails, log.acme, before[1])  # a Last-Event-ID long out of the buffer
    await behind.until(more[-1])
    after = await log.add(log.acme, count=2)
    got = await behind.until(after[-1])
    assert_exactly_once_in_order(got, before[2:] + more + after)
    assert_exactly_once_in_order(await live.until(after[-1]), more + after)
    await behind.close()
    await live.close()


async def test_a_slow_subscriber_the_buffer_moves_past_loses_nothing(log: Log) -> None:
    start = (await log.add(log.acme))[-1]
    tails = log.tails(capacity=4)
    slow = Subscriber(tails, log.acme, start)
    fast = Subscriber(tails, log.acme, start)
    first = await log.add(log.acme)
    await slow.until(first[-1])
    # The slow one stops reading while 19 more events go through the 4-event buffer.
    later: list[int] = []
    for n in range(10):
        later += await log.add(log.acme, count=n % 3 + 1)
        await fast.until(later[-1])
    tail = tails.get(log.acme)
    assert tail is not None and tail.floor_id > first[-1]
    assert_exactly_once_in_order(await slow.until(later[-1]), first + later)
    assert_exactly_once_in_order(fast.ids, first + later)
    await slow.close()
    await fast.close()


async def test_a_subscriber_never_sees_another_tenants_events(log: Log) -> None:
    acme_start = (await log.add(log.acme))[-1]
    beta_start = (await log.add(log.beta))[-1]
    tails = log.tails()
    acme = Subscriber(tails, log.acme, acme_start)
    beta = Subscriber(tails, log.beta, beta_start)
    acme_ids: list[int] = []
    beta_ids: list[int] = []
    for n in range(6):
        acme_ids += await log.add(log.acme, count=2)
        if n % 2:
            beta_ids += await log.add(log.beta)
    # Beta's last event comes after every acme event: any acme event would be read first.
    assert_exactly_once_in_order(await beta.until(beta_ids[-1]), beta_ids)
    assert_exactly_once_in_order(await acme.until(acme_ids[-1]), acme_ids)
    assert await log.ids(log.beta, beta_start) == beta_ids
    await acme.close()
    await beta.close()


async def test_a_missed_wake_up_costs_latency_never_the_event(log: Log) -> None:
    start = (await log.add(log.acme))[-1]
    tails = log.tails(poll_seconds=0.05)
    subscriber = Subscriber(tails, log.acme, start)
    first = await log.add(log.acme)
    await subscriber.until(first[-1])
    silent = await log.add(log.acme, count=2, notify=False)  # nobody is told
    assert_exactly_once_in_order(await subscriber.until(silent[-1]), first + silent)
    await subscriber.close()


async def test_every_message_is_encoded_as_each_subscriber_encoded_it_before(log: Log) -> None:
    """Byte for byte what ``ServerSentEvent`` made of ``event_to_dict(orm_row)``, from the
    database replay and from the shared buffer alike."""

    async def special() -> int:
        async with log.sessions() as session:
            row = add_event(session, log.acme, NewEvent(
                type="workflow_trigger.received", severity="warning",
                summary="Zoë's “reset”", resource_name="Domain Admin",
                resource_url="https://acme.itglue.com/1/passwords/2", account="jdoe",
                details={"nested": {"a": [1, 2.5, None]}, "text": "line\nbreak"}))
            row.duplicates = 3
            await session.commit()
            return row.id

    async def expected(event_id: int) -> bytes:
        async with log.sessions() as session:
            stored = await session.get(Event, event_id)
            assert stored is not None
            return ServerSentEvent(
                id=str(stored.id), event=stored.type,
                data=json.dumps(event_to_dict(stored), separators=(",", ":"))).encode()

    start = (await log.add(log.acme))[-1]
    tails = log.tails()
    subscriber = Subscriber(tails, log.acme, start)
    replayed = await special()  # committed before the tail has read anything: a replay
    assert await anext(subscriber.gen) == await expected(replayed)
    tail = await ready(tails, log.acme)
    buffered = await special()
    log.broker.notify(log.acme)
    assert await anext(subscriber.gen) == await expected(buffered)
    assert tail.head_id == buffered and tail.floor_id < buffered
    await subscriber.close()


async def test_closing_the_tails_ends_every_stream(log: Log) -> None:
    start = (await log.add(log.acme))[-1]
    tails = log.tails()
    subscribers = [Subscriber(tails, log.acme, start) for _ in range(3)]
    first = await log.add(log.acme)
    await asyncio.gather(*(s.until(first[-1]) for s in subscribers))
    waiting = [asyncio.create_task(anext(s.gen, None)) for s in subscribers]
    await asyncio.gather(*(s.idling.wait() for s in subscribers))
    await tails.close()
    assert await asyncio.gather(*waiting) == [None, None, None]
    assert tails.get(log.acme) is None


async def test_a_broken_read_connection_costs_latency_never_an_event(
        log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "RETRY_SECONDS", 0.01)
    start = (await log.add(log.acme))[-1]
    tails = log.tails()
    subscriber = Subscriber(tails, log.acme, start)
    first = await log.add(log.acme)
    await subscriber.until(first[-1])
    await ready(tails, log.acme)
    conn = tails._reader._conn  # the tails' shared connection: break it under them
    assert conn is not None
    await conn.invalidate()
    then = await log.add(log.acme, count=3)
    assert_exactly_once_in_order(await subscriber.until(then[-1]), first + then)
    assert tails._reader._conn is not conn
    await subscriber.close()


async def test_joined_chunks_stay_within_their_byte_budget_for_any_number_of_last_ids(
        log: Log) -> None:
    start = (await log.add(log.acme))[-1]
    tails = EventTails(log.engine, log.broker, poll_seconds=30, joined_bytes=20_000)
    log.made.append(tails)
    first = Subscriber(tails, log.acme, start)
    reading = asyncio.create_task(first.until_count(120))
    await first.idling.wait()
    tail = await ready(tails, log.acme)
    sent = await log.add(log.acme, count=120, summary="x" * 200)
    await caught_up(tail, sent[-1])
    await reading
    assert tail.floor_id <= start  # all 120 are in the buffer
    # A reconnect at each of 100 different Last-Event-IDs in the buffer: before, each kept
    # its own chunk of everything after it until the next event (hundreds of MB for a few
    # hundred ids on a full buffer).
    for n, last_id in enumerate(sent[:100]):
        subscriber = Subscriber(tails, log.acme, last_id)
        assert_exactly_once_in_order(await subscriber.until(sent[-1]), sent[n + 1:])
        assert tail.joined_size <= 20_000
        await subscriber.close()
    assert 0 < tail.joined_count < 100
    assert tail.joined_size == sum(len(tail.take(i)[0]) for i in list(tail._joined))
    await first.close()
