"""A table of secret-bearing text, and a way to prove a program's log masks all of it.

:data:`CASES` is the table the one redaction function (``qp_common.redact``) is tested
with: workflow, access, refresh and agent tokens, ``ITG.`` keys, enrollment codes, Bearer,
Basic and Digest headers, password-like fields written as ``k=v``, ``k: v``, ``"k": "v"``
(with and without spaces), ``secret:``. The process tests feed every row through a program's
own logging in a fresh interpreter (:func:`logging_script`), as a log line and inside a
traceback, and check the log with :func:`leaks`.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from qp_common.redact import MASK

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


def all_secrets() -> list[str]:
    """Every secret of the table (what no log may show)."""
    return [secret for _, secrets, _ in CASES for secret in secrets]


def logging_script(setup: str, logger: str, cases_file: Path) -> str:
    """Python source for a fresh process: ``setup`` configures the program's logging as the
    program itself does, then every row of :data:`CASES` is logged through ``logger``, once
    as a line and once as the message of an exception logged with its traceback."""
    cases_file.write_text(json.dumps([text for text, _, _ in CASES]), encoding="utf-8")
    return textwrap.dedent(setup) + textwrap.dedent(f"""
        import json as _json
        import logging as _logging
        from pathlib import Path as _Path

        _log = _logging.getLogger({logger!r})
        for _text in _json.loads(_Path({str(cases_file)!r}).read_text(encoding="utf-8")):
            _log.warning("line: %s", _text)
            try:
                raise RuntimeError(_text)
            except RuntimeError:
                _log.exception("failed")
    """)


def leaks(log: str) -> list[str]:
    """The secrets of the table that ``log`` shows (none, for a log that masks them)."""
    return [secret for secret in all_secrets() if secret in log]
