"""The lean floor benchmark (benchmarks/lean_floor.py) does the product's work per webhook.

Its figure says how far a Python tenant can get at all, so it must keep doing what the
tenant does for an accepted webhook: the same answer, the same event row, the same reset job.
It borrows the tenant's own pieces for that; this catches a change to them that would leave
the benchmark measuring something else.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import postgres
from tests.support.processes import ServerProcess
from tests.tenant.conftest import IT_GLUE_BODY

LEAN_FLOOR = Path(__file__).resolve().parents[2] / "benchmarks" / "lean_floor.py"
TOKEN = "qpwt_lean-floor-benchmark-token-0000000000000"


@pytest.fixture
def lean_floor(tmp_path: Path, db_kind: str, request: pytest.FixtureRequest
               ) -> Iterator[tuple[str, Callable[[str], list[tuple[Any, ...]]]]]:
    """The lean floor on this pass's database, and a way to query what it stored."""
    if db_kind == "postgresql":
        server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
        database = server.create_database(prefix="lean")
        where = ["--dsn", server.dsn(database)]

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(row.values()) for row in postgres.query(server.url(database), sql)]
    else:
        db = tmp_path / "lean.db"
        where = ["--db", str(db)]

        def rows(sql: str) -> list[tuple[Any, ...]]:
            with contextlib.closing(sqlite3.connect(db)) as connection:
                return connection.execute(sql).fetchall()
    process = ServerProcess([sys.executable, str(LEAN_FLOOR), "--port", "0", *where])
    process.start()
    try:
        yield process.url, rows
    finally:
        process.stop()


def test_the_lean_floor_answers_and_stores_a_webhook_as_the_tenant_does(
        lean_floor: tuple[str, Callable[[str], list[tuple[Any, ...]]]]) -> None:
    url, rows = lean_floor
    with httpx.Client(base_url=url, timeout=10) as http:
        first = http.post(f"/hooks/itglue/{TOKEN}", json=IT_GLUE_BODY)
        again = http.post(f"/hooks/itglue/{TOKEN}", json=IT_GLUE_BODY)
        unknown = http.post("/hooks/itglue/qpwt_unknown", json=IT_GLUE_BODY)
        broken = http.post(f"/hooks/itglue/{TOKEN}", content=b"{not json")

    assert first.status_code == 202 and first.json()["status"] == "accepted"
    event_id = first.json()["event_id"]
    assert again.status_code == 202
    assert again.json() == {"event_id": event_id, "status": "duplicate"}
    assert unknown.status_code == 404 and broken.status_code == 404

    events = rows("SELECT id, type, summary, resource_name, token_id, body_hash, "
                  "details FROM events")
    assert len(events) == 1
    stored_id, kind, summary, name, token_id, body_hash, details = events[0]
    assert (stored_id, kind, name) == (event_id, "workflow_trigger.received", "Domain Admin")
    assert json.loads(details)["password_id"] == "98765"
    assert summary == "Password changed in IT Glue: Domain Admin"
    assert token_id == 1 and len(body_hash) == 64
    jobs = rows("SELECT trigger_event_id, state, itglue_password_id, itglue_organization_id "
                "FROM reset_jobs")
    assert jobs == [(event_id, "pending", "98765", "2412")]
