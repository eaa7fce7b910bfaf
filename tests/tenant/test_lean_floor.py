"""The lean floor benchmark (benchmarks/lean_floor.py) does the product's work per webhook.

Its figure says how far a Python tenant can get at all, so it must keep doing what the
tenant does for an accepted webhook: the same answer, the same event row, the same reset job.
It borrows the tenant's own pieces for that; this catches a change to them that would leave
the benchmark measuring something else.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ServerProcess
from tests.tenant.conftest import IT_GLUE_BODY

LEAN_FLOOR = Path(__file__).resolve().parents[2] / "benchmarks" / "lean_floor.py"
TOKEN = "qpwt_lean-floor-benchmark-token-0000000000000"


@pytest.fixture
def lean_floor(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    db = tmp_path / "lean.db"
    server = ServerProcess([sys.executable, str(LEAN_FLOOR), "--port", "0", "--db", str(db)])
    server.start()
    try:
        yield server.url, db
    finally:
        server.stop()


def test_the_lean_floor_answers_and_stores_a_webhook_as_the_tenant_does(
        lean_floor: tuple[str, Path]) -> None:
    url, db = lean_floor
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

    rows = sqlite3.connect(db)
    events = rows.execute("SELECT id, type, summary, resource_name, token_id, body_hash, "
                          "json_extract(details, '$.password_id') FROM events").fetchall()
    assert len(events) == 1
    stored_id, kind, summary, name, token_id, body_hash, password_id = events[0]
    assert (stored_id, kind, name, password_id) == (
        event_id, "workflow_trigger.received", "Domain Admin", "98765")
    assert summary == "Password changed in IT Glue: Domain Admin"
    assert token_id == 1 and len(body_hash) == 64
    jobs = rows.execute("SELECT trigger_event_id, state, itglue_password_id, "
                        "itglue_organization_id FROM reset_jobs").fetchall()
    assert jobs == [(event_id, "pending", "98765", "2412")]
