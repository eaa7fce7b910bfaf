"""First-run set-up of the embedded tenant: only the app that started it, and only once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import TenantProcess
from tests.support.tenant_api import ADMIN_PASSWORD, first_run_admin

SETUP_TOKEN = "setup-secret-for-this-run"


def _fresh_tenant(tmp_path: Path, db_kind: str, request: pytest.FixtureRequest,
                  env: dict[str, str]) -> TenantProcess:
    if db_kind == "postgresql":
        server = request.getfixturevalue("postgres_server")
        env = {**env, "QP_DATABASE_URL": server.url(server.create_database(prefix="qp_setup"))}
    return TenantProcess(tmp_path / "fresh", env=env)


@pytest.fixture
def fresh(tmp_path: Path, db_kind: str, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """A tenant with no user at all, started with the app's set-up token."""
    tenant = _fresh_tenant(tmp_path, db_kind, request, {"QP_SETUP_TOKEN": SETUP_TOKEN})
    tenant.start()
    try:
        with httpx.Client(base_url=tenant.url, timeout=30) as http:
            yield http
    finally:
        tenant.stop()


def _setup(http: httpx.Client, token: str | None) -> httpx.Response:
    headers = {"X-QP-Setup-Token": token} if token is not None else {}
    return http.post("/api/v1/setup/admin", headers=headers,
                     json={"email": "me@example.com", "password": ADMIN_PASSWORD})


def test_only_the_app_holding_the_setup_token_creates_the_first_admin(
        fresh: httpx.Client) -> None:
    assert fresh.get("/api/v1/setup").json() == {"needs_admin": True}
    for token in (None, "", "setup-secret-for-this-ru", SETUP_TOKEN + "x"):
        r = _setup(fresh, token)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "setup_not_allowed"
        assert "app that started this tenant" in r.json()["error"]["message"]
    assert fresh.get("/api/v1/setup").json() == {"needs_admin": True}  # nothing was made

    admin = first_run_admin(fresh, SETUP_TOKEN, "me@example.com", ADMIN_PASSWORD)
    me = admin.get("/api/v1/me").json()
    assert me["user"]["role"] == "admin" and me["user"]["email"] == "me@example.com"
    assert me["tenant"]["slug"] == "local"
    assert fresh.get("/api/v1/setup").json() == {"needs_admin": False}


def test_a_second_setup_is_refused_and_changes_nothing(fresh: httpx.Client) -> None:
    first_run_admin(fresh, SETUP_TOKEN, "me@example.com", ADMIN_PASSWORD)
    again = fresh.post("/api/v1/setup/admin", headers={"X-QP-Setup-Token": SETUP_TOKEN},
                       json={"email": "intruder@example.com", "password": ADMIN_PASSWORD})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "already_set_up"
    assert "Sign in instead" in again.json()["error"]["message"]
    refused = fresh.post("/api/v1/auth/login",
                         json={"email": "intruder@example.com", "password": ADMIN_PASSWORD})
    assert refused.status_code == 401


def test_a_tenant_started_without_a_setup_token_refuses_setup_over_http(
        tmp_path: Path, db_kind: str, request: pytest.FixtureRequest) -> None:
    tenant = _fresh_tenant(tmp_path, db_kind, request, {"QP_SETUP_TOKEN": ""})
    tenant.start()
    try:
        with httpx.Client(base_url=tenant.url, timeout=30) as http:
            for token in (None, ""):
                r = _setup(http, token)
                assert r.status_code == 403, r.text
                assert r.json()["error"]["code"] == "setup_not_allowed"
            assert http.get("/api/v1/setup").json() == {"needs_admin": True}
    finally:
        tenant.stop()
