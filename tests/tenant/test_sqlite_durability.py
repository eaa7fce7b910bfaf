"""What a SQLite commit (and so a webhook's 202) survives: WAL, power-safe by default (a kill -9
of the process — test_webhook's kill -9 test proves it end to end — and power loss), kill-safe
only with ``synchronous=NORMAL``. See docs/webhook.md.

By default the API's connections commit with ``synchronous=FULL``; the webhook writer commits
with NORMAL and flushes the WAL itself before it answers, outside SQLite's write lock, so one
flush covers several batches. The tests below pin that order: no 202 before the flush that
followed its commit."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from qp_tenant.config import Settings
from qp_tenant.crypto import Crypto
from qp_tenant.db import SqliteWriter, create_engine, create_sqlite_writer, session_factory
from qp_tenant.domain.events import EventBroker
from qp_tenant.domain.webhook import Trigger, TriggerIngest
from qp_tenant.models import Event
from tests.tenant.conftest import IT_GLUE_BODY
from tests.tenant.test_webhook import ingest_world

__all__ = ["ingest_world"]  # the fixture, shared with the webhook tests

# PRAGMA synchronous answers a number: 1 is NORMAL, 2 is FULL.
LEVELS = {"NORMAL": 1, "FULL": 2}


def _pragmas_of_both_engines(settings: Settings) -> list[tuple[str, int]]:
    """(journal_mode, synchronous) of the API's engine and of the webhook writer's."""
    writer = create_sqlite_writer(settings)
    assert writer is not None
    with writer.engine.connect() as conn:
        seen = [(conn.execute(text("PRAGMA journal_mode")).scalar_one(),
                 conn.execute(text("PRAGMA synchronous")).scalar_one())]
    writer.engine.dispose()

    async def api_engine() -> tuple[str, int]:
        engine = create_engine(settings)
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            level = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
        await engine.dispose()
        return mode, level

    seen.append(asyncio.run(api_engine()))
    return seen


def test_by_default_the_api_commits_with_full_and_the_webhook_writer_flushes_its_own_wal(
        tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert _pragmas_of_both_engines(settings) == [("wal", LEVELS["NORMAL"]),
                                                  ("wal", LEVELS["FULL"])]
    writer = create_sqlite_writer(settings)
    assert writer is not None and writer.flush_wal is not None
    assert writer.flush_wal.args == (f"{tmp_path / 'qp-tenant.db'}-wal",)  # type: ignore[attr-defined]
    writer.flush_wal()  # the file need not exist yet: nothing to flush then
    writer.engine.dispose()


def test_with_normal_nothing_is_flushed_and_both_commit_kill_safe(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, sqlite_synchronous="NORMAL")
    assert _pragmas_of_both_engines(settings) == [("wal", LEVELS["NORMAL"])] * 2
    writer = create_sqlite_writer(settings)
    assert writer is not None and writer.flush_wal is None
    writer.engine.dispose()


class GatedFlush:
    """A WAL flush that records its calls and holds the first one until released."""

    def __init__(self, wal: str, fail: bool = False):
        self.wal = wal
        self.fail = fail
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.entered.set()
        if self.calls == 1:
            self.release.wait(timeout=60)
        if self.fail:
            raise OSError(5, "Input/output error")
        fd = os.open(self.wal, os.O_RDWR)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)


def _ingest(settings: Settings, crypto: Crypto, flush: GatedFlush
            ) -> tuple[TriggerIngest, SqliteWriter]:
    writer = create_sqlite_writer(settings)
    assert writer is not None and writer.flush_wal is not None
    gated = SqliteWriter(writer.engine, flush)
    ingest = TriggerIngest(create_engine(settings), crypto, EventBroker(),
                           duplicate_window_seconds=600, rate_limit_per_minute=120_000,
                           sqlite_writer=gated)
    return ingest, gated


async def _stored(settings: Settings) -> int:
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            return (await session.scalar(select(func.count()).select_from(Event).where(
                Event.type == "workflow_trigger.received"))) or 0
    finally:
        await engine.dispose()


def _body(n: int) -> dict[str, str]:
    return {**IT_GLUE_BODY, "resourceUrl": f"https://acme.itglue.com/2412/passwords/{n}",
            "resourceName": f"Account {n}"}


async def test_a_webhook_is_answered_only_after_the_wal_flush_that_followed_its_commit(
        ingest_world: tuple[Settings, Crypto, str]) -> None:
    settings, crypto, token = ingest_world
    flush = GatedFlush(f"{settings.data_dir / 'qp-tenant.db'}-wal")
    ingest, _ = _ingest(settings, crypto, flush)
    ingest.start()
    try:
        first = asyncio.ensure_future(ingest.submit(Trigger(token=token, body=_body(1))))
        await asyncio.to_thread(flush.entered.wait, 60)
        # Committed (another connection sees the row), not yet flushed: no answer yet.
        assert await _stored(settings) == 1
        assert not first.done()
        # Batches that arrive meanwhile are written while the flush is under way.
        later = [asyncio.ensure_future(ingest.submit(Trigger(token=token, body=_body(n))))
                 for n in range(2, 12)]
        # The writer's commits have no event to wait on: look until all are there.
        while await _stored(settings) < 11:  # noqa: ASYNC110 - a condition, not a clock
            await asyncio.sleep(0)
        assert not first.done() and not any(t.done() for t in later)
        flush.release.set()
        answers = [await first] + [await t for t in later]
    finally:
        await ingest.stop()
    assert [status for status, _, _ in answers] == [202] * 11
    # The first flush began before the later commits, so they needed one more, and only one.
    assert flush.calls == 2


async def test_a_failed_flush_answers_503_and_the_retry_is_folded_into_the_stored_event(
        ingest_world: tuple[Settings, Crypto, str], caplog: pytest.LogCaptureFixture) -> None:
    settings, crypto, token = ingest_world
    flush = GatedFlush(f"{settings.data_dir / 'qp-tenant.db'}-wal", fail=True)
    flush.release.set()
    ingest, _ = _ingest(settings, crypto, flush)
    ingest.start()
    try:
        status, body, headers = await ingest.submit(Trigger(token=token, body=_body(1)))
        assert (status, body["error"]["code"], headers) == (
            503, "storage_unavailable", {"Retry-After": "5"})
        assert "Could not flush 1 webhook(s) to the disk" in caplog.text
        flush.fail = False
        status, body, _ = await ingest.submit(Trigger(token=token, body=_body(1)))
        assert (status, body["status"]) == (202, "duplicate")
    finally:
        await ingest.stop()
    assert await _stored(settings) == 1
