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
    (re.compile(r"qpwt_[A-Za-z0-9_\-]+"), lambda m: "qpwt_\u2026" + m.group(0)[-4:]),
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
    """Rewrites each record's final message with secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(log_dir: Path | None = None, level: int = logging.INFO) -> Path:
    """Log to ``<user log dir>/qp-desktop.log`` (rotating) and stderr, both redacted."""
    folder = log_dir or Path(user_log_dir("qp-desktop", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "qp-desktop.log"
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000,
                                                        backupCount=3, encoding="utf-8")
    stream_handler = logging.StreamHandler()
    root = logging.getLogger()
    for handler in (file_handler, stream_handler):
        handler.setFormatter(formatter)
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request line at INFO; keep it at WARNING.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    return path
