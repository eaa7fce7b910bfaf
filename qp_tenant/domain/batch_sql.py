"""The statements the webhook batch runs on every burst, each database on its cheapest path.

A webhook batch (qp_tenant/domain/webhook.py) and the checks it schedules
(qp_tenant/domain/pipeline.py ``schedule_checks``) run a handful of statements per commit:
find the tokens, find earlier copies of the bodies, insert the events, find the checks
already waiting, insert the new ones. Through SQLAlchemy's execution machinery each of those
costs more Python than the work SQLite does for it (compiling cache keys, building parameter
dictionaries, running type processors one by one), and on SQLite the batch is what limits
how many webhooks a tenant accepts per second.

So the batch talks to this module, never to SQLAlchemy directly:

- **SQLite** (:class:`SqliteBatch`): the writer's own ``sqlite3`` connection, SQL text built
  once per shape, IN lists passed as one JSON array (``json_each``) so the text never depends
  on how many values there are (``sqlite3`` then reuses its prepared statement). Values are
  converted by SQLAlchemy's own bind and result processors for each column's type, fetched
  once: a datetime is stored and read exactly as the ORM stores and reads it.
- **PostgreSQL**, and SQLite through the async engine (:class:`CoreBatch`): SQLAlchemy Core,
  statements built once.

Both answer the same questions with the same rows; tests/tenant/test_batch_sql.py runs one set
of cases through both on the same database.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection, Dialect

from qp_tenant.models import Event, ResetJob, WorkflowToken

EVENTS: Any = Event.__table__
TOKENS: Any = WorkflowToken.__table__
JOBS: Any = ResetJob.__table__

#: Event types that a repeat of the same body within the duplicate window folds into.
TRIGGER_TYPES = ("workflow_trigger.received", "workflow_trigger.test")
REJECTED = "workflow_trigger.rejected"


class TokenRow(NamedTuple):
    id: int
    tenant_id: int
    token_hmac: str
    expires_at: datetime
    revoked_at: datetime | None
    last4: str
    last_used_at: datetime | None


class EventRef(NamedTuple):
    """An earlier event the batch may fold into: its id, token, body hash (or refusal key)
    and when it happened."""

    id: int
    token_id: int
    body_hash: str
    occurred_at: datetime


class BatchSQL(Protocol):
    def tokens(self, hmacs: Iterable[str]) -> list[TokenRow]:
        """The workflow tokens stored under these lookup hashes."""

    def recent_events(self, token_ids: Iterable[int], keys: Iterable[str],
                      since: datetime, types: Sequence[str]) -> list[EventRef]:
        """Events of these tokens and body hashes (or refusal keys) of these types since
        ``since``, oldest first."""

    def mark_used(self, used: dict[int, datetime]) -> None:
        """Token id -> when it was last used."""

    def add_duplicates(self, counts: dict[int, int]) -> None:
        """Event id -> how many more times it was received."""

    def insert_events(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert events (every row with the keys of ``EVENT_KEYS``); their ids, in order.
        Rows must be unique by (token_id, body_hash)."""

    def waiting_checks(self, password_ids: Iterable[str], now: datetime
                       ) -> set[tuple[int, str]]:
        """(tenant id, IT Glue password id) of the checks that wait unclaimed."""

    def insert_jobs(self, rows: list[dict[str, Any]]) -> None:
        """Insert reset jobs (every row with the keys of ``JOB_KEYS``)."""


EVENT_KEYS = ("tenant_id", "occurred_at", "type", "severity", "summary", "resource_name",
              "resource_url", "account", "token_id", "details", "body_hash", "duplicates")
JOB_KEYS = ("tenant_id", "trigger_event_id", "replay", "origin", "force", "state",
            "itglue_password_id", "itglue_organization_id", "resource_name", "resource_url",
            "token_id", "attempts", "itglue_attempts", "next_attempt_at", "created_at",
            "updated_at")


