"""The tenant's live event stream (SSE) with reconnect and resume.

``EventStream`` keeps one ``GET /api/v1/events/stream`` open on an injected
``httpx.AsyncClient``. When it drops it reconnects by itself (exponential backoff with jitter,
honouring the server's ``retry:``) and resumes with ``Last-Event-ID`` from the last event it
delivered, so the listener sees every event once, in id order, across tenant restarts.
Events are delivered in batches (one signal per ~50 ms of traffic) so that a burst costs the
GUI one model insert per batch, not one per event. History pages (``GET /api/v1/events``) are
the tenant client's: ``TenantClient.event_page``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from httpx_sse import SSEError, aconnect_sse
from PySide6.QtCore import QObject, Signal

from qp_common.transport import describe_transport_error
from qp_common.wire import parse_error

log = logging.getLogger(__name__)

AuthHeaders = Callable[[], Awaitable[Mapping[str, str]]]
OnUnauthorized = Callable[[], Awaitable[Any]]

STATE_CONNECTING = "connecting"
STATE_LIVE = "live"
STATE_RECONNECTING = "reconnecting"
STATE_OFFLINE = "offline"

# Read timeout above the server's 15 s comment ping: a quiet but healthy stream stays open,
# a dead one is noticed within 45 s.
STREAM_TIMEOUT = httpx.Timeout(5.0, read=45.0)


class EventStreamError(Exception):
    """The stream request failed; ``str()`` is a sentence for a technician."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class _Unauthorized(Exception):
    pass


def _error_sentence(response: httpx.Response) -> EventStreamError:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    error = parse_error(body, response.status_code)
    if not error.enveloped:
        return EventStreamError(f"The tenant answered {response.status_code}",
                                response.status_code, None)
    return EventStreamError(f"{error.message} ({response.status_code})", response.status_code,
                            error.code)


def _describe(exc: BaseException, host: str = "the tenant") -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"Cannot reach the tenant. {describe_transport_error(exc, host)}"
    if isinstance(exc, httpx.ReadTimeout):
        return "The stream went silent"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return "The connection to the tenant was lost"
    if isinstance(exc, httpx.TimeoutException):
        return "The tenant did not answer in time"
    if isinstance(exc, EventStreamError):
        return str(exc)
    if isinstance(exc, SSEError):
        return "The tenant did not answer with an event stream"
    return f"Stream error: {exc.__class__.__name__}"


