"""Durable reset jobs on the agent's side: lease, result, lease expiry, retries, deadlines.

A queued job is leased to its agent with one guarded ``UPDATE … WHERE state = 'queued'``
(the rowcount says who won; the same on SQLite and PostgreSQL). A lease that lapses puts the
job back in the queue after a back-off, until the attempt limit fails it. Whenever a job
ends, its encrypted password is erased in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qp_tenant.crypto import Crypto
from qp_tenant.domain.events import EventBroker, NewEvent, add_event, rfc3339
from qp_tenant.errors import ApiError
from qp_tenant.models import Account, Agent, ResetJob, utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")

ACTIVE_STATES = ("pending", "queued", "leased")
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class JobPolicy:
    lease_seconds: float
    max_attempts: int
    retry_base_seconds: float


def backoff(base: float, attempt: int, cap: float = 600.0) -> float:
    """Exponential back-off: base, 2·base, 4·base … (attempt counts from 1), capped."""
    return min(cap, base * (2 ** max(0, attempt - 1)))


def job_event(job: ResetJob, type_: str, severity: str, summary: str,
              **details: Any) -> NewEvent:
    """An event about a job: account, resource and ids; never the password."""
    base: dict[str, Any] = {
        "job_id": job.id, "trigger_event_id": job.trigger_event_id,
        "itglue_password_id": job.itglue_password_id, "account_id": job.account_id,
        "agent_id": job.agent_id,
    }
    if job.replay:
        base["replay"] = True
    if job.origin:  # "repeat" or "retry": see ResetJob.origin
        base["origin"] = job.origin
    base.update(details)
    return NewEvent(type=type_, severity=severity, summary=summary,
                    resource_name=job.resource_name, resource_url=job.resource_url,
                    account=job.account_name, token_id=job.token_id, details=base)


def end_job(job: ResetJob, state: str, error: str | None = None,
            now: datetime | None = None) -> None:
    """Finish a job; the password leaves the database with it."""
    now = now or utcnow()
    job.state = state
    job.error = error[:MAX_ERROR_CHARS] if error else None
    job.password_encrypted = None
    job.claimed_until = None
    job.lease_expires_at = None
    job.finished_at = now
    job.updated_at = now


def job_to_agent_json(job: ResetJob, crypto: Crypto) -> dict[str, Any]:
    """What ``GET /api/v1/agent/jobs`` hands the agent (see qp_agent.client.ResetJob)."""
    assert job.password_encrypted is not None
    return {
        "id": job.id,
        "directory": job.directory,
        "kind": job.kind,
        "identity": job.identity,
        "password": crypto.decrypt(job.password_encrypted),
        "account_id": job.account_id,
        "lease_expires_at": rfc3339(job.lease_expires_at),
    }


async def lock_live_agent(session: AsyncSession, agent_id: int) -> Agent | None:
    """The agent's row, locked until the transaction ends (FOR UPDATE on PostgreSQL; SQLite
    has one writer anyway), or None when it is gone or revoked. Whoever hands work to an
    agent holds this lock, so a concurrent revocation sees that work and takes it back."""
    agent = (await session.scalars(
        select(Agent).where(Agent.id == agent_id).with_for_update()
        .execution_options(populate_existing=True)
    )).first()
    return agent if agent is not None and agent.revoked_at is None else None


def revoked_credential() -> ApiError:
    return ApiError(401, "unauthorized",
                    "Unknown or revoked agent credential. Enroll the agent again.",
                    headers={"WWW-Authenticate": "Bearer"})


async def lease_next_job(session: AsyncSession, crypto: Crypto, agent: Agent,
                         lease_seconds: float) -> dict[str, Any] | None:
    """Lease the oldest due job of ``agent``, or None. Commits.

    Raises a 401 :class:`ApiError` once the agent is revoked, so a long poll that was already
    waiting ends instead of handing out a job.
    """
    now = utcnow()
    candidates = (await session.scalars(
        select(ResetJob.id).where(ResetJob.agent_id == agent.id, ResetJob.state == "queued",
                                  ResetJob.next_attempt_at <= now)
        .order_by(ResetJob.id).limit(5)
    )).all()
    # Only a poll that may hand out a job takes the lock; an idle poll just reads.
    live = (await lock_live_agent(session, agent.id) if candidates else
            await session.scalar(select(Agent.id).where(Agent.id == agent.id,
                                                        Agent.revoked_at.is_(None))))
    if live is None:
        await session.rollback()
        raise revoked_credential()
    for job_id in candidates:
        result = await session.execute(
            update(ResetJob).where(ResetJob.id == job_id, ResetJob.state == "queued")
            .values(state="leased", leased_at=now, updated_at=now,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    attempts=ResetJob.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            job = await session.get(ResetJob, job_id, populate_existing=True)
            assert job is not None
            body = job_to_agent_json(job, crypto)
            await session.commit()
            log.info("Job %s leased to agent %s (attempt %d)", job.id, agent.id, job.attempts)
            return body
    await session.commit()
    return None


async def wait_for_job(sessions: async_sessionmaker[AsyncSession], crypto: Crypto,
                       job_broker: EventBroker, agent: Agent, *, wait: float,
                       lease_seconds: float, fallback_seconds: float,
                       gone: Callable[[], Awaitable[bool]],
                       stopping: Callable[[], bool]) -> dict[str, Any] | None:
    """The agent's long poll: lease its next job, waiting up to ``wait`` seconds for one.

    ``job_broker`` (keyed by agent id) wakes the wait when a job is queued for the agent or
    the agent is revoked; a revoked agent's poll ends with the 401 of
    :func:`lease_next_job`. None when no job came in time, the agent hung up (``gone``) or
    the process is stopping.
    """
    async def look() -> dict[str, Any] | None:
        async with sessions() as session:
            return await lease_next_job(session, crypto, agent, lease_seconds)

    return await agent_long_poll(look, job_broker, agent.id, wait=wait,
                                 fallback_seconds=fallback_seconds, gone=gone,
                                 stopping=stopping)


async def agent_long_poll(look: Callable[[], Awaitable[T | None]], broker: EventBroker,
                          agent_id: int, *, wait: float, fallback_seconds: float,
                          gone: Callable[[], Awaitable[bool]],
                          stopping: Callable[[], bool]) -> T | None:
    """An agent's long poll (jobs, sync requests): ``look`` until it finds something, woken
    by ``broker`` (keyed by agent id) and, for work written by another tenant process, every
    ``fallback_seconds``. None after ``wait`` seconds, when the agent hung up (``gone``) or
    when the process is stopping. ``look`` opens its own short session, so no database
    connection is held while waiting.
    """
    deadline = time.monotonic() + wait
    while True:
        # Register before looking, so work queued in between still wakes this poll.
        waiter = broker.waiter(agent_id)
        try:
            if await gone():
                return None
            found = await look()
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0 or stopping():
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), min(remaining, fallback_seconds))
        finally:
            waiter.cancel()


async def record_result(session: AsyncSession, agent: Agent, job_id: int, *, ok: bool,
                        error: str | None, crypto: Crypto) -> ResetJob:
    """The agent's outcome for a leased job: account updated, event logged. Commits."""
    job = await session.get(ResetJob, job_id)
    if job is None or job.tenant_id != agent.tenant_id or job.agent_id != agent.id:
        raise ApiError(404, "job_not_found", "This job does not exist or belongs to another "
                       "agent.")
    if job.state != "leased":
        raise ApiError(409, "job_not_leased",
                       "This job is no longer leased to this agent: its lease ran out or it "
                       "already has a result.", details={"state": job.state})
    # Claim the result: a lease-expiry sweep may be re-queueing it at this very moment.
    now = utcnow()
    claimed = await session.execute(
        update(ResetJob).where(ResetJob.id == job.id, ResetJob.state == "leased")
        .values(state="succeeded" if ok else "failed", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        await session.rollback()
        raise ApiError(409, "job_not_leased",
                       "This job is no longer leased to this agent: its lease ran out or it "
                       "already has a result.")
    account = await session.get(Account, job.account_id) if job.account_id else None
    name = job.account_name or "the account"
    if ok:
        end_job(job, "succeeded", now=now)
        if account is not None:
            account.last_reset_at = now
            account.last_reset_by = job.updated_by
            account.last_result = "succeeded"
            account.last_applied_hash = job.password_hash
            account.updated_at = now
        add_event(session, job.tenant_id, job_event(
            job, "password_reset.succeeded", "info",
            f"Password of {name} reset in {job.directory} by agent {agent.name}",
            directory=job.directory, updated_by=job.updated_by, attempts=job.attempts,
        ))
    else:
        reason = (error or "The agent could not apply the new password.").strip()
        if job.password_encrypted:
            # Defence in depth: the agent scrubs its reasons, and so do we.
            secret = crypto.decrypt(job.password_encrypted)
            if secret:
                reason = reason.replace(secret, "***")
        await _fail_with_account(session, job, reason[:MAX_ERROR_CHARS], "directory_refused",
                                 now, directory=job.directory)
    await session.commit()
    return job


async def expire_leases(session: AsyncSession, policy: JobPolicy) -> tuple[set[int], set[int]]:
    """Re-queue (after a back-off) or fail jobs whose lease lapsed. Returns (tenants, agents)."""
    now = utcnow()
    lapsed = (await session.scalars(select(ResetJob).where(
        ResetJob.state == "leased", ResetJob.lease_expires_at < now
    ))).all()
    tenants: set[int] = set()
    agents: set[int] = set()
    for job in lapsed:
        if job.attempts >= policy.max_attempts:
            values: dict[str, Any] = {"state": "failed"}
        else:
            values = {"state": "queued", "lease_expires_at": None,
                      "next_attempt_at": now + timedelta(
                          seconds=backoff(policy.retry_base_seconds, job.attempts))}
        result = await session.execute(
            update(ResetJob).where(ResetJob.id == job.id, ResetJob.state == "leased",
                                   ResetJob.lease_expires_at < now)
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            continue
        tenants.add(job.tenant_id)
        if values["state"] == "queued":
            log.warning("Job %s: the agent's lease ran out (attempt %d of %d); re-queued",
                        job.id, job.attempts, policy.max_attempts)
            if job.agent_id is not None:
                agents.add(job.agent_id)
            continue
        reason = (f"The agent took the job {job.attempts} times but never reported a result "
                  "before its lease ran out; check that the agent is running and can reach "
                  "its directory.")
        await _fail_with_account(session, job, reason, "lease_expired", now,
                                 attempts=job.attempts)
    await session.commit()
    return tenants, agents


async def expire_waiting(session: AsyncSession) -> set[int]:
    """Fail queued jobs nobody applied before their deadline. Returns tenants."""
    now = utcnow()
    overdue = (await session.scalars(select(ResetJob).where(
        ResetJob.state == "queued", ResetJob.queue_deadline < now
    ))).all()
    tenants: set[int] = set()
    for job in overdue:
        result = await session.execute(
            update(ResetJob).where(ResetJob.id == job.id, ResetJob.state == "queued")
            .values(state="failed", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            continue
        tenants.add(job.tenant_id)
        agent = await session.get(Agent, job.agent_id) if job.agent_id else None
        waited = int((now - job.created_at).total_seconds() // 60) or 1
        if agent is None:
            reason = "The account's agent no longer exists, so nobody could apply the reset."
        elif agent.status != "online":
            seen = rfc3339(agent.last_seen_at) or "never"
            reason = (f"Agent {agent.name} is offline (last seen {seen}); the reset waited "
                      f"{waited} minute(s) and was not applied.")
        else:
            reason = (f"Agent {agent.name} did not pick up the reset within {waited} "
                      "minute(s).")
        await _fail_with_account(session, job, reason, "agent_unavailable", now,
                                 attempts=job.attempts)
    await session.commit()
    return tenants


async def _fail_with_account(session: AsyncSession, job: ResetJob, reason: str, code: str,
                             now: datetime, **details: Any) -> None:
    """End ``job`` as failed for ``reason``, on its account and in a ``password_reset.failed``
    event (``code`` and ``details`` in the event's details)."""
    end_job(job, "failed", reason, now=now)
    if job.account_id is not None:
        account = await session.get(Account, job.account_id)
        if account is not None:
            account.last_result = f"failed: {reason}"
            account.updated_at = now
    add_event(session, job.tenant_id, job_event(
        job, "password_reset.failed", "error",
        f"Password reset failed for {job.account_name or 'the account'}: {reason}",
        reason=reason, code=code, **details,
    ))
