"""Routes: the event list, one event, and the resumable Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import anyio
from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from qp_tenant.api.bounds import MAX_ROW_ID, EventCursor, QueryText, RowId
from qp_tenant.api.deps import SessionDep, StateDep, TechnicianDep, ViewerDep
from qp_tenant.api.responses import ROLE, USER, EventOut, EventPage, Replay, answers, errors
from qp_tenant.domain import events
from qp_tenant.domain.stream import stream_chunks
from qp_tenant.errors import ApiError, not_found
from qp_tenant.models import Event

router = APIRouter(prefix="/api/v1/events")


@router.get("", response_model=None, responses=answers(EventPage, *USER, 422))
async def list_events(
    principal: ViewerDep,
    session: SessionDep,
    before_id: EventCursor | None = None,
    after_id: EventCursor | None = None,
    limit: int = Query(100, ge=1, le=events.MAX_PAGE),
    type: QueryText | None = Query(None, max_length=200),  # noqa: A002 - the contract's name
    severity: QueryText | None = Query(None, max_length=200),
    q: QueryText | None = Query(None, max_length=200),
) -> dict[str, Any]:
    rows, next_before = await events.list_events(
        session, principal.tenant.id, before_id=before_id, after_id=after_id, limit=limit,
        type_=type, severity=severity, q=q,
    )
    return {"events": [events.event_to_dict(r) for r in rows], "next_before_id": next_before}


_STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Server-Sent Events: `id:` event id, `event:` type, `data:` Event "
                         "JSON; a comment ping every 15 s.",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
    **errors(*USER, 400, 422),
}


@router.get("/stream", response_class=EventSourceResponse, responses=_STREAM_RESPONSES)
async def stream(request: Request, principal: ViewerDep, state: StateDep,
                 session: SessionDep,
                 last_event_id: str | None = Query(None, max_length=40)
                 ) -> EventSourceResponse:
    """Replay every event after ``Last-Event-ID`` from the database, then stream live."""
    raw = (request.headers.get("last-event-id") or last_event_id or "").strip()
    tenant_id = principal.tenant.id
    if raw:
        start = _event_cursor(raw)
    else:
        start = await events.last_event_id(session, tenant_id)
    await session.close()
    release = state.tails.open_stream(principal.user.id)
    if release is None:
        limit = state.tails.streams_per_user
        raise ApiError(429, "too_many_streams",
                       f"You already have {limit} live event streams open on this server (other "
                       "windows or devices); close one and try again.",
                       details={"limit": limit}, headers={"Retry-After": "5"})
    farewell = _Farewell()
    return _CountedStream(
        _event_source(request, state, tenant_id, start, farewell),
        release=release,
        ping=state.settings.sse_ping_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        send_timeout=30,
        # On SIGTERM sse-starlette calls farewell.set() and gives the generator a moment to
        # send its last words (a short retry hint) before it cancels it.
        shutdown_event=cast(anyio.Event, farewell), shutdown_grace_period=1.0,
    )


class _CountedStream(EventSourceResponse):
    """An event stream that gives its user's stream slot back however it ends."""

    def __init__(self, *args: Any, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._release = release
        # Should the server never run the response at all, the slot still comes back.
        weakref.finalize(self, release)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _event_cursor(raw: str) -> int:
    """``Last-Event-ID`` as an event-log position (0 .. 2^63-1), or 400."""
    try:
        start = int(raw)
    except ValueError:
        start = -1
    if not 0 <= start <= MAX_ROW_ID:
        raise ApiError(400, "invalid_last_event_id",
                       "Last-Event-ID must be an event id (a whole number).")
    return start


class _Farewell:
    """Duck-typed ``shutdown_event``: being set also wakes the generator's current wait."""

    def __init__(self) -> None:
        self.is_set = False
        self.waiter: asyncio.Future[bool] | None = None

    def set(self) -> None:
        self.is_set = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(True)


async def _event_source(request: Request, state: Any, tenant_id: int,
                        last_id: int, farewell: _Farewell | None = None
                        ) -> AsyncIterator[ServerSentEvent | bytes]:
    """The stream's body: events come from the tenant's shared tail in this process
    (``domain/stream.py``) as ready-encoded bytes, one chunk per wake-up."""
    farewell = farewell or _Farewell()
    yield ServerSentEvent(retry=2000, comment="connected")

    def stopping() -> bool:
        return bool(state.shutting_down) or farewell.is_set

    async def idle(waiter: asyncio.Future[bool]) -> bool:
        farewell.waiter = waiter
        if farewell.is_set:  # set since the loop last looked: its wake-up went elsewhere
            return True
        if await waiter is False:
            # A quiet poll of the tail (or the tail stopping): is the client still there?
            return not await request.is_disconnected()
        return True

    # aclosing: if the response closes this generator mid-stream, the inner one detaches
    # from the tail at once rather than whenever it is garbage-collected.
    async with contextlib.aclosing(stream_chunks(state.tails, tenant_id, last_id,
                                                 stopping=stopping, idle=idle)) as chunks:
        async for chunk in chunks:
            yield chunk
    # Shutting down: tell the client to come back soon (to this or another process); it
    # resumes from its Last-Event-ID, and the database replays whatever it missed.
    yield ServerSentEvent(retry=500, comment="server shutting down")


@router.get("/{event_id:int}", response_model=None, responses=answers(EventOut, *USER, 404, 422))
async def get_event(event_id: RowId, principal: ViewerDep, session: SessionDep) -> dict[str, Any]:
    row = await session.get(Event, event_id)
    if row is None or row.tenant_id != principal.tenant.id:
        raise not_found("That event")
    return events.event_to_dict(row)


@router.post("/{event_id:int}/replay", status_code=202, response_model=None,
             responses=answers(Replay, *ROLE, 404, 422, 503, status=202))
async def replay_event(event_id: RowId, principal: TechnicianDep, state: StateDep,
                       session: SessionDep) -> dict[str, Any]:
    """Run the reset pipeline again for a stored ``workflow_trigger.received`` event.

    Idempotent: while a reset for that trigger is still in flight, its job is returned.
    """
    if state.pipeline is None:
        raise ApiError(503, "pipeline_unavailable", "The reset pipeline is not running.")
    job, started = await state.pipeline.replay(session, principal.tenant.id, event_id,
                                               principal.user.email)
    return {"event_id": event_id, "job_id": job.id, "state": job.state,
            "status": "started" if started else "in_progress"}