def batch_sql(connection: Connection) -> BatchSQL:
    """The batch statements for the database behind ``connection``, in its transaction.

    The raw path needs the synchronous ``sqlite3`` driver (the webhook writer's own
    connection); anything else, the async engine's aiosqlite included (the IT Glue watcher
    schedules checks through it), takes SQLAlchemy Core.
    """
    if connection.dialect.name == "sqlite" and connection.dialect.driver == "pysqlite":
        return SqliteBatch(connection)
    return CoreBatch(connection)


# --------------------------------------------------------------------------- SQLAlchemy Core

_FIND_TOKENS = (
    select(TOKENS.c.id, TOKENS.c.tenant_id, TOKENS.c.token_hmac, TOKENS.c.expires_at,
           TOKENS.c.revoked_at, TOKENS.c.last4, TOKENS.c.last_used_at)
    .where(TOKENS.c.token_hmac.in_(bindparam("hmacs", expanding=True)))
)
_FIND_EVENTS = (
    select(EVENTS.c.id, EVENTS.c.token_id, EVENTS.c.body_hash, EVENTS.c.occurred_at)
    .where(EVENTS.c.token_id.in_(bindparam("token_ids", expanding=True)),
           EVENTS.c.body_hash.in_(bindparam("keys", expanding=True)),
           EVENTS.c.occurred_at >= bindparam("since", type_=EVENTS.c.occurred_at.type),
           EVENTS.c.type.in_(bindparam("types", expanding=True)))
    .order_by(EVENTS.c.id)
)
_INSERT_EVENTS = insert(EVENTS).returning(EVENTS.c.id, EVENTS.c.token_id, EVENTS.c.body_hash)
_ADD_DUPLICATES = (update(EVENTS).where(EVENTS.c.id == bindparam("eid"))
                   .values(duplicates=EVENTS.c.duplicates + bindparam("n")))
_MARK_USED = (update(TOKENS).where(TOKENS.c.id == bindparam("tid"))
              .values(last_used_at=bindparam("used", type_=TOKENS.c.last_used_at.type)))
_FIND_WAITING_CHECKS = (
    select(JOBS.c.tenant_id, JOBS.c.itglue_password_id)
    .where(JOBS.c.itglue_password_id.in_(bindparam("password_ids", expanding=True)),
           JOBS.c.state == "pending",
           or_(JOBS.c.claimed_until.is_(None),
               JOBS.c.claimed_until < bindparam("now", type_=JOBS.c.claimed_until.type)))
)
_INSERT_JOBS = insert(JOBS)


def _match_ids(rows: list[dict[str, Any]], returned: Iterable[Any]) -> list[int]:
    # RETURNING order is not promised for a multi-row INSERT: match on the unique key.
    by_key = {(r[1], r[2]): r[0] for r in returned}
    return [by_key[(row["token_id"], row["body_hash"])] for row in rows]


