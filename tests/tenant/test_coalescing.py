"""The coalescing rule: triggers of one password become one check, never one per trigger.

Runs the real webhook writer (``TriggerIngest``) on a migrated SQLite or PostgreSQL database
with the pipeline's own hooks, and looks at the ``reset_jobs`` rows it leaves: what counts
here is how many checks wait, which is decided in the writer's transaction, not by timing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select, update

from qp_tenant.config import Settings
from qp_tenant.crypto import Crypto
from qp_tenant.db import create_engine, create_sqlite_writer, session_factory
from qp_tenant.domain.events import EventBroker
from qp_tenant.domain.pipeline import schedule_checks
from qp_tenant.domain.webhook import Trigger, TriggerIngest
from qp_tenant.models import Event, ResetJob, utcnow
from tests.tenant.conftest import IT_GLUE_BODY
from tests.tenant.test_webhook import ingest_world

__all__ = ["ingest_world"]  # the fixture, shared with the webhook tests


def _repeats(connection: Any, rows: list[tuple[int, dict[str, Any]]]) -> None:
    schedule_checks(connection, rows, origin="repeat")


async def _send(settings: Settings, crypto: Crypto, token: str, count: int,
                body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    engine = create_engine(settings)
    ingest = TriggerIngest(engine, crypto, EventBroker(), duplicate_window_seconds=600,
                           rate_limit_per_minute=120_000, after_insert=schedule_checks,
                           after_repeat=_repeats,
                           sqlite_writer=create_sqlite_writer(settings))
    ingest.start()
    try:
        answers = await asyncio.gather(*(
            ingest.submit(Trigger(token=token, body=dict(body or IT_GLUE_BODY)))
            for _ in range(count)))
    finally:
        await ingest.stop()
        await engine.dispose()
    assert {status for status, _, _ in answers} == {202}
    return [answer for _, answer, _ in answers]


async def _jobs(settings: Settings) -> list[ResetJob]:
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            return list((await session.scalars(select(ResetJob).order_by(ResetJob.id))).all())
    finally:
        await engine.dispose()


async def _claim_all(settings: Settings) -> None:
    """What the pipeline does when it starts resolving a check."""
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            await session.execute(update(ResetJob).values(claimed_until=utcnow().replace(
                year=utcnow().year + 1)))
            await session.commit()
    finally:
        await engine.dispose()


async def test_a_burst_of_one_password_waits_as_one_check_and_one_more_behind_a_claimed_one(
        ingest_world: tuple[Settings, Crypto, str]) -> None:
    settings, crypto, token = ingest_world
    answers = await _send(settings, crypto, token, 10)
    assert len({a["event_id"] for a in answers}) == 1
    assert len(await _jobs(settings)) == 1

    # Repeats while that check still waits unclaimed: it will read the latest value anyway.
    answers = await _send(settings, crypto, token, 10)
    assert {a["status"] for a in answers} == {"duplicate"}
    assert len(await _jobs(settings)) == 1

    # Once it is being resolved it may have read the old value: one check waits behind it.
    await _claim_all(settings)
    await _send(settings, crypto, token, 10)
    await _send(settings, crypto, token, 3)
    rows = await _jobs(settings)
    assert [(r.state, r.origin) for r in rows] == [("pending", None), ("pending", "repeat")]
    assert rows[1].trigger_event_id == answers[0]["event_id"]


async def test_a_new_trigger_body_for_a_waiting_password_joins_its_check(
        ingest_world: tuple[Settings, Crypto, str]) -> None:
    """Another body for the same password (IT Glue sent a new name) is a new event, and the
    check already waiting covers it; another password gets a check of its own."""
    settings, crypto, token = ingest_world
    await _send(settings, crypto, token, 1)
    await _send(settings, crypto, token, 1, {**IT_GLUE_BODY, "resourceName": "Renamed"})
    other = {**IT_GLUE_BODY, "resourceUrl": IT_GLUE_BODY["resourceUrl"].replace(
        "/passwords/", "/passwords/9")}
    await _send(settings, crypto, token, 1, other)
    rows = await _jobs(settings)
    assert len(rows) == 2
    assert rows[0].itglue_password_id != rows[1].itglue_password_id
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            received = (await session.scalars(select(Event.id).where(
                Event.type == "workflow_trigger.received"))).all()
    finally:
        await engine.dispose()
    assert len(received) == 3
