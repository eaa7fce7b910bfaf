"""What a log line, an error report or a crash report may show: secrets masked, one way.

:func:`redact` masks every secret the system handles, by its shape, in any text:

* workflow tokens and the other ``qp…_`` tokens (access, refresh, agent) keep their last four
  characters, which is how the UI names a token: ``qpwt_…Ab3d``; a webhook path with anything
  else in the token's place is masked the same way;
* IT Glue API keys (``ITG.…``) and enrollment codes (``QPE-…``);
* the value of an ``Authorization`` header (``Bearer …``, ``Basic …``, any scheme);
* the value of a password-like field however it is written: ``password=…``,
  ``"password": "…"``, ``secret: …``, ``client_secret``, ``token=…``, ``api_key``,
  ``refresh_token``, ``access_token`` and friends;
* and any exact value passed in ``known`` (a directory's bind password, say).

:class:`RedactingFilter` applies it to a log record's message and arguments, its formatted
traceback (``exc_info``/``exc_text``) and its ``stack_info``, so a handler carrying it never
writes a secret, whoever logged it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "\u2026"  # …

_TOKEN_RE = re.compile(r"\b(qp(?:wt|at|rt|ag|en))_([A-Za-z0-9_\-]+)")
# A webhook path carries the workflow token whatever its shape (a mistyped or foreign token
# is still somebody's secret); keep only its tail, as for a token.
_HOOK_PATH_RE = re.compile(r"(/hooks/itglue/)(?!qpwt_\u2026)([^\s/?#\"'<>]+)")
_ITG_RE = re.compile(r"\bITG\.[A-Za-z0-9._\-]+")
_ENROLLMENT_RE = re.compile(r"(?i)\bQPE-[A-Z0-9][A-Z0-9\-]*")
# The credentials after an authorization scheme word. "Bearer" is never ordinary prose; after
# the other schemes a plain lower-case word ("basic setup") is prose, while credentials always
# carry a capital, a digit or base64 punctuation. Digest credentials are a list of
# parameters: everything up to the end of the line goes.
_AUTH_SCHEME_RE = re.compile(
    r"(?i:\b(bearer)(\s+)(?!\u2026)([A-Za-z0-9._~+/=\-]+))"
    r"|(?i:\b(basic|negotiate|ntlm))(\s+)(?!\u2026)(?=[a-z._~\-]*[A-Z0-9+/=])"
    r"([A-Za-z0-9._~+/=\-]+)"
    r"|(?i:\b(digest))(\s+)(?!\u2026)(?=\w+=)([^\r\n\"']+)"
)
_FIELD_NAMES = (
    r"password|passwd|pwd|passphrase|bind_password|smtp_password|new_password|old_password"
    r"|secret|client_secret|api[_\-]?key|x-api-key|apikey"
    r"|token|access_token|refresh_token|agent_token|id_token|setup_token|workflow_token"
    r"|authorization|proxy-authorization|enrollment_code"
)
# name, optional closing quote, separator (=, :, =>), optional opening quote, value.
_FIELD_RE = re.compile(
    r"(?ix)"
    r"(?P<key>[\"']?\b(?:" + _FIELD_NAMES + r")\b[\"']?\s*(?:=>|[:=])\s*)"
    r"(?:"
    r"\"(?P<dq>(?:[^\"\\]|\\.)*)\""       # "value"
    r"|'(?P<sq>(?:[^'\\]|\\.)*)'"          # 'value'
    r"|(?P<scheme>(?:bearer|basic|digest|negotiate|ntlm)\s+)?(?P<bare>[^\s,;&}\]\)\"']+)"
    r")"
)


_ALREADY_MASKED_RE = re.compile(
    r"^(?:qp(?:wt|at|rt|ag|en)_\u2026[A-Za-z0-9_\-]{0,4}|ITG\.\u2026|QPE-\u2026|\u2026)$"
)


def _field(match: re.Match[str]) -> str:
    key = match.group("key")
    value = next((v for v in (match.group("dq"), match.group("sq"), match.group("bare"))
                  if v is not None), "")
    if _ALREADY_MASKED_RE.match(value):  # masked by its shape above: keep its hint
        return match.group(0)
    if match.group("dq") is not None:
        return f'{key}"{MASK}"'
    if match.group("sq") is not None:
        return f"{key}'{MASK}'"
    return key + (match.group("scheme") or "") + MASK


def _auth_scheme(match: re.Match[str]) -> str:
    index = next(i for i in (1, 4, 7) if match.group(i))
    return match.group(index) + match.group(index + 1) + MASK


def _tail(secret: str) -> str:
    """The last four characters, which name a token in the UI; none of a short one, whose
    tail would be most of it."""
    return secret[-4:] if len(secret) >= 16 else ""


def redact(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every secret masked (see the module's docstring)."""
    for secret in sorted((s for s in known if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _HOOK_PATH_RE.sub(lambda m: f"{m.group(1)}qpwt_{MASK}{_tail(m.group(2))}", text)
    text = _TOKEN_RE.sub(lambda m: f"{m.group(1)}_{MASK}{_tail(m.group(2))}", text)
    text = _ITG_RE.sub(f"ITG.{MASK}", text)
    text = _ENROLLMENT_RE.sub(f"QPE-{MASK}", text)
    text = _AUTH_SCHEME_RE.sub(_auth_scheme, text)
    return _FIELD_RE.sub(_field, text)


class RedactingFilter(logging.Filter):
    """Masks secrets in each record (message, arguments, traceback, stack) with :func:`redact`.

    Put it on every handler. A record is rewritten once, however many handlers it passes;
    ``secrets`` is a set of exact values to mask as well, and may grow later (the agent adds
    its credential once it has read it).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if s}

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_qp_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_info:
            # The traceback's text (and its chained causes) can quote a token or a password;
            # formatting it here means no handler formats the raw one later.
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        record._qp_redacted = True
        return True

