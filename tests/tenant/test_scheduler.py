"""The alert scheduler in-process: a real SQLite file, a real SMTP server, a controllable clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from qp_tenant.app import build_state
from qp_tenant.config import Settings
from qp_tenant.db import migrate
from qp_tenant.domain import alerts
from qp_tenant.domain.auth import create_tenant
from qp_tenant.domain.events import NewEvent, add_event
from qp_tenant.domain.mailer import Mailer, SmtpConfig
from qp_tenant.domain.scheduler import AlertScheduler
from qp_tenant.domain.tokens import generate_token
from qp_tenant.domain.webhook import Trigger, parse_body
from qp_tenant.models import AlertCursor, AlertOutbox, Event, TokenWarning, WorkflowToken
from qp_tenant.state import AppState
from tests.support.smtp import SmtpServer, dead_port, smtp_server, smtp_server_with_auth

__all__ = ["smtp_server", "smtp_server_with_auth"]  # fixtures used by name below

RECIPIENTS = ["ops@acme.test", "boss@acme.test"]
START = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


@dataclass
class Clock:
    """The scheduler's ``now``: moves only when a test moves it."""

    value: datetime

    def __call__(self) -> datetime:
        return self.value

    def advance(self, **delta: float) -> None:
        self.value += timedelta(**delta)


@dataclass
class World:
    state: AppState
    tenant_id: int
    clock: Clock
    smtp: SmtpServer
    extra_states: list[AppState] = field(default_factory=list)

    def scheduler(self, state: AppState | None = None, **smtp: Any) -> AlertScheduler:
        """A scheduler on this database with the test clock (``smtp`` overrides settings)."""
        state = state or self.state
        config = SmtpConfig.from_settings(state.settings)
        if smtp:
            config = SmtpConfig(**{**config.__dict__, **smtp})
        return AlertScheduler(state.sessions, state.broker, state.settings, Mailer(config),
                              now=self.clock, public_url="https://qp.acme.example")

    async def second_state(self) -> AppState:
        """Another 'process' on the same database file."""
        other = build_state(self.state.settings)
        self.extra_states.append(other)
        return other

    async def token(self, lifetime_days: int = 365) -> WorkflowToken:
        async with self.state.sessions() as session:
            made = await generate_token(session, self.state.crypto, self.tenant_id,
                                        lifetime_days=lifetime_days, now=self.clock())
            await session.commit()
            self.plaintext = made.plaintext
            return made.token

    async def set_recipients(self, recipients: list[str], days: list[int] | None = None) -> None:
        async with self.state.sessions() as session:
            await alerts.put_alert_config(session, self.tenant_id,
                                          self.state.settings.expiry_warning_days,
                                          recipients=recipients, expiry_warning_days=days)
            await session.commit()

    async def events(self, *types: str) -> list[Event]:
        async with self.state.sessions() as session:
            stmt = select(Event).where(Event.tenant_id == self.tenant_id).order_by(Event.id)
            if types:
                stmt = stmt.where(Event.type.in_(types))
            return list((await session.scalars(stmt)).all())

    async def outbox(self) -> list[AlertOutbox]:
        async with self.state.sessions() as session:
            return list((await session.scalars(select(AlertOutbox).order_by(AlertOutbox.id))
                         ).all())


def make_settings(data_dir: Path, smtp: SmtpServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir, "smtp_host": smtp.host, "smtp_port": smtp.port,
        "smtp_from": "qp-alerts@acme.test", "alert_batch_seconds": 60,
        "alert_retry_seconds": 30, "alert_max_attempts": 4, "smtp_timeout_seconds": 5,
        **overrides,
    }
    return Settings(**values)


