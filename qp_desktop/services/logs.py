"""Logging for the desktop app: a rotating file in the platform's log folder and stderr, both
through qp_common's redacting filter (tokens, keys, passwords, authorization values).
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from platformdirs import user_log_dir

from qp_common.redact import RedactingFilter

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
