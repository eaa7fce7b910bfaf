"""Two tenant 'processes' (two app states, two connection pools) on one PostgreSQL database.

Domain-level: the races are in the database, so two pools in one test process reach them
exactly as two server processes would, and the test can hold a transaction open on purpose.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from qp_tenant.app import build_state
from qp_tenant.config import Settings
from qp_tenant.db import migrate
from qp_tenant.domain.auth import create_tenant
from qp_tenant.domain.events import NewEvent, add_event
from qp_tenant.domain.jobs import lease_next_job
from qp_tenant.models import Agent, ResetJob, utcnow
from qp_tenant.state import AppState
from tests.support.postgres import PostgresServer
from tests.support.smtp import SmtpServer, smtp_server
from tests.tenant.test_scheduler import RECIPIENTS, make_world, tick

__all__ = ["smtp_server"]  # fixture used by name below


@dataclass
class Shared:
    settings: Settings
    states: list[AppState]
    tenant_id: int

    def another(self) -> AppState:
        state = build_state(self.settings)
        self.states.append(state)
        return state


@pytest.fixture
async def shared(tmp_path: Path, postgres_server: PostgresServer) -> AsyncIterator[Shared]:
    database = postgres_server.create_database()
    settings = Settings(data_dir=tmp_path, database_url=postgres_server.url(database),
                        secret_key="cluster-test-key")
    state = build_state(settings)
    await migrate(state.engine)
    async with state.sessions() as session:
        tenant = await create_tenant(session, "acme", "Acme MSP")
        await session.commit()
    world = Shared(settings, [state], tenant.id)
    try:
        yield world
    finally:
        for s in world.states:
            await s.http.aclose()
            await s.engine.dispose()


def note(summary: str) -> NewEvent:
    return NewEvent(type="token.revealed", severity="info", summary=summary)


async def test_an_event_writer_waits_until_the_previous_writers_events_are_visible(
        shared: Shared) -> None:
    """Without this, id 2 could commit (and be streamed) before id 1, and a reader resuming
    after 2 would never see 1."""
    first_state, second_state = shared.states[0], shared.another()
    first = first_state.sessions()
    row = add_event(first, shared.tenant_id, note("first"))
    await first.flush()  # id allocated, not committed

    async def second_writer() -> int:
        async with second_state.sessions() as session:
            other = add_event(session, shared.tenant_id, note("second"))
            await session.flush()
            await session.commit()
            return other.id

    task = asyncio.create_task(second_writer())
    deadline = time.monotonic() + 20
    while True:  # until the second writer is seen waiting for the event-log lock
        async with first_state.engine.connect() as conn:
            waiting = await conn.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))
        if waiting:
            break
        assert time.monotonic() < deadline, "the second writer never waited"
        await asyncio.sleep(0.02)  # polling for a condition with a deadline
    assert not task.done()
    await first.commit()
    await first.close()
    second_id = await task
    assert second_id > row.id


async def test_two_schedulers_on_postgresql_warn_and_mail_once(
        tmp_path: Path, postgres_server: PostgresServer, smtp_server: SmtpServer) -> None:
    url = postgres_server.url(postgres_server.create_database())
    async for world in make_world(tmp_path, smtp_server, database_url=url):
        await world.set_recipients(RECIPIENTS)
        await world.token(365)
        other = await world.second_state()
        a, b = world.scheduler(), world.scheduler(other)
        world.clock.advance(days=336)  # 29 days left: the 30-day threshold is due
        for _ in range(5):
            await asyncio.gather(a.check_expiry(), b.check_expiry(), a.check_expiry(),
                                 b.check_expiry())
        assert len(await world.events("token.expiring")) == 1
        assert len(await world.outbox()) == 1
        await asyncio.gather(tick(a), tick(b))
        await asyncio.gather(tick(a), tick(b))
        assert len(world.smtp.messages) == 1
        assert len(await world.events("alert.sent")) == 1


async def test_reset_jobs_are_leased_once_across_processes(shared: Shared) -> None:
    state = shared.states[0]
    async with state.sessions() as session:
        agent = Agent(tenant_id=shared.tenant_id, name="dc1", token_hash="h" * 64,
                      status="online")
        session.add(agent)
        await session.flush()
        for n in range(40):
            session.add(ResetJob(
                tenant_id=shared.tenant_id, state="queued", itglue_password_id=str(n),
                agent_id=agent.id, directory="corp", identity=f"user{n}", kind="openldap",
                password_encrypted=state.crypto.encrypt(f"pw-{n}"), next_attempt_at=utcnow()))
        await session.commit()
        agent_id = agent.id
    states = [state, shared.another()]

    async def poller(s: AppState) -> list[int]:
        leased: list[int] = []
        while True:
            async with s.sessions() as session:
                me = await session.get(Agent, agent_id)
                assert me is not None
                job = await lease_next_job(session, s.crypto, me, 60)
            if job is None:
                return leased
            leased.append(int(job["id"]))

    results = await asyncio.gather(*(poller(s) for s in states for _ in range(3)))
    everything = [j for r in results for j in r]
    assert len(everything) == 40 and len(set(everything)) == 40
    async with state.sessions() as session:
        counts = (await session.execute(
            select(ResetJob.state, func.count()).group_by(ResetJob.state))).all()
        assert dict(counts) == {"leased": 40}
        assert (await session.scalar(select(func.max(ResetJob.attempts)))) == 1
