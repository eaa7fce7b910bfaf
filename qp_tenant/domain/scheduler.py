"""The tenant's alert scheduler: token expiry warnings, failure batching and mail delivery.

Two background tasks run in every tenant process:

* the expiry check, once at start-up (so a tenant that was down over a threshold catches up)
  and then every ``QP_SCHEDULER_INTERVAL_SECONDS``;
* the mail loop, which cuts batches of failure events into one mail each and delivers the
  outbox with back-off. It wakes when the webhook writer commits refusals (``on_refused``),
  when the expiry check queued mail, when a retry or a batch window falls due, and on an
  idle poll that picks up failures logged by other code or other processes.

"Once per threshold" holds across restarts and processes because a warning is recorded by
inserting ``token_warnings(token_id, threshold)`` rows under a UNIQUE constraint in the same
transaction as its event and its mail: the process whose insert fails logs nothing. The
failure cursor advances by compare-and-set, the outbox is claimed by a conditional UPDATE.
Nothing here runs on the webhook path: the hook only sets an :class:`asyncio.Event`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from qp_tenant.config import Settings
from qp_tenant.domain import alerts
from qp_tenant.domain.events import EventBroker, NewEvent, add_event, rfc3339
from qp_tenant.domain.mailer import Mailer, MailError
from qp_tenant.domain.tokens import days_left
from qp_tenant.models import (
    AlertCursor,
    AlertOutbox,
    AlertSettings,
    Event,
    Tenant,
    TokenWarning,
    WorkflowToken,
    utcnow,
)

log = logging.getLogger(__name__)

MIN_WAIT_SECONDS = 0.05
WAKE_COALESCE_SECONDS = 0.2  # webhook batches within this gap cost one scan
MAX_IDLE_POLL_SECONDS = 10.0
DELIVERY_BATCH = 50
SETTLE = timedelta(seconds=60)  # older events can no longer appear below a newer id
QUIET_ADVANCE = 500  # move the failure cursor over this many quiet events at a time

Clock = Callable[[], datetime]


class _LostRace(Exception):
    """Another process advanced the same cursor first."""


class AlertScheduler:
    """Expiry warnings, failure batches and the mail outbox of one tenant process.

    Args:
        now: the clock (tests pass a controllable one); must return aware UTC datetimes.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], broker: EventBroker,
                 settings: Settings, mailer: Mailer, *, now: Clock = utcnow,
                 public_url: str = ""):
        self._sessions = sessions
        self._broker = broker
        self.mailer = mailer
        self.now = now
        self.public_url = public_url
        self.default_days = list(settings.expiry_warning_days)
        self.interval = settings.scheduler_interval_seconds
        self.batch_window = timedelta(seconds=settings.alert_batch_seconds)
        self.retry_seconds = settings.alert_retry_seconds
        self.max_attempts = settings.alert_max_attempts
        self.idle_poll = min(MAX_IDLE_POLL_SECONDS, max(0.2, settings.alert_batch_seconds / 2))
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._expiry_loop(), name="alerts-expiry"),
                       loop.create_task(self._mail_loop(), name="alerts-mail")]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self, _tenants: Iterable[int] | None = None) -> None:
        """Look for new failures and due mail soon. Safe to call from the webhook writer:
        it only sets a flag (this is ``TriggerIngest``'s ``on_refused`` hook)."""
        self._wake.set()

    async def _expiry_loop(self) -> None:
        while True:
            try:
                await self.check_expiry()
            except Exception:
                log.exception("Token expiry check failed; trying again in %.0f s",
                              self.interval)
            await asyncio.sleep(self.interval)

    async def _mail_loop(self) -> None:
        while True:
            self._wake.clear()
            wait = self.idle_poll
            try:
                for due in (await self.batch_failures(), await self.deliver_due()):
                    if due is not None:
                        wait = min(wait, (due - self.now()).total_seconds())
            except Exception:
                log.exception("Alert mail loop failed; trying again in %.0f s", self.idle_poll)
                wait = self.idle_poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(MIN_WAIT_SECONDS, wait))
                await asyncio.sleep(WAKE_COALESCE_SECONDS)

    # --- token expiry -------------------------------------------------------------------

    async def check_expiry(self) -> int:
        """One pass over every token that is not revoked. Returns how many events it logged."""
        now = self.now()
        async with self._sessions() as session:
            tokens = list((await session.scalars(
                select(WorkflowToken).where(WorkflowToken.revoked_at.is_(None))
                .order_by(WorkflowToken.id)
            )).all())
            if not tokens:
                return 0
            warned: dict[int, set[int]] = defaultdict(set)
            for token_id, threshold in (await session.execute(
                select(TokenWarning.token_id, TokenWarning.threshold)
                .where(TokenWarning.token_id.in_([t.id for t in tokens]))
            )).all():
                warned[token_id].add(threshold)
            tenant_ids = {t.tenant_id for t in tokens}
            configs = await self._configs(session, tenant_ids)
            names = await self._tenant_names(session, tenant_ids)
        logged = 0
        for token in tokens:
            config = configs[token.tenant_id]
            decision = alerts.expiry_decision(days_left(token, now), token.expires_at <= now,
                                              config.expiry_warning_days, warned[token.id])
            if decision.event is None:
                continue
            if await self._record_expiry(token, decision, config, names[token.tenant_id], now):
                logged += 1
        if logged:
            self._wake.set()
        return logged

    async def _record_expiry(self, token: WorkflowToken, decision: alerts.ExpiryDecision,
                             config: alerts.AlertConfig, tenant_name: str, now: datetime
                             ) -> bool:
        left = days_left(token, now)
        if decision.event == "token.expired":
            new = NewEvent(type="token.expired", severity="error",
                           summary=alerts.expired_summary(token.expires_at), token_id=token.id,
                           details={"expires_at": rfc3339(token.expires_at)})
            mail = alerts.expired_mail(tenant_name, token, self.public_url)
        else:
            new = NewEvent(type="token.expiring", severity="warning",
                           summary=alerts.expiring_summary(left, token.expires_at),
                           token_id=token.id,
                           details={"threshold": decision.threshold, "days_left": left,
                                    "expires_at": rfc3339(token.expires_at)})
            mail = alerts.expiring_mail(tenant_name, token, left, self.public_url)
        try:
            async with self._sessions() as session, session.begin():
                # The insert comes first: it is the claim. Only the winner logs and mails.
                session.add_all([
                    TokenWarning(tenant_id=token.tenant_id, token_id=token.id, threshold=t,
                                 created_at=now)
                    for t in sorted(decision.mark)
                ])
                await session.flush()
                add_event(session, token.tenant_id, new, occurred_at=now)
                alerts.enqueue_mail(session, token.tenant_id, mail, config.recipients, now)
        except IntegrityError:
            log.debug("Token %d threshold %s already handled elsewhere", token.id,
                      decision.threshold)
            return False
        log.info("Token %d: %s (threshold %s)", token.id, new.type, decision.threshold)
        self._broker.notify(token.tenant_id)
        return True

    # --- failure batches ----------------------------------------------------------------

    async def batch_failures(self) -> datetime | None:
        """Queue one mail per tenant whose oldest unalerted failure is ``batch`` old.

        Returns when the earliest still-open batch falls due, or None.
        """
        now = self.now()
        async with self._sessions() as session:
            tenants = (await session.execute(
                select(Tenant.id, Tenant.name, AlertCursor.failures_after_id)
                .outerjoin(AlertCursor, AlertCursor.tenant_id == Tenant.id)
            )).all()
        next_due: datetime | None = None
        for tenant_id, name, after in tenants:
            due = await self._batch_tenant(tenant_id, name, after, now)
            if due is not None and (next_due is None or due < next_due):
                next_due = due
        return next_due

    async def _batch_tenant(self, tenant_id: int, name: str, after: int | None,
                            now: datetime) -> datetime | None:
        cursor = after or 0
        failures = (Event.tenant_id == tenant_id, Event.id > cursor,
                    Event.type.in_(alerts.FAILURE_TYPES), alerts.alertable())
        async with self._sessions() as session:
            listed = list((await session.scalars(
                select(Event).where(*failures).order_by(Event.id)
                .limit(alerts.MAX_LISTED_FAILURES)
            )).all())
            if not listed:
                # Nothing to alert: now and then move the cursor over quiet history so that
                # each scan reads only recent events. Only over events SETTLE old: on
                # PostgreSQL a transaction may commit a lower id after a higher one.
                settled = await session.scalar(
                    select(func.max(Event.id)).where(
                        Event.tenant_id == tenant_id, Event.id > cursor,
                        Event.occurred_at <= now - SETTLE))
                if settled is not None and settled - cursor >= QUIET_ADVANCE:
                    await session.close()
                    await self._move_cursor(tenant_id, after, settled)
                return None
            window_end = listed[0].occurred_at + self.batch_window
            if window_end > now:
                return window_end
            # A rejected trigger's row stands for every refusal folded into it that minute.
            total, last_id = (await session.execute(
                select(func.sum(1 + Event.duplicates), func.max(Event.id)).where(*failures)
            )).one()
            total = int(total or 0)
            config = (await self._configs(session, {tenant_id}))[tenant_id]
        mail = alerts.failures_mail(name, listed, total, self.public_url)
        queued = await self._move_cursor(
            tenant_id, after, last_id,
            lambda session: alerts.enqueue_mail(session, tenant_id, mail, config.recipients, now))
        if queued is False:
            return None  # another process cut this batch
        log.info("Tenant %d: %d failure(s) batched%s", tenant_id, total,
                 " into one alert mail" if queued else " (no alert recipients configured)")
        if queued:
            self._wake.set()
        return None

    async def _move_cursor(self, tenant_id: int, after: int | None, to: int,
                           also: Callable[[AsyncSession], Any] | None = None) -> Any:
        """Compare-and-set the failure cursor from ``after`` to ``to`` and run ``also`` in the
        same transaction. Returns what ``also`` returned, or False when another process moved
        the cursor first (then nothing is written)."""
        try:
            async with self._sessions() as session, session.begin():
                if after is None:
                    session.add(AlertCursor(tenant_id=tenant_id, failures_after_id=to))
                    await session.flush()
                else:
                    moved = await session.execute(
                        update(AlertCursor)
                        .where(AlertCursor.tenant_id == tenant_id,
                               AlertCursor.failures_after_id == after)
                        .values(failures_after_id=to)
                    )
                    if _rowcount(moved) != 1:
                        raise _LostRace
                return also(session) if also is not None else None
        except (IntegrityError, _LostRace):
            return False

    # --- mail delivery ------------------------------------------------------------------

    async def deliver_due(self) -> datetime | None:
        """Try every due mail once. Returns when the next pending mail falls due, or None."""
        now = self.now()
        async with self._sessions() as session:
            due_ids = list((await session.scalars(
                select(AlertOutbox.id)
                .where(AlertOutbox.status == "pending", AlertOutbox.next_attempt_at <= now,
                       or_(AlertOutbox.claimed_until.is_(None),
                           AlertOutbox.claimed_until < now))
                .order_by(AlertOutbox.id).limit(DELIVERY_BATCH)
            )).all())
        for outbox_id in due_ids:
            await self._deliver_one(outbox_id)
        async with self._sessions() as session:
            pending = (await session.execute(
                select(AlertOutbox.next_attempt_at, AlertOutbox.claimed_until)
                .where(AlertOutbox.status == "pending")
            )).all()
        times = [max(at, claimed) if claimed is not None else at for at, claimed in pending]
        return min(times) if times else None

    async def _deliver_one(self, outbox_id: int) -> None:
        now = self.now()
        lease = now + timedelta(seconds=self.mailer.config.timeout * 2 + 60)
        async with self._sessions() as session:
            async with session.begin():
                claimed = await session.execute(
                    update(AlertOutbox)
                    .where(AlertOutbox.id == outbox_id, AlertOutbox.status == "pending",
                           or_(AlertOutbox.claimed_until.is_(None),
                               AlertOutbox.claimed_until < now))
                    .values(claimed_until=lease)
                )
                if _rowcount(claimed) != 1:
                    return  # another process has it
            row = await session.get(AlertOutbox, outbox_id)
            assert row is not None
            tenant_id, kind, subject = row.tenant_id, row.kind, row.subject
            recipients, body = list(row.recipients or []), row.body
        error: MailError | None = None
        refused: list[str] = []
        try:
            refused = await self.mailer.send(recipients, subject, body)
        except MailError as exc:
            error = exc
        done_at = self.now()
        async with self._sessions() as session, session.begin():
            row = await session.get(AlertOutbox, outbox_id)
            assert row is not None
            row.attempts += 1
            row.claimed_until = None
            details: dict[str, Any] = {"kind": kind, "subject": subject,
                                       "recipient_count": len(recipients),
                                       "attempt": row.attempts, "outbox_id": outbox_id}
            if error is None:
                row.status = "sent"
                row.sent_at = done_at
                row.last_error = None
                if refused:
                    details["refused_count"] = len(refused)
                delivered = len(recipients) - len(refused)
                new = NewEvent(type="alert.sent", severity="info",
                               summary=f"Alert mail sent to {delivered} recipient"
                                       f"{'' if delivered == 1 else 's'}: {subject}",
                               details=details)
            else:
                row.last_error = error.reason
                final = error.permanent or row.attempts >= self.max_attempts
                if final:
                    row.status = "failed"
                    then = (" — not retried" if error.permanent else
                            f" — gave up after {row.attempts} attempts")
                    details["next_attempt_at"] = None
                else:
                    delay = alerts.retry_delay(row.attempts, self.retry_seconds)
                    row.next_attempt_at = done_at + timedelta(seconds=delay)
                    then = f" — trying again in {_duration(delay)}"
                    details["next_attempt_at"] = rfc3339(row.next_attempt_at)
                details.update(reason=error.reason, max_attempts=self.max_attempts,
                               final=final)
                new = NewEvent(type="alert.failed", severity="error",
                               summary=f"Alert mail not sent: {error.reason}{then}",
                               details=details)
            add_event(session, tenant_id, new, occurred_at=done_at)
        self._broker.notify(tenant_id)

    # --- helpers ------------------------------------------------------------------------

    async def _configs(self, session: AsyncSession, tenant_ids: Iterable[int]
                       ) -> dict[int, alerts.AlertConfig]:
        ids = set(tenant_ids)
        rows = (await session.scalars(
            select(AlertSettings).where(AlertSettings.tenant_id.in_(ids))
        )).all()
        defaults = sorted(set(self.default_days), reverse=True)
        configs = {t: alerts.AlertConfig([], defaults) for t in ids}
        for row in rows:
            days = row.expiry_warning_days
            configs[row.tenant_id] = alerts.AlertConfig(
                list(row.recipients or []), list(days) if days is not None else defaults)
        return configs

    async def _tenant_names(self, session: AsyncSession, tenant_ids: Iterable[int]
                            ) -> dict[int, str]:
        rows = (await session.execute(
            select(Tenant.id, Tenant.name).where(Tenant.id.in_(set(tenant_ids)))
        )).all()
        return {tid: name for tid, name in rows}


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
