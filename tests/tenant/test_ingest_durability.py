"""What a webhook's 202 survives: a kill -9 of the process (test_webhook's kill -9 test proves it
end to end) and, by default, power loss. See docs/webhook.md.

SQLite: the API's connections commit with ``synchronous=FULL``; the webhook writer commits with
NORMAL and flushes the WAL itself before it answers, outside SQLite's write lock, so one flush
covers several batches (``synchronous=NORMAL`` configured: kill-safe only, no flush). The
tests below pin the order: no 202 before the flush that followed its commit. (PostgreSQL
commits synchronously: its server's settings decide.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from qp_tenant.config import Settings
from qp_tenant.crypto import Crypto
from qp_tenant.db import create_engine, create_sqlite_writer, session_factory
from qp_tenant.domain.events import EventBroker
from qp_tenant.domain.webhook import FLUSH_THREAD, WRITER_THREAD, Trigger, TriggerIngest
from qp_tenant.models import Event
from tests.tenant.conftest import IT_GLUE_BODY
from tests.tenant.test_webhook import make_ingest_world

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
    """Stands in for the ingest's flush: records its calls, holds the first one until
    released, then does the real one (or fails)."""

    def __init__(self, ingest: TriggerIngest, fail: bool = False):
        self.real = ingest._flush
        self.fail = fail
        self.calls = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        ingest._flush = self  # type: ignore[method-assign]

    async def __call__(self) -> None:
        self.calls += 1
        self.entered.set()
        if self.calls == 1:
            await self.release.wait()
        if self.fail:
            raise OSError(5, "Input/output error")
        await self.real()


def _ingest(settings: Settings, crypto: Crypto) -> TriggerIngest:
    return TriggerIngest(create_engine(settings), crypto, EventBroker(),
                         duplicate_window_seconds=600, rate_limit_per_minute=120_000,
                         sqlite_writer=create_sqlite_writer(settings))


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


async def test_a_webhook_is_answered_only_after_the_flush_that_followed_its_commit(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    settings, crypto, token = await make_ingest_world(tmp_path, "sqlite", request)
    ingest = _ingest(settings, crypto)
    flush = GatedFlush(ingest)
    ingest.start()
    try:
        first = asyncio.ensure_future(ingest.submit(Trigger(token=token, body=_body(1))))
        await flush.entered.wait()
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
        tmp_path: Path, request: pytest.FixtureRequest,
        caplog: pytest.LogCaptureFixture) -> None:
    settings, crypto, token = await make_ingest_world(tmp_path, "sqlite", request)
    ingest = _ingest(settings, crypto)
    flush = GatedFlush(ingest, fail=True)
    flush.release.set()
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


def _os_thread_names() -> list[str]:
    names = []
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            names.append(Path(f"/proc/self/task/{tid}/comm").read_text().strip())
    return names


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names are Linux's")
async def test_the_writer_and_flush_threads_carry_their_names_for_top_and_the_benchmarks(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # ``top -H`` and the benchmarks' CPU per thread tell the webhook writer's threads apart
    # from the database driver's by these names.
    settings, crypto, token = await make_ingest_world(tmp_path, "sqlite", request)
    ingest = _ingest(settings, crypto)
    ingest.start()
    try:
        status, _, _ = await ingest.submit(Trigger(token=token, body=_body(1)))
        names = _os_thread_names()
    finally:
        await ingest.stop()
    assert status == 202
    assert names.count(WRITER_THREAD) == 1 and names.count(FLUSH_THREAD) == 1
    assert WRITER_THREAD not in _os_thread_names()  # gone with the ingest
