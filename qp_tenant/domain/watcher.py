"""The IT Glue watcher: the tenant reads IT Glue's recent password changes itself.

IT Glue's workflow webhook is the fast path, but a tenant IT Glue cannot reach (the embedded
one on a technician's computer) never gets it, and a deployed tenant that was down when IT
Glue called has lost that change. So, per tenant with IT Glue connected, every
``QP_ITGLUE_WATCH_SECONDS`` one process lists the passwords newest change first
(``GET /passwords?sort=-updated_at``), following pages while they are newer than the stored
cursor, and for each matched password whose value changed records a ``workflow_trigger.received``
event "found by the IT Glue watcher" with its pending reset job, through the same hook the
webhook uses (``ResetPipeline.record_triggers``), so loop protection applies to both: a change
seen by the webhook and by the watcher is applied once.

Why ``-updated_at`` and not ``-password_updated_at``: ``updated_at`` is one of the sort keys
IT Glue documents for passwords, and every value change moves it too (``updated-at`` >=
``password-updated-at``), so walking it until the cursor sees every value change; entries
whose ``password-updated-at`` is not newer (a renamed password, edited notes) are passed over.

The cursor, the lease that makes one process at a time watch a tenant, and what the app shows
live in the ``itglue_watch`` table (docs/itglue-watcher.md).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qp_common.wire import format_rfc3339, parse_rfc3339
from qp_tenant.config import Settings
from qp_tenant.crypto import Crypto
from qp_tenant.domain import alerts
from qp_tenant.domain.events import EventBroker, NewEvent, add_event
from qp_tenant.domain.itglue import get_integration
from qp_tenant.domain.itglue import tenant_client as itglue_client
from qp_tenant.itglue.client import (
    ITGlueAuthError,
    ITGlueClient,
    ITGlueError,
    ITGlueRateLimited,
    Password,
    RateLimiter,
)
from qp_tenant.models import (
    Account,
    Event,
    ITGlueIntegration,
    ITGlueWatch,
    ResetJob,
    Tenant,
    WorkflowToken,
    utcnow,
)

log = logging.getLogger(__name__)

WATCH: Any = ITGlueWatch.__table__
PAGE_SIZE = 100  # changes one check usually sees fit on the first page
ITGLUE_LIMIT = 3000  # requests per key ...
ITGLUE_WINDOW_SECONDS = 300.0  # ... per 5 minutes (IT Glue's documented rate limit)
LEASE_MARGIN_SECONDS = 60.0  # how long past one interval a silent process keeps its lease
MAX_TICK_SECONDS = 5.0  # the longest a process goes without looking for due checks
MIN_TICK_SECONDS = 0.05
DEFAULT_RETRY_AFTER = 60.0  # a 429 without Retry-After
MISSING_ALERT_EVERY = timedelta(hours=1)  # one "webhooks are not arriving" alert per tenant
MAX_AWAITING = 200  # changes remembered for the webhook check, per tenant
FOUND_BY = "watcher"


@dataclass
class Scan:
    """What one walk over IT Glue's passwords found."""

    changes: list[Password] = field(default_factory=list)
    cursor_at: datetime | None = None
    cursor_ids: list[str] = field(default_factory=list)
    requests: int = 0
    complete: bool = True  # False: stopped before reaching the cursor (budget)


def _newer(moment: datetime | None, password_id: str, cursor_at: datetime,
           cursor_ids: set[str]) -> bool:
    if moment is None:
        return False
    return moment > cursor_at or (moment == cursor_at and password_id not in cursor_ids)


