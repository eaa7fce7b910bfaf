"""Helpers for reset-pipeline tests: a tuned tenant, an agent over HTTP, polling for events."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.conftest import ITGLUE_KEY
from tests.support.postgres import query
from tests.support.processes import TenantProcess
from tests.support.tenant_api import Api, bearer, sign_in

T = TypeVar("T")

# Short leases and back-offs so lease expiry and retry limits happen within a test.
FAST_PIPELINE_ENV = {
    "QP_PIPELINE_POLL_SECONDS": "0.2",
    "QP_RESET_LEASE_SECONDS": "1.5",
    "QP_RESET_MAX_ATTEMPTS": "2",
    "QP_RESET_RETRY_BASE_SECONDS": "0.2",
    "QP_ITGLUE_RETRY_BASE_SECONDS": "0.1",
    "QP_AGENT_POLL_FALLBACK_SECONDS": "0.5",
    # The IT Glue watcher only where a test asks for it: its requests would take faults
    # queued in the emulator and find other tests' changes.
    "QP_ITGLUE_WATCH_SECONDS": "0",
}


def start_tenant(tmp_path: Path, template: Path, itglue_url: str,
                 env: dict[str, str] | None = None, name: str = "tenant-data") -> TenantProcess:
    data = tmp_path / name
    shutil.copytree(template, data)
    tenant = TenantProcess(data, env={"QP_ITGLUE_BASE_URL": itglue_url, "QP_PUBLIC_URL": "",
                                      **FAST_PIPELINE_ENV, **(env or {})})
    tenant.start()
    return tenant


def wait_for(probe: Callable[[], T | None], timeout: float = 20.0, what: str = "condition"
             ) -> T:
    """Poll ``probe`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling for a condition with a deadline


def connect_itglue(api: Api, key: str = ITGLUE_KEY) -> None:
    api.connect_itglue(key)


def import_customers(api: Api, key: str = ITGLUE_KEY) -> dict[str, int]:
    """Connect IT Glue with ``key`` and import its organizations: customer ids by name."""
    connect_itglue(api, key)
    r = api.post("/api/v1/customers/import-itglue")
    assert r.status_code == 200, r.text
    return {c["name"]: c["id"] for c in api.get("/api/v1/customers").json()["customers"]}


def change_in_itglue(itglue_url: str, password_id: int | str, value: str,
                     updated_by: str | None = None) -> dict[str, Any]:
    """A technician changes a password in IT Glue's web app (the emulator at ``itglue_url``);
    nothing calls the tenant. Returns the emulator's answer: ``resource_url``,
    ``resource_name``, ``password_updated_at``."""
    body = {"password": value} | ({"updated_by": updated_by} if updated_by else {})
    r = httpx.post(f"{itglue_url}/_emulator/passwords/{password_id}/change", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def workflow_call(url: str, changed: dict[str, Any], **extra: str) -> httpx.Response:
    """IT Glue's workflow posting its webhook to ``url`` for ``changed`` (what
    ``change_in_itglue`` returned), with any ``extra`` keys in the body."""
    return httpx.post(url, json={"resourceUrl": changed["resource_url"],
                                 "resourceName": changed["resource_name"], **extra})


def trigger_body(org_id: int | str, password_id: int | str, name: str,
                 subdomain: str = "acme") -> dict[str, str]:
    return {"resourceUrl": f"https://{subdomain}.itglue.com/{org_id}/passwords/{password_id}",
            "resourceName": name}


def fire(url: str, body: dict[str, Any]) -> int:
    r = httpx.post(url, json=body, timeout=10)
    assert r.status_code == 202, r.text
    return int(r.json()["event_id"])


def event_for_trigger(api: Any, trigger_id: int, type_: str) -> dict[str, Any] | None:
    for event in api.events(type=type_, limit=500):
        if event["details"].get("trigger_event_id") == trigger_id:
            return dict(event)
    return None


def wait_for_trigger_event(api: Any, trigger_id: int, type_: str,
                           timeout: float = 20.0) -> dict[str, Any]:
    return wait_for(lambda: event_for_trigger(api, trigger_id, type_), timeout,
                    f"{type_} for trigger {trigger_id}")


def enroll_agent(api: Any, http: httpx.Client, name: str = "dc1") -> tuple[int, str]:
    r = api.post("/api/v1/agents/enrollment-codes", json={"name": name})
    assert r.status_code == 201, r.text
    r = http.post("/api/v1/agent/enroll",
                  json={"code": r.json()["code"], "name": name, "hostname": f"{name}.test"})
    assert r.status_code == 201, r.text
    return int(r.json()["agent_id"]), str(r.json()["agent_token"])


def agent_headers(token: str) -> dict[str, str]:
    return bearer(token)


def db_rows(tenant: TenantProcess, sql: str, *params: Any) -> list[Any]:
    """Read the tenant's database directly (SQLite in WAL mode is safe beside the process)."""
    if tenant.database_url:
        return query(tenant.database_url, sql, *params)
    conn = sqlite3.connect(tenant.data_dir / "qp-tenant.db")
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def start_ldap_agent(tmp_path: Path, tenant_url: str, code: str,
                     ldap_url: str) -> subprocess.Popen[str]:
    """Enroll the real ``qp-agent`` with ``code`` and run it against the agent suite's slapd
    (one OpenLDAP directory, ``corp-ldap``, heartbeat every second). The caller stops it."""
    from tests.agent.conftest import AGENT_DN, AGENT_PASSWORD, PEOPLE_DN

    credential = tmp_path / "agent-credential.json"
    enrolled = subprocess.run(
        [sys.executable, "-m", "qp_agent", "enroll", "--tenant", tenant_url, "--code", code,
         "--credential-file", str(credential), "--no-keyring"],
        capture_output=True, text=True, timeout=60)
    assert enrolled.returncode == 0, enrolled.stderr
    config = tmp_path / "agent.toml"
    config.write_text(
        f'credential_file = "{credential}"\n'
        "heartbeat_seconds = 1\n\n"
        "[[directory]]\n"
        'name = "corp-ldap"\n'
        'kind = "openldap"\n'
        f'url = "{ldap_url}"\n'
        f'bind_dn = "{AGENT_DN}"\n'
        'bind_password_env = "QP_E2E_LDAP_BIND"\n'
        f'base_dn = "{PEOPLE_DN}"\n')
    return subprocess.Popen(
        [sys.executable, "-m", "qp_agent", "run", "--config", str(config)],
        env={**os.environ, "QP_E2E_LDAP_BIND": AGENT_PASSWORD},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_agent(agent: subprocess.Popen[str] | None) -> str:
    """Stop an agent process started with its output on a pipe; what it printed."""
    if agent is None:
        return ""
    agent.terminate()
    try:
        output, _ = agent.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        agent.kill()
        output, _ = agent.communicate()
    return output or ""


DOMAIN_ADMIN = 5001  # the emulator's demo "Domain Admin" password in Northwind Traders


@dataclass
class LdapWorld:
    """What the end-to-end tests start from (see ``ldap_world``)."""

    tenant: TenantProcess
    http: httpx.Client
    api: Api
    customers: dict[str, int]  # imported from IT Glue, ids by name
    workflow_url: str | None
    agent: subprocess.Popen[str]
    agent_id: int
    account: dict[str, Any]  # "Northwind directory admin", matched to DOMAIN_ADMIN
    agent_output: str = ""  # everything the agent printed, once the world is closed

    def assert_applied(self, slapd: Any, user: Any, new_password: str, by: str) -> None:
        """What a technician sees once a change reached the directory: the new password
        binds and the old one no longer does, the account says the reset succeeded and
        whose change it was, and no event holds the password."""
        assert slapd.can_bind(user.dn, new_password)
        assert not slapd.can_bind(user.dn, user.password)
        after = self.api.get(f"/api/v1/accounts/{self.account['id']}").json()
        assert after["last_result"] == "succeeded"
        assert after["last_reset_by"] == by
        assert new_password not in str(self.api.events(limit=500))


@contextmanager
def ldap_world(tmp_path: Path, template: Path, itglue_url: str, ldap_url: str,
               identity: str, *, env: dict[str, str] | None = None,
               workflow_url: bool = True) -> Iterator[LdapWorld]:
    """A tenant with IT Glue connected and its customers imported, a workflow URL (unless
    ``workflow_url`` is false), the real ``qp-agent`` enrolled and online with the slapd
    directory ``corp-ldap``, and the account "Northwind directory admin" (the LDAP entry
    ``identity``) matched to IT Glue's Domain Admin password. On leaving, the agent and
    the tenant are stopped; the agent's output is then in ``agent_output``."""
    tenant = start_tenant(tmp_path, template, itglue_url, env=env)
    agent: subprocess.Popen[str] | None = None
    world: LdapWorld | None = None
    try:
        with httpx.Client(base_url=tenant.url, timeout=10) as http:
            api = sign_in(http)
            customers = import_customers(api)
            url = api.generate() if workflow_url else None
            code = api.post("/api/v1/agents/enrollment-codes", json={"name": "ldap-1"})
            assert code.status_code == 201, code.text
            agent = start_ldap_agent(tmp_path, tenant.url, code.json()["code"], ldap_url)
            agent_id = wait_for(
                lambda: next((a["id"] for a in api.get("/api/v1/agents").json()["agents"]
                              if a["status"] == "online"
                              and [(d["name"], d["kind"]) for d in a["directories"]]
                              == [("corp-ldap", "openldap")]), None),
                30, "the agent online with its directory")
            account = api.post("/api/v1/accounts", json={
                "customer_id": customers["Northwind Traders"], "kind": "administrator",
                "display_name": "Northwind directory admin",
                "source": {"type": "openldap", "agent_id": agent_id,
                           "directory": "corp-ldap", "identity": identity},
                "itglue_password_id": DOMAIN_ADMIN,
            })
            assert account.status_code == 201, account.text
            world = LdapWorld(tenant, http, api, customers, url, agent, agent_id,
                              account.json())
            yield world
    finally:
        output = stop_agent(agent)
        if world is not None:
            world.agent_output = output
        tenant.stop()
