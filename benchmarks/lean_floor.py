"""The lean floor: the least a Python webhook path can do for the product, on this stack.

The durable floor (benchmarks/durable_floor.py) plus the work every accepted webhook needs,
each piece done the cheapest way known, with none of the tenant's machinery around it:

- the tenant's own body parser and checks (``parse_body``), body hash and event row
  (``TriggerIngest.accepted_row``: type, summary, details);
- the token checked by its HMAC (``Crypto.lookup_hash``) against a dict, and the duplicate
  check against a dict: no query (the tenant asks the database, which several processes and
  token changes made elsewhere keep true);
- per batch one ``INSERT … SELECT … FROM json_each(?)`` into the tenant's real ``events``
  table and one into ``reset_jobs`` (the pipeline's own job row, ``pending_row``; both
  tables created from qp_tenant.models, with every index), WAL and ``synchronous=FULL`` as
  the tenant's default guarantee, then the 202s. With ``--dsn postgresql://…``, the same two
  statements on one asyncpg connection, in one transaction per batch (several processes may
  share the database, as tenant processes do; the tenant's event-log lock is left out).

Left out on purpose, though the tenant does them: rate limits, refusal events, token
expiry and "last used", the pipeline's coalescing query, the live-stream and pipeline
wake-ups, logging, recovery after a failed batch. So no tenant built in Python on this
machine can beat this figure by much; what it reaches says what ratio to the bare floor is
within reach at all.

Run: .venv/bin/python benchmarks/lean_floor.py [--port 0] [--db FILE | --dsn URL]; POST to
/hooks/itglue/TOKEN (``TOKEN`` below)
"""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bare_floor import lifespan
from durable_floor import GroupCommit, PostgresCommit, SqliteCommit, answer, read_body, run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.dialects import postgresql as postgresql_dialect  # noqa: E402
from sqlalchemy.dialects import sqlite as sqlite_dialect  # noqa: E402
from sqlalchemy.schema import CreateIndex, CreateTable  # noqa: E402

from qp_tenant.api.hooks import HOOK_PREFIX  # noqa: E402
from qp_tenant.crypto import Crypto  # noqa: E402
from qp_tenant.domain.batch_sql import EVENT_KEYS, JOB_KEYS, TokenRow  # noqa: E402
from qp_tenant.domain.pipeline import pending_row  # noqa: E402
from qp_tenant.domain.webhook import Trigger, TriggerIngest, body_hash, parse_body  # noqa: E402
from qp_tenant.models import Event, ResetJob  # noqa: E402

#: The one workflow token this floor knows (wrk posts to /hooks/itglue/<this>).
TOKEN = "qpwt_lean-floor-benchmark-token-0000000000000"
_TOKEN_ROW = TokenRow(id=1, tenant_id=1, token_hmac="", expires_at=datetime(2099, 1, 1),
                      revoked_at=None, last4=TOKEN[-4:], last_used_at=None)
_NOT_FOUND = b'{"error":{"code":"unknown_token"}}'


def _sqlite_insert(table: str, keys: tuple[str, ...], returning: str = "") -> str:
    """One INSERT for a whole batch: the rows go in as one JSON array of arrays."""
    values = ", ".join(f"value->>{i}" for i in range(len(keys)))
    return (f"INSERT INTO {table} ({', '.join(keys)}) "  # noqa: S608 - constant names
            f"SELECT {values} FROM json_each(?) ORDER BY key {returning}")


def _postgres_insert(table: Any, keys: tuple[str, ...], returning: str = "") -> str:
    """The same on PostgreSQL: each value cast to its column's type."""
    dialect = postgresql_dialect.dialect()
    values = ", ".join(f"CAST(r->>{i} AS {table.c[key].type.compile(dialect=dialect)})"
                       for i, key in enumerate(keys))
    return (f"INSERT INTO {table.name} ({', '.join(keys)}) "  # noqa: S608 - constant names
            f"SELECT {values} FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(r, n) "
            f"ORDER BY n {returning}")


def tables(dialect: Any) -> list[str]:
    """The tenant's ``events`` and ``reset_jobs`` tables with all their indexes (without the
    foreign keys to tables this floor does not have)."""
    statements = []
    for model in (Event, ResetJob):
        table: Any = model.__table__
        statements.append(str(CreateTable(table, include_foreign_key_constraints=[],
                                          if_not_exists=True).compile(dialect=dialect)))
        statements += [str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect))
                       for index in table.indexes]
    return statements


def _event_values(rows: list[dict[str, Any]], now: str) -> str:
    return json.dumps([[now if key == "occurred_at" else
                        json.dumps(row[key]) if key == "details" else row[key]
                        for key in EVENT_KEYS] for row in rows])


def _job_values(rows: list[dict[str, Any]], ids: list[int], now: str) -> str:
    return json.dumps([list(map(pending_row(event_id, row, now).get, JOB_KEYS))
                       for row, event_id in zip(rows, ids, strict=True)])


class SqliteLeanCommit(SqliteCommit):
    """Each batch's events and their reset jobs: two statements, one commit (WAL,
    ``synchronous=FULL``), from one writer thread like the tenant's."""

    _EVENTS = _sqlite_insert("events", EVENT_KEYS, "RETURNING id")
    _JOBS = _sqlite_insert("reset_jobs", JOB_KEYS)

    def schema(self) -> list[str]:
        return tables(sqlite_dialect.dialect())

    def insert(self, db: sqlite3.Connection, bodies: list[Any]) -> list[int]:
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        ids = [row_id for (row_id,) in
               db.execute(self._EVENTS, (_event_values(bodies, now),)).fetchall()]
        db.execute(self._JOBS, (_job_values(bodies, ids, now),))
        return ids


class PostgresLeanCommit(PostgresCommit):
    """The same on PostgreSQL: one asyncpg connection, one transaction per batch."""

    _EVENTS = _postgres_insert(Event.__table__, EVENT_KEYS, "RETURNING id")
    _JOBS = _postgres_insert(ResetJob.__table__, JOB_KEYS)

    def schema(self) -> list[str]:
        return tables(postgresql_dialect.dialect())

    async def insert(self, conn: Any, bodies: list[Any]) -> list[int]:
        now = datetime.now(UTC).isoformat()
        ids = [row["id"] for row in await conn.fetch(self._EVENTS, _event_values(bodies, now))]
        await conn.execute(self._JOBS, _job_values(bodies, ids, now))
        return ids


def make_app(commit: GroupCommit) -> Any:
    crypto = Crypto(b"\x01" * 32)
    tokens = {crypto.lookup_hash(TOKEN): _TOKEN_ROW}
    seen: dict[tuple[int, str], int] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, startup=commit.start)
            return
        raw = await read_body(receive)
        token = scope["path"][len(HOOK_PREFIX):]
        body, refusal = parse_body(raw)
        known = tokens.get(crypto.lookup_hash(token))
        if known is None or refusal is not None or body is None:
            await answer(send, 404, _NOT_FOUND)
            return
        trigger = Trigger(token=token, body=body)
        key = (known.id, body_hash(body))
        if key in seen:
            await answer(send, 202, b'{"event_id":%d,"status":"duplicate"}' % seen[key])
            return
        row, status = TriggerIngest.accepted_row(known, trigger, key[1])
        seen[key] = event_id = await commit.submit(row)
        await answer(send, 202, b'{"event_id":%d,"status":"%s"}' % (event_id, status.encode()))

    return app


def main() -> None:
    run(make_app, SqliteLeanCommit, PostgresLeanCommit, "lean-floor")


if __name__ == "__main__":
    main()