async def scan(client: ITGlueClient, cursor_at: datetime, cursor_ids: list[str], *,
               page_size: int = PAGE_SIZE,
               may_request: Callable[[], bool] = lambda: True) -> Scan:
    """Walk ``GET /passwords?sort=-updated_at`` from the first page while entries are newer
    than the cursor; return the value changes among them and the cursor to store next.

    ``may_request`` is asked before each request (the watcher's budget); when it says no, the
    walk stops incomplete and nothing it saw may be trusted as the full picture.
    """
    seen_ids = set(cursor_ids)
    result = Scan(cursor_at=cursor_at, cursor_ids=list(cursor_ids))
    found: dict[str, Password] = {}
    newest: dict[str, datetime] = {}
    page: int | None = 1
    while page is not None:
        if not may_request():
            result.complete = False
            return result
        passwords, next_page = await client.list_passwords_page(
            sort="-updated_at", page_number=page, page_size=page_size)
        result.requests += 1
        newer = [p for p in passwords if _newer(p.updated_at, p.id, cursor_at, seen_ids)]
        for pw in newer:
            assert pw.updated_at is not None
            newest[pw.id] = pw.updated_at
            if _newer(pw.password_updated_at, pw.id, cursor_at, seen_ids):
                found[pw.id] = pw  # a change moving up during the walk is kept once
        # Sorted newest first: once an entry is not newer, nothing after it is.
        page = next_page if passwords and len(newer) == len(passwords) else None
    if newest:
        top = max(newest.values())
        if top > cursor_at:
            result.cursor_at = top
            result.cursor_ids = sorted(pid for pid, at in newest.items() if at == top)
        else:
            result.cursor_ids = sorted(seen_ids | {pid for pid, at in newest.items()
                                                   if at == top})
    result.changes = sorted(found.values(), key=lambda p: (p.password_updated_at, p.id))
    return result


