"""The webhook receiver's domain: parse what IT Glue sends, then record it durably in batches.

Every request for ``/hooks/itglue/{token}`` becomes a :class:`Trigger` handed to
:class:`TriggerIngest`. One writer task takes whatever triggers are waiting, resolves their
tokens, detects duplicates and inserts their events in ONE transaction, commits, and only
then answers each request. Known and unknown tokens travel the same path and wait for the same
commit, so the answer time says nothing about whether a token exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from qp_common.urls import foreign_host, is_itglue_host
from qp_common.wire import error_body
from qp_tenant.crypto import Crypto
from qp_tenant.db import WEBHOOK_TAG, SqliteWriter, lock_event_log
from qp_tenant.domain.batch_sql import REJECTED, TRIGGER_TYPES, BatchSQL, TokenRow, batch_sql
from qp_tenant.domain.events import EventBroker, rfc3339
from qp_tenant.models import utcnow

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
#: How deeply a body may nest objects and arrays (IT Glue's body is flat).
MAX_DEPTH = 32
# What a webhook request is answered: (status, JSON body, extra headers).
Answer = tuple[int, dict[str, Any], dict[str, str]]
# A refusal decided from the request alone: (status, code, message).
Refusal = tuple[int, str, str]
# Refusals of one token with one code fold into one event per this long.
FOLD_WINDOW = timedelta(minutes=1)


def _fold_key(code: str) -> str:
    """What a refusal event keeps in ``body_hash`` (never a hex digest) to be found again."""
    return f"refused:{code}"[:64]


@dataclass(frozen=True)
class PasswordRef:
    """Where a changed password lives in IT Glue, parsed from its resource URL."""

    subdomain: str
    organization_id: str
    password_id: str


# The shape IT Glue sends (``https://<sub>.itglue.com/<org>/passwords/<id>``, or on
# ``eu.``/``au.itglue.com``): read without splitting the URL. Anything else takes the general
# path below, which gives the same answer for these (tests/tenant/test_resource_url.py).
_CANONICAL_URL = re.compile(
    r"https://([A-Za-z0-9-]+)\.(?:[A-Za-z0-9-]+\.)?itglue\.com/([0-9]+)/passwords/([0-9]+)")


def parse_resource_url(url: str) -> PasswordRef | None:
    """``https://<sub>.itglue.com/<org_id>/passwords/<password_id>`` → its parts, else None.

    Tolerant on purpose: the last ``passwords/<digits>`` is the password and the first
    numeric path segment is the organization.
    """
    url = url.strip()
    canonical = _CANONICAL_URL.fullmatch(url)
    if canonical is not None:
        subdomain, org, password = canonical.groups()
        return PasswordRef(subdomain.lower(), org, password)
    return _parse_any_resource_url(url)


def _is_id(segment: str) -> bool:
    """IT Glue ids are ASCII digits (``str.isdigit`` also takes ``²`` and ``١``)."""
    return segment.isascii() and segment.isdigit()


def _parse_any_resource_url(url: str) -> PasswordRef | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not is_itglue_host(host):
        return None
    segments = [seg for seg in parts.path.split("/") if seg]
    password_at = max((i for i, seg in enumerate(segments[:-1])
                       if seg == "passwords" and _is_id(segments[i + 1])), default=None)
    if password_at is None:
        return None
    org = next((seg for seg in segments[:password_at] if _is_id(seg)), None)
    if org is None:
        return None
    return PasswordRef(host.split(".")[0], org, segments[password_at + 1])


@dataclass
class Trigger:
    """One webhook request on its way to the database."""

    token: str
    refusal: Refusal | None = None  # decided before the token lookup
    body: dict[str, Any] | None = None
    received_at: datetime = field(default_factory=utcnow)
    future: asyncio.Future[Answer] | None = None


# Text no database here can store: lone UTF-16 surrogates (valid as JSON escapes, not as
# UTF-8) and NUL (PostgreSQL text refuses it).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _invalid(message: str) -> Refusal:
    return (400, "invalid_json", message)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Built once: ``json.loads`` with any option builds a decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _storable_problem(body: dict[str, Any]) -> str | None:
    """Why ``body`` (parsed JSON) cannot be stored as it is, or None. Iterative on purpose."""
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(body, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > MAX_DEPTH:
            return (f"The request body nests objects or arrays more than {MAX_DEPTH} levels "
                    "deep; IT Glue sends a flat object.")
        texts: list[str] = []
        if isinstance(container, dict):
            texts.extend(container)
            items: Any = container.values()
        else:
            items = container
        for item in items:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, dict | list):
                stack.append((item, depth + 1))
        # One search per container (the pattern is one character, so joining adds no match).
        if texts and _UNSTORABLE.search("".join(texts)):
            return ("The request body contains text that is not valid Unicode (a lone "
                    "surrogate escape such as \\ud800, or a NUL character).")
    return None


def parse_body(raw: bytes) -> tuple[dict[str, Any] | None, Refusal | None]:
    """The body as a JSON object, or the refusal to answer with.

    Whatever is returned without a refusal can be hashed and stored: every way a body could
    fail later (in a batch shared with other requests) is refused here instead.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, _invalid("The request body is not UTF-8 text.")
    try:
        body = _DECODER.decode(text) if text.strip() else None
    except RecursionError:
        return None, _invalid(f"The request body nests objects or arrays more than "
                              f"{MAX_DEPTH} levels deep; IT Glue sends a flat object.")
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        if isinstance(exc, json.JSONDecodeError):
            return None, _invalid("The request body is not valid JSON.")
        return None, _invalid("The request body is not valid JSON: it holds a number too "
                              "long to read, or NaN/Infinity.")
    if not isinstance(body, dict):
        return None, _invalid("The request body must be a JSON object.")
    problem = _storable_problem(body)
    if problem is not None:
        return None, _invalid(problem)
    resource_url = body.get("resourceUrl")
    if not isinstance(resource_url, str) or not resource_url.strip():
        return body, (422, "missing_resource_url",
                      "The body has no resourceUrl: add the Key/Value row "
                      "resourceUrl = [resource_url] to the IT Glue webhook action.")
    return body, None


