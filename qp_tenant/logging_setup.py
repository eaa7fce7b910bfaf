"""Logging for the tenant: stderr plus a rotating file, with secrets redacted everywhere.

Every handler carries qp_common's ``RedactingFilter``, so nothing that reaches a log line (our
own messages, uvicorn's access log, a traceback) can show a workflow token, an access or
refresh token, an IT Glue API key, an enrollment code or a password.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Any

from qp_common.redact import RedactingFilter


def _is_accepted_webhook(args: Any) -> bool:
    """Whether uvicorn's access-log arguments (client, method, path, version, status) are
    those of an accepted webhook."""
    return (isinstance(args, tuple) and len(args) >= 5 and args[4] == 202
            and str(args[2]).startswith("/hooks/itglue/"))


class QuietAcceptedWebhooks(logging.Filter):
    """Drops access-log lines of accepted webhooks; refusals and everything else stay.

    Every accepted webhook is already an event in the database, and formatting an access
    line cost about a tenth of the webhook path's CPU under load.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not _is_accepted_webhook(record.args)


def _skip_accepted_webhooks_early(access: logging.Logger) -> None:
    """Answer uvicorn's ``access_logger.info(...)`` for an accepted webhook before a log
    record is made: making one (it looks up the caller's frame) and dropping it in the filter
    above still cost about 5 % of the tenant's CPU during a webhook burst."""
    if getattr(access.info, "_qp_quiet", False):
        return
    info = access.info

    def quiet_info(msg: object, *args: Any, **kwargs: Any) -> None:
        if not _is_accepted_webhook(args):
            kwargs.setdefault("stacklevel", 2)  # the caller is uvicorn, not this wrapper
            info(msg, *args, **kwargs)

    quiet_info._qp_quiet = True  # type: ignore[attr-defined]
    access.info = quiet_info  # type: ignore[method-assign]


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_dir: Path | None, level: str = "INFO") -> None:
    """Send every logger (ours and uvicorn's) to stderr and a rotating file, redacted."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = logging.Formatter(LOG_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / "qp-tenant.log", maxBytes=5_000_000, backupCount=5, encoding="utf-8"
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # Whatever configured uvicorn's loggers before (its own dictConfig sets levels and
        # stops propagation), the root handlers above decide: they redact.
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
        logger.disabled = False
        logger.setLevel(logging.NOTSET)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QuietAcceptedWebhooks) for f in access.filters):
        access.addFilter(QuietAcceptedWebhooks())
    _skip_accepted_webhooks_early(access)
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
