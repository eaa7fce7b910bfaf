"""Sign-in, refresh rotation, sign-out, throttling and tenant isolation, over real HTTP."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import stat
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.processes import TenantProcess
from tests.tenant.conftest import IT_GLUE_BODY, Api, sign_in


def test_login_returns_tokens_user_and_tenant(http: httpx.Client) -> None:
    r = http.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["access_token"].startswith("qpat_")
    assert body["refresh_token"].startswith("qprt_")
    assert 60 <= body["expires_in"] <= 3600
    assert body["user"]["email"] == ADMIN_EMAIL and body["user"]["role"] == "admin"
    assert body["tenant"]["slug"] == "acme"
    me = http.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["tenant"]["name"] == "Acme MSP"


def test_wrong_password_is_refused_with_the_contract_error(http: httpx.Client) -> None:
    r = http.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "nope"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_credentials"
    assert r.json()["error"]["message"]


def test_repeated_failures_are_throttled_with_retry_after(http: httpx.Client) -> None:
    for _ in range(5):
        assert http.post("/api/v1/auth/login",
                         json={"email": ADMIN_EMAIL, "password": "bad"}).status_code == 401
    r = http.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "too_many_attempts"
    assert int(r.headers["Retry-After"]) > 0


def _login(http: httpx.Client, password: str, via: str | None = None) -> httpx.Response:
    """Sign in as the admin; ``via`` is the client address a trusted proxy (uvicorn believes
    X-Forwarded-For from 127.0.0.1) reports, else the connection's own address counts."""
    headers = {"X-Forwarded-For": via} if via else {}
    return http.post("/api/v1/auth/login", headers=headers,
                     json={"email": ADMIN_EMAIL, "password": password})


