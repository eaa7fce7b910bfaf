"""uvicorn's access log under the tenant's logging: accepted webhooks leave no line (they are
events already), every other request does, with the caller recorded as uvicorn."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from qp_tenant.logging_setup import configure_logging


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def access_lines(tmp_path: Path) -> Iterator[list[logging.LogRecord]]:
    configure_logging(tmp_path / "logs", "INFO")
    lines = Lines()
    root = logging.getLogger()
    root.addHandler(lines)
    yield lines.records
    root.removeHandler(lines)


def _access(path: str, status: int) -> None:
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST", path, "1.1", status)


def test_accepted_webhooks_leave_no_access_line_but_refusals_and_the_api_do(
        access_lines: list[logging.LogRecord]) -> None:
    _access("/hooks/itglue/qpwt_abc", 202)
    _access("/hooks/itglue/qpwt_abc", 410)
    _access("/api/v1/integrations/itglue/workflow-token", 202)
    _access("/api/v1/auth/login", 200)
    shown = [r.getMessage().split('"')[1:] for r in access_lines if r.name == "uvicorn.access"]
    assert shown == [["POST /hooks/itglue/qpwt_… HTTP/1.1", " 410"],  # redacted, too
                     ["POST /api/v1/integrations/itglue/workflow-token HTTP/1.1", " 202"],
                     ["POST /api/v1/auth/login HTTP/1.1", " 200"]]
    # The line names the code that logged it, not the wrapper that let it through.
    assert all(r.pathname == __file__ for r in access_lines if r.name == "uvicorn.access")


def test_configuring_logging_twice_still_logs_each_request_once(tmp_path: Path) -> None:
    configure_logging(tmp_path / "logs", "INFO")
    configure_logging(tmp_path / "logs", "INFO")
    lines = Lines()
    logging.getLogger().addHandler(lines)
    try:
        _access("/api/v1/events", 200)
        _access("/hooks/itglue/qpwt_abc", 202)
    finally:
        logging.getLogger().removeHandler(lines)
    assert [r.getMessage() for r in lines.records if r.name == "uvicorn.access"] == [
        '127.0.0.1:5 - "POST /api/v1/events HTTP/1.1" 200']
