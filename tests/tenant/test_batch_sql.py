"""The webhook batch's statements: the raw-sqlite3 path (what SQLite runs) and the SQLAlchemy
Core path (what PostgreSQL runs, and the reference) write the same rows, byte for byte, and
answer the same questions on the same database."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from qp_tenant.db import create_engine as qp_create_engine
from qp_tenant.domain.batch_sql import (
    REJECTED,
    TRIGGER_TYPES,
    CoreBatch,
    SqliteBatch,
    batch_sql,
)
from qp_tenant.domain.pipeline import pending_row, schedule_checks
from qp_tenant.models import utcnow
from tests.tenant.test_webhook import make_ingest_world


def _event(n: int, token_id: int, tenant_id: int, at: Any, kind: str = "received"
           ) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "occurred_at": at, "type": f"workflow_trigger.{kind}",
            "severity": "info", "summary": f"Password changed in IT Glue: Account {n} ✓",
            "resource_name": f"Account {n}",
            "resource_url": f"https://acme.itglue.com/2412/passwords/{n}", "account": None,
            "token_id": token_id, "details": {"password_id": str(n), "keys": ["a", "ü"]},
            "body_hash": f"{n:064x}", "duplicates": 0}


def _dump(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
                for table in ("events", "reset_jobs", "workflow_tokens")}


def _exercise(batch: Any, token_hmac: str, now: Any) -> dict[str, Any]:
    """The batch's calls in the order a batch makes them; what each answered."""
    token = batch.tokens([token_hmac, "0" * 64])[0]
    earlier = now - timedelta(minutes=5)
    first = batch.insert_events([_event(n, token.id, token.tenant_id, earlier)
                                 for n in range(1, 4)])
    rejected = _event(9, token.id, token.tenant_id, now, "rejected")
    rejected.update(type=REJECTED, body_hash="refused:invalid_json", details={"code": "x"})
    second = batch.insert_events([_event(4, token.id, token.tenant_id, now), rejected])
    batch.mark_used({token.id: now})
    batch.add_duplicates({first[0]: 2, second[0]: 1})
    found = batch.recent_events([token.id], [f"{n:064x}" for n in (1, 2, 4, 7)],
                                now - timedelta(minutes=1), TRIGGER_TYPES)
    found_old = batch.recent_events([token.id], [f"{n:064x}" for n in (1, 2)],
                                    now - timedelta(minutes=10), TRIGGER_TYPES)
    refusals = batch.recent_events([token.id], ["refused:invalid_json"],
                                   now - timedelta(minutes=1), (REJECTED,))
    jobs = [pending_row(eid, {"tenant_id": token.tenant_id, "token_id": token.id,
                               "resource_name": "Account", "resource_url": None,
                               "details": {"password_id": str(n), "organization_id": "2412"}},
                         now) for n, eid in zip((1, 2, 3), first, strict=True)]
    batch.insert_jobs(jobs)
    waiting = batch.waiting_checks(["1", "3", "99"], now + timedelta(seconds=1))
    return {"token": token, "ids": (first, second), "found": found, "found_old": found_old,
            "refusals": refusals, "waiting": waiting}


async def test_both_paths_write_the_same_rows_and_answer_the_same(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    settings, crypto, token = await make_ingest_world(tmp_path, "sqlite", request)
    database = tmp_path / "qp-tenant.db"
    shutil.copy(database, tmp_path / "core.db")
    now = utcnow()
    answers, dumps = [], []
    for path, implementation in ((database, SqliteBatch), (tmp_path / "core.db", CoreBatch)):
        engine = create_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            answers.append(_exercise(implementation(conn), crypto.lookup_hash(token), now))
        dumps.append(_dump(engine))
        engine.dispose()
    raw, core = answers
    assert raw == core
    assert raw["token"].expires_at.tzinfo is not None  # read back as aware UTC, like the ORM
    assert [e.body_hash for e in raw["found"]] == [f"{4:064x}"]
    assert [e.body_hash for e in raw["found_old"]] == [f"{1:064x}", f"{2:064x}"]
    assert raw["waiting"] == {(raw["token"].tenant_id, "1"), (raw["token"].tenant_id, "3")}
    assert dumps[0] == dumps[1]
    # the token.generated event of the set-up, then the five above
    assert len(dumps[0]["events"]) == 6 and len(dumps[0]["reset_jobs"]) == 3


async def test_checks_scheduled_through_the_async_engine_take_the_core_path(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # The IT Glue watcher schedules checks on the async engine (aiosqlite), whose driver
    # connection is no sqlite3 connection: the raw path would fail there.
    settings, crypto, token = await make_ingest_world(tmp_path, "sqlite", request)
    engine = qp_create_engine(settings)
    try:
        async with engine.begin() as conn:
            found = await conn.run_sync(lambda sync: (
                type(batch_sql(sync)), batch_sql(sync).tokens([crypto.lookup_hash(token)])))
            added = await conn.run_sync(lambda sync: schedule_checks(sync, [(1, {
                "type": "workflow_trigger.received", "tenant_id": found[1][0].tenant_id,
                "details": {"password_id": "77"}})]))
    finally:
        await engine.dispose()
    assert found[0] is CoreBatch and len(found[1]) == 1
    assert added == 1
