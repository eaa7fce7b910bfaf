"""Unit tests of the services with httpx.MockTransport: refresh-and-retry, error mapping."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from qp_common.redact import redact
from qp_common.urls import normalise_tenant_url
from qp_desktop.services.secret_store import SecretStore
from qp_desktop.services.session import Session
from qp_desktop.services.tenant_client import TenantClient, TenantError
from qp_desktop.ui.timefmt import friendly, relative, wait_text

GRANT = {"access_token": "A2", "refresh_token": "R2", "expires_in": 900,
         "user": {"id": "1", "email": "a@b.test", "name": "", "role": "admin"},
         "tenant": {"id": "1", "slug": "acme", "name": "Acme"}}


def _run(qtbot, qloop, coro):
    task = qloop.create_task(coro)
    qtbot.waitUntil(task.done, timeout=5000)
    return task.result()


def test_a_rejected_access_token_is_refreshed_once_and_the_call_retried(
        qtbot, qloop, memory_keyring):
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path} {request.headers.get('authorization')}")
        if request.url.path == "/api/v1/auth/refresh":
            assert json.loads(request.content) == {"refresh_token": "R1"}
            return httpx.Response(200, json=GRANT)
        if request.headers.get("authorization") == "Bearer A2":
            return httpx.Response(200, json={"user": GRANT["user"], "tenant": GRANT["tenant"]})
        return httpx.Response(401, json={"error": {"code": "invalid_token", "message": "no"}})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = TenantClient(http, "http://tenant.test")
    session = Session(client, SecretStore())
    session._access, session._refresh = "A1", "R1"
    user, tenant = _run(qtbot, qloop, client.me())
    assert tenant.slug == "acme"
    assert calls == ["GET /api/v1/me Bearer A1", "POST /api/v1/auth/refresh None",
                     "GET /api/v1/me Bearer A2"]


def test_a_failed_refresh_ends_the_session_with_expired(qtbot, qloop, memory_keyring):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"code": "invalid_token", "message": "no"}})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = TenantClient(http, "http://tenant.test")
    session = Session(client, SecretStore())
    session._access, session._refresh = "A1", "R1"
    with qtbot.waitSignal(session.expired, timeout=5000):
        task = qloop.create_task(client.get_itglue())
    qtbot.waitUntil(task.done, timeout=5000)
    with pytest.raises(TenantError) as err:
        task.result()
    assert err.value.code == "session_expired"
    assert not session.signed_in


def test_errors_carry_the_tenants_message_and_retry_after(qtbot, qloop):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "42"}, json={
            "error": {"code": "too_many_attempts", "message": "Slow down.", "details": {}}})

    client = TenantClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                          "http://tenant.test")
    with pytest.raises(TenantError) as err:
        _run(qtbot, qloop, client.login("a@b.test", "pw"))
    assert (err.value.code, err.value.message, err.value.retry_after) == (
        "too_many_attempts", "Slow down.", 42)
    assert "pw" not in str(err.value)


def test_a_certificate_failure_is_reported_as_tls(qtbot, qloop):
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("handshake") from ssl.SSLCertVerificationError(
            "certificate verify failed")

    client = TenantClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                          "https://tenant.test")
    with pytest.raises(TenantError) as err:
        _run(qtbot, qloop, client.health())
    assert err.value.code == "tls_error"
    assert "certificate" in err.value.message


def test_a_name_that_does_not_resolve_is_reported_as_such(qtbot, qloop):
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known") from socket.gaierror(
            -2, "Name or service not known")

    client = TenantClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                          "https://qp.example.com:8443")
    with pytest.raises(TenantError) as err:
        _run(qtbot, qloop, client.health())
    assert err.value.code == "unreachable"
    assert err.value.message.startswith("Cannot reach the tenant at qp.example.com:8443. The "
                                        "name qp.example.com did not resolve")


@pytest.mark.parametrize(("typed", "expected"), [
    ("qp.example.com", "https://qp.example.com"),
    ("https://qp.example.com/", "https://qp.example.com"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://localhost:8000", "http://localhost:8000"),
])
def test_tenant_urls_are_tidied(typed, expected):
    assert normalise_tenant_url(typed) == expected


@pytest.mark.parametrize("typed", ["http://qp.example.com", "", "ftp://x",
                                   "http://127.attacker.example"])
def test_bad_tenant_urls_are_refused(typed):
    with pytest.raises(ValueError):
        normalise_tenant_url(typed)


def test_times_are_friendly():
    now = datetime(2026, 3, 12, 14, 5, tzinfo=UTC)
    assert relative(now + timedelta(days=364, hours=23), now) == "in 365 days"
    assert relative(now - timedelta(minutes=5), now) == "5 minutes ago"
    assert relative(now, now) == "just now"
    assert friendly(None) == "Never"
    assert "(in 1 day)" in friendly(now + timedelta(days=1), now)
    assert wait_text(57) == "57 seconds" and wait_text(300) == "5 minutes"


def test_logs_never_hold_secrets():
    line = ("POST /hooks/itglue/qpwt_abcdefghijklmnopqrstuvwxyz0123456789 key ITG.deadbeef "
            "Authorization: Bearer tok123 password=hunter2 {'refresh_token': 'r-1'}")
    cleaned = redact(line)
    for secret in ("qpwt_abcdefghij", "ITG.deadbeef", "tok123", "hunter2", "r-1"):
        assert secret not in cleaned
    assert "qpwt_\u20266789" in cleaned


def test_without_a_display_the_app_says_so_in_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "qp_desktop"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "xvfb-run" in lines[0]
    assert "Traceback" not in result.stderr