async def make_world(tmp_path: Path, smtp: SmtpServer, **overrides: Any
                     ) -> AsyncIterator[World]:
    state = build_state(make_settings(tmp_path / "data", smtp, **overrides))
    await migrate(state.engine)
    async with state.sessions() as session:
        tenant = await create_tenant(session, "acme", "Acme MSP")
        await session.commit()
    world = World(state, tenant.id, Clock(START), smtp)
    try:
        yield world
    finally:
        for s in [state, *world.extra_states]:
            await s.http.aclose()
            await s.engine.dispose()


@pytest.fixture
async def world(tmp_path: Path, smtp_server: SmtpServer) -> AsyncIterator[World]:
    async for w in make_world(tmp_path, smtp_server):
        yield w


async def tick(scheduler: AlertScheduler) -> None:
    """What the background loops do on one wake-up."""
    await scheduler.check_expiry()
    await scheduler.batch_failures()
    await scheduler.deliver_due()


# --- expiry ------------------------------------------------------------------------------


async def test_a_token_walks_through_its_year_with_one_warning_and_one_mail_per_threshold(
        world: World) -> None:
    await world.set_recipients(RECIPIENTS)
    token = await world.token(365)
    scheduler = world.scheduler()
    for _ in range(367):
        await tick(scheduler)
        world.clock.advance(days=1)

    expiring = await world.events("token.expiring")
    assert [e.details["threshold"] for e in expiring] == [30, 7, 1]
    assert [e.details["days_left"] for e in expiring] == [30, 7, 1]
    assert all(e.severity == "warning" and e.token_id == token.id for e in expiring)
    assert expiring[1].summary == "Workflow token expires in 7 days (on 3 Dec 2027)"
    assert expiring[2].summary == "Workflow token expires in 1 day (on 3 Dec 2027)"
    assert expiring[0].details["expires_at"] == "2027-12-03T09:30:00.000Z"
    assert expiring[0].occurred_at == START + timedelta(days=335)

    expired = await world.events("token.expired")
    assert len(expired) == 1 and expired[0].severity == "error"
    assert expired[0].occurred_at == START + timedelta(days=365)

    mails = world.smtp.messages
    assert len(mails) == 4
    assert all(sorted(m.recipients) == sorted(RECIPIENTS) for m in mails)
    assert "expires in 30 days (3 Dec 2027)" in mails[0].subject
    assert "EXPIRED" in mails[3].subject
    assert "Generate New" in mails[0].text and "paste" in mails[0].text
    assert world.plaintext not in mails[0].text and token.last4 in mails[0].text
    sent = await world.events("alert.sent")
    assert len(sent) == 4
    assert sent[0].details["kind"] == "token.expiring"
    assert sent[0].details["recipient_count"] == 2
    assert sent[0].details["subject"] == mails[0].subject


async def test_a_token_created_with_ten_days_warns_at_once_then_at_7_and_1(world: World) -> None:
    await world.set_recipients(RECIPIENTS)
    await world.token(10)
    scheduler = world.scheduler()
    await tick(scheduler)
    first = await world.events("token.expiring")
    assert [(e.details["threshold"], e.details["days_left"]) for e in first] == [(30, 10)]
    assert first[0].summary == "Workflow token expires in 10 days (on 13 Dec 2026)"
    for _ in range(12):
        world.clock.advance(days=1)
        await tick(scheduler)
    assert [e.details["threshold"] for e in await world.events("token.expiring")] == [30, 7, 1]
    assert len(await world.events("token.expired")) == 1
    assert len(world.smtp.messages) == 4


async def test_a_tenant_down_over_a_threshold_catches_up_once_on_start(world: World) -> None:
    await world.set_recipients(RECIPIENTS)
    await world.token(365)
    await tick(world.scheduler())
    assert await world.events("token.expiring") == []

    world.clock.advance(days=360)  # "down" from day 0 to day 360: 5 days left
    await tick(world.scheduler())  # a fresh process starting up
    warned = await world.events("token.expiring")
    assert [(e.details["threshold"], e.details["days_left"]) for e in warned] == [(7, 5)]
    async with world.state.sessions() as session:
        marks = set((await session.scalars(select(TokenWarning.threshold))).all())
    assert marks == {30, 7}

    await tick(world.scheduler())  # and another restart: nothing twice
    assert len(await world.events("token.expiring")) == 1
    assert len(world.smtp.messages) == 1


