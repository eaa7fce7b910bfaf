"""Roles hold on every route: the table below, README.md's "Roles" table and the running
tenant's ``/openapi.json`` agree, and each principal gets what the table says.

A route added without an entry here fails ``test_every_route_answers_each_principal_as_the_
role_table_says``, so no route can ship without a decided least role.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ITGLUE_KEY
from tests.support import postgres
from tests.support.pipeline import (
    connect_itglue,
    db_rows,
    enroll_agent,
    fire,
    trigger_body,
    wait_for,
)
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.support.tenant_api import bearer
from tests.tenant.conftest import Api, sign_in

README = Path(__file__).resolve().parents[2] / "README.md"
# The first test also makes the module's template (four CLI runs, each an argon2 hash).
pytestmark = pytest.mark.timeout(400)

# The least role of every route. "public": no credential (or one of its own, in the body);
# "agent": an agent credential (`qpag_…`), which is no user; "webhook": the token in the URL.
# Path parameters are written {id}, whatever the route calls them.
ROUTE_ROLES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "public",
    ("POST", "/api/v1/auth/login"): "public",
    ("POST", "/api/v1/auth/refresh"): "public",
    ("GET", "/api/v1/setup"): "public",
    ("POST", "/api/v1/setup/admin"): "public",
    ("POST", "/api/v1/agent/enroll"): "public",
    ("POST", "/hooks/itglue/{id}"): "webhook",
    ("POST", "/api/v1/auth/logout"): "viewer",
    ("GET", "/api/v1/me"): "viewer",
    ("GET", "/api/v1/integrations/itglue"): "viewer",
    ("GET", "/api/v1/events"): "viewer",
    ("GET", "/api/v1/events/stream"): "viewer",
    ("GET", "/api/v1/events/{id}"): "viewer",
    ("GET", "/api/v1/alerts"): "viewer",
    ("GET", "/api/v1/customers"): "viewer",
    ("GET", "/api/v1/customers/{id}/microsoft365"): "viewer",
    ("GET", "/api/v1/microsoft365/prerequisites"): "viewer",
    ("GET", "/api/v1/accounts"): "viewer",
    ("GET", "/api/v1/accounts/{id}"): "viewer",
    ("GET", "/api/v1/customers/{id}/itglue-passwords"): "viewer",
    ("GET", "/api/v1/agents"): "viewer",
    ("POST", "/api/v1/events/{id}/replay"): "technician",
    ("POST", "/api/v1/customers"): "technician",
    ("POST", "/api/v1/customers/import-itglue"): "technician",
    ("POST", "/api/v1/customers/{id}/microsoft365/sync"): "technician",
    ("POST", "/api/v1/accounts/automatch"): "technician",
    ("POST", "/api/v1/accounts/{id}/reset"): "technician",
    ("POST", "/api/v1/agents/{id}/sync"): "technician",
    ("PATCH", "/api/v1/accounts/{id}"): "technician",  # admin when source/customer_id change
    ("POST", "/api/v1/integrations/itglue/workflow-token/reveal"): "technician",
    ("PUT", "/api/v1/integrations/itglue"): "admin",
    ("DELETE", "/api/v1/integrations/itglue"): "admin",
    ("POST", "/api/v1/integrations/itglue/workflow-token"): "admin",
    ("DELETE", "/api/v1/integrations/itglue/workflow-token"): "admin",
    ("PUT", "/api/v1/alerts"): "admin",
    ("POST", "/api/v1/agents/enrollment-codes"): "admin",
    ("DELETE", "/api/v1/agents/{id}"): "admin",
    ("PATCH", "/api/v1/agents/{id}"): "admin",
    ("POST", "/api/v1/accounts"): "admin",
    ("DELETE", "/api/v1/accounts/{id}"): "admin",
    ("PUT", "/api/v1/customers/{id}/microsoft365"): "admin",
    ("DELETE", "/api/v1/customers/{id}/microsoft365"): "admin",
    ("POST", "/api/v1/agent/heartbeat"): "agent",
    ("GET", "/api/v1/agent/jobs"): "agent",
    ("POST", "/api/v1/agent/jobs/{id}/result"): "agent",
    ("GET", "/api/v1/agent/sync-request"): "agent",
    ("POST", "/api/v1/agent/accounts"): "agent",
}
USER_ROLES = ("viewer", "technician", "admin")
PASSWORD = "a long enough passphrase for tests"
BETA_ADMIN = "admin@beta.test"


def normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{id}", path)


def readme_roles() -> dict[tuple[str, str], str]:
    """The rows of README.md's "Roles" table: | method | path | least role | … |."""
    text = README.read_text()
    section = text.split("\n## Roles\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[tuple[str, str], str] = {}
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        methods = cells[0].split("/")
        if len(cells) < 3 or not set(methods) <= {"GET", "POST", "PUT", "PATCH", "DELETE"}:
            continue
        role = cells[2].split()[0]
        for method in methods:
            rows[(method, normalise(cells[1]))] = role
    return rows


def test_the_readme_role_table_is_the_tested_one() -> None:
    assert readme_roles() == ROUTE_ROLES


# --------------------------------------------------------------------------- the walk
@dataclass
class World:
    """One tenant with a principal of every kind, and rows for every id route to name."""

    http: httpx.Client
    tokens: dict[str, str]  # principal → bearer token
    ids: dict[str, int]  # path prefix → an id of this tenant
    linked_customer: int
    account: dict[str, Any]
    trigger_id: int


@pytest.fixture(scope="module")
def roles_template(tmp_path_factory: pytest.TempPathFactory, tenant_template: Path,
                   request: pytest.FixtureRequest) -> Path:
    """The tenant template plus a viewer and a technician in ``acme`` and a second tenant
    ``beta`` with its own admin, made once (each user is an argon2 hash and a process)."""
    folder = tmp_path_factory.mktemp("roles") / "data"
    shutil.copytree(tenant_template, folder)
    maker = TenantProcess(folder)  # on PostgreSQL: a clone of the template's database
    for role in ("viewer", "technician"):
        maker.create_user("acme", f"{role}@acme.test", PASSWORD, role=role)
    maker.create_tenant("beta", "Beta MSP")
    maker.create_user("beta", BETA_ADMIN, PASSWORD)
    marker = postgres.read_marker(folder)
    if marker is not None:  # copies of this folder get clones of that database
        server = request.getfixturevalue("postgres_server")
        postgres.write_marker(folder, server, marker["database"], "template")
    return folder


@pytest.fixture
def tenant_proc(tmp_path: Path, roles_template: Path,
                itglue_emulator: EmulatorProcess) -> Iterator[TenantProcess]:
    """This module's tenant: conftest's, started from :func:`roles_template`."""
    data = tmp_path / "tenant-data"
    shutil.copytree(roles_template, data)
    tenant = TenantProcess(data, env={"QP_ITGLUE_BASE_URL": itglue_emulator.url,
                                      "QP_PUBLIC_URL": ""})
    tenant.start()
    try:
        yield tenant
    finally:
        tenant.stop()


@pytest.fixture
def world(tenant_proc: TenantProcess, http: httpx.Client, api: Api) -> Iterator[World]:
    connect_itglue(api)
    assert api.post("/api/v1/customers/import-itglue").status_code == 200
    customers = {c["name"]: c for c in api.get("/api/v1/customers").json()["customers"]}
    northwind = customers["Northwind Traders"]["id"]
    agent_id, agent_token = enroll_agent(api, http)
    account = api.post("/api/v1/accounts", json={
        "customer_id": northwind, "kind": "administrator", "display_name": "Domain admin",
        "itglue_password_id": "5001",
        "source": {"type": "active_directory", "agent_id": agent_id, "directory": "corp",
                   "identity": "CN=Administrator,CN=Users,DC=nwt,DC=local"}})
    assert account.status_code == 201, account.text
    trigger_id = fire(api.generate(), trigger_body(101, 5001, "Domain admin"))
    jobs = wait_for(lambda: db_rows(tenant_proc, "SELECT id FROM reset_jobs"), 20,
                    "the trigger's reset job")

    tokens = {"admin": api.access_token, "agent": agent_token}
    for role in ("viewer", "technician"):
        tokens[role] = sign_in(http, f"{role}@acme.test", PASSWORD).access_token
    tokens["other_admin"] = sign_in(http, BETA_ADMIN, PASSWORD, tenant="beta").access_token
    yield World(http=http, tokens=tokens, linked_customer=northwind, account=account.json(),
                trigger_id=trigger_id,
                ids={"/api/v1/events/": trigger_id, "/api/v1/accounts/": account.json()["id"],
                     "/api/v1/agents/": agent_id, "/api/v1/customers/": northwind,
                     "/api/v1/agent/jobs/": jobs[0]["id"]})


def _bodies(world: World) -> dict[tuple[str, str], Any]:
    """A body an allowed principal would send, so an allowed call does its real work."""
    source = world.account["source"]
    return {
        ("PATCH", "/api/v1/accounts/{id}"): {"display_name": "Domain admin (NWT)"},
        ("POST", "/api/v1/accounts"): {
            "customer_id": world.linked_customer, "kind": "service", "display_name": "Backup",
            "source": {**source, "identity": "svc-backup"}},
        ("POST", "/api/v1/accounts/automatch"): {"customer_id": world.linked_customer},
        ("POST", "/api/v1/customers"): {"name": "Walk-in"},
        ("PUT", "/api/v1/integrations/itglue"): {"region": "us", "api_key": ITGLUE_KEY},
        ("POST", "/api/v1/integrations/itglue/workflow-token"): {"grace_hours": 0},
        ("PUT", "/api/v1/alerts"): {"recipients": ["ops@acme.test"]},
        ("POST", "/api/v1/agents/enrollment-codes"): {"name": "dc2"},
        ("PATCH", "/api/v1/agents/{id}"): {"customer_id": world.linked_customer},
        ("PUT", "/api/v1/customers/{id}/microsoft365"): {
            "tenant_id": "contoso.onmicrosoft.com", "client_id": "role-walk-app",
            "client_secret": "role-walk-secret"},
        ("POST", "/api/v1/agent/heartbeat"): {"directories": []},
        ("POST", "/api/v1/agent/jobs/{id}/result"): {"ok": False, "error": "role walk"},
        ("POST", "/api/v1/agent/enroll"): {"code": "QPE-NOT-A-CODE", "hostname": "h"},
        ("POST", "/api/v1/agent/accounts"): {
            "sync_id": "role-walk", "directory": "corp", "directory_kind": "active_directory",
            "accounts": [{"identity": "CN=Role Walk,CN=Users,DC=nwt,DC=local",
                          "login_names": ["rwalk"]}], "final": False},
    }


PARAMS = {("GET", "/api/v1/agent/jobs"): {"wait": 0},
          ("GET", "/api/v1/agent/sync-request"): {"wait": 0}}


def _concrete(world: World, path: str) -> str:
    if "{" not in path:
        return path
    for prefix, value in world.ids.items():
        if path.startswith(prefix):
            return re.sub(r"\{[^}]*\}", str(value), path, count=1)
    raise AssertionError(f"test_route_roles.py names no row for {path}: "
                         "add its prefix to World.ids")


def _call(world: World, who: str, method: str, path: str) -> httpx.Response:
    key = (method, normalise(path))
    url = _concrete(world, normalise(path))
    headers = bearer(world.tokens[who])
    body = _bodies(world).get(key, {} if method in ("POST", "PUT", "PATCH") else None)
    if path.endswith("/stream"):
        with world.http.stream(method, url, headers=headers) as r:
            return httpx.Response(r.status_code, headers=r.headers,
                                  content=b"" if r.status_code == 200 else r.read())
    return world.http.request(method, url, headers=headers, json=body,
                              params=PARAMS.get(key))


def _code(r: httpx.Response) -> str | None:
    try:
        return str(r.json()["error"]["code"])
    except Exception:
        return None


def _refused(r: httpx.Response) -> bool:
    return (r.status_code == 401 or (r.status_code == 403 and _code(r) == "forbidden"))


def _destructive_last(route: tuple[str, str]) -> tuple[int, str, str]:
    method, path = route
    # Signing out ends the principal's session and deletes remove rows: both come last.
    return (2 if path.endswith("/logout") else 1 if method == "DELETE" else 0, path, method)


def test_every_route_answers_each_principal_as_the_role_table_says(world: World) -> None:
    spec = world.http.get("/openapi.json").json()
    routes = sorted(((method.upper(), path) for path, ops in spec["paths"].items()
                     for method in ops), key=_destructive_last)
    unlisted = [r for r in routes if (r[0], normalise(r[1])) not in ROUTE_ROLES]
    assert not unlisted, f"routes with no least role in ROUTE_ROLES and README.md: {unlisted}"

    mismatches: list[str] = []

    def expect(ok: bool, who: str, method: str, path: str, r: httpx.Response, want: str
               ) -> None:
        if not ok:
            mismatches.append(f"{who} {method} {path}: wanted {want}, got {r.status_code} "
                              f"{r.text[:200]}")

    # Another tenant first (the rows still exist), the agent, then the roles upwards, so the
    # admin's deletes come after everyone else has used the rows.
    for who in ("other_admin", "agent", "viewer", "technician", "admin"):
        for method, path in routes:
            role = ROUTE_ROLES[(method, normalise(path))]
            r = _call(world, who, method, path)
            if role == "public":
                expect(not _refused(r), who, method, path, r, "not 401/403 forbidden")
            elif role == "agent":
                expect((r.status_code == 401) != (who == "agent")
                       and not (who == "agent" and _refused(r)), who, method, path, r,
                       "allowed for the agent, 401 for users")
            elif who == "agent":
                expect(r.status_code == 401, who, method, path, r, "401 for an agent")
            elif who == "other_admin":
                if "{" in path:
                    expect(r.status_code == 404, who, method, path, r, "404 (another tenant)")
                else:
                    expect(not _refused(r), who, method, path, r, "allowed")
            elif USER_ROLES.index(who) >= USER_ROLES.index(role):
                expect(not _refused(r) and r.status_code != 500, who, method, path, r,
                       "allowed")
            else:
                expect(r.status_code == 403 and _code(r) == "forbidden", who, method, path, r,
                       "403 forbidden")
    assert not mismatches, "\n".join(mismatches)


# ------------------------------------------------------------------------ the attack
def _jobs(tenant: TenantProcess) -> list[Any]:
    return db_rows(tenant, "SELECT id, trigger_event_id FROM reset_jobs ORDER BY id")


def test_a_viewer_can_neither_repoint_an_account_nor_replay_a_trigger(
        world: World, tenant_proc: TenantProcess, api: Api) -> None:
    """The probe's attack: point the Domain Admin account at an identity of the viewer's
    choosing, then replay a trigger so the next reset writes there. Both are refused and
    nothing is queued."""
    viewer = bearer(world.tokens["viewer"])
    account_url = f"/api/v1/accounts/{world.account['id']}"
    jobs_before = _jobs(tenant_proc)

    r = world.http.patch(account_url, headers=viewer, json={
        "source": {"identity": "CN=Attacker,CN=Users,DC=nwt,DC=local"}})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    assert "administrator" in r.json()["error"]["message"]
    r = world.http.post(f"/api/v1/events/{world.trigger_id}/replay", headers=viewer)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    assert "technician" in r.json()["error"]["message"]

    assert api.get(account_url).json()["source"] == world.account["source"]
    assert _jobs(tenant_proc) == jobs_before
    assert api.events(type="workflow_trigger.replayed") == []


def test_a_technician_changes_the_match_but_only_an_admin_changes_the_source(
        world: World, api: Api) -> None:
    tech = bearer(world.tokens["technician"])
    url = f"/api/v1/accounts/{world.account['id']}"
    for change in ({"source": {"identity": "CN=Other,CN=Users,DC=nwt,DC=local"}},
                   {"source": {"agent_id": None}}, {"source": {"type": "local"}},
                   {"source": {"directory": "elsewhere"}}, {"customer_id": 999}):
        r = world.http.patch(url, headers=tech, json=change)
        assert r.status_code == 403, (change, r.text)
        assert r.json()["error"] == {
            "code": "forbidden", "message": "Only an administrator of this tenant can do that.",
            "details": {"required_role": "admin", "role": "technician",
                        "fields": [f"source.{k}" for k in change.get("source", {})]
                        or ["customer_id"]}}
    # The whole account sent back with only the match changed is a technician's edit.
    unchanged = {k: world.account[k] for k in ("customer_id", "kind", "source")}
    r = world.http.patch(url, headers=tech, json={**unchanged, "itglue_password_id": None,
                                                  "display_name": "Domain admin (unmatched)"})
    assert r.status_code == 200, r.text
    assert r.json()["itglue_password_id"] is None
    r = world.http.patch(url, headers=tech, json={"itglue_password_id": "5001", "kind": "service"})
    assert r.status_code == 200 and r.json()["itglue_password_id"] == "5001"

    moved = api.http.patch(url, headers=api.h(), json={"source": {"identity": "svc-admin"}})
    assert moved.status_code == 200 and moved.json()["source"]["identity"] == "svc-admin"
