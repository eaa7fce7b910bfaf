"""The contract's shared vocabulary, and qp_common's promise to depend on nothing."""

from __future__ import annotations

import ast
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import qp_common
from qp_common.wire import (
    CATEGORIES,
    CATEGORY_PREFIXES,
    EVENT_TYPES,
    TOKEN_STATUSES,
    WireError,
    category_of,
    error_body,
    format_rfc3339,
    listening_line,
    parse_error,
    parse_listening_line,
    parse_rfc3339,
    token_url_usable,
)


@pytest.mark.parametrize(("event_type", "category"), [
    ("workflow_trigger.received", "Workflow Trigger"),
    ("workflow_trigger.rejected", "Workflow Trigger"),
    ("password_reset.failed", "Workflow Trigger"),
    ("token.expiring", "Token"), ("integration.error", "Integration"),
    ("alert.sent", "Alert"), ("agent.offline", "Agent"),
    ("account.updated", "Account"), ("future.kind", "Other"), ("nonsense", "Other"), ("", "Other"),
])
def test_event_types_fall_into_their_category(event_type: str, category: str) -> None:
    assert category_of(event_type) == category


def test_every_known_type_has_a_category_and_the_wire_keys_agree() -> None:
    assert {category_of(t) for t in EVENT_TYPES} == set(CATEGORIES) - {"Other"}
    for key, prefixes in CATEGORY_PREFIXES.items():
        for event_type in EVENT_TYPES:
            if event_type.startswith(prefixes):
                assert category_of(event_type) == category_of(prefixes[0] + "x"), key


@pytest.mark.parametrize(("status", "usable"), [
    ("active", True), ("expiring", True), ("expired", False), ("revoked", False),
    ("", False), (None, False),
])
def test_only_active_and_expiring_urls_may_be_copied_and_used(status: str | None,
                                                              usable: bool) -> None:
    assert token_url_usable(status) is usable
    assert status is None or status == "" or status in TOKEN_STATUSES


def test_the_error_envelope_round_trips() -> None:
    body = error_body("token_expired", "This workflow URL has expired.", {"token_id": 3})
    assert body == {"error": {"code": "token_expired", "message": "This workflow URL has "
                              "expired.", "details": {"token_id": 3}}}
    parsed = parse_error(body, 410)
    assert parsed == WireError("token_expired", "This workflow URL has expired.",
                               {"token_id": 3})
    assert parsed.body() == body and parsed.enveloped


@pytest.mark.parametrize("body", [None, "<html>proxy</html>", [], {"error": "x"},
                                  {"detail": "Not Found"}])
def test_an_answer_without_the_envelope_still_gives_a_sentence(body: object) -> None:
    parsed = parse_error(body, 502, "Bad Gateway")
    assert parsed.code == "http_502" and not parsed.enveloped
    assert parsed.message == "The tenant answered with an error (HTTP 502 Bad Gateway)."
    assert parsed.details == {}


def test_times_are_written_in_utc_with_milliseconds_and_read_back() -> None:
    moment = datetime(2026, 3, 12, 14, 5, 1, 123456, tzinfo=UTC)
    assert format_rfc3339(moment) == "2026-03-12T14:05:01.123Z"
    east = moment.astimezone(timezone(timedelta(hours=2)))
    assert format_rfc3339(east) == "2026-03-12T14:05:01.123Z"
    assert format_rfc3339(moment.replace(tzinfo=None)) == "2026-03-12T14:05:01.123Z"
    assert format_rfc3339(None) is None
    assert parse_rfc3339("2026-03-12T14:05:01.123Z") == moment.replace(microsecond=123000)
    assert parse_rfc3339("2026-03-12T16:05:01+02:00") == moment.replace(microsecond=0)
    assert parse_rfc3339("2026-03-12T14:05:01") == moment.replace(microsecond=0)
    for bad in (None, "", "yesterday", "2026-13-40T00:00:00Z"):
        assert parse_rfc3339(bad) is None


def test_the_listening_line_is_written_and_read_the_same_way() -> None:
    assert listening_line("127.0.0.1", 8080) == "listening on http://127.0.0.1:8080"
    assert listening_line("::1", 8080) == "listening on http://[::1]:8080"
    assert parse_listening_line("listening on http://127.0.0.1:8080\n") == (
        "http://127.0.0.1:8080")
    assert parse_listening_line("INFO: Started server process") is None
    assert parse_listening_line("listening on ") is None


def test_qp_common_imports_nothing_outside_the_standard_library() -> None:
    folder = Path(qp_common.__file__).parent
    imported: set[str] = set()
    for source in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    outside = {name for name in imported
               if name not in sys.stdlib_module_names and name not in ("__future__", "qp_common")}
    assert not outside, f"qp_common imports {sorted(outside)}"


def test_importing_qp_common_loads_no_third_party_module() -> None:
    import subprocess

    code = ("import sys, qp_common.urls, qp_common.redact, qp_common.wire, qp_common.transport\n"
            "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60).stdout.split()
    outside = [m for m in loaded if m not in sys.stdlib_module_names
               and m not in ("qp_common", "__main__") and not m.startswith("_")]
    assert not outside, outside


def test_every_reset_failure_code_is_documented_with_its_fix() -> None:
    from pathlib import Path

    from qp_common.wire import RESET_FAILURE_CODES, RESET_SKIP_CODES

    api_md = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    for code, fix in RESET_FAILURE_CODES.items():
        assert f"| `{code}` |" in api_md, code
        assert fix in ("match", "retry", "agent", "itglue", "microsoft365", "directory")
    for code in RESET_SKIP_CODES:
        assert f"`{code}`" in api_md
