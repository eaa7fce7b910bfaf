"""One redaction for every log: a table of secret-bearing text, none of which survives."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from qp_common.redact import MASK, RedactingFilter, redact
from tests.support.secret_text import (  # the table is shared with the process tests
    ACCESS,
    CASES,
    CODE,
    ITG_KEY,
    PASSWORD,
    WORKFLOW,
)


@pytest.mark.parametrize(("text", "secrets", "kept"), CASES)
def test_secret_bearing_text_leaks_nothing(text: str, secrets: list[str], kept: str) -> None:
    cleaned = redact(text)
    for secret in secrets:
        assert secret not in cleaned, cleaned
    assert kept in cleaned, cleaned


@pytest.mark.parametrize("text", [
    "Workflow token revoked by admin@acme.test",
    "basic setup finished; token_id=4, code=unknown_token",
    "Generated a new workflow URL https://qp.example.com/hooks/itglue/qpwt_\u2026Ab3d",
    "GET /api/v1/events?limit=50 HTTP/1.1 200",
    "listening on http://127.0.0.1:8080",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_a_token_keeps_its_last_four_characters_so_the_ui_can_name_it() -> None:
    assert redact(WORKFLOW) == f"qpwt_{MASK}{WORKFLOW[-4:]}"
    assert redact(redact(WORKFLOW)) == redact(WORKFLOW)  # masking twice changes nothing


def test_known_values_are_masked_wherever_they_appear() -> None:
    cleaned = redact("bind failed for cn=admin with S3cret-Bind!", known={"S3cret-Bind!", ""})
    assert "S3cret-Bind!" not in cleaned and "cn=admin" in cleaned


def _record(msg: str, args: tuple[object, ...] | None = None, *, exc: bool = False,
            stack: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            try:
                raise ValueError(f"password={PASSWORD}")
            except ValueError as first:
                raise RuntimeError(f"token {WORKFLOW} and key {ITG_KEY}") from first
        except RuntimeError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info,
                               sinfo=f"Stack (most recent call last):\n  {CODE}" if stack
                               else None)
    return record


def _emit(record: logging.LogRecord, redactor: logging.Filter | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(redactor or RedactingFilter())
    handler.handle(record)
    return stream.getvalue()


def test_the_filter_masks_the_message_its_args_the_traceback_and_the_stack() -> None:
    record = _record("auth %s with %s for %s", ("Authorization: Bearer abc.def", "hunter22",
                                                 ACCESS), exc=True, stack=True)
    text = _emit(record, RedactingFilter({"hunter22"}))
    for secret in ("abc.def", "hunter22", ACCESS, PASSWORD, WORKFLOW, ITG_KEY, CODE):
        assert secret not in text, text
    assert "Traceback" in text and "RuntimeError" in text and "ValueError" in text
    assert f"auth Authorization: Bearer {MASK} with {MASK} for qpat_{MASK}1111" in text


def test_a_record_already_formatted_elsewhere_is_masked_too() -> None:
    record = _record("boom", exc=True)
    record.exc_text = logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
    text = _emit(record)
    assert WORKFLOW not in text and PASSWORD not in text and "RuntimeError" in text


def test_a_bad_format_string_keeps_the_record_and_masks_it() -> None:
    text = _emit(_record("%d apples for " + ACCESS, ("not a number",)))
    assert "apples" in text and ACCESS not in text


def test_a_field_whose_value_is_a_token_keeps_the_tokens_hint() -> None:
    assert redact(f'{{"token": "{WORKFLOW}"}}') == f'{{"token": "qpwt_{MASK}{WORKFLOW[-4:]}"}}'
    assert redact(f"api_key={ITG_KEY}") == f"api_key=ITG.{MASK}"
    assert redact('{"password": "x\u2026y"}') == f'{{"password": "{MASK}"}}'


def test_a_short_token_shows_no_tail() -> None:
    assert redact("qpwt_abc12 and /hooks/itglue/xy9") == (
        f"qpwt_{MASK} and /hooks/itglue/qpwt_{MASK}")
