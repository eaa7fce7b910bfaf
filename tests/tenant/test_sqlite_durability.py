"""What a SQLite commit (and so a webhook's 202) survives: WAL with synchronous=FULL by
default (a kill -9 of the process — test_webhook's kill -9 test proves it end to end — and
power loss), synchronous=NORMAL when asked (kill -9 only). See docs/webhook.md."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from qp_tenant.config import Settings
from qp_tenant.db import create_engine, create_sqlite_writer_engine

# PRAGMA synchronous answers a number: 1 is NORMAL, 2 is FULL.
LEVELS = {"NORMAL": 1, "FULL": 2}


def _pragmas_of_both_engines(settings: Settings) -> list[tuple[str, int]]:
    """(journal_mode, synchronous) of the API's engine and of the webhook writer's."""
    writer = create_sqlite_writer_engine(settings)
    assert writer is not None
    with writer.connect() as conn:
        seen = [(conn.execute(text("PRAGMA journal_mode")).scalar_one(),
                 conn.execute(text("PRAGMA synchronous")).scalar_one())]
    writer.dispose()

    async def api_engine() -> tuple[str, int]:
        engine = create_engine(settings)
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            level = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
        await engine.dispose()
        return mode, level

    seen.append(asyncio.run(api_engine()))
    return seen


@pytest.mark.parametrize("level", [None, "NORMAL"])
def test_sqlite_commits_are_power_safe_by_default_and_kill_safe_when_asked(
        tmp_path: Path, level: str | None) -> None:
    settings = (Settings(data_dir=tmp_path) if level is None
                else Settings(data_dir=tmp_path, sqlite_synchronous=level))
    expected = LEVELS[level or "FULL"]
    assert _pragmas_of_both_engines(settings) == [("wal", expected), ("wal", expected)]
