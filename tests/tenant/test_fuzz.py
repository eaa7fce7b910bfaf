"""Schemathesis over ``/openapi.json`` of a real tenant process, signed in as admin.

Every check runs (no server error, only declared statuses, declared content types, bodies
matching the declared schemas, invalid input refused, valid input accepted, …) with a fixed
seed and a bounded number of examples per operation, so the run is reproducible and takes a
few minutes. ``QP_FUZZ_EXAMPLES`` raises the bound for a longer hunt by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.m365 import M365EmulatorProcess
from tests.support.pipeline import connect_itglue, enroll_agent, fire, trigger_body
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.tenant.conftest import Api

pytestmark = pytest.mark.fuzz

MAX_EXAMPLES = int(os.environ.get("QP_FUZZ_EXAMPLES", "15"))
SEED = 20261129

# Per-operation settings. Each exclusion or widened expectation says why. Within one entry
# schemathesis takes an operation when ANY include-* filter matches it, so an entry names its
# operations whole ("METHOD /path") rather than combining a path and a method filter.
OPERATIONS = """
# Signing out revokes the session the whole run signs in with: every later call would be
# a 401. Its role and answers are covered by tests/tenant/test_route_roles.py and test_auth.py.
[[operations]]
include-path = "/api/v1/auth/logout"
enabled = false

# An endless Server-Sent Events stream by design (tests/tenant/test_events.py covers it).
[[operations]]
include-path = "/api/v1/events/stream"
enabled = false

# The agent's own routes take the agent's credential, not the admin's; the long poll may
# wait at most a second here.
[[operations]]
include-path-regex = "^/api/v1/agent/(heartbeat|jobs|sync-request)"
headers = {{ Authorization = "Bearer {agent_token}" }}
parameters = {{ "query.wait" = 1 }}

# An agent reporting accounts: its customer may be unassigned by the run's PATCHes of agent 1
# (409 agent_has_no_customer), or the agent revoked (401).
[[operations]]
include-name = ["POST /api/v1/agent/accounts"]
headers = {{ Authorization = "Bearer {agent_token}" }}
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "409", "422"]

# Schema-valid but refused by what the document cannot say, each with a domain code:
# an agent that is not this tenant's (422 unknown_agent) or an agent without a directory
# (422 invalid_directory); a customer not linked to IT Glue (422 customer_not_linked); an
# event that is no workflow trigger (422 not_a_trigger); an enrollment code the tenant
# never issued (400 enrollment_code_invalid); a refresh token that is not one (401).
[[operations]]
include-path = ["/api/v1/accounts", "/api/v1/accounts/{{account_id}}",
                "/api/v1/accounts/automatch", "/api/v1/events/{{event_id}}/replay"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

# IT Glue itself judges the key (the emulator knows one key: 422 itglue_key_rejected).
# Alert recipients are checked by an email parser stricter than the "email" format, and
# at most 10 distinct recipients and warning days are kept (422 with the domain's code).
[[operations]]
include-name = ["PUT /api/v1/integrations/itglue", "PUT /api/v1/alerts"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "409", "422"]

# A customer id in the body that names no customer of this tenant (422 unknown_customer);
# assigning a revoked agent (409 agent_revoked: the run revokes agent 1 on its way).
[[operations]]
include-name = ["PATCH /api/v1/agents/{{agent_id}}", "POST /api/v1/agents/enrollment-codes",
                "POST /api/v1/agents/{{agent_id}}/sync"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

# Linking Microsoft 365 asks Microsoft (here its TLS emulator) first: it refuses tenants
# and apps it does not know (422 m365_credentials_rejected).
[[operations]]
include-path-regex = "/microsoft365"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

# "Reset again from IT Glue" on an account that is not matched or gone from its directory
# (409 account_not_matched / account_gone); the Match dialog's list for a customer not linked
# to an IT Glue organization (409 customer_not_linked).
[[operations]]
include-name = ["POST /api/v1/accounts/{{account_id}}/reset",
                "GET /api/v1/customers/{{customer_id}}/itglue-passwords"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
include-path = "/api/v1/agent/enroll"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "409", "410"]
"""


@pytest.fixture
def tenant_proc(tmp_path: Path, tenant_template: Path,
                itglue_emulator: EmulatorProcess) -> Iterator[TenantProcess]:
    """The usual tenant, with Microsoft 365 pointed at its TLS emulator (not the internet)."""
    m365 = M365EmulatorProcess(tmp_path / "m365-tls")
    m365.start()
    data = tmp_path / "tenant-data"
    shutil.copytree(tenant_template, data)
    tenant = TenantProcess(data, env={"QP_ITGLUE_BASE_URL": itglue_emulator.url,
                                      "QP_PUBLIC_URL": "", **m365.tenant_env()})
    tenant.start()
    try:
        yield tenant
    finally:
        tenant.stop()
        m365.stop()


def _config(tmp_path: Path, admin_token: str, agent_token: str) -> Path:
    path = tmp_path / "schemathesis.toml"
    path.write_text(
        f'headers = {{ Authorization = "Bearer {admin_token}" }}\n'
        + OPERATIONS.format(agent_token=agent_token))
    return path


def _seed(api: Api, http: httpx.Client) -> str:
    """Rows for the id routes to find (id 1 of each kind exists), as a technician makes them."""
    connect_itglue(api)
    assert api.post("/api/v1/customers/import-itglue").status_code == 200
    customer = api.get("/api/v1/customers").json()["customers"][0]["id"]
    agent_id, agent_token = enroll_agent(api, http)
    assigned = http.patch(f"/api/v1/agents/{agent_id}", headers=api.h(),
                          json={"customer_id": customer})
    assert assigned.status_code == 200, assigned.text
    r = api.post("/api/v1/accounts", json={
        "customer_id": customer, "kind": "service", "display_name": "Backup service",
        "itglue_password_id": "5002",
        "source": {"type": "openldap", "agent_id": agent_id, "directory": "corp-ldap",
                   "identity": "uid=svc-backup,ou=people,dc=example,dc=test"}})
    assert r.status_code == 201, r.text
    fire(api.generate(), trigger_body(101, 5002, "Backup service"))
    return agent_token


@pytest.mark.timeout(1200)
def test_the_api_answers_as_its_openapi_document_says(api: Api, http: httpx.Client,
                                                      tmp_path: Path) -> None:
    agent_token = _seed(api, http)
    config = _config(tmp_path, api.access_token, agent_token)
    args = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
            "--no-color", "run", str(http.base_url.join("/openapi.json")),
            "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
            "--workers", "1", "--request-timeout", "20", "--generation-database", "none",
            # U+0000 is refused everywhere (422, tests/tenant/test_bounds.py); the document
            # cannot say so next to the other patterns, so schema-valid strings leave it out.
            "--generation-allow-x00", "false",
            "--report", "junit", "--report-dir", str(tmp_path / "report")]
    run = subprocess.run(args, capture_output=True, text=True, timeout=1100,
                         cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    assert "Server error" not in output