class CoreBatch:
    """The batch statements through SQLAlchemy Core (PostgreSQL)."""

    def __init__(self, connection: Connection):
        self._conn = connection

    def tokens(self, hmacs: Iterable[str]) -> list[TokenRow]:
        return [TokenRow(*row) for row in self._conn.execute(_FIND_TOKENS,
                                                             {"hmacs": list(hmacs)})]

    def recent_events(self, token_ids: Iterable[int], keys: Iterable[str],
                      since: datetime, types: Sequence[str]) -> list[EventRef]:
        return [EventRef(*row) for row in self._conn.execute(_FIND_EVENTS, {
            "token_ids": list(token_ids), "keys": list(keys), "since": since,
            "types": list(types)})]

    def mark_used(self, used: dict[int, datetime]) -> None:
        if used:
            self._conn.execute(_MARK_USED, [{"tid": t, "used": u} for t, u in used.items()])

    def add_duplicates(self, counts: dict[int, int]) -> None:
        if counts:
            self._conn.execute(_ADD_DUPLICATES,
                               [{"eid": e, "n": n} for e, n in counts.items()])

    def insert_events(self, rows: list[dict[str, Any]]) -> list[int]:
        if not rows:
            return []
        return _match_ids(rows, self._conn.execute(_INSERT_EVENTS, rows).all())

    def waiting_checks(self, password_ids: Iterable[str], now: datetime
                       ) -> set[tuple[int, str]]:
        return {(r.tenant_id, r.itglue_password_id) for r in self._conn.execute(
            _FIND_WAITING_CHECKS, {"password_ids": list(password_ids), "now": now})}

    def insert_jobs(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._conn.execute(_INSERT_JOBS, rows)


# ----------------------------------------------------------------------------- raw sqlite3

Processor = Callable[[Any], Any] | None


class _RowConverter:
    """Row dicts -> parameter tuples in ``keys`` order, each value through its column type's
    bind processor. Only columns that have one are touched, and a datetime shared by many
    rows (a batch's "now") is converted once per call."""

    def __init__(self, table: Any, keys: Sequence[str], dialect: Dialect):
        self._get = operator.itemgetter(*keys)
        self._processed: list[tuple[int, Callable[[Any], Any], bool]] = []
        for i, key in enumerate(keys):
            column = table.c[key]
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processed.append((i, processor, _is_datetime(column)))

    def __call__(self, rows: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
        memo: dict[Any, Any] = {}
        out = []
        for row in rows:
            values = list(self._get(row))
            for i, processor, shared in self._processed:
                value = values[i]
                if value is None:
                    continue
                if shared:
                    converted = memo.get(value)
                    if converted is None:
                        converted = memo[value] = processor(value)
                    values[i] = converted
                else:
                    values[i] = processor(value)
            out.append(tuple(values))
        return out


def _is_datetime(column: Any) -> bool:
    try:
        return column.type.python_type is datetime
    except NotImplementedError:
        return False


class _Converters:
    """SQLAlchemy's bind and result processors for the columns the batch touches, for one
    dialect: fetched once, applied by the statements below."""

    def __init__(self, dialect: Dialect):
        def bind(column: Any) -> Processor:
            return column.type.dialect_impl(dialect).bind_processor(dialect)

        def result(column: Any) -> Processor:
            return column.type.dialect_impl(dialect).result_processor(dialect, None)

        self.events = _RowConverter(EVENTS, EVENT_KEYS, dialect)
        self.jobs = _RowConverter(JOBS, JOB_KEYS, dialect)
        self.occurred_at = bind(EVENTS.c.occurred_at)
        self.last_used_at = bind(TOKENS.c.last_used_at)
        self.claimed_until = bind(JOBS.c.claimed_until)
        self.tokens = [result(TOKENS.c[name]) for name in TokenRow._fields]
        self.event_ref = [None, None, None, result(EVENTS.c.occurred_at)]


_CONVERTERS: dict[type[Dialect], _Converters] = {}


def _apply(processors: list[Processor], values: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(v if p is None or v is None else p(v) for p, v in zip(processors, values,
                                                                       strict=True))


def _one(processor: Processor, value: Any) -> Any:
    return value if processor is None or value is None else processor(value)


def _in_list(values: Iterable[Any]) -> str:
    """An IN list as one parameter: ``x IN (SELECT value FROM json_each(?))``."""
    return json.dumps(list(values))


# The f-strings below only join this module's constant column names.
_SQLITE_FIND_TOKENS = (
    f"SELECT {', '.join(TokenRow._fields)} FROM workflow_tokens "  # noqa: S608
    "WHERE token_hmac IN (SELECT value FROM json_each(?))")
_SQLITE_FIND_EVENTS = (
    "SELECT id, token_id, body_hash, occurred_at FROM events "
    "WHERE token_id IN (SELECT value FROM json_each(?)) "
    "AND body_hash IN (SELECT value FROM json_each(?)) "
    "AND occurred_at >= ? AND type IN (SELECT value FROM json_each(?)) ORDER BY id")
_SQLITE_MARK_USED = "UPDATE workflow_tokens SET last_used_at = ? WHERE id = ?"
_SQLITE_ADD_DUPLICATES = "UPDATE events SET duplicates = duplicates + ? WHERE id = ?"
_SQLITE_FIND_WAITING_CHECKS = (
    "SELECT tenant_id, itglue_password_id FROM reset_jobs "
    "WHERE itglue_password_id IN (SELECT value FROM json_each(?)) AND state = 'pending' "
    "AND (claimed_until IS NULL OR claimed_until < ?)")
_SQLITE_INSERT_JOBS = (f"INSERT INTO reset_jobs ({', '.join(JOB_KEYS)}) "  # noqa: S608
                       f"VALUES ({', '.join('?' * len(JOB_KEYS))})")
_EVENT_VALUES = f"({', '.join('?' * len(EVENT_KEYS))})"
_SQLITE_INSERT_EVENTS = f"INSERT INTO events ({', '.join(EVENT_KEYS)}) VALUES "  # noqa: S608


class SqliteBatch:
    """The batch statements on the ``sqlite3`` connection under ``connection`` (same
    transaction: the caller's BEGIN and COMMIT)."""

    def __init__(self, connection: Connection):
        dialect = connection.dialect
        converters = _CONVERTERS.get(type(dialect))
        if converters is None:
            converters = _CONVERTERS[type(dialect)] = _Converters(dialect)
        self._cv = converters
        raw = connection.connection.driver_connection
        assert raw is not None
        self._cursor = raw.cursor()

    def tokens(self, hmacs: Iterable[str]) -> list[TokenRow]:
        rows = self._cursor.execute(_SQLITE_FIND_TOKENS, (_in_list(hmacs),)).fetchall()
        return [TokenRow(*_apply(self._cv.tokens, row)) for row in rows]

    def recent_events(self, token_ids: Iterable[int], keys: Iterable[str],
                      since: datetime, types: Sequence[str]) -> list[EventRef]:
        rows = self._cursor.execute(_SQLITE_FIND_EVENTS, (
            _in_list(token_ids), _in_list(keys), _one(self._cv.occurred_at, since),
            _in_list(types))).fetchall()
        return [EventRef(*_apply(self._cv.event_ref, row)) for row in rows]

    def mark_used(self, used: dict[int, datetime]) -> None:
        if used:
            self._cursor.executemany(_SQLITE_MARK_USED, [
                (_one(self._cv.last_used_at, u), t) for t, u in used.items()])

    def add_duplicates(self, counts: dict[int, int]) -> None:
        if counts:
            self._cursor.executemany(_SQLITE_ADD_DUPLICATES,
                                     [(n, e) for e, n in counts.items()])

    def insert_events(self, rows: list[dict[str, Any]]) -> list[int]:
        if not rows:
            return []
        values = [v for params in self._cv.events(rows) for v in params]
        # One multi-row INSERT (at most 12 × the batch size parameters, far under SQLite's
        # 32,766), so RETURNING hands back every id at once.
        statement = (_SQLITE_INSERT_EVENTS + ", ".join([_EVENT_VALUES] * len(rows))
                     + " RETURNING id, token_id, body_hash")
        return _match_ids(rows, self._cursor.execute(statement, values).fetchall())

    def waiting_checks(self, password_ids: Iterable[str], now: datetime
                       ) -> set[tuple[int, str]]:
        rows = self._cursor.execute(_SQLITE_FIND_WAITING_CHECKS, (
            _in_list(password_ids), _one(self._cv.claimed_until, now))).fetchall()
        return {(tenant_id, password_id) for tenant_id, password_id in rows}

    def insert_jobs(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._cursor.executemany(_SQLITE_INSERT_JOBS, self._cv.jobs(rows))