async def test_two_schedulers_on_one_database_warn_and_mail_once(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="qp_tenant.domain.scheduler")
    await world.set_recipients(RECIPIENTS)
    await world.token(365)
    other = await world.second_state()
    a, b = world.scheduler(), world.scheduler(other)
    world.clock.advance(days=336)  # 29 days left
    for _ in range(5):
        await asyncio.gather(a.check_expiry(), b.check_expiry(), a.check_expiry(),
                             b.check_expiry())
    assert len(await world.events("token.expiring")) == 1
    assert "already handled elsewhere" in caplog.text  # the constraint did refuse a twin
    assert len(await world.outbox()) == 1
    await asyncio.gather(a.deliver_due(), b.deliver_due())
    await asyncio.gather(a.deliver_due(), b.deliver_due())
    assert len(world.smtp.messages) == 1
    assert len(await world.events("alert.sent")) == 1


async def test_revoked_tokens_are_not_warned_about(world: World) -> None:
    await world.set_recipients(RECIPIENTS)
    await world.token(10)
    await world.token(365)  # "Generate New" revokes the first one
    await tick(world.scheduler())
    assert await world.events("token.expiring", "token.expired") == []


async def test_per_tenant_thresholds_replace_the_defaults(world: World) -> None:
    await world.set_recipients(RECIPIENTS, days=[14])
    await world.token(20)
    scheduler = world.scheduler()
    for _ in range(21):
        await tick(scheduler)
        world.clock.advance(days=1)
    assert [e.details["threshold"] for e in await world.events("token.expiring")] == [14]
    assert len(await world.events("token.expired")) == 1


async def test_without_recipients_events_are_logged_but_no_mail_and_no_alert_event(
        world: World) -> None:
    await world.token(5)
    await tick(world.scheduler())
    assert len(await world.events("token.expiring")) == 1
    assert await world.outbox() == []
    assert await world.events("alert.sent", "alert.failed") == []
    assert world.smtp.messages == []


# --- failures ----------------------------------------------------------------------------


async def reject_triggers(world: World, count: int) -> None:
    """``count`` webhooks without resourceUrl through the real ingest path (each 422)."""
    body, refusal = parse_body(b'{"resourceName": "Domain Admin"}')
    ingest = world.state.ingest
    ingest.start()
    try:
        results = await asyncio.gather(*[
            ingest.submit(Trigger(token=world.plaintext, refusal=refusal, body=body))
            for _ in range(count)])
    finally:
        await ingest.stop()
    assert {status for status, _, _ in results} == {422}


async def test_a_burst_of_twenty_rejected_triggers_sends_one_mail(world: World) -> None:
    await world.set_recipients(RECIPIENTS)
    world.clock.value = datetime.now(UTC)
    await world.token(365)
    scheduler = world.scheduler()
    await reject_triggers(world, 20)
    # Refusals for one token, code and minute fold into one event that counts them.
    [rejected] = await world.events("workflow_trigger.rejected")
    assert rejected.duplicates == 19

    due = await scheduler.batch_failures()  # the window is still open
    assert due is not None and due > world.clock()
    assert await world.outbox() == []

    world.clock.advance(seconds=61)
    await tick(scheduler)
    await tick(scheduler)
    assert len(world.smtp.messages) == 1
    mail = world.smtp.messages[0]
    assert "20 workflow failures" in mail.subject
    assert mail.text.count("[missing_resource_url]") == 1
    assert "(20 times in that minute)" in mail.text
    assert "resourceUrl = [resource_url]" in mail.text
    sent = await world.events("alert.sent")
    assert [e.details["kind"] for e in sent] == ["failures"]

    # A restart neither re-sends nor skips: the cursor is in the database.
    restarted = world.scheduler(await world.second_state())
    world.clock.advance(seconds=61)
    await tick(restarted)
    assert len(world.smtp.messages) == 1
    async with world.state.sessions() as session:
        add_event(session, world.tenant_id, NewEvent(
            type="password_reset.failed", severity="error",
            summary="Password reset failed: the agent is offline", account="svc-backup"))
        await session.commit()
    world.clock.advance(seconds=61)
    await tick(restarted)
    await tick(restarted)
    assert len(world.smtp.messages) == 2
    second = world.smtp.messages[1]
    assert "1 workflow failure " in second.subject
    assert "svc-backup" in second.text and "agent is online" in second.text


