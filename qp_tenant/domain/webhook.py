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
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from qp_common.wire import error_body
from qp_tenant.crypto import Crypto
from qp_tenant.db import WEBHOOK_TAG, lock_event_log
from qp_tenant.domain.events import EventBroker, rfc3339
from qp_tenant.models import Event, WorkflowToken, utcnow

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# What a webhook request is answered: (status, JSON body, extra headers).
Answer = tuple[int, dict[str, Any], dict[str, str]]
# Core tables: the batch path skips ORM unit-of-work bookkeeping.
EVENTS: Any = Event.__table__
TOKENS: Any = WorkflowToken.__table__

# The batch's statements, built once: SQLAlchemy then skips constructing them and computing
# their cache keys for every batch.
FIND_TOKENS = (
    select(TOKENS.c.id, TOKENS.c.tenant_id, TOKENS.c.token_hmac, TOKENS.c.expires_at,
           TOKENS.c.revoked_at, TOKENS.c.last4, TOKENS.c.last_used_at)
    .where(TOKENS.c.token_hmac.in_(bindparam("hmacs", expanding=True)))
)
FIND_ORIGINALS = (  # earlier accepted/test events of the same tokens and bodies
    select(EVENTS.c.id, EVENTS.c.token_id, EVENTS.c.body_hash)
    .where(EVENTS.c.token_id.in_(bindparam("token_ids", expanding=True)),
           EVENTS.c.body_hash.in_(bindparam("hashes", expanding=True)),
           EVENTS.c.occurred_at >= bindparam("cutoff", type_=EVENTS.c.occurred_at.type),
           EVENTS.c.type.in_(("workflow_trigger.received", "workflow_trigger.test")))
    .order_by(EVENTS.c.id)
)
INSERT_EVENTS = insert(EVENTS).returning(EVENTS.c.id, EVENTS.c.token_id, EVENTS.c.body_hash)
COUNT_DUPLICATES = (update(EVENTS).where(EVENTS.c.id == bindparam("eid"))
                    .values(duplicates=EVENTS.c.duplicates + bindparam("n")))
MARK_USED = (update(TOKENS).where(TOKENS.c.id == bindparam("tid"))
             .values(last_used_at=bindparam("used", type_=TOKENS.c.last_used_at.type)))


@dataclass(frozen=True)
class PasswordRef:
    """Where a changed password lives in IT Glue, parsed from its resource URL."""

    subdomain: str
    organization_id: str
    password_id: str


