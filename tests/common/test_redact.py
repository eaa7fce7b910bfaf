"""One redaction for every log: a table of secret-bearing text, none of which survives."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from qp_common.redact import MASK, RedactingFilter, redact

WORKFLOW = "qpwt_Zk3vQ9xYw8rT2mN4bV6cX1aS5dF7gH0jK2lP4oI6uY8"
ACCESS = "qpat_AAAAbbbbCCCCdddd1111"
REFRESH = "qprt_EEEEffffGGGGhhhh2222"
AGENT = "qpag_IIIIjjjjKKKKllll3333"
ITG_KEY = "ITG.3f8a9c0d1e2b4a5f6c7d8e9f0a1b2c3d.Zx9Yw8"
CODE = "QPE-ABCD-EF23-GH45-JK67"
BASIC = "dXNlcjpodW50ZXIy"  # base64("user:hunter2")
PASSWORD = "Tr0ub4dor&3"

# (text containing secrets, the secrets that must not survive, what must remain)
CASES = [
    (f"POST /hooks/itglue/{WORKFLOW} HTTP/1.1", [WORKFLOW[5:]], f"qpwt_{MASK}uY8"[:-3]),
    (f"url https://qp.example.com/hooks/itglue/{WORKFLOW}?x=1", [WORKFLOW[5:]], "/hooks/itglue/"),
    ("GET /hooks/itglue/not-a-real-token-shape-9999 ", ["not-a-real-token-shape"], "9999"),
    (f"tokens {ACCESS} {REFRESH} {AGENT}", [ACCESS[5:], REFRESH[5:], AGENT[5:]],
     f"qpat_{MASK}1111"),
    (f"x-api-key: {ITG_KEY}", [ITG_KEY[4:]], f"ITG.{MASK}"),
    (f"{{'x-api-key': '{ITG_KEY}'}}", [ITG_KEY[4:]], "x-api-key"),
    (f"enrollment code {CODE} expires", [CODE[4:], "ABCD"], f"QPE-{MASK}"),
    (f"code {CODE.lower()}", [CODE[4:].lower()], "QPE-"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", ["eyJhbGci", ".e30."],
     f"Bearer {MASK}"),
    (f"Authorization: Basic {BASIC}", [BASIC], f"Basic {MASK}"),
    (f"authorization=basic {BASIC}", [BASIC], MASK),
    ("Proxy-Authorization: Digest username=u,response=9f8e", ["9f8e"], "Digest"),
    (f"Authorization: {ACCESS}", [ACCESS[5:]], "Authorization"),
    (f"password={PASSWORD}&user=alice", [PASSWORD], "user=alice"),
    (f'{{"password": "{PASSWORD}", "user": "alice"}}', [PASSWORD], '"user": "alice"'),
    (f'{{"password":"{PASSWORD}"}}', [PASSWORD], f'"password":"{MASK}"'),
    (f"{{'password': '{PASSWORD}'}}", [PASSWORD], f"'password': '{MASK}'"),
    (f"password = {PASSWORD}", [PASSWORD], "password = "),
    (f"PASSWORD: {PASSWORD}", [PASSWORD], "PASSWORD"),
    ('{"password": "with \\"quote\\" inside"}', ["quote"], "password"),
    ("client_secret=abc~DEF.123_xyz", ["abc~DEF.123_xyz"], "client_secret="),
    ('"client_secret": "s3cr3t value"', ["s3cr3t value", "s3cr3t"], "client_secret"),
    ("secret: Shh-9", ["Shh-9"], "secret: "),
    ("token=abcdef123456", ["abcdef123456"], "token="),
    ("?api_key=k-123456&page=2", ["k-123456"], "page=2"),
    ("api-key: zz9plural", ["zz9plural"], "api-key"),
    ('{"refresh_token": "r-1", "access_token": "a-1"}', ['"r-1"', '"a-1"'], "refresh_token"),
    ("bind_password => 'Cn=admin!'", ["Cn=admin!"], "bind_password"),
    ("smtp_password=mailpw42", ["mailpw42"], "smtp_password"),
]


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