# --- delivery failures -------------------------------------------------------------------


async def test_an_smtp_refusal_is_logged_with_its_reason_and_retried_with_backoff(
        world: World) -> None:
    await world.set_recipients(RECIPIENTS)
    await world.token(5)
    scheduler = world.scheduler()
    world.smtp.refuse = True
    await tick(scheduler)
    failed = await world.events("alert.failed")
    assert len(failed) == 1
    reason = failed[0].details["reason"]
    assert "refused" in reason and "550" in reason and "Mailbox unavailable" in reason
    assert failed[0].severity == "error"
    assert failed[0].details["final"] is False
    assert "trying again in 30 s" in failed[0].summary
    [row] = await world.outbox()
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at == world.clock() + timedelta(seconds=30)

    await tick(scheduler)  # not due yet: no attempt
    assert len(await world.events("alert.failed")) == 1

    world.clock.advance(seconds=30)
    await tick(scheduler)  # second refusal: back-off doubles
    [row] = await world.outbox()
    assert row.attempts == 2 and row.next_attempt_at == world.clock() + timedelta(seconds=60)

    world.smtp.refuse = False
    world.clock.advance(seconds=60)
    await tick(scheduler)
    assert len(world.smtp.messages) == 1
    assert len(await world.events("alert.sent")) == 1
    [row] = await world.outbox()
    assert row.status == "sent" and row.attempts == 3


async def test_an_unreachable_smtp_server_is_retried_then_given_up(world: World) -> None:
    await world.set_recipients(RECIPIENTS)
    await world.token(5)
    port = dead_port()
    scheduler = world.scheduler(port=port)
    for _ in range(6):
        await tick(scheduler)
        world.clock.advance(hours=1)
    failed = await world.events("alert.failed")
    assert len(failed) == 4  # alert_max_attempts
    assert all(f"could not connect to 127.0.0.1:{port}" in e.details["reason"] for e in failed)
    assert [e.details["final"] for e in failed] == [False, False, False, True]
    assert "gave up after 4 attempts" in failed[-1].summary
    [row] = await world.outbox()
    assert row.status == "failed"


async def test_a_pending_mail_survives_a_restart(world: World) -> None:
    await world.set_recipients(RECIPIENTS)
    await world.token(5)
    await world.scheduler(port=dead_port()).check_expiry()  # queued, never delivered
    assert len(await world.outbox()) == 1
    await tick(world.scheduler(await world.second_state()))  # the next process delivers it
    assert len(world.smtp.messages) == 1


