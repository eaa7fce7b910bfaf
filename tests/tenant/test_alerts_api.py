"""Alerts through a real tenant process: the settings API, expiry mail, batched failure mail."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.support.smtp import SmtpServer, smtp_server
from tests.tenant.conftest import Api, sign_in

__all__ = ["smtp_server"]  # fixture used by name below

RECIPIENTS = ["ops@acme.test", "boss@acme.test"]


def poll(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Call ``check`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def start_tenant(tmp_path: Path, tenant_template: Path, itglue_emulator: EmulatorProcess
                 ) -> Iterator[Callable[[dict[str, str]], TenantProcess]]:
    started: list[TenantProcess] = []

    def start(env: dict[str, str]) -> TenantProcess:
        data = tmp_path / f"tenant-{len(started)}"
        shutil.copytree(tenant_template, data)
        tenant = TenantProcess(data, env={"QP_ITGLUE_BASE_URL": itglue_emulator.url,
                                          "QP_PUBLIC_URL": "", **env})
        started.append(tenant)
        tenant.start()
        return tenant

    yield start
    for tenant in started:
        tenant.stop()


def client(tenant: TenantProcess) -> httpx.Client:
    return httpx.Client(base_url=tenant.url, timeout=10)


# --- the settings API --------------------------------------------------------------------


def test_alert_settings_default_validate_and_persist(api: Api) -> None:
    r = api.get("/api/v1/alerts")
    assert r.status_code == 200, r.text
    assert r.json() == {"recipients": [], "expiry_warning_days": [30, 7, 1],
                        "smtp_configured": False,
                        "limits": {"max_recipients": 10, "max_expiry_warning_days": 10,
                                   "max_warning_day": 365}}

    r = api.put("/api/v1/alerts", json={
        "recipients": [" Ops@Acme.test ", "boss@acme.test", "ops@acme.test", ""],
        "expiry_warning_days": [1, 14, 30]})
    assert r.status_code == 200, r.text
    assert r.json()["recipients"] == ["Ops@acme.test", "boss@acme.test"]
    assert r.json()["expiry_warning_days"] == [30, 14, 1]

    r = api.put("/api/v1/alerts", json={"expiry_warning_days": [60]})  # recipients kept
    assert r.json()["recipients"] == ["Ops@acme.test", "boss@acme.test"]
    assert api.get("/api/v1/alerts").json()["expiry_warning_days"] == [60]


@pytest.mark.parametrize(("body", "code", "words"), [
    ({"recipients": ["not-an-address"]}, "invalid_recipient",
     '"not-an-address" is not a valid email address'),
    ({"recipients": ["a@"]}, "invalid_recipient", "There must be something after the @-sign"),
    ({"recipients": [f"user{i}@acme.test" for i in range(11)]}, "too_many_recipients",
     "At most 10 alert recipients are allowed; 11 were given."),
    ({"expiry_warning_days": [30, 400]}, "invalid_expiry_warning_days",
     "between 0 and 365; 400 is not"),
    ({"expiry_warning_days": [-1]}, "invalid_expiry_warning_days", "-1 is not"),
    ({"expiry_warning_days": [30, 14, 30]}, "invalid_expiry_warning_days",
     "Expiry warning day 30 is listed twice; list each day once."),
    ({"expiry_warning_days": list(range(1, 12))}, "invalid_expiry_warning_days",
     "At most 10 expiry warning days are allowed; 11 were given."),
    ({"expiry_warning_days": [7.5]}, "invalid_request", ""),
    ({"recipients": ["ops@acme.test", "ops at acme.test"]}, "invalid_recipient",
     '"ops at acme.test" is not a valid email address'),
])
def test_invalid_alert_settings_are_refused_with_a_sentence(
        api: Api, body: dict[str, Any], code: str, words: str) -> None:
    r = api.put("/api/v1/alerts", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert words in error["message"]
    assert api.get("/api/v1/alerts").json()["recipients"] == []


def test_only_an_admin_changes_alert_settings(api: Api, tenant_proc: TenantProcess,
                                              http: httpx.Client) -> None:
    tenant_proc.create_user("acme", "tech@acme.test", ADMIN_PASSWORD, role="technician")
    tech = sign_in(http, "tech@acme.test")
    r = tech.put("/api/v1/alerts", json={"recipients": ["tech@acme.test"]})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    assert tech.get("/api/v1/alerts").status_code == 200
    assert http.get("/api/v1/alerts").status_code == 401


# --- end to end --------------------------------------------------------------------------


def test_a_short_lived_token_logs_token_expiring_and_mails_once(
        start_tenant: Callable[[dict[str, str]], TenantProcess],
        smtp_server: SmtpServer) -> None:
    tenant = start_tenant({"QP_TOKEN_LIFETIME_DAYS": "10",
                           "QP_SCHEDULER_INTERVAL_SECONDS": "0.3", **smtp_server.env()})
    with client(tenant) as http:
        api = sign_in(http)
        assert api.get("/api/v1/alerts").json()["smtp_configured"] is True
        assert api.put("/api/v1/alerts", json={"recipients": RECIPIENTS}).status_code == 200
        api.generate()
        [warning] = poll(lambda: api.events(type="token.expiring"), what="token.expiring")
        assert warning["severity"] == "warning"
        assert warning["summary"].startswith("Workflow token expires in 10 days (on ")
        assert warning["details"]["threshold"] == 30
        assert warning["details"]["days_left"] == 10
        [mail] = smtp_server.wait_for(1)
        assert sorted(mail.recipients) == sorted(RECIPIENTS)
        assert "expires in 10 days" in mail.subject
        assert "Generate New" in mail.text
        [sent] = poll(lambda: api.events(type="alert.sent"), what="alert.sent")
        assert sent["details"]["kind"] == "token.expiring"
        assert sent["details"]["recipient_count"] == 2
        # Several more scheduler passes: still one warning, one mail.
        time.sleep(1.0)
        assert len(api.events(type="token.expiring")) == 1
        assert len(smtp_server.messages) == 1

    tenant.restart()  # and after a restart too
    with client(tenant) as http:
        api = sign_in(http)
        assert api.get("/healthz").status_code == 200
        time.sleep(1.0)
        assert len(api.events(type="token.expiring")) == 1
        assert len(smtp_server.messages) == 1


def test_a_burst_of_rejected_webhooks_sends_one_mail(
        start_tenant: Callable[[dict[str, str]], TenantProcess],
        smtp_server: SmtpServer) -> None:
    tenant = start_tenant({"QP_ALERT_BATCH_SECONDS": "1", **smtp_server.env()})
    with client(tenant) as http:
        api = sign_in(http)
        api.put("/api/v1/alerts", json={"recipients": RECIPIENTS})
        url = api.generate()
        for _ in range(20):
            r = http.post(url, json={"resourceName": "Domain Admin"})
            assert r.status_code == 422
        [mail] = smtp_server.wait_for(1)
        assert "20 workflow failures" in mail.subject
        # One line: the refusals of one token, code and minute fold into one event.
        assert mail.text.count("[missing_resource_url]") == 1
        assert "(20 times in that minute)" in mail.text
        poll(lambda: api.events(type="alert.sent"), what="alert.sent")
        time.sleep(1.5)  # a whole further batch window: nothing more goes out
        assert len(smtp_server.messages) == 1


class SilentSmtp:
    """Accepts TCP connections and never says a word: an SMTP server that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def test_a_hanging_smtp_server_never_delays_the_webhook(
        start_tenant: Callable[[dict[str, str]], TenantProcess]) -> None:
    silent = SilentSmtp()
    try:
        tenant = start_tenant({"QP_ALERT_BATCH_SECONDS": "0", "QP_SMTP_HOST": "127.0.0.1",
                               "QP_SMTP_PORT": str(silent.port),
                               "QP_SMTP_TIMEOUT_SECONDS": "60"})
        with client(tenant) as http:
            api = sign_in(http)
            api.put("/api/v1/alerts", json={"recipients": RECIPIENTS})
            url = api.generate()
            assert http.post(url, json={}).status_code == 422  # queues a failure mail
            time.sleep(0.5)  # the mail loop is now stuck talking to the silent server
            started = time.monotonic()
            for _ in range(10):
                r = http.post(url, json={"resourceUrl": "https://acme.itglue.com/1/passwords/2",
                                         "resourceName": "x"}, timeout=10)
                assert r.status_code == 202
            # Far below the 60 s the mail attempt may hang for.
            assert time.monotonic() - started < 10
            assert api.events(type="alert.sent") == []
    finally:
        silent.close()