class EventStream(QObject):
    """Live events from the tenant, delivered once each and in order, reconnecting by itself.

    Args:
        client: the app's long-lived ``httpx.AsyncClient``.
        base_url: the tenant's base URL, e.g. ``http://127.0.0.1:8080``.
        auth_headers: async callable returning the ``Authorization`` header(s) to send.
        on_unauthorized: async callable run once after a 401 (e.g. refresh the session)
            before the request is retried.
        initial_backoff / max_backoff: seconds; the delay doubles per failed attempt
            between them, with jitter. A server ``retry:`` replaces the initial delay.
        offline_after: seconds without a connection after which the state becomes
            "offline" rather than "reconnecting" (retries continue).
        batch_interval / max_batch: how events are grouped into ``events_received``.

    Signals:
        events_received(list): a batch of Event dicts, ids ascending and each newer than any
            delivered before.
        state_changed(str, str): (state, detail) with state one of "connecting", "live",
            "reconnecting", "offline"; detail is a sentence ("Cannot reach the tenant;
            retrying in 4 s") or "". ``down_since`` tells since when it has been down.
    """

    events_received = Signal(list)
    state_changed = Signal(str, str)

    def __init__(self, client: httpx.AsyncClient, base_url: str, auth_headers: AuthHeaders,
                 on_unauthorized: OnUnauthorized | None = None, *,
                 initial_backoff: float = 0.5, max_backoff: float = 30.0,
                 offline_after: float = 10.0, batch_interval: float = 0.05,
                 max_batch: int = 500, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._host = urlsplit(self._base_url).netloc or "the tenant"
        self._auth_headers = auth_headers
        self._on_unauthorized = on_unauthorized
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._offline_after = offline_after
        self._batch_interval = batch_interval
        self._max_batch = max_batch
        self._server_retry: float | None = None
        self._last_id: int | None = None
        self._pending: list[dict[str, Any]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._state = STATE_OFFLINE
        self._detail = "Not started"
        self._down_since: datetime | None = None
        self._down_since_mono: float | None = None
        self._rng = random.Random()

    # --- public ---------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def detail(self) -> str:
        return self._detail

    @property
    def down_since(self) -> datetime | None:
        """When the stream last went down (UTC), or None while live."""
        return self._down_since

    @property
    def last_event_id(self) -> int | None:
        """The id of the last event delivered (or the one ``start`` resumed from)."""
        return self._last_id

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, last_event_id: int | None = None) -> None:
        """Connect (again) and deliver every event after ``last_event_id``.

        ``None`` means "from now on" (no replay). Calling it while running restarts the
        stream from the given id when it is newer than what was delivered.
        """
        if self.is_running:
            self.stop(emit=False)
        if last_event_id is not None and (self._last_id is None or last_event_id > self._last_id):
            self._last_id = last_event_id
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called from plain Qt code outside a qasync callback
            loop = asyncio.get_event_loop()
        self._task = loop.create_task(self._run(), name="event-stream")

    def stop(self, emit: bool = True) -> None:
        """Close the stream; pending events are delivered first. Safe to call twice."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
        self._flush()
        if emit:
            self._down_since = self._down_since or datetime.now(UTC)
            self._set_state(STATE_OFFLINE, "Stopped")

    async def aclose(self) -> None:
        """``stop()`` and wait until the connection is closed."""
        task = self._task
        self.stop()
        if task is not None:
            await asyncio.wait([task])  # never raises the task's own CancelledError

    # --- internals ------------------------------------------------------------------------
    def _set_state(self, state: str, detail: str = "") -> None:
        if (state, detail) == (self._state, self._detail):
            return
        self._state, self._detail = state, detail
        log.debug("event stream %s: %s", state, detail)
        self.state_changed.emit(state, detail)

    def _mark_down(self) -> None:
        if self._down_since is None:
            self._down_since = datetime.now(UTC)
            self._down_since_mono = time.monotonic()

    def _backoff(self, attempt: int) -> float:
        base = self._server_retry if self._server_retry is not None else self._initial_backoff
        delay = min(self._max_backoff, base * (2 ** min(attempt, 16)))
        # "Equal jitter": at least half the delay, so retries never bunch up at zero.
        return delay / 2 + self._rng.uniform(0, delay / 2)

    async def _run(self) -> None:
        attempt = 0
        refreshed = False
        ever_live = False
        self._set_state(STATE_CONNECTING, "")
        while True:
            live_before = self._state == STATE_LIVE
            try:
                await self._connect_once()
                reason = "The tenant closed the stream"
            except asyncio.CancelledError:
                raise
            except _Unauthorized:
                if self._on_unauthorized is not None and not refreshed:
                    refreshed = True
                    try:
                        await self._on_unauthorized()
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # the session service reports its own failure
                        log.warning("refreshing the session for the event stream failed",
                                    exc_info=True)
                    else:
                        continue
                reason = "Not signed in to the tenant (401)"
            except (httpx.HTTPError, SSEError, EventStreamError, ValueError, KeyError) as exc:
                reason = _describe(exc, self._host)
                log.info("event stream dropped: %s", exc.__class__.__name__)
            finally:
                self._flush()
            if self._state == STATE_LIVE or live_before:
                ever_live = True
                attempt = 0
                refreshed = False
            self._mark_down()
            delay = self._backoff(attempt)
            attempt += 1
            down_for = time.monotonic() - (self._down_since_mono or time.monotonic())
            retry_text = f"{reason}; retrying in {max(1, round(delay))} s"
            if not ever_live and attempt == 1:
                self._set_state(STATE_CONNECTING, retry_text)
            elif down_for >= self._offline_after:
                self._set_state(STATE_OFFLINE, retry_text)
            else:
                self._set_state(STATE_RECONNECTING, retry_text)
            await asyncio.sleep(delay)

    async def _connect_once(self) -> None:
        headers = dict(await self._auth_headers())
        if self._last_id is not None:
            headers["Last-Event-ID"] = str(self._last_id)
        url = f"{self._base_url}/api/v1/events/stream"
        async with aconnect_sse(self._client, "GET", url, headers=headers,
                                timeout=STREAM_TIMEOUT) as source:
            response = source.response
            if response.status_code == 401:
                await response.aread()
                raise _Unauthorized()
            if response.status_code != 200:
                await response.aread()
                raise _error_sentence(response)
            self._down_since = self._down_since_mono = None
            self._set_state(STATE_LIVE, "")
            async for message in source.aiter_sse():
                if message.retry is not None:
                    self._server_retry = max(0.05, message.retry / 1000)
                if not message.data:
                    continue
                event = json.loads(message.data)
                event_id = int(event["id"])
                # Dedupe guard: a replay that overlaps what was delivered is dropped here.
                if self._last_id is not None and event_id <= self._last_id:
                    continue
                self._last_id = event_id
                self._pending.append(event)
                if len(self._pending) >= self._max_batch:
                    self._flush()
                elif self._flush_handle is None:
                    self._flush_handle = asyncio.get_running_loop().call_later(
                        self._batch_interval, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._pending:
            batch, self._pending = self._pending, []
            self.events_received.emit(batch)