def parse_resource_url(url: str) -> PasswordRef | None:
    """``https://<sub>.itglue.com/<org_id>/passwords/<password_id>`` → its parts, else None.

    Tolerant on purpose: the last ``passwords/<digits>`` is the password and the first
    numeric path segment is the organization.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host.endswith(".itglue.com"):
        return None
    segments = [seg for seg in parts.path.split("/") if seg]
    password_at = max((i for i, seg in enumerate(segments[:-1])
                       if seg == "passwords" and segments[i + 1].isdigit()), default=None)
    if password_at is None:
        return None
    org = next((seg for seg in segments[:password_at] if seg.isdigit()), None)
    if org is None:
        return None
    return PasswordRef(host.split(".")[0], org, segments[password_at + 1])


@dataclass
class Trigger:
    """One webhook request on its way to the database."""

    token: str
    refusal: tuple[int, str, str] | None = None  # (status, code, message) decided before lookup
    body: dict[str, Any] | None = None
    received_at: datetime = field(default_factory=utcnow)
    future: asyncio.Future[Answer] | None = None


def parse_body(raw: bytes) -> tuple[dict[str, Any] | None, tuple[int, str, str] | None]:
    """The body as a JSON object, or the refusal to answer with."""
    try:
        body = json.loads(raw.decode("utf-8-sig")) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, (400, "invalid_json", "The request body is not valid JSON.")
    if not isinstance(body, dict):
        return None, (400, "invalid_json", "The request body must be a JSON object.")
    resource_url = body.get("resourceUrl")
    if not isinstance(resource_url, str) or not resource_url.strip():
        return body, (422, "missing_resource_url",
                      "The body has no resourceUrl: add the Key/Value row "
                      "resourceUrl = [resource_url] to the IT Glue webhook action.")
    return body, None


def body_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _text(value: Any, limit: int = 500) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:limit]


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None
           ) -> Answer:
    return status, error_body(code, message), headers or {}


LAST_USED_STEP = timedelta(seconds=1)

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


class TriggerIngest:
    """Group commit for webhooks: one transaction per batch, each 202 after its commit."""

    def __init__(self, engine: AsyncEngine, crypto: Crypto,
                 broker: EventBroker, *, duplicate_window_seconds: int,
                 rate_limit_per_minute: int, max_batch: int = 256,
                 on_committed: Any = None, after_insert: Any = None,
                 write_gate: Any = None, sqlite_engine: Engine | None = None):
        # A batch is one synchronous function on a Core connection (see _write): on SQLite it
        # runs on a dedicated writer thread with its own connection (``sqlite_engine``), so
        # the event loop hands the whole batch over once instead of once per statement; on
        # PostgreSQL it runs through ``run_sync`` on the async engine (asyncpg is non-blocking).
        self._engine = engine
        self._sqlite_engine = sqlite_engine
        self._thread: ThreadPoolExecutor | None = None
        self._crypto = crypto
        self._broker = broker
        self._window = timedelta(seconds=duplicate_window_seconds)
        self._bucket = TokenBucket(rate_limit_per_minute)
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Trigger] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._rate_logged: dict[int, float] = {}
        self._on_committed = on_committed
        # Called inside the batch's transaction with (connection, [(event_id, row), ...]): lets
        # the reset pipeline record its work durably with the same commit that makes the 202
        # true. Synchronous, like the rest of the batch.
        self._after_insert = after_insert
        # Webhook batches enter the SQLite write gate ahead of the reset pipeline.
        self._write_gate = write_gate.priority if write_gate is not None else contextlib.nullcontext
        self.batches = 0
        self.accepted = 0
        self._last_batch_at = 0.0

    def busy(self, within: float = 0.2) -> bool:
        """Whether webhooks are waiting or were written in the last ``within`` seconds."""
        return not self._queue.empty() or time.monotonic() - self._last_batch_at < within

    def start(self) -> None:
        if self._task is None:
            if self._sqlite_engine is not None and self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="webhook-writer")
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ingest")

    async def stop(self) -> None:
        """Finish what is queued (those requests get their answers), then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
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
            try:
                results, tenants = await self._process(batch)
            except Exception:
                log.exception("Could not record %d webhook(s)", len(batch))
                failure = _error(503, "storage_unavailable",
                                 "The event could not be stored. IT Glue will retry.",
                                 {"Retry-After": "5"})
                results, tenants = [failure] * len(batch), set()
            for trigger, result in zip(batch, results, strict=True):
                if trigger.future is not None and not trigger.future.done():
                    trigger.future.set_result(result)
                self._queue.task_done()
            for tenant_id in tenants:
                self._broker.notify(tenant_id)
            if self._on_committed is not None and tenants:
                self._on_committed(tenants)

    async def _process(self, batch: list[Trigger]
                       ) -> tuple[list[Answer], set[int]]:
        hashes = {t.token: self._crypto.lookup_hash(t.token) for t in batch}
        # Every hash a token may be stored under (while a key rotation is under way, also the
        # previous keys' ones) -> its current-key hash.
        aliases = self._crypto.lookup_aliases(hashes)
        async with self._write_gate():
            if self._thread is not None and self._sqlite_engine is not None:
                results, tenants = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._write_in_thread, batch, hashes, aliases)
            else:
                async with self._engine.begin() as conn:
                    results, tenants = await conn.run_sync(self._write, batch, hashes,
                                                           aliases)
        self.batches += 1
        self._last_batch_at = time.monotonic()
        self.accepted += sum(1 for r in results if r[0] == 202)
        return results, tenants

    def _write_in_thread(self, batch: list[Trigger], hashes: dict[str, str],
                         aliases: dict[str, str]
                         ) -> tuple[list[Answer], set[int]]:
        assert self._sqlite_engine is not None
        with self._sqlite_engine.begin() as conn:
            return self._write(conn, batch, hashes, aliases)

    def _write(self, conn: Connection, batch: list[Trigger], hashes: dict[str, str],
               aliases: dict[str, str]) -> tuple[list[Answer], set[int]]:
        """The whole batch in the caller's transaction; the caller commits, then answers."""
        results: list[Answer | None] = [None] * len(batch)
        new_rows: list[tuple[dict[str, Any], str, int | None]] = []  # row, status, batch idx
        in_batch_dups: list[tuple[int, int]] = []  # (batch idx, new_rows idx of the original)
        dup_targets: dict[int, int] = defaultdict(int)
        used_tokens: dict[int, datetime] = {}
        tenants: set[int] = set()

        found = conn.execute(FIND_TOKENS, {"hmacs": list(aliases)}).all()
        tokens = {aliases[row.token_hmac]: row for row in found}

        # Duplicate candidates: earlier accepted/test events of the same tokens and bodies.
        hashed_bodies: dict[int, str] = {}
        for i, t in enumerate(batch):
            if t.refusal is None and t.body is not None:
                hashed_bodies[i] = body_hash(t.body)
        cutoff = min(t.received_at for t in batch) - self._window
        originals: dict[tuple[int, str], int] = {}
        token_ids = {tokens[hashes[batch[i].token]].id for i in hashed_bodies
                     if hashes[batch[i].token] in tokens}
        if token_ids and hashed_bodies:
            prior = conn.execute(FIND_ORIGINALS, {
                "token_ids": list(token_ids), "hashes": list(set(hashed_bodies.values())),
                "cutoff": cutoff}).all()
            for p in prior:
                originals.setdefault((p.token_id, p.body_hash), p.id)
        pending_dups: dict[tuple[int, str], int] = {}  # key -> row index in this batch

        for i, t in enumerate(batch):
            tok = tokens.get(hashes[t.token])
            if tok is None:
                results[i] = _error(*UNKNOWN_TOKEN)
                continue
            status, code, message = self._token_refusal(tok, t.received_at) or (0, "", "")
            if not code and t.refusal:
                status, code, message = t.refusal
            headers: dict[str, str] = {}
            if not code:
                wait = self._bucket.take(tok.id)
                if wait:
                    retry = str(max(1, int(wait + 0.999)))
                    status, code, message = (429, "too_many_requests",
                                             "Too many triggers for this workflow URL.")
                    headers = {"Retry-After": retry}
                    if not self._should_log_rate_limit(tok.id):
                        results[i] = _error(status, code, message, headers)
                        continue
            tenants.add(tok.tenant_id)
            if code:
                results[i] = _error(status, code, message, headers)
                new_rows.append((self._rejected_row(tok, t, code, message), "", None))
                continue
            bh = hashed_bodies[i]
            key = (tok.id, bh)
            # "Last used" is for people: under a burst, write it at most once a second.
            if tok.last_used_at is None or t.received_at - tok.last_used_at >= LAST_USED_STEP:
                used_tokens[tok.id] = t.received_at
            if key in originals:
                dup_targets[originals[key]] += 1
                results[i] = (202, {"event_id": originals[key], "status": "duplicate"}, {})
            elif key in pending_dups:
                new_rows[pending_dups[key]][0]["duplicates"] += 1
                in_batch_dups.append((i, pending_dups[key]))
            else:
                pending_dups[key] = len(new_rows)
                row, status_word = self._accepted_row(tok, t, bh)
                new_rows.append((row, status_word, i))

        # Row updates first: on PostgreSQL the event-log lock below is held until COMMIT, so
        # everything that can happen before it shortens the time other processes wait for it.
        if dup_targets:
            conn.execute(COUNT_DUPLICATES,
                         [{"eid": eid, "n": n} for eid, n in dup_targets.items()])
        if used_tokens:
            conn.execute(MARK_USED,
                         [{"tid": tid, "used": used} for tid, used in used_tokens.items()])
        # One multi-row INSERT. Accepted rows are unique by (token, body) within a batch,
        # so RETURNING is matched on that instead of asking for parameter order (which
        # would make SQLAlchemy fall back to one INSERT per row on SQLite).
        ids: list[int | None] = [None] * len(new_rows)
        if new_rows:
            # PostgreSQL: commit order = id order across processes, and a wake-up NOTIFY.
            lock_event_log(conn, {row["tenant_id"] for row, _, _ in new_rows}, WEBHOOK_TAG)
            inserted = conn.execute(INSERT_EVENTS, [row for row, _, _ in new_rows])
            by_key = {(r.token_id, r.body_hash): r.id for r in inserted.all() if r.body_hash}
            for n, (row, status_word, owner) in enumerate(new_rows):
                if owner is not None:
                    ids[n] = by_key[(row["token_id"], row["body_hash"])]
                    results[owner] = (202, {"event_id": ids[n], "status": status_word}, {})
            if self._after_insert is not None:
                self._after_insert(conn, [
                    (eid, row) for (row, _, _), eid in zip(new_rows, ids, strict=True)
                    if eid is not None])
        for i, row_index in in_batch_dups:
            results[i] = (202, {"event_id": ids[row_index], "status": "duplicate"}, {})
        assert all(r is not None for r in results)
        return [r for r in results if r is not None], tenants

    def _should_log_rate_limit(self, token_id: int) -> bool:
        """Under abuse log one rejection per token per minute, not one per request."""
        now = time.monotonic()
        last = self._rate_logged.get(token_id)
        if last is not None and now - last < 60:
            return False
        self._rate_logged[token_id] = now
        return True

    @staticmethod
    def _token_refusal(tok: Any, now: datetime) -> tuple[int, str, str] | None:
        if tok.revoked_at is not None and tok.revoked_at <= now:
            return (410, "token_revoked", "This workflow URL was replaced or revoked. Paste the "
                    "current URL from the IT Glue integration page into the IT Glue workflow.")
        if tok.expires_at <= now:
            return (410, "token_expired", "This workflow URL has expired. Generate a new one "
                    "and paste it into the IT Glue workflow.")
        return None

    @staticmethod
    def _base_row(tok: Any, t: Trigger) -> dict[str, Any]:
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

    def _rejected_row(self, tok: Any, t: Trigger, code: str, message: str) -> dict[str, Any]:
        row = self._base_row(tok, t)
        row.update(
            type="workflow_trigger.rejected", severity="warning",
            summary=f"Workflow trigger refused: {message}",
            details={"code": code, "token_hint": f"qpwt_…{tok.last4}"},
        )
        return row

    def _accepted_row(self, tok: Any, t: Trigger, bh: str) -> tuple[dict[str, Any], str]:
        assert t.body is not None
        row = self._base_row(tok, t)
        ref = parse_resource_url(str(t.body.get("resourceUrl", "")))
        keys = sorted(str(k) for k in t.body)[:20]
        name = row["resource_name"] or "a password"
        if ref is None:
            row.update(
                type="workflow_trigger.test", severity="info",
                summary=f"Test trigger received for {name}",
                details={"keys": keys, "reason": "resourceUrl is not an IT Glue password URL"},
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
