"""Logging for the desktop app: a rotating file in the platform's log folder and a filter
that redacts secrets (workflow tokens, IT Glue keys, bearer and refresh tokens) everywhere.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

from platformdirs import user_log_dir

_PATTERNS = (
    # Workflow tokens keep their last 4 characters (that is how the UI names them); access,
    # refresh, agent and enrollment tokens are the same shape with another prefix.
    (re.compile(r"\b(qpwt|qpat|qprt|qpag|qpen)_[A-Za-z0-9_\-]+"),
     lambda m: m.group(1) + "_\u2026" + m.group(0)[-4:]),
    (re.compile(r"ITG\.[A-Za-z0-9_.\-]+"), lambda m: "ITG.\u2026"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_.\-~+/=]+"), lambda m: m.group(1) + "\u2026"),
    (re.compile(r"(?i)((?:password|refresh_token|access_token|api_key|token)"
                r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
     lambda m: m.group(1) + "\u2026"),
)


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message, traceback and stack with secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            # An exception's text (and its chained causes) can quote a token or a password.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


LOG_FILE_NAME = "qp-desktop.log"
_installed: list[logging.Handler] = []  # what setup_logging() added to the root logger


def default_log_dir() -> Path:
    """The platform's log folder for the app (``~/.local/state/qp-desktop/log`` on Linux,
    ``%LOCALAPPDATA%\\qp-desktop\\Logs`` on Windows, ``~/Library/Logs/qp-desktop`` on macOS)."""
    return Path(user_log_dir("qp-desktop", appauthor=False))


def setup_logging(log_dir: Path | None = None, level: int = logging.INFO) -> Path:
    """Log to ``<user log dir>/qp-desktop.log`` (rotating) and stderr, both redacted.

    Calling it again replaces the handlers it added before. Returns the log file's path.
    """
    folder = log_dir or default_log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_FILE_NAME
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000,
                                                        backupCount=3, encoding="utf-8")
    stream_handler = logging.StreamHandler()
    root = logging.getLogger()
    while _installed:
        old = _installed.pop()
        root.removeHandler(old)
        old.close()
    for handler in (file_handler, stream_handler):
        handler.setFormatter(formatter)
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
        _installed.append(handler)
    root.setLevel(level)
    # httpx logs every request line at INFO; keep it at WARNING.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    return path
