"""Routes: the event list, one event, and the resumable Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from qp_tenant.api.deps import PrincipalDep, SessionDep, StateDep
from qp_tenant.domain import events
from qp_tenant.errors import ApiError, not_found
from qp_tenant.models import Event

router = APIRouter(prefix="/api/v1/events")


@router.get("")
async def list_events(
    principal: PrincipalDep,
    session: SessionDep,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = Query(100, ge=1, le=events.MAX_PAGE),
    type: str | None = None,  # noqa: A002 - the contract's parameter name
    severity: str | None = None,
    q: str | None = Query(None, max_length=200),
) -> dict[str, Any]:
    rows, next_before = await events.list_events(
        session, principal.tenant.id, before_id=before_id, after_id=after_id, limit=limit,
        type_=type, severity=severity, q=q,
    )
    return {"events": [events.event_to_dict(r) for r in rows], "next_before_id": next_before}


@router.get("/stream")
async def stream(request: Request, principal: PrincipalDep, state: StateDep,
                 session: SessionDep,
                 last_event_id: str | None = Query(None)) -> EventSourceResponse:
    """Replay every event after ``Last-Event-ID`` from the database, then stream live."""
    raw = request.headers.get("last-event-id") or last_event_id
    tenant_id = principal.tenant.id
    if raw:
        try:
            start = int(raw)
        except ValueError:
            raise ApiError(400, "invalid_last_event_id",
                           "Last-Event-ID must be an event id (a whole number).") from None
    else:
        start = await events.last_event_id(session, tenant_id)
    await session.close()
    return EventSourceResponse(
        _event_source(request, state, tenant_id, start),
        ping=state.settings.sse_ping_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        send_timeout=30,
    )


async def _event_source(request: Request, state: Any, tenant_id: int,
                        last_id: int) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(retry=2000, comment="connected")
    while not state.shutting_down:
        waiter = state.broker.waiter(tenant_id)
        try:
            async with state.sessions() as session:
                rows: list[Event] = await events.events_after(session, tenant_id, last_id)
            if rows:
                for row in rows:
                    last_id = row.id
                    yield ServerSentEvent(
                        id=str(row.id), event=row.type,
                        data=json.dumps(events.event_to_dict(row), separators=(",", ":")),
                    )
                continue
            if await request.is_disconnected():
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), state.settings.stream_poll_seconds)
        finally:
            waiter.cancel()
    # Shutting down: tell the client to come back soon (to this or another process).
    yield ServerSentEvent(retry=500, comment="server shutting down")


@router.get("/{event_id}")
async def get_event(event_id: int, principal: PrincipalDep, session: SessionDep) -> dict[str, Any]:
    row = await session.get(Event, event_id)
    if row is None or row.tenant_id != principal.tenant.id:
        raise not_found("That event")
    return events.event_to_dict(row)