# Built once: ``json.dumps`` with options builds an encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def body_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(_CANONICAL.encode(body).encode("utf-8")).hexdigest()


def _text(value: Any, limit: int = 500) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:limit]


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None
           ) -> Answer:
    return status, error_body(code, message), headers or {}


LAST_USED_STEP = timedelta(seconds=1)

TOO_MANY_REQUESTS: Refusal = (429, "too_many_requests",
                              "Too many calls to this workflow URL; wait and try again.")
STORAGE_UNAVAILABLE = _error(503, "storage_unavailable",
                             "The event could not be stored. IT Glue will retry.",
                             {"Retry-After": "5"})
NOT_STORED = _error(500, "trigger_not_stored",
                    "The tenant could not store this trigger (the error was logged). Other "
                    "triggers are not affected; check the tenant's log.")


def _is_storage_outage(exc: BaseException) -> bool:
    """True for failures of the database itself, false for ones a row's content caused."""
    if isinstance(exc, sa_exc.DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError | OSError
                      | TimeoutError)


def _describe(exc: BaseException) -> str:
    """One short line about a failure (no SQL, no parameters: they hold request content)."""
    cause = getattr(exc, "orig", None) or exc
    first_line = (str(cause).splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line[:200]}"


@dataclass
class _Refused:
    """The refusals of one token with one code in a batch: logged as one event."""

    token: TokenRow
    trigger: Trigger
    code: str
    message: str
    count: int = 1

UNKNOWN_TOKEN = (404, "unknown_token", "This workflow URL is not known. Copy the current URL "
                 "from the IT Glue integration page.")