def _assert_throttled(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "too_many_attempts"
    assert int(r.headers["Retry-After"]) > 0


def test_a_stranger_cannot_lock_the_user_out_of_their_own_address(http: httpx.Client) -> None:
    for _ in range(5):
        assert _login(http, "a guess", via="203.0.113.7").status_code == 401
    _assert_throttled(_login(http, ADMIN_PASSWORD, via="203.0.113.7"))
    # The user, from their own address, is not affected (case and spaces of the email neither).
    assert _login(http, ADMIN_PASSWORD, via="198.51.100.20").status_code == 200
    assert _login(http, ADMIN_PASSWORD).status_code == 200


def test_forwarded_for_from_an_untrusted_peer_does_not_escape_the_lockout(
        tenant_proc: TenantProcess) -> None:
    # 127.0.0.2 is not a trusted proxy: its X-Forwarded-For is ignored, so varying it gains
    # the guesser nothing.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=tenant_proc.url, transport=transport, timeout=10) as client:
        for n in range(5):
            assert _login(client, "a guess", via=f"203.0.113.{n + 1}").status_code == 401
        _assert_throttled(_login(client, ADMIN_PASSWORD, via="203.0.113.99"))
    with httpx.Client(base_url=tenant_proc.url, timeout=10) as own:
        assert _login(own, ADMIN_PASSWORD).status_code == 200


def test_concurrent_failures_are_all_counted(tenant_proc: TenantProcess,
                                             http: httpx.Client) -> None:
    answers = _at_once(tenant_proc.url, 5, "/api/v1/auth/login",
                       {"email": ADMIN_EMAIL, "password": "a guess"},
                       headers={"X-Forwarded-For": "203.0.113.9"})
    assert [r.status_code for r in answers] == [401] * 5, [r.text for r in answers]
    _assert_throttled(_login(http, ADMIN_PASSWORD, via="203.0.113.9"))


@pytest.fixture
def tenant_factory(tmp_path: Path, tenant_template: Path) -> Iterator[
        Callable[..., TenantProcess]]:
    """Start tenants with extra settings on one copy of the template (one shared database)."""
    data = tmp_path / "shared-data"
    shutil.copytree(tenant_template, data)
    started: list[TenantProcess] = []

    def start(**env: str) -> TenantProcess:
        proc = TenantProcess(data, env={"QP_PUBLIC_URL": "", **env})
        proc.start()
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


def test_a_spray_from_many_addresses_is_slowed_except_where_the_user_signs_in(
        tenant_factory: Callable[..., TenantProcess]) -> None:
    tenant = tenant_factory(QP_LOGIN_EMAIL_MAX_FAILURES="4", QP_LOGIN_EMAIL_DELAY_SECONDS="600")
    with httpx.Client(base_url=tenant.url, timeout=10) as http:
        assert _login(http, ADMIN_PASSWORD, via="198.51.100.20").status_code == 200
        # Four addresses, one guess each: none reaches the per-address limit...
        for n in range(4):
            assert _login(http, "a guess", via=f"203.0.113.{n + 1}").status_code == 401
        # ...but the email now waits between attempts from any address not seen before,
        # whatever the password,
        _assert_throttled(_login(http, "another guess", via="203.0.113.50"))
        _assert_throttled(_login(http, ADMIN_PASSWORD, via="192.0.2.10"))
        # while the address the user signed in from goes on working.
        assert _login(http, ADMIN_PASSWORD, via="198.51.100.20").status_code == 200


def test_failed_sign_ins_count_across_processes(
        tenant_factory: Callable[..., TenantProcess]) -> None:
    first, second = tenant_factory(), tenant_factory()
    with httpx.Client(base_url=first.url, timeout=10) as a, \
            httpx.Client(base_url=second.url, timeout=10) as b:
        for client in (a, b, a, b, a):
            assert _login(client, "a guess").status_code == 401
        _assert_throttled(_login(b, ADMIN_PASSWORD))
        _assert_throttled(_login(a, ADMIN_PASSWORD))
    # A restart forgets nothing either.
    first.restart()
    with httpx.Client(base_url=first.url, timeout=10) as a:
        _assert_throttled(_login(a, ADMIN_PASSWORD))


def test_refresh_rotates_and_reuse_revokes_the_family(http: httpx.Client) -> None:
    api = sign_in(http)
    r1 = http.post("/api/v1/auth/refresh", json={"refresh_token": api.refresh_token})
    assert r1.status_code == 200
    second = r1.json()
    assert second["refresh_token"] != api.refresh_token
    assert http.get("/api/v1/me", headers={
        "Authorization": f"Bearer {second['access_token']}"}).status_code == 200
    # The first refresh token is presented again: someone copied it. The family dies.
    reused = http.post("/api/v1/auth/refresh", json={"refresh_token": api.refresh_token})
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "refresh_token_reused"
    assert http.post("/api/v1/auth/refresh",
                     json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert http.get("/api/v1/me", headers={
        "Authorization": f"Bearer {second['access_token']}"}).status_code == 401


def test_logout_ends_the_session(http: httpx.Client) -> None:
    api = sign_in(http)
    assert api.post("/api/v1/auth/logout").status_code == 204
    assert api.get("/api/v1/me").status_code == 401
    assert http.post("/api/v1/auth/refresh",
                     json={"refresh_token": api.refresh_token}).status_code == 401


def test_missing_or_bad_bearer_is_401(http: httpx.Client) -> None:
    assert http.get("/api/v1/me").json()["error"]["code"] == "unauthorized"
    r = http.get("/api/v1/events", headers={"Authorization": "Bearer qpat_forged"})
    assert r.status_code == 401


def test_a_user_of_one_tenant_sees_nothing_of_another(tenant_proc: TenantProcess,
                                                       http: httpx.Client) -> None:
    tenant_proc.create_tenant("globex", "Globex IT")
    tenant_proc.create_user("globex", "tech@globex.test", "another long password")
    acme = sign_in(http)
    globex = sign_in(http, "tech@globex.test", "another long password")
    acme_url = acme.generate()
    assert http.post(acme_url, json=IT_GLUE_BODY).status_code == 202
    acme_events = acme.events()
    assert acme_events
    # Globex sees none of Acme's events, token or integration.
    assert globex.events() == []
    assert globex.get("/api/v1/integrations/itglue").json()["workflow_token"] is None
    assert globex.get(f"/api/v1/events/{acme_events[0]['id']}").status_code == 404
    with httpx.Client(base_url=tenant_proc.url) as raw:
        stream_events = []
        with raw.stream("GET", "/api/v1/events/stream", headers={
            **globex.h(), "Last-Event-ID": "0"}, timeout=httpx.Timeout(5, read=3)) as resp:
            try:
                for line in resp.iter_lines():
                    if line.startswith("data:"):
                        stream_events.append(line)
            except httpx.ReadTimeout:
                pass
        assert stream_events == []
    # Globex's token does not let anyone write into Acme.
    globex_url = globex.generate()
    assert http.post(globex_url, json={**IT_GLUE_BODY, "resourceName": "Globex"}).status_code == 202
    assert all(e["resource_name"] != "Globex" for e in acme.events())
    # And Acme's revocation does not touch Globex's token.
    assert acme.delete("/api/v1/integrations/itglue/workflow-token").status_code == 204
    assert http.post(globex_url, json={**IT_GLUE_BODY, "n": 2}).status_code == 202


def _at_once(base_url: str, racers: int, path: str, body: dict[str, Any],
             headers: dict[str, str] | None = None) -> list[httpx.Response]:
    """``racers`` clients, each on its own connection, POST the same request together."""
    barrier = threading.Barrier(racers)

    def present() -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            client.get("/healthz")  # connect first, so the requests leave together
            barrier.wait()
            return client.post(path, json=body, headers=headers)

    with ThreadPoolExecutor(racers) as pool:
        return list(pool.map(lambda _: present(), range(racers)))


def test_concurrent_refreshes_of_one_token_let_exactly_one_through(
        tenant_proc: TenantProcess, http: httpx.Client) -> None:
    for _ in range(10):
        api = sign_in(http)
        answers = _at_once(tenant_proc.url, 4, "/api/v1/auth/refresh",
                           {"refresh_token": api.refresh_token})
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [200, 401, 401, 401], [r.text for r in answers]
        # The losers count as reuse: the family is ended, the winner's new tokens included.
        assert all(r.json()["error"]["code"] == "refresh_token_reused"
                   for r in answers if r.status_code == 401)
        winner = next(r.json() for r in answers if r.status_code == 200)
        assert http.get("/api/v1/me", headers={
            "Authorization": f"Bearer {winner['access_token']}"}).status_code == 401
        assert http.post("/api/v1/auth/refresh", json={
            "refresh_token": winner["refresh_token"]}).status_code == 401


def _raw_exchange(url: str, head: str, body_parts: list[bytes]) -> tuple[int, dict[str, Any]]:
    """Send a request head and some body bytes on a raw socket (no more), then read the answer.

    The body is deliberately left unfinished: an answer proves the tenant refused without
    waiting for the rest. A tenant that waits lets the read time out instead.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        for part in body_parts:
            sock.sendall(part)
        reader = sock.makefile("rb")
        status = int(reader.readline().split()[1])
        length = 0
        while (line := reader.readline().strip()):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, json.loads(reader.read(length))


def test_a_2_mib_sign_in_body_gets_413_and_the_tenant_stays_healthy(
        http: httpx.Client) -> None:
    padding = "x" * (2 * 1024 * 1024)
    r = http.post("/api/v1/auth/login", content=json.dumps(
        {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "padding": padding}),
        headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert "1 MiB" in r.json()["error"]["message"]
    assert http.get("/healthz").json()["status"] == "ok"
    assert _login(http, ADMIN_PASSWORD).status_code == 200


def test_a_declared_200_mb_body_is_refused_before_it_is_sent(tenant_proc: TenantProcess,
                                                             http: httpx.Client) -> None:
    status, body = _raw_exchange(tenant_proc.url, (
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: qp\r\nContent-Type: application/json\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\n\r\n"), [b'{"email": "'])
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert http.get("/healthz").json()["status"] == "ok"


def test_a_chunked_body_is_cut_off_past_the_cap(tenant_proc: TenantProcess,
                                                api: Api) -> None:
    chunk = b"x" * (64 * 1024)
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    status, body = _raw_exchange(tenant_proc.url, (
        "PUT /api/v1/alerts HTTP/1.1\r\nHost: qp\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {api.access_token}\r\nTransfer-Encoding: chunked\r\n\r\n"),
        [framed] * 17)  # 1 MiB + 64 KiB, and no final chunk
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert api.get("/healthz").json()["status"] == "ok"
    # A body under the cap, chunked the same way, still reaches the route.
    small = api.http.put("/api/v1/alerts",
                         headers={**api.h(), "content-type": "application/json"},
                         content=iter([b'{"recipients": ["ops@acme.test"]}']))
    assert small.status_code == 200, small.text


def _create_user(tenant: TenantProcess, email: str, password: str
                 ) -> subprocess.CompletedProcess[str]:
    return tenant.cli("create-user", "--tenant", "acme", "--email", email, "--role", "viewer",
                      "--password-stdin", input=password + "\n", check=False)


@pytest.mark.parametrize("password", ["          ", "1234567890", "passwordpassword",
                                      "new@acme.test"])
def test_create_user_refuses_a_guessable_password_with_advice(tenant_proc: TenantProcess,
                                                              password: str) -> None:
    done = _create_user(tenant_proc, "new@acme.test", password)
    assert done.returncode == 1
    assert ("Choose a longer password that is not a common word or sequence:" in done.stderr
            or "at least 10 characters" in done.stderr), done.stderr
    assert password.strip() == "" or password not in done.stderr


def test_the_longest_password_that_can_be_set_can_also_be_used(tenant_proc: TenantProcess,
                                                              http: httpx.Client) -> None:
    too_long = secrets.token_urlsafe(900)[:1100]
    done = _create_user(tenant_proc, "long@acme.test", too_long)
    assert done.returncode == 1 and "at most 256 characters" in done.stderr
    longest = secrets.token_urlsafe(200)[:256]
    assert _create_user(tenant_proc, "long@acme.test", longest).returncode == 0
    r = http.post("/api/v1/auth/login", json={"email": "long@acme.test", "password": longest})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("email", ["x@y@z <script>", "Jane <jane@acme.test>", "jane@",
                                   "jane@acme"])
def test_create_user_refuses_an_address_that_is_not_an_email(tenant_proc: TenantProcess,
                                                             email: str) -> None:
    done = _create_user(tenant_proc, email, ADMIN_PASSWORD)
    assert done.returncode == 1
    assert "Enter a valid email address:" in done.stderr, done.stderr


def test_first_run_setup_applies_the_same_password_rules(tmp_path: Path) -> None:
    tenant = TenantProcess(tmp_path / "fresh", env={"QP_SETUP_TOKEN": "setup-secret"})
    tenant.start()
    try:
        with httpx.Client(base_url=tenant.url, timeout=30,
                          headers={"X-QP-Setup-Token": "setup-secret"}) as http:
            weak = http.post("/api/v1/setup/admin",
                             json={"email": "me@example.com", "password": "1234567890"})
            assert weak.status_code == 422
            assert weak.json()["error"]["code"] == "weak_password"
            assert "common" in weak.json()["error"]["message"]
            bad_email = http.post("/api/v1/setup/admin",
                                  json={"email": "x@y@z <script>", "password": ADMIN_PASSWORD})
            assert bad_email.json()["error"]["code"] == "invalid_email"
            too_long = http.post("/api/v1/setup/admin", json={
                "email": "me@example.com", "password": secrets.token_urlsafe(300)[:257]})
            assert too_long.status_code == 422
            made = http.post("/api/v1/setup/admin",
                             json={"email": "me@example.com", "password": ADMIN_PASSWORD})
            assert made.status_code == 200, made.text
    finally:
        tenant.stop()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_data_folder_is_readable_by_its_owner_only(tmp_path: Path, db_kind: str,
                                                           request: pytest.FixtureRequest
                                                           ) -> None:
    data = tmp_path / "fresh"
    env = {"QP_PUBLIC_URL": ""}
    if db_kind == "postgresql":
        server = request.getfixturevalue("postgres_server")
        env["QP_DATABASE_URL"] = server.url(server.create_database(prefix="qp_modes"))
    tenant = TenantProcess(data, env=env)
    data.chmod(0o755)  # as a folder made by hand or by a service manager usually is
    tenant.cli("migrate")
    tenant.create_tenant("acme", "Acme MSP")
    tenant.create_user("acme", ADMIN_EMAIL, ADMIN_PASSWORD)
    tenant.start()
    try:
        with httpx.Client(base_url=tenant.url, timeout=30) as http:
            sign_in(http)  # a write: SQLite's -wal and -shm files exist while it serves
            assert _mode(data) == 0o700
            assert _mode(data / "logs") == 0o700
            files = [data / "logs" / "qp-tenant.log", data / "secret.key"]
            if db_kind == "sqlite":
                files += [data / "qp-tenant.db", data / "qp-tenant.db-wal",
                          data / "qp-tenant.db-shm"]
            for path in files:
                assert _mode(path) == 0o600, f"{path.name}: {oct(_mode(path))}"
            assert sorted(p for p in data.rglob("*") if _mode(p) & 0o077) == []
    finally:
        tenant.stop()
