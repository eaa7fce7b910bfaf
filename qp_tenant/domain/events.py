"""The durable event log and the wake-up broker behind the live stream.

Events are rows; the database is the only source of truth. After a commit the writer calls
:meth:`EventBroker.notify`, which wakes the stream's shared tail of that tenant
(``domain/stream.py``); it then reads everything after the last id it has from the database
and hands it to the tenant's subscribers, so a missed wake-up costs latency, never an event.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from qp_common.wire import CATEGORY_PREFIXES, SEVERITIES
from qp_common.wire import format_rfc3339 as rfc3339
from qp_tenant.models import Event, utcnow

MAX_PAGE = 500


@dataclass(frozen=True)
class NewEvent:
    """What a domain function wants logged; ``details`` must hold no secret."""

    type: str
    severity: str
    summary: str
    resource_name: str | None = None
    resource_url: str | None = None
    account: str | None = None
    token_id: int | None = None
    details: dict[str, Any] | None = None


def add_event(session: AsyncSession, tenant_id: int, new: NewEvent,
              occurred_at: datetime | None = None) -> Event:
    """Add an event to the session's transaction; it is visible once the caller commits."""
    if new.severity not in SEVERITIES:
        raise ValueError(f"unknown severity {new.severity!r}")
    row = Event(
        tenant_id=tenant_id,
        occurred_at=occurred_at or utcnow(),
        type=new.type,
        severity=new.severity,
        summary=new.summary,
        resource_name=new.resource_name,
        resource_url=new.resource_url,
        account=new.account,
        token_id=new.token_id,
        details=dict(new.details or {}),
    )
    session.add(row)
    return row


def event_to_dict(row: Event) -> dict[str, Any]:
    details = dict(row.details or {})
    summary = row.summary
    if row.type == "workflow_trigger.rejected":
        # Refusals of one workflow URL with one code fold into one event per minute
        # (domain/webhook.py); ``duplicates`` counts the folded ones.
        details["count"] = 1 + row.duplicates
        if row.duplicates:
            times = "time" if row.duplicates == 1 else "times"
            summary = f"{summary} Rejected {row.duplicates:,} more {times} in the same minute."
    elif row.duplicates:
        details["duplicates"] = row.duplicates
    return {
        "id": row.id,
        "occurred_at": rfc3339(row.occurred_at),
        "type": row.type,
        "severity": row.severity,
        "summary": summary,
        "resource_name": row.resource_name,
        "resource_url": row.resource_url,
        "account": row.account,
        "token_id": row.token_id,
        "details": details,
    }


async def list_events(
    session: AsyncSession,
    tenant_id: int,
    *,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 100,
    type_: str | None = None,
    severity: str | None = None,
    q: str | None = None,
) -> tuple[list[Event], int | None]:
    """Newest first. Returns the page and the ``before_id`` of the next (older) page."""
    limit = max(1, min(limit, MAX_PAGE))
    stmt = select(Event).where(Event.tenant_id == tenant_id)
    if before_id is not None:
        stmt = stmt.where(Event.id < before_id)
    if after_id is not None:
        stmt = stmt.where(Event.id > after_id)
    if type_:
        stmt = stmt.where(_type_filter(type_))
    if severity:
        stmt = stmt.where(Event.severity.in_([s.strip() for s in severity.split(",")]))
    if q:
        pattern = f"%{_escape_like(q.strip())}%"
        stmt = stmt.where(
            or_(
                Event.summary.ilike(pattern, escape="\\"),
                Event.resource_name.ilike(pattern, escape="\\"),
                Event.account.ilike(pattern, escape="\\"),
                Event.type.ilike(pattern, escape="\\"),
            )
        )
    rows = list((await session.scalars(stmt.order_by(Event.id.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def _type_filter(type_: str) -> Any:
    """``type`` may be an exact type, a prefix (``token.*``) or a UI category name."""
    clauses: list[Any] = []
    for part in (p.strip() for p in type_.split(",")):
        if not part:
            continue
        if part in CATEGORY_PREFIXES:
            clauses.extend(Event.type.startswith(p) for p in CATEGORY_PREFIXES[part])
        elif part.endswith("*"):
            clauses.append(Event.type.startswith(part.rstrip("*")))
        else:
            clauses.append(Event.type == part)
    return or_(*clauses) if clauses else and_(True)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def events_after(session: AsyncSession, tenant_id: int, after_id: int,
                       limit: int = 500) -> list[Event]:
    """Oldest first: what a stream subscriber has not seen yet."""
    stmt = (
        select(Event)
        .where(Event.tenant_id == tenant_id, Event.id > after_id)
        .order_by(Event.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def last_event_id(session: AsyncSession, tenant_id: int) -> int:
    stmt = select(Event.id).where(Event.tenant_id == tenant_id).order_by(Event.id.desc()).limit(1)
    return (await session.scalar(stmt)) or 0


class EventBroker:
    """Wakes this process's stream subscribers when their tenant's events are committed.

    Writers in this process call :meth:`notify` after their commit; on PostgreSQL,
    :class:`qp_tenant.domain.notify.EventListener` calls it for commits of other processes.
    """

    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Future[None]]] = defaultdict(set)

    def waiter(self, tenant_id: int) -> asyncio.Future[None]:
        """Register interest *before* reading, so a commit in between is never missed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[tenant_id].add(fut)
        fut.add_done_callback(lambda f: self._waiters[tenant_id].discard(f))
        return fut

    def notify(self, tenant_id: int) -> None:
        for fut in list(self._waiters.get(tenant_id, ())):
            if not fut.done():
                fut.set_result(None)

    def notify_all(self) -> None:
        """Wake every subscriber of every tenant (e.g. after missing notifications)."""
        for tenant_id in list(self._waiters):
            self.notify(tenant_id)

    def subscriber_count(self, tenant_id: int) -> int:
        return len(self._waiters.get(tenant_id, ()))
