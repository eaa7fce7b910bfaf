"""Customers and accounts: IT Glue import, validation, automatch, tenant isolation."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.pipeline import connect_itglue, enroll_agent
from tests.support.processes import TenantProcess
from tests.tenant.conftest import Api, sign_in

BETA_EMAIL = "admin@beta.test"
BETA_PASSWORD = "another long passphrase"


def _account(customer_id: int, agent_id: int | None, identity: str, name: str,
             source_type: str = "active_directory", **extra: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, "kind": "administrator", "display_name": name,
            "source": {"type": source_type, "agent_id": agent_id, "directory": "corp",
                       "identity": identity}, **extra}


def _customers(api: Api) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in api.get("/api/v1/customers").json()["customers"]}


def test_import_itglue_is_idempotent_and_links_a_customer_of_the_same_name(api: Api) -> None:
    connect_itglue(api)
    made = api.post("/api/v1/customers", json={"name": "Contoso Dental"})
    assert made.status_code == 201 and made.json()["itglue_organization_id"] is None

    first = api.post("/api/v1/customers/import-itglue")
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 2, "linked": 1}
    again = api.post("/api/v1/customers/import-itglue")
    assert again.json() == {"created": 0, "linked": 0}

    customers = _customers(api)
    assert set(customers) == {"Contoso Dental", "Northwind Traders", "Fabrikam Logistics"}
    assert customers["Contoso Dental"]["id"] == made.json()["id"]
    assert customers["Contoso Dental"]["itglue_organization_id"] == "102"


def test_import_without_itglue_connected_says_so(api: Api) -> None:
    r = api.post("/api/v1/customers/import-itglue")
    assert r.status_code == 409 and r.json()["error"]["code"] == "itglue_not_connected"


def test_accounts_are_created_validated_updated_and_deleted(api: Api, http: httpx.Client
                                                            ) -> None:
    customer = api.post("/api/v1/customers", json={"name": "Northwind",
                                                   "itglue_organization_id": "101"}).json()
    agent_id, _ = enroll_agent(api, http)
    r = api.post("/api/v1/accounts", json=_account(customer["id"], agent_id, "CORP\\jdoe",
                                                   "Jane Doe", itglue_password_id="5001"))
    assert r.status_code == 201, r.text
    account = r.json()
    assert account["source"] == {"type": "active_directory", "agent_id": agent_id,
                                 "directory": "corp", "identity": "CORP\\jdoe"}
    assert account["itglue_password_id"] == "5001"
    assert account["last_reset_at"] is None and account["last_result"] is None

    bad_kind = api.post("/api/v1/accounts", json={**_account(customer["id"], agent_id, "x", "X"),
                                                  "kind": "robot"})
    assert bad_kind.status_code == 422 and "kind" in bad_kind.json()["error"]["message"]
    no_identity = api.post("/api/v1/accounts", json=_account(customer["id"], agent_id, " ", "X"))
    assert no_identity.status_code == 422
    assert no_identity.json()["error"]["message"].startswith("Give the account's identity")
    taken = api.post("/api/v1/accounts", json=_account(customer["id"], agent_id, "other", "O",
                                                       itglue_password_id=5001))
    assert taken.status_code == 409
    assert "already matched to account Jane Doe" in taken.json()["error"]["message"]
    no_agent = api.post("/api/v1/accounts", json=_account(customer["id"], 999, "y", "Y"))
    assert no_agent.status_code == 422 and no_agent.json()["error"]["code"] == "unknown_agent"
    bad_pw = api.post("/api/v1/accounts", json=_account(customer["id"], agent_id, "z", "Z",
                                                        itglue_password_id="abc"))
    assert bad_pw.status_code == 422
    assert bad_pw.json()["error"]["code"] == "invalid_itglue_password_id"

    patched = api.http.patch(f"/api/v1/accounts/{account['id']}", headers=api.h(),
                             json={"display_name": "Jane D.", "source": {"identity": "jdoe"},
                                   "itglue_password_id": None})
    assert patched.status_code == 200, patched.text
    assert patched.json()["display_name"] == "Jane D."
    assert patched.json()["source"]["identity"] == "jdoe"
    assert patched.json()["source"]["directory"] == "corp"
    assert patched.json()["itglue_password_id"] is None
    listed = api.get("/api/v1/accounts", params={"customer_id": customer["id"]}).json()
    assert [a["id"] for a in listed["accounts"]] == [account["id"]]

    assert api.delete(f"/api/v1/accounts/{account['id']}").status_code == 204
    assert api.get(f"/api/v1/accounts/{account['id']}").status_code == 404


def test_automatch_pairs_usernames_and_respects_the_password_category(
        api: Api, http: httpx.Client) -> None:
    connect_itglue(api)
    api.post("/api/v1/customers/import-itglue")
    northwind = _customers(api)["Northwind Traders"]["id"]
    agent_id, _ = enroll_agent(api, http)
    ids = {}
    for identity, name, source in [
        ("cn=administrator,cn=Users,dc=nwt,dc=local", "Domain admin", "active_directory"),
        ("svc-backup", "Backup service", "active_directory"),
        ("localadmin", "Reception PC admin", "local"),
        ("admin@northwindtraders.onmicrosoft.com", "M365 admin", "active_directory"),
        ("nobody", "Unknown", "active_directory"),
    ]:
        r = api.post("/api/v1/accounts", json=_account(northwind, agent_id, identity, name,
                                                       source))
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]

    r = api.post("/api/v1/accounts/automatch", json={"customer_id": northwind})
    assert r.status_code == 200, r.text
    matched = {a["display_name"]: a["itglue_password_id"] for a in r.json()["matched"]}
    # NWT\administrator (Active Directory), svc-backup (AD), localadmin (Local Account);
    # the Microsoft 365 password's category names another source, so it stays unmatched.
    assert matched == {"Domain admin": "5001", "Backup service": "5002",
                       "Reception PC admin": "5003"}
    again = api.post("/api/v1/accounts/automatch", json={"customer_id": northwind}).json()
    assert again["matched"] == []
    # What stays unmatched is reported with the reason, on both sides.
    reasons = {a["display_name"]: a["reason"] for a in again["unmatched_accounts"]}
    assert set(reasons) == {"M365 admin", "Unknown"}
    assert "admin@northwindtraders.onmicrosoft.com" in reasons["M365 admin"]
    cloud = next(p for p in again["unmatched_passwords"]
                 if p["username"] == "admin@northwindtraders.onmicrosoft.com")
    assert "category" in cloud["reason"] and "M365 admin" in cloud["reason"]
    unlinked = api.post("/api/v1/customers", json={"name": "Walk-in"}).json()
    r = api.post("/api/v1/accounts/automatch", json={"customer_id": unlinked["id"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "customer_not_linked"


def test_customers_accounts_and_agents_are_isolated_between_tenants(
        tenant_proc: TenantProcess, api: Api, http: httpx.Client) -> None:
    customer = api.post("/api/v1/customers", json={"name": "Acme's customer"}).json()
    agent_id, _ = enroll_agent(api, http)
    account = api.post("/api/v1/accounts",
                       json=_account(customer["id"], agent_id, "jdoe", "Jane")).json()

    tenant_proc.create_tenant("beta", "Beta MSP")
    tenant_proc.create_user("beta", BETA_EMAIL, BETA_PASSWORD)
    beta = sign_in(http, BETA_EMAIL, BETA_PASSWORD, tenant="beta")
    assert beta.get("/api/v1/customers").json() == {"customers": []}
    assert beta.get("/api/v1/accounts").json() == {"accounts": []}
    assert beta.get("/api/v1/agents").json() == {"agents": []}
    assert beta.get(f"/api/v1/accounts/{account['id']}").status_code == 404
    assert beta.delete(f"/api/v1/accounts/{account['id']}").status_code == 404
    beta_customer = beta.post("/api/v1/customers", json={"name": "Beta's"}).json()
    # Neither another tenant's customer nor its agent can be used.
    r = beta.post("/api/v1/accounts", json=_account(customer["id"], None, "x", "X"))
    assert r.status_code == 404
    r = beta.post("/api/v1/accounts", json=_account(beta_customer["id"], agent_id, "x", "X"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_agent"
    r = beta.post("/api/v1/accounts/automatch", json={"customer_id": customer["id"]})
    assert r.status_code in (404, 409)
    assert api.get(f"/api/v1/accounts/{account['id']}").status_code == 200
