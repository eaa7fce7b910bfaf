"""The tenant's logs (stderr and the log file) never show a secret: not in a line, not in a
traceback, not in uvicorn's access log."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.processes import TenantProcess
from tests.support.secret_text import CASES, leaks, logging_script
from tests.tenant.conftest import Api

WORKFLOW = "qpwt_Zk3vQ9xYw8rT2mN4bV6cX1aS5dF7gH0j"
ITG_KEY = "ITG.3f8a9c0d1e2b4a5f6c7d8e9f0a1b2c3d"
BASIC = "dXNlcjpodW50ZXIy"
CODE = "QPE-ABCD-EF23-GH45-JK67"
PASSWORD = "Hunter2-Pw"
SECRETS = (WORKFLOW[5:], ITG_KEY[4:], BASIC, CODE[4:], PASSWORD, "cs-Secret-9")


def test_a_running_tenants_logs_show_no_secret(tenant_proc: TenantProcess, api: Api) -> None:
    # Secrets in query strings reach uvicorn's access log; a foreign token in the webhook path
    # is logged as a refusal (404), not quietly dropped like an accepted webhook.
    query = (f"limit=1&access_token={api.access_token}&password={PASSWORD}&api_key={ITG_KEY}"
             f"&code={CODE}&client_secret=cs-Secret-9&authorization=Basic%20{BASIC}")
    assert api.http.get(f"/api/v1/events?{query}",
                        headers={"Authorization": f"Bearer {api.access_token}"}
                        ).status_code == 200
    assert api.http.post(f"/hooks/itglue/{WORKFLOW}?password={PASSWORD}",
                         json={"resourceUrl": "x"}).status_code == 404
    assert api.http.get(f"/no-such-page/{WORKFLOW}").status_code == 404
    tenant_proc.stop()
    logs = tenant_proc.log_text()
    assert "GET /api/v1/events?" in logs and "POST /hooks/itglue/qpwt_\u2026" in logs
    for secret in (*SECRETS, api.access_token, api.refresh_token):
        assert secret not in logs, secret


def test_the_tenants_logging_masks_lines_and_tracebacks_in_file_and_stderr(
        tmp_path: Path) -> None:
    # The tenant's own logging setup, in a fresh process, as `qp-tenant serve` calls it.
    script = textwrap.dedent(f"""
        import logging
        from pathlib import Path
        from qp_tenant.logging_setup import configure_logging

        configure_logging(Path({str(tmp_path / "logs")!r}), "INFO")
        logging.getLogger("qp_tenant.domain.integration").info(
            "connecting with %s and Authorization: Basic %s", {ITG_KEY!r}, {BASIC!r})
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET",
            "/hooks/itglue/{WORKFLOW}?password={PASSWORD}", "1.1", 410)
        try:
            raise RuntimeError("enroll {CODE} failed for password={PASSWORD}, "
                               "client_secret: cs-Secret-9, token {WORKFLOW}")
        except RuntimeError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        logging.getLogger("qp_tenant").warning("stack", stack_info=True)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=True)
    log_file = (tmp_path / "logs" / "qp-tenant.log").read_text()
    for text in (result.stderr, log_file):
        assert "Traceback (most recent call last)" in text and "RuntimeError" in text
        assert "Basic \u2026" in text and "ITG.\u2026" in text and "qpwt_\u2026" in text
        for secret in SECRETS:
            assert secret not in text, secret


def test_every_secret_bearing_text_is_masked_in_the_tenants_log_file_and_stderr(
        tmp_path: Path) -> None:
    # The table of tests/common/test_redact.py, each row as a line and in a traceback,
    # through the tenant's own logging in a fresh process.
    script = logging_script(f"""
        from pathlib import Path
        from qp_tenant.logging_setup import configure_logging
        configure_logging(Path({str(tmp_path / "logs")!r}), "INFO")
    """, "qp_tenant.domain.pipeline", tmp_path / "cases.json")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=True)
    log_file = (tmp_path / "logs" / "qp-tenant.log").read_text()
    for text in (result.stderr, log_file):
        assert text.count("Traceback (most recent call last)") == len(CASES)
        assert "Bearer \u2026" in text and "QPE-\u2026" in text
        assert leaks(text) == []