class Budget:
    """The watcher's own share of IT Glue's rate limit: a sliding window of its requests."""

    def __init__(self, share: float, limit: int = ITGLUE_LIMIT,
                 window_seconds: float = ITGLUE_WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.allowed = max(1, int(limit * share))
        self.window = window_seconds
        self._clock = clock
        self._sent: collections.deque[float] = collections.deque()

    def _trim(self) -> None:
        now = self._clock()
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def take(self) -> bool:
        """Count one request if it fits in the share; False when the share is used up."""
        self._trim()
        if len(self._sent) >= self.allowed:
            return False
        self._sent.append(self._clock())
        return True

    def seconds_until_free(self) -> float:
        self._trim()
        if len(self._sent) < self.allowed:
            return 0.0
        return max(self._sent[0] + self.window - self._clock(), 0.0)


def _seconds(delta: float) -> str:
    return f"{delta:.0f} s" if delta < 120 else f"{delta / 60:.0f} min"


class ITGlueWatcher:
    """The per-process watcher task: checks every tenant whose lease it holds when due."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], crypto: Crypto,
                 broker: EventBroker, http: httpx.AsyncClient, settings: Settings, *,
                 record_triggers: Callable[..., None], wake_pipeline: Callable[[], None],
                 limiter: Callable[[int], RateLimiter] | None = None,
                 write_gate: Any = None, public_url: str = ""):
        self.sessions = sessions
        self.crypto = crypto
        self.broker = broker
        self.http = http
        self.settings = settings
        self.interval = float(settings.itglue_watch_seconds)
        self.grace = timedelta(seconds=settings.itglue_watch_grace_seconds)
        self.record_triggers = record_triggers
        self.wake_pipeline = wake_pipeline
        self.limiter = limiter
        self.write_gate = write_gate if write_gate is not None else contextlib.nullcontext()
        self.public_url = public_url
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._budgets: dict[int, Budget] = {}
        self._task: asyncio.Task[None] | None = None
        self.checks = 0

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="itglue-watch")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        # Hand the leases over now rather than when they lapse.
        with contextlib.suppress(Exception):
            async with self.write_gate, self.sessions() as session:
                await session.execute(update(WATCH).where(WATCH.c.lease_owner == self.owner)
                                      .values(lease_owner=None, lease_until=None))
                await session.commit()

    async def _run(self) -> None:
        while True:
            wait = min(self.interval, MAX_TICK_SECONDS)
            try:
                wait = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("IT Glue watcher pass failed; trying again shortly")
            await asyncio.sleep(wait)

    # ----------------------------------------------------------------------- one pass
    async def tick(self) -> float:
        """Check every tenant whose check is due and whose lease this process gets.
        Returns how long to wait before the next pass (until the next check is due, at
        most MAX_TICK_SECONDS, so another process's silence is noticed)."""
        now = utcnow()
        async with self.sessions() as session:
            connected = (await session.scalars(
                select(ITGlueIntegration.tenant_id).where(ITGlueIntegration.connected.is_(True))
            )).all()
            rows = {row.tenant_id: row for row in (await session.scalars(
                select(ITGlueWatch).where(ITGlueWatch.tenant_id.in_(connected)))).all()}
        wait = min(self.interval, MAX_TICK_SECONDS)
        for tenant_id in connected:
            row = rows.get(tenant_id)
            if row is None:
                await self._create_row(tenant_id)
            elif row.next_check_at is not None and row.next_check_at > now:
                wait = min(wait, (row.next_check_at - now).total_seconds())
                continue
            if await self._take_lease(tenant_id):
                next_at = await self.check(tenant_id)
                wait = min(wait, max((next_at - utcnow()).total_seconds(), 0.0))
        return max(wait, MIN_TICK_SECONDS)

    async def _create_row(self, tenant_id: int) -> None:
        now = utcnow()
        async with self.write_gate, self.sessions() as session:
            session.add(ITGlueWatch(tenant_id=tenant_id, cursor_ids=[], awaiting=[],
                                    changes_found=0, updated_at=now))
            try:
                await session.commit()
            except IntegrityError:  # another process made it first
                await session.rollback()

    async def _take_lease(self, tenant_id: int) -> bool:
        """One atomic UPDATE … WHERE: the lease is free, lapsed, or already ours."""
        now = utcnow()
        until = now + timedelta(seconds=self.interval + LEASE_MARGIN_SECONDS)
        async with self.write_gate, self.sessions() as session:
            result = await session.execute(
                update(WATCH).where(
                    WATCH.c.tenant_id == tenant_id,
                    or_(WATCH.c.lease_owner.is_(None), WATCH.c.lease_until < now,
                        WATCH.c.lease_owner == self.owner),
                    or_(WATCH.c.next_check_at.is_(None), WATCH.c.next_check_at <= now))
                .values(lease_owner=self.owner, lease_until=until))
            won = getattr(result, "rowcount", 0) == 1
            await session.commit()
        return won

    def _budget(self, tenant_id: int) -> Budget:
        if tenant_id not in self._budgets:
            self._budgets[tenant_id] = Budget(self.settings.itglue_watch_budget)
        return self._budgets[tenant_id]

    async def check(self, tenant_id: int) -> datetime:
        """One check of one tenant (the caller holds its lease). Returns when the next one
        is due."""
        started = utcnow()
        async with self.sessions() as session:
            integration = await get_integration(session, tenant_id)
            row = await session.get(ITGlueWatch, tenant_id)
            if integration is None or not integration.connected or row is None:
                return started + timedelta(seconds=self.interval)
            # 429s are not retried inline: the watcher's next check waits for Retry-After.
            client = await itglue_client(
                session, self.crypto, self.http, tenant_id, self.settings.itglue_base_url,
                limiter=self.limiter(tenant_id) if self.limiter else None, max_retries=0)
        api_key = self.crypto.decrypt(integration.api_key_encrypted)
        fingerprints = self.crypto.lookup_hashes(f"itglue-watch:{integration.region}:{api_key}")
        cursor_at, cursor_ids = row.cursor_at, list(row.cursor_ids or [])
        restart = row.key_fingerprint not in fingerprints or cursor_at is None
        if restart or cursor_at is None:
            # First connect, or another key or region: start at the moment it was connected,
            # so history is not replayed.
            cursor_at = integration.last_verified_at or started
            cursor_ids = []
        budget = self._budget(tenant_id)
        values: dict[str, Any] = {"last_checked_at": started,
                                  "key_fingerprint": fingerprints[0]}
        if restart:
            values.update(cursor_at=cursor_at, cursor_ids=[])
        wait = self.interval
        found: Scan | None = None
        try:
            found = await scan(client, cursor_at, cursor_ids, may_request=budget.take)
        except ITGlueRateLimited as exc:
            wait = max(wait, exc.retry_after if exc.retry_after is not None
                       else DEFAULT_RETRY_AFTER)
            values["last_error"] = (f"IT Glue's rate limit was hit (HTTP 429); the watcher "
                                    f"waits {_seconds(wait)} as IT Glue asked, then resumes.")
        except ITGlueAuthError as exc:
            values["last_error"] = (f"IT Glue refused the API key "
                                    f"({exc.detail or exc.title or 'no detail'}); reconnect IT "
                                    "Glue with a valid key.")
        except ITGlueError as exc:
            values["last_error"] = f"IT Glue could not be read: {exc}"
        else:
            if not found.complete:
                wait = max(wait, budget.seconds_until_free())
                values["last_error"] = (
                    "The watcher used up its share of IT Glue's rate limit "
                    f"({budget.allowed} requests per 5 minutes) before it reached its last "
                    f"position; it continues in {_seconds(wait)}.")
                found = None
            else:
                values["last_error"] = None
        values["next_check_at"] = utcnow() + timedelta(seconds=wait)
        # The lease stays with this process past its next check: the same process keeps
        # watching (its budget counts every request), unless it stops or falls silent.
        values["lease_until"] = values["next_check_at"] + timedelta(seconds=LEASE_MARGIN_SECONDS)
        if values.get("last_error"):
            log.warning("IT Glue watcher, tenant %s: %s", tenant_id, values["last_error"])
        await self._record(tenant_id, found, values)
        self.checks += 1
        next_at: datetime = values["next_check_at"]
        return next_at

    # ---------------------------------------------------------------------- recording
    async def _record(self, tenant_id: int, found: Scan | None, values: dict[str, Any]) -> None:
        now = utcnow()
        recorded = 0
        async with self.write_gate, self.sessions() as session:
            row = await session.get(ITGlueWatch, tenant_id)
            if row is None or row.lease_owner != self.owner:
                return  # the lease lapsed during the check: the new holder records
            awaiting = list(row.awaiting or [])
            if found is not None:
                values.update(cursor_at=found.cursor_at, cursor_ids=found.cursor_ids)
                workflow_url = await _has_workflow_url(session, tenant_id, now)
                matched = await _matched(session, tenant_id, [p.id for p in found.changes])
                triggers: list[tuple[Event, dict[str, Any]]] = []
                for pw in found.changes:
                    if pw.id not in matched or pw.password_updated_at is None:
                        continue
                    if await _webhook_seen(session, tenant_id, pw.id, pw.password_updated_at):
                        continue  # the webhook came first: its job does the work
                    triggers.append(_trigger(session, tenant_id, pw, now))
                    if workflow_url:
                        awaiting.append({"password_id": pw.id, "name": pw.name,
                                         "changed_at": format_rfc3339(pw.password_updated_at)})
                if triggers:
                    await session.flush()
                    rows = [(event.id, row_data) for event, row_data in triggers]
                    await session.run_sync(
                        lambda sync: self.record_triggers(sync.connection(), rows))
                    recorded = len(triggers)
                    values["changes_found"] = row.changes_found + recorded
                    values["last_found_at"] = now
            values["awaiting"] = await self._webhooks_missing(session, tenant_id, row,
                                                              awaiting[-MAX_AWAITING:], now)
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = now
            new_events = bool(recorded) or row.missing_alerted_at == now
            await session.commit()
        if new_events:
            self.broker.notify(tenant_id)
        if recorded:
            log.info("IT Glue watcher, tenant %s: %d password change(s) found", tenant_id,
                     recorded)
            self.wake_pipeline()

    async def _webhooks_missing(self, session: AsyncSession, tenant_id: int, row: ITGlueWatch,
                                awaiting: list[dict[str, Any]], now: datetime
                                ) -> list[dict[str, Any]]:
        """Changes the watcher found whose grace period is over: did their webhook come?
        Those it did not are reported (one event and mail per tenant per hour); returns the
        changes still waiting."""
        still: list[dict[str, Any]] = []
        missing: list[dict[str, Any]] = []
        for entry in awaiting:
            changed = parse_rfc3339(entry.get("changed_at"))
            if changed is None:
                continue
            if now - changed < self.grace:
                still.append(entry)
            elif not await _webhook_seen(session, tenant_id, str(entry.get("password_id")),
                                         changed):
                missing.append(entry)
        if not missing or not await _has_workflow_url(session, tenant_id, now):
            return still
        last = row.missing_alerted_at
        if last is not None and now - last < MISSING_ALERT_EVERY:
            log.warning("IT Glue watcher, tenant %s: %d more change(s) without a webhook "
                        "(already reported at %s)", tenant_id, len(missing),
                        format_rfc3339(last))
            return still
        names = [str(e.get("name") or f"IT Glue password {e.get('password_id')}")
                 for e in missing]
        minutes = max(1, round(self.grace.total_seconds() / 60))
        add_event(session, tenant_id, NewEvent(
            type="workflow_trigger.webhook_missing", severity="warning",
            summary=(f"IT Glue's workflow did not call the tenant for {len(missing)} password "
                     f"change(s) the watcher found (e.g. {names[0]}) within {minutes} min: "
                     "the workflow may be switched off or still use an old workflow URL."),
            resource_name=names[0],
            details={"found_by": FOUND_BY, "count": len(missing),
                     "password_ids": [str(e.get("password_id")) for e in missing][:20],
                     "grace_seconds": int(self.grace.total_seconds())}))
        tenant = await session.get(Tenant, tenant_id)
        mail = alerts.webhook_missing_mail(tenant.name if tenant else "your tenant", names,
                                           minutes, self.public_url)
        alerts.enqueue_mail(session, tenant_id, mail, await alerts.recipients(session, tenant_id),
                            now)
        row.missing_alerted_at = now
        return still


def _trigger(session: AsyncSession, tenant_id: int, pw: Password, now: datetime
             ) -> tuple[Event, dict[str, Any]]:
    """The trigger event of a change the watcher found, and its row for the ingest hook."""
    name = pw.name or f"IT Glue password {pw.id}"
    details = {"password_id": pw.id, "organization_id": pw.organization_id,
               "found_by": FOUND_BY,
               "password_updated_at": format_rfc3339(pw.password_updated_at),
               "received_at": format_rfc3339(now)}
    new = NewEvent(type="workflow_trigger.received", severity="info",
                   summary=f"Password changed in IT Glue: {name} (found by the IT Glue watcher)",
                   resource_name=name[:500], resource_url=pw.resource_url, details=details)
    event = add_event(session, tenant_id, new, occurred_at=now)
    return event, {"type": new.type, "tenant_id": tenant_id, "resource_name": new.resource_name,
                   "resource_url": new.resource_url, "token_id": None, "details": details}


async def _matched(session: AsyncSession, tenant_id: int, password_ids: list[str]) -> set[str]:
    if not password_ids:
        return set()
    found = (await session.scalars(select(Account.itglue_password_id).where(
        Account.tenant_id == tenant_id, Account.itglue_password_id.in_(password_ids)))).all()
    return {pid for pid in found if pid is not None}


async def _webhook_seen(session: AsyncSession, tenant_id: int, password_id: str,
                        since: datetime) -> bool:
    """Whether a workflow webhook for the password arrived at or after ``since``: its trigger
    event, or a reset job it scheduled (a repeated body may add a job without an event)."""
    event = (await session.scalars(select(Event.id).where(
        Event.tenant_id == tenant_id, Event.type == "workflow_trigger.received",
        Event.token_id.is_not(None), Event.occurred_at >= since,
        Event.details["password_id"].as_string() == password_id).limit(1))).first()
    if event is not None:
        return True
    job = (await session.scalars(select(ResetJob.id).where(
        ResetJob.tenant_id == tenant_id, ResetJob.itglue_password_id == password_id,
        ResetJob.token_id.is_not(None), ResetJob.created_at >= since).limit(1))).first()
    return job is not None


async def _has_workflow_url(session: AsyncSession, tenant_id: int, now: datetime) -> bool:
    """Whether the tenant has a workflow URL IT Glue could be calling (not revoked or expired)."""
    token = (await session.scalars(select(WorkflowToken.id).where(
        WorkflowToken.tenant_id == tenant_id, WorkflowToken.expires_at > now,
        or_(WorkflowToken.revoked_at.is_(None), WorkflowToken.revoked_at > now)).limit(1))
    ).first()
    return token is not None


async def watcher_view(session: AsyncSession, tenant_id: int, interval_seconds: float,
                       connected: bool) -> dict[str, Any]:
    """The ``watcher`` object of ``GET /api/v1/integrations/itglue``."""
    row = await session.get(ITGlueWatch, tenant_id)
    enabled = interval_seconds > 0 and connected
    return {
        "enabled": enabled,
        "interval_seconds": int(round(interval_seconds)),
        "last_checked_at": format_rfc3339(row.last_checked_at) if row else None,
        "next_check_at": format_rfc3339(row.next_check_at) if row and enabled else None,
        "last_error": row.last_error if row and enabled else None,
        "last_found_at": format_rfc3339(row.last_found_at) if row else None,
        "changes_found": row.changes_found if row else 0,
    }