class TokenBucket:
    """Per-token request budget: refuses only abuse (the default is far above IT Glue)."""

    def __init__(self, per_minute: int, clock: Any = time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._clock = clock
        self._state: dict[int, tuple[float, float]] = {}

    def take(self, key: int) -> float:
        """0 when allowed; otherwise the seconds to wait."""
        now = self._clock()
        tokens, last = self._state.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self._state[key] = (tokens - 1, now)
            return 0.0
        self._state[key] = (tokens, now)
        return (1 - tokens) / self.rate


# The writer's threads, by one name in Python (``threading``, logs) and in the operating system
# (``top -H``, ``ps -L``, py-spy, the benchmarks' CPU per thread); Linux keeps 15 characters.
WRITER_THREAD = "qp-hook-writer"
FLUSH_THREAD = "qp-hook-flush"


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` in the operating system too (Linux only: elsewhere,
    and if the call fails, the thread keeps its name and nothing else changes)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # 15 = PR_SET_NAME
    except (OSError, AttributeError):
        return


class TriggerIngest:
    """Group commit for webhooks: one transaction per batch, each 202 after its commit."""

    def __init__(self, engine: AsyncEngine, crypto: Crypto,
                 broker: EventBroker, *, duplicate_window_seconds: int,
                 rate_limit_per_minute: int, refusal_limit_per_minute: int = 600,
                 max_batch: int = 256,
                 on_committed: Any = None, on_refused: Any = None,
                 after_insert: Any = None, after_repeat: Any = None,
                 write_gate: Any = None, sqlite_writer: SqliteWriter | None = None):
        # A batch is one synchronous function on a Core connection (see _write): on SQLite it
        # runs on a dedicated writer thread with its own connection (``sqlite_writer``), so
        # the event loop hands the whole batch over once instead of once per statement; on
        # PostgreSQL it runs through ``run_sync`` on the async engine (asyncpg is non-blocking).
        self._engine = engine
        self._sqlite_engine = sqlite_writer.engine if sqlite_writer is not None else None
        self._thread: ThreadPoolExecutor | None = None
        self._writer_conn: Connection | None = None  # used on self._thread only
        # Power-loss safety on SQLite, taken out of the commit (qp_tenant.db.SqliteWriter):
        # the writer commits with NORMAL and a batch is answered once a WAL flush that began
        # after its commit has returned. Flushes run on their own thread, so the next batch
        # is written meanwhile, and one flush covers every commit before it.
        self._flush_wal = sqlite_writer.flush_wal if sqlite_writer is not None else None
        self._flush_thread: ThreadPoolExecutor | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._flushed = 0  # of the batches committed (self.batches), how many are flushed
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._answering: set[asyncio.Task[None]] = set()
        self._crypto = crypto
        self._broker = broker
        self._window = timedelta(seconds=duplicate_window_seconds)
        self._bucket = TokenBucket(rate_limit_per_minute)
        # Refusals have their own, lower budget: past it a token's refusals are answered 429
        # (and folded into the same kind of event), so a flood of bad bodies or a revoked URL
        # still called by a workflow costs little. Accepted triggers never draw on it.
        self._refusal_bucket = TokenBucket(refusal_limit_per_minute)
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Trigger] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._on_committed = on_committed
        # Called after a commit that logged refusals, with their tenants: only those events
        # concern the alert scheduler, so an accepted burst does not make it scan.
        self._on_refused = on_refused
        # Called inside the batch's transaction with (connection, [(event_id, row), ...]): lets
        # the reset pipeline record its work durably with the same commit that makes the 202
        # true. Synchronous, like the rest of the batch.
        self._after_insert = after_insert
        # Likewise for triggers seen again within the duplicate window, with (the first
        # event's id, the repeat's row): a repeat is answered "duplicate" but still checked.
        self._after_repeat = after_repeat
        # Webhook batches enter the SQLite write gate ahead of the reset pipeline.
        self._write_gate = write_gate.priority if write_gate is not None else contextlib.nullcontext
        self.batches = 0
        self.accepted = 0
        self.failed_batches = 0  # batches that failed whole and were retried in halves
        self.flushes = 0
        self._outages = 0  # storage failures in a row (the first one is logged in full)
        self._last_batch_at = 0.0

    def busy(self, within: float = 0.2) -> bool:
        """Whether webhooks are waiting or were written in the last ``within`` seconds."""
        return not self._queue.empty() or time.monotonic() - self._last_batch_at < within

    def start(self) -> None:
        if self._task is None:
            if self._sqlite_engine is not None and self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix=WRITER_THREAD,
                                                  initializer=name_os_thread,
                                                  initargs=(WRITER_THREAD,))
            if self._flush_wal is not None and self._flush_thread is None:
                self._flush_thread = ThreadPoolExecutor(1, thread_name_prefix=FLUSH_THREAD,
                                                        initializer=name_os_thread,
                                                        initargs=(FLUSH_THREAD,))
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ingest")

    async def stop(self) -> None:
        """Finish what is queued (those requests get their answers), then stop."""
        if self._task is None:
            return
        await self._queue.join()
        if self.batches:
            log.info("Webhook writer: %d accepted in %d commits, %d flushes", self.accepted,
                     self.batches, self.flushes)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._thread is not None and self._writer_conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread,
                                                             self._writer_conn.close)
            self._writer_conn = None
        for executor in (self._thread, self._flush_thread):
            if executor is not None:
                executor.shutdown(wait=True)
        self._thread = self._flush_thread = None
        if self._sqlite_engine is not None:
            self._sqlite_engine.dispose()

    async def submit(self, trigger: Trigger) -> Answer:
        """Queue the trigger and wait for its answer, which exists only after its commit."""
        future = trigger.future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(trigger)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # uvicorn cancels requests still running when its graceful-shutdown time is up,
            # and would then answer 500 for a trigger that may be committing right now. The
            # lifespan shutdown drains this queue next, so wait for the real answer: a 202
            # after the commit, or no answer at all if the process dies first.
            if self._task is None or self._task.done():
                raise
            return await future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            results, tenants, refused = await self._record(batch)
            if self._flush_wal is None or not tenants:
                self._answer(batch, results, tenants, refused)
            else:
                # Answer once flushed; the loop goes on to write the next batch meanwhile.
                task = asyncio.get_running_loop().create_task(self._answer_when_flushed(
                    batch, results, tenants, refused, self.batches))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)

    def _answer(self, batch: list[Trigger], results: list[Answer], tenants: set[int],
                refused: set[int]) -> None:
        for trigger, result in zip(batch, results, strict=True):
            if trigger.future is not None and not trigger.future.done():
                trigger.future.set_result(result)
            self._queue.task_done()
        for tenant_id in tenants:
            self._broker.notify(tenant_id)
        if self._on_committed is not None and tenants:
            self._on_committed(tenants)
        if self._on_refused is not None and refused:
            self._on_refused(refused)

    async def _answer_when_flushed(self, batch: list[Trigger], results: list[Answer],
                                   tenants: set[int], refused: set[int], commit: int) -> None:
        try:
            await self._flushed_past(commit)
        except Exception as exc:  # noqa: BLE001 - answered 503 and logged
            # Committed but maybe not on the disk: IT Glue retries a 503, and the retry is
            # folded into the stored event as a duplicate.
            log.error("Could not flush %d webhook(s) to the disk (%s); answered 503",
                      len(batch), _describe(exc))
            results = [r if r[0] != 202 else STORAGE_UNAVAILABLE for r in results]
        self._answer(batch, results, tenants, refused)

    async def _flushed_past(self, commit: int) -> None:
        """Return once a WAL flush that began after commit number ``commit`` has returned."""
        if self._flushed >= commit:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((commit, waiter))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        await waiter

    async def _flush(self) -> None:
        """Make every commit made so far survive a power cut."""
        assert self._flush_wal is not None
        await asyncio.get_running_loop().run_in_executor(self._flush_thread, self._flush_wal)

    async def _flush_loop(self) -> None:
        while self._flush_waiters:
            target = self.batches
            error: Exception | None = None
            try:
                self.flushes += 1
                await self._flush()
            except Exception as exc:  # noqa: BLE001 - handed to every waiter
                error = exc
            else:
                self._flushed = target
            waiting, self._flush_waiters = self._flush_waiters, []
            for commit, waiter in waiting:
                if commit > target:
                    self._flush_waiters.append((commit, waiter))
                elif error is not None:
                    waiter.set_exception(error)
                else:
                    waiter.set_result(None)

    async def _record(self, batch: list[Trigger]
                      ) -> tuple[list[Answer], set[int], set[int]]:
        """Write a batch; if it fails for something one of its rows did, write the others.

        A failure that is about the database (unreachable, locked, a dropped connection)
        answers the whole batch 503, which IT Glue retries. Any other failure is retried in
        halves, so the one trigger behind it is answered 500 on its own (one log line) and
        every other one is still committed and answered 202.
        """
        try:
            answers = await self._process(batch)
        except Exception as exc:  # noqa: BLE001 - answered and logged below
            if _is_storage_outage(exc):
                self._outages += 1
                log.error("Could not record %d webhook(s): the database is unavailable (%s)",
                          len(batch), _describe(exc), exc_info=self._outages == 1)
                return [STORAGE_UNAVAILABLE] * len(batch), set(), set()
            if len(batch) == 1:
                log.error("Could not record a webhook for workflow URL qpwt_…%s: %s",
                          batch[0].token[-4:], _describe(exc))
                log.debug("Why the webhook could not be recorded", exc_info=exc)
                return [NOT_STORED], set(), set()
            self.failed_batches += 1
            half = len(batch) // 2
            first, first_tenants, first_refused = await self._record(batch[:half])
            second, second_tenants, second_refused = await self._record(batch[half:])
            return first + second, first_tenants | second_tenants, first_refused | second_refused
        self._outages = 0
        return answers

    async def _process(self, batch: list[Trigger]
                       ) -> tuple[list[Answer], set[int], set[int]]:
        hashes = {token: self._crypto.lookup_hash(token) for token in {t.token for t in batch}}
        # Every hash a token may be stored under (while a key rotation is under way, also the
        # previous keys' ones) -> its current-key hash.
        aliases = self._crypto.lookup_aliases(hashes)
        async with self._write_gate():
            if self._thread is not None and self._sqlite_engine is not None:
                results, tenants, refused = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._write_in_thread, batch, hashes, aliases)
            else:
                async with self._engine.begin() as conn:
                    results, tenants, refused = await conn.run_sync(self._write, batch,
                                                                    hashes, aliases)
        self.batches += 1
        self._last_batch_at = time.monotonic()
        self.accepted += sum(1 for r in results if r[0] == 202)
        return results, tenants, refused

    def _write_in_thread(self, batch: list[Trigger], hashes: dict[str, str],
                         aliases: dict[str, str]
                         ) -> tuple[list[Answer], set[int], set[int]]:
        assert self._sqlite_engine is not None
        # One connection for the writer's life: checking one out and resetting it for every
        # batch cost more than some of the batch's statements.
        if self._writer_conn is None or self._writer_conn.invalidated:
            self._writer_conn = self._sqlite_engine.connect()
        conn = self._writer_conn
        try:
            with conn.begin():
                return self._write(conn, batch, hashes, aliases)
        except BaseException:
            if conn.in_transaction() or conn.invalidated:  # never reuse a broken one
                conn.close()
                self._writer_conn = None
            raise

    def _write(self, conn: Connection, batch: list[Trigger], hashes: dict[str, str],
               aliases: dict[str, str]) -> tuple[list[Answer], set[int], set[int]]:
        """The whole batch in the caller's transaction; the caller commits, then answers.

        Returns the answers, the tenants with new events and the tenants with refusals.
        """
        results: list[Answer | None] = [None] * len(batch)
        new_rows: list[tuple[dict[str, Any], str, int | None]] = []  # row, status, batch idx
        in_batch_dups: list[tuple[int, int]] = []  # (batch idx, new_rows idx of the original)
        dup_targets: dict[int, int] = defaultdict(int)
        repeats: list[tuple[int, dict[str, Any]]] = []  # (first event id, the repeat's row)
        used_tokens: dict[int, datetime] = {}
        tenants: set[int] = set()
        refused: set[int] = set()
        refusals: dict[tuple[int, str], _Refused] = {}  # (token id, code) -> what to log

        sql = batch_sql(conn)
        tokens = {aliases[row.token_hmac]: row for row in sql.tokens(aliases)}
        known = [tokens.get(hashes[t.token]) for t in batch]

        # Duplicate candidates: earlier accepted/test events of the same tokens and bodies.
        # Only bodies of known tokens are hashed: an unknown token costs a lookup, no more.
        hashed_bodies: dict[int, str] = {}
        for i, t in enumerate(batch):
            if known[i] is not None and t.refusal is None and t.body is not None:
                hashed_bodies[i] = body_hash(t.body)
        originals: dict[tuple[int, str], int] = {}
        token_ids = {tok.id for i in hashed_bodies if (tok := known[i]) is not None}
        if token_ids:
            cutoff = min(batch[i].received_at for i in hashed_bodies) - self._window
            for p in sql.recent_events(token_ids, set(hashed_bodies.values()), cutoff,
                                       TRIGGER_TYPES):
                originals.setdefault((p.token_id, p.body_hash), p.id)
        pending_dups: dict[tuple[int, str], int] = {}  # key -> row index in this batch

        for i, t in enumerate(batch):
            tok = known[i]
            if tok is None:
                results[i] = _error(*UNKNOWN_TOKEN)
                continue
            refusal = self._token_refusal(tok, t.received_at) or t.refusal
            headers: dict[str, str] = {}
            if refusal is not None:
                wait = self._refusal_bucket.take(tok.id)
            else:
                wait = self._bucket.take(tok.id)
            if wait:
                refusal = TOO_MANY_REQUESTS
                headers = {"Retry-After": str(max(1, int(wait + 0.999)))}
            if refusal is not None:
                status, code, message = refusal
                results[i] = _error(status, code, message, headers)
                fold = refusals.get((tok.id, code))
                if fold is None:
                    refusals[(tok.id, code)] = _Refused(tok, t, code, message)
                else:
                    fold.count += 1
                continue
            tenants.add(tok.tenant_id)
            bh = hashed_bodies[i]
            key = (tok.id, bh)
            # "Last used" is for people: under a burst, write it at most once a second.
            if tok.last_used_at is None or t.received_at - tok.last_used_at >= LAST_USED_STEP:
                used_tokens[tok.id] = t.received_at
            if key in originals:
                dup_targets[originals[key]] += 1
                if self._after_repeat is not None:
                    repeats.append((originals[key], self.accepted_row(tok, t, bh)[0]))
                results[i] = (202, {"event_id": originals[key], "status": "duplicate"}, {})
            elif key in pending_dups:
                new_rows[pending_dups[key]][0]["duplicates"] += 1
                in_batch_dups.append((i, pending_dups[key]))
            else:
                pending_dups[key] = len(new_rows)
                row, status_word = self.accepted_row(tok, t, bh)
                new_rows.append((row, status_word, i))

        # Row updates first: on PostgreSQL the event-log lock below is held until COMMIT, so
        # everything that can happen before it shortens the time other processes wait for it.
        sql.mark_used(used_tokens)
        if new_rows or refusals:
            # PostgreSQL: commit order = id order across processes, and a wake-up NOTIFY. It
            # also makes "is there a refusal event this minute?" below safe across processes.
            lock_event_log(conn, {row["tenant_id"] for row, _, _ in new_rows}
                           | {fold.token.tenant_id for fold in refusals.values()}, WEBHOOK_TAG)
        if refusals:
            new_rows += self._fold_refusals(sql, refusals, dup_targets)
            refused = {fold.token.tenant_id for fold in refusals.values()}
            tenants |= refused
        sql.add_duplicates(dup_targets)
        if repeats:
            self._after_repeat(conn, repeats)
        # Rows are unique by (token, body hash) within a batch (refusal rows by (token,
        # "refused:" + code)): what insert_events needs to hand back each row's id.
        ids: list[int] = []
        if new_rows:
            ids = sql.insert_events([row for row, _, _ in new_rows])
            for n, (_row, status_word, owner) in enumerate(new_rows):
                if owner is not None:
                    results[owner] = (202, {"event_id": ids[n], "status": status_word}, {})
            if self._after_insert is not None:
                self._after_insert(conn, [
                    (eid, row) for (row, _, _), eid in zip(new_rows, ids, strict=True)])
        for i, row_index in in_batch_dups:
            results[i] = (202, {"event_id": ids[row_index], "status": "duplicate"}, {})
        assert all(r is not None for r in results)
        return [r for r in results if r is not None], tenants, refused

    def _fold_refusals(self, sql: BatchSQL, refusals: dict[tuple[int, str], _Refused],
                       counts: dict[int, int]) -> list[tuple[dict[str, Any], str, int | None]]:
        """One ``workflow_trigger.rejected`` event per token, code and minute.

        A refusal whose token already has an event for that code from the last minute only
        adds to that event's count (``counts``: event id -> how many more); the others
        become new rows, returned to be inserted with the batch. Runs under the event-log
        lock, so on PostgreSQL two processes never both start a minute's event.
        """
        cutoff = min(fold.trigger.received_at for fold in refusals.values()) - FOLD_WINDOW
        recent = sql.recent_events({token_id for token_id, _ in refusals},
                                   {_fold_key(code) for _, code in refusals}, cutoff,
                                   (REJECTED,))
        latest = {(r.token_id, r.body_hash): (r.id, r.occurred_at) for r in recent}
        rows: list[tuple[dict[str, Any], str, int | None]] = []
        for (token_id, code), fold in refusals.items():
            event = latest.get((token_id, _fold_key(code)))
            if event is not None and fold.trigger.received_at - event[1] < FOLD_WINDOW:
                counts[event[0]] += fold.count
                continue
            row = self._rejected_row(fold.token, fold.trigger, code, fold.message)
            row["duplicates"] = fold.count - 1
            rows.append((row, "", None))
        return rows

    @staticmethod
    def _token_refusal(tok: TokenRow, now: datetime) -> tuple[int, str, str] | None:
        if tok.revoked_at is not None and tok.revoked_at <= now:
            return (410, "token_revoked", "This workflow URL was replaced or revoked. Paste the "
                    "current URL from the IT Glue integration page into the IT Glue workflow.")
        if tok.expires_at <= now:
            return (410, "token_expired", "This workflow URL has expired. Generate a new one "
                    "and paste it into the IT Glue workflow.")
        return None

    @staticmethod
    def _base_row(tok: TokenRow, t: Trigger) -> dict[str, Any]:
        body = t.body or {}
        return {
            "tenant_id": tok.tenant_id,
            "occurred_at": t.received_at,
            "token_id": tok.id,
            "resource_name": _text(body.get("resourceName")),
            "resource_url": _text(body.get("resourceUrl"), 2000),
            "account": None,
            "body_hash": None,
            "duplicates": 0,
        }

    def _rejected_row(self, tok: TokenRow, t: Trigger, code: str, message: str) -> dict[str, Any]:
        row = self._base_row(tok, t)
        row.update(
            type=REJECTED, severity="warning",
            summary=f"Workflow trigger refused: {message}",
            details={"code": code, "token_hint": f"qpwt_…{tok.last4}"},
            body_hash=_fold_key(code),
        )
        return row

    @staticmethod
    def accepted_row(tok: TokenRow, t: Trigger, bh: str) -> tuple[dict[str, Any], str]:
        """The event row of an accepted trigger, and its answer's status word."""
        assert t.body is not None
        row = TriggerIngest._base_row(tok, t)
        ref = parse_resource_url(str(t.body.get("resourceUrl", "")))
        keys = sorted(str(k) for k in t.body)[:20]
        name = row["resource_name"] or "a password"
        if ref is None:
            host = foreign_host(str(t.body.get("resourceUrl", "")))
            if host is None:  # IT Glue's Test Action, or another IT Glue page
                row.update(
                    type="workflow_trigger.test", severity="info",
                    summary=f"Test trigger received for {name}",
                    details={"keys": keys,
                             "reason": "resourceUrl is not an IT Glue password URL"},
                )
            else:  # somebody other than IT Glue knows this workflow URL, or mis-set it
                row.update(
                    type="workflow_trigger.test", severity="warning",
                    summary=f"Test trigger received for {name}, but its resourceUrl is on "
                            f"{_text(host, 100)}, which is not IT Glue's",
                    details={"keys": keys, "host": _text(host, 255),
                             "reason": "resourceUrl is not on an IT Glue domain"},
                )
        else:
            row.update(
                type="workflow_trigger.received", severity="info",
                summary=f"Password changed in IT Glue: {name}",
                details={"keys": keys, "organization_id": ref.organization_id,
                         "password_id": ref.password_id, "subdomain": ref.subdomain,
                         "received_at": rfc3339(t.received_at)},
            )
        row["body_hash"] = bh
        return row, ("test" if ref is None else "accepted")
