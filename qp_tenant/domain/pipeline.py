"""The reset pipeline: from an accepted workflow trigger to a reset job for the account's agent.

Every ``workflow_trigger.received`` event gets a ``pending`` :class:`ResetJob` row in the same
transaction as the event itself (a hook in :class:`TriggerIngest`), so the work is as durable
as the webhook's 202. One background task per process then, for each due pending job:
finds the matched account, reads the new value from IT Glue with the tenant's key, applies
loop protection, and queues the job (password encrypted) for the account's agent — or ends it
with a specific ``password_reset.failed`` / ``password_reset.skipped`` event. The same task
sweeps lapsed leases, overdue jobs and silent agents.

Pending jobs are claimed with a guarded ``UPDATE … RETURNING`` (``claimed_until``), so several
tenant processes on one PostgreSQL database never resolve the same trigger twice; a claim
left by a crashed process expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qp_tenant.config import Settings
from qp_tenant.crypto import Crypto
from qp_tenant.domain import agents as agent_domain
from qp_tenant.domain import directory_sync, jobs, microsoft365
from qp_tenant.domain.batch_sql import batch_sql
from qp_tenant.domain.events import EventBroker, NewEvent, add_event
from qp_tenant.domain.itglue import build_client, get_integration
from qp_tenant.errors import ApiError
from qp_tenant.itglue.client import (
    ITGlueAuthError,
    ITGlueError,
    ITGlueNotFound,
    ITGlueRateLimited,
    ITGlueUnreachable,
    Password,
    RateLimiter,
)
from qp_tenant.models import Account, Agent, Customer, Event, ResetJob, utcnow

log = logging.getLogger(__name__)

JOBS: Any = ResetJob.__table__
CLAIM_SECONDS = 120.0
CLAIM_BATCH = 256
MAX_DEFER_SECONDS = 2.0
BURST_CLAIM = 8  # jobs in flight at most while webhooks keep arriving
DEFER_STEP_SECONDS = 0.05
STAND_IN_RECHECK_SECONDS = 5.0  # how often a job of a revoked agent looks for another one


@dataclass(frozen=True)
class _Resolved:
    """What resolution needs, read before any network call (no session held across it)."""

    job_id: int
    tenant_id: int
    password_id: str
    organization_id: str | None
    name: str
    account: Account | None
    agent: Agent | None
    region: str | None
    api_key: str | None
    itglue_attempts: int
    created_at: datetime
    revoked_agent: Agent | None  # the account's own agent, when it was revoked


class ResetPipeline:
    """The per-process pipeline worker and the agents' job wake-ups."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], crypto: Crypto,
                 broker: EventBroker, http: httpx.AsyncClient, settings: Settings,
                 write_gate: Any = None):
        self.sessions = sessions
        # Shared with the webhook writer: see qp_tenant.db.WriteGate.
        self.write_gate = write_gate if write_gate is not None else contextlib.nullcontext()
        # Set by the app: true while the webhook writer is busy (see _run).
        self.defer_while: Callable[[], bool] | None = None
        self.crypto = crypto
        self.broker = broker
        self.http = http
        self.settings = settings
        # Agents waiting in a long poll, keyed by agent id (same mechanism as the event stream).
        self.job_broker = EventBroker()
        self.policy = jobs.JobPolicy(settings.reset_lease_seconds, settings.reset_max_attempts,
                                     settings.reset_retry_base_seconds)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[int] = set()
        self._workers: set[asyncio.Task[None]] = set()
        self._limiters: dict[int, RateLimiter] = {}
        self._last_sweep = 0.0
        self._limit = asyncio.Semaphore(settings.pipeline_concurrency)
        self.resolved = 0
        # Applies entra_id resets; set by the app (qp_tenant.domain.microsoft365.CloudResets).
        self.cloud: microsoft365.CloudResets | None = None

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._limit = asyncio.Semaphore(self.settings.pipeline_concurrency)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pipeline")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._workers) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._workers.clear()

    def wake(self, tenants: Any = None) -> None:
        """Called after a commit that may have created pending work (e.g. by the ingest)."""
        self._wake.set()

    # --------------------------------------------------------------- trigger recording
    def record_triggers(self, connection: Connection,
                        rows: list[tuple[int, dict[str, Any]]]) -> None:
        """The ingest hook: accepted triggers become checks, in the ingest's transaction."""
        schedule_checks(connection, rows)

    def record_repeats(self, connection: Connection,
                       rows: list[tuple[int, dict[str, Any]]]) -> None:
        """The ingest hook for a trigger seen again within the duplicate window (``rows``
        pair the first event's id with the repeat's row): still a check of the password."""
        schedule_checks(connection, rows, origin=ORIGIN_REPEAT)

    async def replay(self, session: AsyncSession, tenant_id: int, event_id: int,
                     requested_by: str) -> tuple[ResetJob, bool]:
        """Run the pipeline again for a stored trigger. Returns (job, started_now).

        Idempotent: while a job for that trigger is still in flight, that job is returned.
        """
        event = await session.get(Event, event_id)
        if event is None or event.tenant_id != tenant_id:
            raise ApiError(404, "not_found", "That event was not found.")
        if event.type != "workflow_trigger.received":
            raise ApiError(422, "not_a_trigger",
                           f"Only a workflow_trigger.received event can be replayed; this one "
                           f"is {event.type}.", details={"type": event.type})
        in_flight = (await session.scalars(
            select(ResetJob).where(ResetJob.tenant_id == tenant_id,
                                   ResetJob.trigger_event_id == event_id,
                                   ResetJob.state.in_(jobs.ACTIVE_STATES))
            .order_by(ResetJob.id.desc()).limit(1)
        )).first()
        if in_flight is not None:
            return in_flight, False
        details = event.details or {}
        if not details.get("password_id"):
            raise ApiError(422, "not_a_trigger",
                           "This trigger has no IT Glue password id to replay.")
        row = pending_row(event.id, {
            "tenant_id": tenant_id, "resource_name": event.resource_name,
            "resource_url": event.resource_url, "token_id": event.token_id,
            "details": details,
        }, utcnow())
        row["replay"] = True
        job = ResetJob(**row)
        session.add(job)
        add_event(session, tenant_id, NewEvent(
            type="workflow_trigger.replayed", severity="info",
            summary=f"Trigger replayed by {requested_by}: "
                    f"{event.resource_name or 'an IT Glue password'}",
            resource_name=event.resource_name, resource_url=event.resource_url,
            token_id=event.token_id,
            details={"trigger_event_id": event.id, "password_id": details.get("password_id")},
        ))
        await session.commit()
        self._started(tenant_id)
        return job, True

    async def retry_account(self, session: AsyncSession, tenant_id: int, account_id: int,
                            requested_by: str) -> tuple[int, int]:
        """"Reset again from IT Glue" on an account: a check of its matched password with the
        current IT Glue value, attributed to ``requested_by``. Returns (event id, job id).

        Loop protection applies as to any check, except that after a failed reset the value
        is applied even when it is the one last applied: the person asked for a real attempt.
        A check of the password that is still waiting to run is reused (it reads the same
        current value), so asking twice does not queue two resets. Commits.
        """
        account = await session.get(Account, account_id)
        if account is None or account.tenant_id != tenant_id:
            raise ApiError(404, "not_found", "That account was not found.")
        if account.state == "gone":
            raise ApiError(409, "account_gone",
                           f"Account {account.display_name} is no longer in its directory, so "
                           "it cannot be reset. Match the IT Glue password to the account "
                           "that replaced it.")
        if not account.itglue_password_id:
            raise ApiError(409, "account_not_matched",
                           f"Account {account.display_name} is not matched to an IT Glue "
                           "password, so there is no value to apply. Match it to its IT Glue "
                           "password first.")
        after_failure = (account.last_result or "").startswith("failed")
        customer = await session.get(Customer, account.customer_id)
        name = account.itglue_password_name or f"IT Glue password {account.itglue_password_id}"
        now = utcnow()
        event = add_event(session, tenant_id, NewEvent(
            type="password_reset.requested", severity="info",
            summary=f"Reset again from IT Glue by {requested_by}: {account.display_name}",
            resource_name=name, account=account.display_name,
            details={"account_id": account.id, "itglue_password_id":
                     account.itglue_password_id, "requested_by": requested_by,
                     "after_failure": after_failure},
        ), occurred_at=now)
        await session.flush()
        job = (await session.scalars(
            select(ResetJob).where(*_waiting_check(tenant_id, account.itglue_password_id, now),
                                   or_(ResetJob.account_id.is_(None),
                                       ResetJob.account_id == account.id))
            .order_by(ResetJob.id).limit(1)
        )).first()
        if job is None:
            row = pending_row(event.id, {
                "tenant_id": tenant_id, "resource_name": name,
                "details": {"password_id": account.itglue_password_id,
                            "organization_id": customer.itglue_organization_id
                            if customer is not None else None},
            }, now)
            job = ResetJob(**row)
            job.origin = ORIGIN_RETRY
            job.account_id = account.id
            session.add(job)
        job.force = job.force or after_failure
        await session.flush()
        event.details = {**(event.details or {}), "job_id": job.id}
        await session.commit()
        self._started(tenant_id)
        return event.id, job.id

    def _started(self, tenant_id: int) -> None:
        """After the commit of a new check: wake the event stream and the pipeline."""
        self.broker.notify(tenant_id)
        self.wake()

    # ---------------------------------------------------------------------- the loop
    async def _run(self) -> None:
        with contextlib.suppress(Exception):
            await self._release_stale_claims()
        deferred_since: float | None = None
        while True:
            self._wake.clear()
            # Webhooks first: while a burst is being acknowledged, resolving waits (up to
            # MAX_DEFER_SECONDS at a time), so a 202 never queues behind pipeline work.
            in_burst = self.defer_while is not None and self.defer_while()
            if in_burst:
                now = time.monotonic()
                deferred_since = deferred_since or now
                if now - deferred_since < MAX_DEFER_SECONDS:
                    await asyncio.sleep(DEFER_STEP_SECONDS)
                    continue
            deferred_since = None
            try:
                # Still a burst after waiting: take a few jobs only, so the event loop never
                # has many resolutions ready at once in front of 202s and stream deliveries.
                await self._claim_and_dispatch(BURST_CLAIM if in_burst else None)
                if time.monotonic() - self._last_sweep >= self.settings.pipeline_poll_seconds:
                    self._last_sweep = time.monotonic()
                    await self._sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Reset pipeline pass failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.pipeline_poll_seconds)

    async def _release_stale_claims(self) -> None:
        """SQLite means one process: claims left by a previous run of it are stale now."""
        if not self.settings.is_sqlite:
            return
        async with self.write_gate, self.sessions() as session:
            await session.execute(update(ResetJob).where(
                ResetJob.state == "pending", ResetJob.claimed_until.is_not(None)
            ).values(claimed_until=None))
            await session.commit()

    async def _claim_and_dispatch(self, at_most: int | None = None) -> None:
        capacity = self.settings.pipeline_concurrency * 4 - len(self._inflight)
        if at_most is not None:
            capacity = min(capacity, at_most - len(self._inflight))
        if capacity <= 0:
            return
        now = utcnow()
        async with self.write_gate, self.sessions() as session:
            due = (await session.scalars(
                select(ResetJob.id).where(
                    ResetJob.state == "pending", ResetJob.next_attempt_at <= now,
                    or_(ResetJob.claimed_until.is_(None), ResetJob.claimed_until < now))
                .order_by(ResetJob.id).limit(min(capacity, CLAIM_BATCH))
            )).all()
            due = [i for i in due if i not in self._inflight]
            if not due:
                return
            claimed = (await session.execute(
                update(JOBS).where(
                    JOBS.c.id.in_(due), JOBS.c.state == "pending",
                    or_(JOBS.c.claimed_until.is_(None), JOBS.c.claimed_until < now))
                .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
                .returning(JOBS.c.id)
            )).scalars().all()
            await session.commit()
        for job_id in sorted(claimed):
            self._inflight.add(job_id)
            task = asyncio.get_running_loop().create_task(self._resolve_guarded(job_id))
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def _sweep(self) -> None:
        async with self.write_gate, self.sessions() as session:
            tenants, agent_ids = await jobs.expire_leases(session, self.policy)
        async with self.write_gate, self.sessions() as session:
            tenants |= await jobs.expire_waiting(session)
        async with self.write_gate, self.sessions() as session:
            tenants |= await agent_domain.mark_lapsed_offline(
                session, self.settings.agent_offline_seconds)
        for tenant_id in tenants:
            self.broker.notify(tenant_id)
        for agent_id in agent_ids:
            self.job_broker.notify(agent_id)

    # -------------------------------------------------------------------- resolution
    async def _resolve_guarded(self, job_id: int) -> None:
        try:
            async with self._limit:
                await self.resolve(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("Job %s: resolution failed unexpectedly", job_id)
            with contextlib.suppress(Exception):
                await self._finish(job_id, "failed", "internal_error",
                                   f"The tenant failed unexpectedly ({type(exc).__name__}); "
                                   "the error was logged.")
        finally:
            self._inflight.discard(job_id)
            self._wake.set()  # capacity freed: claim more without waiting for the timer

    async def _load(self, job_id: int) -> _Resolved | None:
        async with self.sessions() as session:
            job = await session.get(ResetJob, job_id)
            if job is None or job.state != "pending":
                return None
            # A retry names its account; a trigger finds the account matched to its password.
            by_account = (Account.id == job.account_id if job.account_id is not None
                          else Account.itglue_password_id == job.itglue_password_id)
            account = (await session.scalars(
                select(Account).where(Account.tenant_id == job.tenant_id, by_account)
                .order_by(Account.id).limit(1)
            )).first()
            agent = (await session.get(Agent, account.agent_id)
                     if account is not None and account.agent_id is not None else None)
            revoked = None
            if account is not None and agent is not None and agent.revoked_at is not None:
                revoked, agent = agent, await stand_in_agent(session, account)
            integration = await get_integration(session, job.tenant_id)
            connected = integration is not None and integration.connected
            return _Resolved(
                job_id=job.id, tenant_id=job.tenant_id, password_id=job.itglue_password_id,
                organization_id=job.itglue_organization_id,
                name=job.resource_name or f"IT Glue password {job.itglue_password_id}",
                account=account, agent=agent,
                region=integration.region if connected and integration else None,
                api_key=(self.crypto.decrypt(integration.api_key_encrypted)
                         if connected and integration else None),
                itglue_attempts=job.itglue_attempts,
                created_at=job.created_at, revoked_agent=revoked,
            )

    async def resolve(self, job_id: int) -> None:
        """Take one pending job as far as it goes: queued for the agent, or ended."""
        r = await self._load(job_id)
        if r is None:
            return
        account = r.account
        if account is None:
            await self._finish(job_id, "failed", "no_matched_account",
                               f"No matched account for {r.name}",
                               summary=f"No matched account for {r.name}")
            return
        if account.state == "gone":
            reporter = r.revoked_agent or r.agent
            await self._finish(job_id, "failed", "account_gone", directory_sync.gone_reason(
                account, reporter.name if reporter else None), account=account)
            return
        cloud = account.source_type == microsoft365.SOURCE_TYPE
        if not cloud and r.revoked_agent is not None and r.agent is None:
            await self._await_stand_in(r, account, r.revoked_agent)
            return
        if not cloud and (account.agent_id is None or r.agent is None):
            await self._finish(job_id, "failed", "no_agent",
                               f"Account {account.display_name} has no agent to apply the "
                               "new password; choose the agent in the account's source.",
                               account=account)
            return
        if r.api_key is None or r.region is None:
            await self._finish(job_id, "failed", "itglue_not_connected",
                               "IT Glue is not connected, so the new password of "
                               f"{r.name} could not be read. Connect IT Glue with an API key "
                               "that has Password Access.", account=account)
            return
        client = build_client(
            self.http, r.region, r.api_key, self.settings.itglue_base_url,
            limiter=self.limiter(r.tenant_id), max_retries=3, max_backoff_seconds=30.0)
        try:
            password = await client.get_password(r.password_id, org_id=r.organization_id,
                                                 include_updater=True)
        except ITGlueNotFound:
            await self._finish(
                job_id, "failed", "itglue_password_unreachable",
                f"IT Glue has no password {r.password_id} that the API can read: it was "
                "deleted, or it is kept in the Vault or marked \"Only Me\", which the IT Glue "
                "API cannot reach. Share it normally in IT Glue, or reset this account by "
                "hand.", account=account)
            return
        except ITGlueAuthError as exc:
            await self._finish(
                job_id, "failed", "itglue_key_rejected",
                f"IT Glue refused the tenant's API key, so the new password of {r.name} "
                f"could not be read ({exc.detail or exc.title or 'no detail'}). Reconnect IT "
                "Glue with a valid key.", account=account)
            return
        except (ITGlueUnreachable, ITGlueRateLimited) as exc:
            await self._retry_itglue(r, account, str(exc))
            return
        except ITGlueError as exc:
            await self._finish(job_id, "failed", "itglue_error",
                               f"IT Glue answered with an error: {exc}", account=account)
            return
        if not password.value_shown:
            await self._finish(
                job_id, "failed", "itglue_no_password_access",
                f"The IT Glue API key lacks Password Access, so the new password of {r.name} "
                "could not be read. Turn on Password Access for the key in IT Glue.",
                account=account)
            return
        if not password.password:
            await self._finish(job_id, "failed", "itglue_password_empty",
                               f"IT Glue holds an empty password for {r.name}; there is "
                               "nothing to apply.", account=account)
            return
        if cloud:
            await self._apply_cloud(r, account, password)
            return
        assert r.agent is not None
        await self._queue(r, account, r.agent, password)

    async def _await_stand_in(self, r: _Resolved, account: Account, revoked: Agent) -> None:
        """The account's agent was revoked and no other agent of its customer serves its
        directory yet: wait (as a queued job waits for an offline agent) for one to enroll."""
        now = utcnow()
        if now - r.created_at >= timedelta(seconds=self.settings.reset_max_wait_seconds):
            await self._finish(
                r.job_id, "failed", "agent_revoked",
                f"Agent {revoked.name} of account {account.display_name} was revoked and no "
                f"other agent of its customer serves directory {account.directory or '—'}; "
                "enroll an agent for the customer (or choose one in the account's source), "
                "then replay the trigger.", account=account)
            return
        reason = (f"agent {revoked.name} was revoked and no other agent of the account's "
                  f"customer serves directory {account.directory or '—'} yet")
        async with self.write_gate, self.sessions() as session:
            job = await session.get(ResetJob, r.job_id)
            if job is None or job.state != "pending":
                return
            if job.error != reason:  # said once, not at every recheck
                _snapshot(job, account)
                job.error = reason
                add_event(session, job.tenant_id, jobs.job_event(
                    job, "password_reset.waiting", "warning",
                    f"Reset of {account.display_name} waits: {reason}; enroll an agent for "
                    "the customer, or choose another agent in the account's source.",
                    reason=reason, code="agent_revoked", revoked_agent_id=revoked.id))
            job.claimed_until = None
            job.updated_at = now
            job.next_attempt_at = now + timedelta(seconds=STAND_IN_RECHECK_SECONDS)
            await session.commit()
        self.broker.notify(r.tenant_id)

    def limiter(self, tenant_id: int) -> RateLimiter:
        # IT Glue counts per key: one limiter per tenant, shared by all its pipeline work.
        if tenant_id not in self._limiters:
            self._limiters[tenant_id] = RateLimiter(3000, 300.0)
        return self._limiters[tenant_id]

    async def _retry_itglue(self, r: _Resolved, account: Account, problem: str,
                            what: str = "IT Glue") -> None:
        attempts = r.itglue_attempts + 1
        if attempts >= self.settings.itglue_max_attempts:
            if what == "IT Glue":
                await self._finish(r.job_id, "failed", "itglue_unreachable",
                                   f"IT Glue could not be reached after {attempts} attempts, "
                                   f"so the new password of {r.name} was not read: {problem}",
                                   account=account)
            else:
                await self._finish(r.job_id, "failed", "m365_unreachable",
                                   f"{what} could not be reached after {attempts} attempts, so "
                                   f"the new password of {r.name} was not applied: {problem}",
                                   account=account)
            return
        delay = jobs.backoff(self.settings.itglue_retry_base_seconds, attempts)
        log.warning("Job %s: %s unreachable (%s); retry %d in %.1f s",
                    r.job_id, what, problem, attempts, delay)
        async with self.write_gate, self.sessions() as session:
            await session.execute(update(ResetJob).where(
                ResetJob.id == r.job_id, ResetJob.state == "pending"
            ).values(itglue_attempts=attempts, claimed_until=None, error=problem[:2000],
                     password_hash=None,
                     next_attempt_at=utcnow() + timedelta(seconds=delay), updated_at=utcnow()))
            await session.commit()

    async def _queue(self, r: _Resolved, account: Account, agent: Agent,
                     password: Password) -> None:
        assert password.password
        # Keyed hash of the value for loop protection; hashes stored before a key rotation
        # (under a previous key) still count as the same value.
        value_hashes = self.crypto.lookup_hashes(reset_value_key(account.id, password.password))
        value_hash = value_hashes[0]
        updater = password.updater_name or password.updated_by
        now = utcnow()
        async with self.write_gate, self.sessions() as session:
            job = await session.get(ResetJob, r.job_id)
            if job is None or job.state != "pending":
                return
            if await jobs.lock_live_agent(session, agent.id) is None:
                # Revoked since it was chosen: resolve again, for another agent.
                job.claimed_until = None
                await session.commit()
                self._wake.set()
                return
            _snapshot(job, account)
            if await self._skipped(session, job, account, value_hashes, updater, now):
                return
            job.state = "queued"
            job.agent_id = agent.id
            job.password_encrypted = self.crypto.encrypt(password.password)
            job.password_hash = value_hash
            job.updated_by = updater
            job.claimed_until = None
            job.error = None
            job.next_attempt_at = now
            job.queue_deadline = now + timedelta(seconds=self.settings.reset_max_wait_seconds)
            job.updated_at = now
            online = agent.status == "online"
            summary = f"Reset of {account.display_name} queued for agent {agent.name}"
            summary += _origin_note(job)
            if not online:
                summary += " (the agent is offline; the job waits for it)"
            add_event(session, job.tenant_id, jobs.job_event(
                job, "password_reset.queued", "info" if online else "warning", summary,
                directory=job.directory, updated_by=updater, agent_online=online))
            await session.commit()
        self.resolved += 1
        self.broker.notify(r.tenant_id)
        self.job_broker.notify(agent.id)

    async def _skipped(self, session: AsyncSession, job: ResetJob, account: Account,
                       value_hashes: list[str], updater: str | None, now: Any) -> bool:
        """Loop protection: end the job as skipped (and commit) when its value is already
        applied or being applied to the account. Returns whether it did.

        The account's row is locked first, so two checks of one account (a repeat racing
        the reset it repeats, or two tenant processes) decide one after the other: the
        second sees the first's queued job (its value hash) or its applied value.
        """
        fresh = (await session.scalars(
            select(Account).where(Account.id == account.id).with_for_update()
            .execution_options(populate_existing=True))).first()
        skip_reason = None
        code = "already_applied"
        if fresh is not None and fresh.last_applied_hash in value_hashes and not job.force:
            if updater and updater == self.settings.itglue_api_user_name:
                skip_reason = ("IT Glue's change was written by this tenant's own API key "
                               "with the value already applied to the account")
            else:
                skip_reason = "the value in IT Glue is already applied to the account"
        else:
            # Any job of the account that holds the same value: queued or leased to an agent,
            # or a pending cloud reset while Graph is being called.
            same = (await session.scalars(select(ResetJob.id).where(
                ResetJob.account_id == account.id, ResetJob.id != job.id,
                ResetJob.state.in_(jobs.ACTIVE_STATES),
                ResetJob.password_hash.in_(value_hashes)).limit(1))).first()
            if same is not None:
                code = "in_progress"
                skip_reason = f"a reset with the same value is already in progress (job {same})"
        if skip_reason is None:
            return False
        jobs.end_job(job, "skipped", skip_reason, now=now)
        name = account.display_name
        if job.origin == ORIGIN_REPEAT:
            summary = f"Triggered again; the value in IT Glue is unchanged ({name}): {skip_reason}"
        elif job.origin == ORIGIN_RETRY and code == "already_applied":
            summary = (f"Reset again from IT Glue for {name}: the value in IT Glue is already "
                       "applied; nothing to do")
        else:
            summary = f"Reset of {name} skipped: {skip_reason}{_origin_note(job)}"
        add_event(session, job.tenant_id, jobs.job_event(
            job, "password_reset.skipped", "info", summary,
            reason=skip_reason, code=code, updated_by=updater))
        await session.commit()
        self.broker.notify(job.tenant_id)
        return True

    async def _apply_cloud(self, r: _Resolved, account: Account, password: Password) -> None:
        """An ``entra_id`` account: the tenant applies the value itself through Graph."""
        assert password.password
        if self.cloud is None:
            await self._finish(r.job_id, "failed", "m365_unavailable",
                               "Microsoft 365 resets are not available in this tenant process.",
                               account=account)
            return
        value_hashes = self.crypto.lookup_hashes(reset_value_key(account.id, password.password))
        updater = password.updater_name or password.updated_by
        now = utcnow()
        async with self.write_gate, self.sessions() as session:
            job = await session.get(ResetJob, r.job_id)
            if job is None or job.state != "pending":
                return
            _snapshot(job, account)
            job.directory = microsoft365.DIRECTORY_LABEL
            if await self._skipped(session, job, account, value_hashes, updater, now):
                return
            link = await microsoft365.link_for_account(session, account)
            if link is not None:
                link_id = link.id
                credentials = microsoft365.credentials_of(link, self.crypto)
                # Marks the value as being applied (see _skipped) while Graph is called.
                job.password_hash = value_hashes[0]
                job.updated_by = updater
                job.updated_at = now
            await session.commit()
        if link is None:
            await self._finish(r.job_id, "failed", "m365_not_linked",
                               f"Account {account.display_name} is a Microsoft 365 account, but "
                               "its customer is not linked to Microsoft 365. Link it (Link "
                               "Microsoft 365… on the customer) with an app that may reset "
                               "passwords.", account=account)
            return
        outcome = await self.cloud.apply(credentials, account, password.password)
        if outcome.code == "m365_unreachable":
            await self._retry_itglue(r, account, outcome.reason, what="Microsoft 365")
            return
        async with self.write_gate, self.sessions() as session:
            job = await session.get(ResetJob, r.job_id)
            if job is None or job.state != "pending":
                return
            now = utcnow()
            fresh = await session.get(Account, account.id)
            name = account.display_name
            if outcome.code is None:
                jobs.end_job(job, "succeeded", now=now)
                if fresh is not None:
                    fresh.last_reset_at = now
                    fresh.last_reset_by = updater
                    fresh.last_result = "succeeded"
                    fresh.last_applied_hash = value_hashes[0]
                    fresh.updated_at = now
                await microsoft365.note_link_works(session, link_id)
                add_event(session, job.tenant_id, jobs.job_event(
                    job, "password_reset.succeeded", "info",
                    f"Password of {name} reset in Microsoft 365 ({account.identity})",
                    directory=microsoft365.DIRECTORY_LABEL, source_type="entra_id",
                    updated_by=updater))
            else:
                reason = outcome.reason.replace(password.password, "***")
                jobs.end_job(job, "failed", reason, now=now)
                if fresh is not None:
                    fresh.last_result = f"failed: {reason}"
                    fresh.updated_at = now
                extra: dict[str, Any] = {}
                if outcome.credentials_failed and not await (
                        microsoft365.note_credentials_failure(session, link_id, reason)):
                    # The same sign-in failure was already alerted: one mail, not one per reset.
                    extra["alert"] = False
                add_event(session, job.tenant_id, jobs.job_event(
                    job, "password_reset.failed", "error",
                    f"Password reset failed for {name}: {reason}", reason=reason,
                    code=outcome.code, directory=microsoft365.DIRECTORY_LABEL,
                    source_type="entra_id", **extra))
            await session.commit()
            tenant_id = job.tenant_id
        self.resolved += 1
        self.broker.notify(tenant_id)

    async def _finish(self, job_id: int, state: str, code: str, reason: str, *,
                      account: Account | None = None, summary: str | None = None) -> None:
        async with self.write_gate, self.sessions() as session:
            job = await session.get(ResetJob, job_id)
            if job is None or job.state != "pending":
                return
            now = utcnow()
            if account is not None:
                _snapshot(job, account)
                fresh = await session.get(Account, account.id)
                if fresh is not None:
                    fresh.last_result = f"failed: {reason}"
                    fresh.updated_at = now
            jobs.end_job(job, state, reason, now=now)
            name = account.display_name if account else (job.resource_name or "the account")
            add_event(session, job.tenant_id, jobs.job_event(
                job, "password_reset.failed", "error",
                summary or f"Password reset failed for {name}: {reason}",
                reason=reason, code=code,
                organization_id=job.itglue_organization_id))
            await session.commit()
            tenant_id = job.tenant_id
        self.resolved += 1
        self.broker.notify(tenant_id)


async def stand_in_agent(session: AsyncSession, account: Account) -> Agent | None:
    """Another live agent of the account's customer that reports the account's directory
    (online ones first), to take over from a revoked agent; or None."""
    candidates = (await session.scalars(
        select(Agent).where(Agent.tenant_id == account.tenant_id,
                            Agent.customer_id == account.customer_id,
                            Agent.revoked_at.is_(None))
        .order_by(Agent.id.desc())
    )).all()
    serving = [a for a in candidates
               if any(d.get("name") == account.directory for d in a.directories or [])]
    serving.sort(key=lambda a: a.status != "online")
    return serving[0] if serving else None


def reset_value_key(account_id: int, password: str) -> str:
    """What ``ResetJob.password_hash`` / ``Account.last_applied_hash`` are keyed hashes of."""
    return f"reset-value:{account_id}:{password}"


def _snapshot(job: ResetJob, account: Account) -> None:
    job.account_id = account.id
    job.account_name = account.display_name
    job.directory = account.directory
    job.identity = account.identity
    job.kind = account.source_type


ORIGIN_REPEAT = "repeat"
ORIGIN_RETRY = "retry"
_ORIGIN_NOTES = {ORIGIN_REPEAT: " (IT Glue triggered this password again)",
                 ORIGIN_RETRY: " (reset again from IT Glue on request)"}


def _origin_note(job: ResetJob) -> str:
    return _ORIGIN_NOTES.get(job.origin or "", "")


def _waiting_check(tenant_id: Any, password_id: Any, now: Any) -> tuple[Any, ...]:
    """Conditions of a check of the password that waits unclaimed: it has not read IT Glue
    yet, so it will read whatever the password holds when it runs."""
    return (JOBS.c.tenant_id == tenant_id, JOBS.c.itglue_password_id == password_id,
            JOBS.c.state == "pending",
            or_(JOBS.c.claimed_until.is_(None), JOBS.c.claimed_until < now))


def schedule_checks(connection: Connection, triggers: list[tuple[int, dict[str, Any]]], *,
                    origin: str | None = None) -> int:
    """Accepted triggers become checks of their passwords: THE coalescing rule, for the
    webhook receiver and anything else that learns a password changed.

    ``triggers`` pair the id of the trigger's event with its row (``tenant_id``,
    ``details.password_id`` …; rows of another type than ``workflow_trigger.received`` are
    ignored). At most one check per tenant and IT Glue password waits unclaimed: a trigger
    whose password already has one adds nothing, because that check reads the password from
    IT Glue when it runs and so applies this change too. A check already claimed (reading IT
    Glue or being applied) may have read the value before this change, so one new check
    waits behind it; a burst of triggers therefore makes one check, not one per trigger.
    Runs in the caller's transaction; returns how many checks it added.
    """
    now = utcnow()
    candidates = [pending_row(event_id, row, now, origin=origin) for event_id, row in triggers
                  if row.get("type") == "workflow_trigger.received"]
    if not candidates:
        return 0
    sql = batch_sql(connection)
    waiting = sql.waiting_checks({c["itglue_password_id"] for c in candidates}, now)
    new = []
    for job in candidates:
        key = (job["tenant_id"], job["itglue_password_id"])
        if key not in waiting:
            waiting.add(key)
            new.append(job)
    sql.insert_jobs(new)
    return len(new)


def pending_row(event_id: int, row: dict[str, Any], now: Any, origin: str | None = None
                ) -> dict[str, Any]:
    """The reset job a trigger event queues: a check of its IT Glue password, due now."""
    details = row.get("details") or {}
    return {
        "tenant_id": row["tenant_id"], "trigger_event_id": event_id, "replay": False,
        "origin": origin, "force": False,
        "state": "pending", "itglue_password_id": str(details.get("password_id")),
        "itglue_organization_id": (str(details["organization_id"])
                                   if details.get("organization_id") else None),
        "resource_name": row.get("resource_name"), "resource_url": row.get("resource_url"),
        "token_id": row.get("token_id"), "attempts": 0, "itglue_attempts": 0,
        "next_attempt_at": now, "created_at": now, "updated_at": now,
    }
