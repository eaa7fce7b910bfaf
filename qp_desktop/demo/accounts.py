"""Demo data for the Accounts screenshot, seeded through the tenant's real API.

Customers come from the IT Glue emulator's demo organizations; a few accounts are added and
automatched; one agent enrolls (acting as ``qp-agent`` over HTTP) and applies two resets, one
successful and one refused by the directory, so the table shows real last-reset results.
Idempotent: a tenant that already has accounts is left as it is.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from qp_desktop.services.tenant_client import API, Account, TenantClient

log = logging.getLogger(__name__)

# (customer, display name, kind, source type, directory, identity)
DEMO_ACCOUNTS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("Northwind Traders", "Domain Admin", "administrator", "active_directory", "northwind-ad",
     "NWT\\administrator"),
    ("Northwind Traders", "Backup service", "service", "active_directory", "northwind-ad",
     "svc-backup"),
    ("Northwind Traders", "Reception PC admin", "administrator", "local", "reception-pc",
     "localadmin"),
    ("Northwind Traders", "Jane Cooper", "end_user", "active_directory", "northwind-ad",
     "jcooper"),
    ("Contoso Dental", "Practice manager", "end_user", "active_directory", "contoso-ad",
     "CONTOSO\\jsmith"),
    ("Contoso Dental", "X-ray workstation", "service", "local", "xray-ws", "imaging"),
    ("Fabrikam Logistics", "Scanner service", "service", "openldap", "fabrikam-ldap",
     "uid=svc-scan,ou=services,dc=fabrikam,dc=example"),
    ("Fabrikam Logistics", "Dispatch kiosk", "end_user", "local", "dispatch-kiosk", "kiosk"),
)
REFUSAL = "Constraint violation: the password does not meet the domain's complexity policy"


async def seed(client: TenantClient, http: httpx.AsyncClient, itglue_subdomain: str = "acme"
               ) -> None:
    if await client.list_accounts():
        return
    await client.import_itglue_customers()
    customers = {c.name: c for c in await client.list_customers()}
    code = await client.create_enrollment_code("northwind-dc01")
    base = client.base_url
    r = await http.post(f"{base}{API}/agent/enroll",
                        json={"code": code.code, "name": "northwind-dc01",
                              "hostname": "dc01.northwind.local"})
    r.raise_for_status()
    agent_id, token = int(r.json()["agent_id"]), str(r.json()["agent_token"])
    agent_headers = {"Authorization": f"Bearer {token}"}
    await http.post(f"{base}{API}/agent/heartbeat", headers=agent_headers, json={
        "directories": [{"name": d, "kind": k} for d, k in (
            ("northwind-ad", "active_directory"), ("reception-pc", "local"),
            ("contoso-ad", "active_directory"), ("xray-ws", "local"),
            ("fabrikam-ldap", "openldap"), ("dispatch-kiosk", "local"))]})
    await _fabrikam_agent_syncs(client, http, customers["Fabrikam Logistics"].id)

    accounts: dict[str, Account] = {}
    for customer_name, name, kind, source_type, directory, identity in DEMO_ACCOUNTS:
        accounts[name] = await client.create_account(
            customers[customer_name].id, kind, name,
            {"type": source_type, "agent_id": agent_id, "directory": directory,
             "identity": identity})
    for customer in customers.values():
        if customer.itglue_organization_id:
            await client.automatch(customer.id)

    url = await client.reveal_workflow_url()
    by_name = {a.display_name: a for a in await client.list_accounts()}
    for name, ok in (("Backup service", True), ("X-ray workstation", False)):
        account = by_name[name]
        customer_org = next(c.itglue_organization_id for c in customers.values()
                            if c.id == account.customer_id)
        if not account.itglue_password_id or not customer_org:
            continue
        await http.post(url, json={
            "resourceUrl": f"https://{itglue_subdomain}.itglue.com/{customer_org}/passwords/"
                           f"{account.itglue_password_id}",
            "resourceName": name})
        await _apply_one_job(http, base, agent_headers, ok)
    await _wait_for_results(client, {"Backup service", "X-ray workstation"})


async def _fabrikam_agent_syncs(client: TenantClient, http: httpx.AsyncClient,
                                customer_id: int) -> None:
    """A second agent, enrolled for Fabrikam, reports its directory twice: the second sync
    no longer lists a contractor, so the table shows a gone account too."""
    base = client.base_url
    answer = await client._authed("POST", f"{API}/agents/enrollment-codes",
                                  json={"name": "fabrikam-ldap01", "customer_id": customer_id})
    r = await http.post(f"{base}{API}/agent/enroll",
                        json={"code": answer.json()["code"], "name": "fabrikam-ldap01",
                              "hostname": "ldap01.fabrikam.example"})
    r.raise_for_status()
    headers = {"Authorization": f"Bearer {r.json()['agent_token']}"}
    people = {"mdavis": "Maria Davis", "contractor-2025": "Contractor (2025)"}
    for sync_id, users in (("demo-1", ("mdavis", "contractor-2025")), ("demo-2", ("mdavis",))):
        await http.post(f"{base}{API}/agent/accounts", headers=headers, json={
            "sync_id": sync_id, "directory": "fabrikam-people", "directory_kind": "openldap",
            "final": True, "accounts": [
                {"identity": f"uid={u},ou=people,dc=fabrikam,dc=example",
                 "display_name": people[u], "login_names": [u], "enabled": True,
                 "kind": "end_user"} for u in users]})


async def _apply_one_job(http: httpx.AsyncClient, base: str, headers: dict[str, str],
                         ok: bool) -> None:
    """Act as the agent: take the next job and report its result."""
    r = await http.get(f"{base}{API}/agent/jobs", params={"wait": 15}, headers=headers,
                       timeout=httpx.Timeout(30.0))
    if r.status_code != 200:
        log.warning("demo agent got no job (HTTP %s)", r.status_code)
        return
    job: dict[str, Any] = r.json()["job"]
    body: dict[str, Any] = {"ok": ok} if ok else {"ok": False, "error": REFUSAL}
    await http.post(f"{base}{API}/agent/jobs/{job['id']}/result", json=body, headers=headers)


async def _wait_for_results(client: TenantClient, names: set[str]) -> None:
    for _ in range(100):  # at most 5 s: the pipeline records results at once
        accounts = await client.list_accounts()
        if all(a.last_result for a in accounts if a.display_name in names):
            return
        await asyncio.sleep(0.05)