async def test_the_smtp_password_never_reaches_logs_or_events(
        tmp_path: Path, smtp_server_with_auth: SmtpServer,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user, password = smtp_server_with_auth.credentials or ("", "")
    async for world in make_world(tmp_path, smtp_server_with_auth, smtp_user=user,
                                  smtp_password=password):
        assert password not in repr(world.state.settings)
        assert password not in repr(SmtpConfig.from_settings(world.state.settings))
        await world.set_recipients(RECIPIENTS)
        await world.token(5)
        await tick(world.scheduler())
        assert len(world.smtp.messages) == 1  # the right password works
        assert smtp_server_with_auth.auth_attempts == 1

        await world.token(5)  # a new token, so there is a new warning to send
        await tick(world.scheduler(password="wrong-" + password))
        failed = await world.events("alert.failed")
        assert len(failed) == 1
        assert "rejected the user name or password" in failed[0].details["reason"]
        everything = " ".join(str((e.summary, e.details)) for e in await world.events())
        assert password not in everything
    assert caplog.records  # the scheduler and mailer did log
    assert password not in caplog.text


async def test_the_failure_cursor_moves_over_quiet_history_and_still_sees_new_failures(
        world: World) -> None:
    await world.set_recipients(RECIPIENTS)
    async with world.state.sessions() as session:
        for i in range(600):
            add_event(session, world.tenant_id, NewEvent(
                type="workflow_trigger.received", severity="info", summary=f"change {i}"),
                occurred_at=world.clock() - timedelta(minutes=5))
        await session.commit()
    scheduler = world.scheduler()
    await scheduler.batch_failures()
    async with world.state.sessions() as session:
        cursor = await session.scalar(select(AlertCursor.failures_after_id))
    assert cursor == (await world.events())[-1].id  # quiet, settled history skipped

    async with world.state.sessions() as session:
        add_event(session, world.tenant_id, NewEvent(
            type="password_reset.failed", severity="error",
            summary="Password reset failed: the directory refused the new password"),
            occurred_at=world.clock())
        await session.commit()
    world.clock.advance(seconds=61)
    await tick(scheduler)
    assert len(world.smtp.messages) == 1
    assert "directory refused" in world.smtp.messages[0].text


async def test_the_default_clock_follows_time_machine(world: World) -> None:
    await world.set_recipients(RECIPIENTS)
    scheduler = AlertScheduler(world.state.sessions, world.state.broker, world.state.settings,
                               Mailer(SmtpConfig.from_settings(world.state.settings)))
    with time_machine.travel(START, tick=False) as traveller:
        async with world.state.sessions() as session:
            await generate_token(session, world.state.crypto, world.tenant_id,
                                 lifetime_days=365)
            await session.commit()
        await tick(scheduler)
        traveller.shift(timedelta(days=358))
        await tick(scheduler)
    [warning] = await world.events("token.expiring")
    assert warning.details == {"threshold": 7, "days_left": 7,
                               "expires_at": "2027-12-03T09:30:00.000Z"}
    assert warning.occurred_at == START + timedelta(days=358)
    assert len(world.smtp.messages) == 1


# --- PostgreSQL: several tenant processes share one database ------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    from tests.support.postgres import PostgresServer

    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_on_postgresql_concurrent_schedulers_warn_mail_and_batch_once(
        tmp_path: Path, smtp_server: SmtpServer, postgres: Any) -> None:
    url = postgres.url(postgres.create_database())
    async for world in make_world(tmp_path, smtp_server, database_url=url):
        await world.set_recipients(RECIPIENTS)
        world.clock.value = datetime.now(UTC)
        await world.token(365)
        others = [await world.second_state() for _ in range(3)]
        schedulers = [world.scheduler(s) for s in [world.state, *others]]
        world.clock.advance(days=336)
        for _ in range(3):
            await asyncio.gather(*[s.check_expiry() for s in schedulers])
            await asyncio.gather(*[s.deliver_due() for s in schedulers])
        assert len(await world.events("token.expiring")) == 1
        assert len(world.smtp.messages) == 1

        world.clock.value = datetime.now(UTC)
        await reject_triggers(world, 20)
        world.clock.advance(seconds=61)
        for _ in range(3):
            await asyncio.gather(*[s.batch_failures() for s in schedulers])
            await asyncio.gather(*[s.deliver_due() for s in schedulers])
        assert len(await world.outbox()) == 2
        assert len(world.smtp.messages) == 2
        assert len(await world.events("alert.sent")) == 2
