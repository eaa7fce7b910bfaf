"""Accounts an agent reports from its directories: upsert, gone, hand-set fields, sync now,
filters, automatch on both sides, and a gone account that is triggered."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support.pipeline import (
    agent_headers,
    fire,
    import_customers,
    trigger_body,
    wait_for_trigger_event,
)
from tests.tenant.conftest import Api

AD = "corp-ad"
BASE = "DC=nwt,DC=local"


def _enroll(api: Api, http: httpx.Client, customer_id: int | None, name: str = "dc01"
            ) -> tuple[int, dict[str, str]]:
    body: dict[str, Any] = {"name": name}
    if customer_id is not None:
        body["customer_id"] = customer_id
    code = api.post("/api/v1/agents/enrollment-codes", json=body).json()["code"]
    r = http.post("/api/v1/agent/enroll", json={"code": code, "name": name, "hostname": name})
    assert r.status_code == 201, r.text
    return int(r.json()["agent_id"]), agent_headers(r.json()["agent_token"])


def _user(sam: str, kind: str = "end_user", enabled: bool = True,
          name: str | None = None) -> dict[str, Any]:
    return {"identity": f"CN={name or sam},CN=Users,{BASE}", "display_name": name or sam,
            "login_names": [sam, f"{sam}@nwt.local"], "enabled": enabled, "kind": kind}


def _sync(http: httpx.Client, headers: dict[str, str], sync_id: str,
          pages: list[list[dict[str, Any]]], directory: str = AD,
          kind: str = "active_directory") -> list[dict[str, Any]]:
    answers = []
    for index, page in enumerate(pages):
        r = http.post("/api/v1/agent/accounts", headers=headers, json={
            "sync_id": sync_id, "directory": directory, "directory_kind": kind,
            "accounts": page, "final": index == len(pages) - 1})
        assert r.status_code == 200, r.text
        answers.append(r.json())
    return answers


def _accounts(api: Api, **params: Any) -> dict[str, dict[str, Any]]:
    r = api.get("/api/v1/accounts", params=params)
    assert r.status_code == 200, r.text
    return {a["display_name"]: a for a in r.json()["accounts"]}


def test_an_agent_without_a_customer_is_told_to_get_one(api: Api, http: httpx.Client) -> None:
    agent_id, headers = _enroll(api, http, None)
    r = http.post("/api/v1/agent/accounts", headers=headers, json={
        "sync_id": "s1", "directory": AD, "directory_kind": "active_directory",
        "accounts": [_user("jdoe")], "final": True})
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "agent_has_no_customer"
    assert "assign" in error["message"] and f"/api/v1/agents/{agent_id}" in error["message"]
    assert _accounts(api) == {}


def test_reported_accounts_appear_with_source_kind_and_state_and_only_changes_are_logged(
        api: Api, http: httpx.Client) -> None:
    customer = import_customers(api)["Northwind Traders"]
    agent_id, headers = _enroll(api, http, customer)
    _sync(http, headers, "s1", [[_user("Administrator", "administrator"), _user("jdoe")],
                                [_user("svc-backup", "service"), _user("old", enabled=False)]])
    accounts = _accounts(api)
    assert set(accounts) == {"Administrator", "jdoe", "svc-backup", "old"}
    admin = accounts["Administrator"]
    assert admin["customer_id"] == customer and admin["kind"] == "administrator"
    assert admin["state"] == "present" and admin["enabled"] is True
    assert admin["source"] == {"type": "active_directory", "agent_id": agent_id,
                               "directory": AD, "identity": f"CN=Administrator,CN=Users,{BASE}"}
    assert accounts["old"]["enabled"] is False
    assert accounts["svc-backup"]["kind"] == "service"
    created = api.events(type="account.created")
    assert len(created) == 4 and all("agent dc01" in e["summary"] for e in created)
    summary = api.events(type="agent.synced")
    assert [e["summary"] for e in summary] == [
        f"Agent dc01 reported 4 accounts from {AD}: 4 new, 0 changed, 0 gone"]

    # The same directory again: nothing changed, so nothing but the summary is written.
    def account_events() -> int:
        return sum(len(api.events(type=t, limit=500))
                   for t in ("account.created", "account.updated"))

    before = account_events()
    _sync(http, headers, "s2", [[_user("Administrator", "administrator"), _user("jdoe"),
                                 _user("svc-backup", "service"), _user("old", enabled=False)]])
    assert account_events() == before
    assert len(api.events(type="agent.synced")) == 2

    agents = api.get("/api/v1/agents").json()["agents"]
    http.post("/api/v1/agent/heartbeat", headers=headers,
              json={"directories": [{"name": AD, "kind": "active_directory"}]})
    agents = api.get("/api/v1/agents").json()["agents"]
    (directory,) = agents[0]["directories"]
    assert directory["name"] == AD and directory["kind"] == "active_directory"
    assert directory["accounts"] == 4 and directory["gone"] == 0
    assert directory["last_sync_at"] and directory["last_error"] is None


def test_an_account_missing_from_a_sync_is_gone_and_comes_back_when_reported_again(
        api: Api, http: httpx.Client) -> None:
    customer = import_customers(api)["Northwind Traders"]
    _, headers = _enroll(api, http, customer)
    _sync(http, headers, "s1", [[_user("jdoe"), _user("asmith")]])
    answers = _sync(http, headers, "s2", [[_user("jdoe")]])
    assert answers[-1]["gone"] == 1
    accounts = _accounts(api)
    assert accounts["asmith"]["state"] == "gone"  # kept, not deleted
    assert _accounts(api, state="gone").keys() == {"asmith"}
    gone_event = [e for e in api.events(type="account.updated") if e["account"] == "asmith"]
    assert gone_event[0]["details"]["changes"]["state"] == {"old": "present", "new": "gone"}

    _sync(http, headers, "s3", [[_user("jdoe"), _user("asmith")]])
    assert _accounts(api)["asmith"]["state"] == "present"


def test_a_report_with_a_blank_identity_or_directory_is_refused(api: Api,
                                                                http: httpx.Client) -> None:
    customer = import_customers(api)["Northwind Traders"]
    _, headers = _enroll(api, http, customer)
    for body, code in [
        ({"directory": AD, "accounts": [{"identity": " "}]}, "invalid_identity"),
        ({"directory": " ", "accounts": [_user("jdoe")]}, "invalid_sync_report"),
        ({"directory": AD, "accounts": [{"identity": ""}], "error": ""}, "invalid_identity"),
    ]:
        r = http.post("/api/v1/agent/accounts", headers=headers, json={
            "sync_id": "s1", "directory_kind": "active_directory", "final": True, **body})
        assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text
    assert _accounts(api) == {}


def test_a_directory_that_cannot_be_listed_marks_nothing_gone(api: Api,
                                                              http: httpx.Client) -> None:
    customer = import_customers(api)["Northwind Traders"]
    _, headers = _enroll(api, http, customer)
    _sync(http, headers, "s1", [[_user("jdoe")]])
    r = http.post("/api/v1/agent/accounts", headers=headers, json={
        "sync_id": "s2", "directory": AD, "directory_kind": "active_directory",
        "accounts": [], "final": True, "error": "Could not talk to directory 'corp-ad'."})
    assert r.status_code == 200, r.text
    assert _accounts(api)["jdoe"]["state"] == "present"
    http.post("/api/v1/agent/heartbeat", headers=headers,
              json={"directories": [{"name": AD, "kind": "active_directory"}]})
    (directory,) = api.get("/api/v1/agents").json()["agents"][0]["directories"]
    assert directory["last_error"] == "Could not talk to directory 'corp-ad'."


def test_a_kind_and_name_set_by_a_technician_survive_the_next_sync(api: Api,
                                                                   http: httpx.Client) -> None:
    customer = import_customers(api)["Northwind Traders"]
    _, headers = _enroll(api, http, customer)
    _sync(http, headers, "s1", [[_user("svc-sql")]])
    account = _accounts(api)["svc-sql"]
    r = api.http.patch(f"/api/v1/accounts/{account['id']}", headers=api.h(),
                       json={"kind": "service", "display_name": "SQL service"})
    assert r.status_code == 200, r.text
    _sync(http, headers, "s2", [[_user("svc-sql", enabled=False)]])
    after = api.get(f"/api/v1/accounts/{account['id']}").json()
    assert after["kind"] == "service" and after["display_name"] == "SQL service"
    assert after["enabled"] is False  # what the directory says still comes through
    assert set(after["manual_fields"]) == {"kind", "display_name"}


def test_account_filters(api: Api, http: httpx.Client) -> None:
    customer = import_customers(api)["Northwind Traders"]
    agent_id, headers = _enroll(api, http, customer)
    other_id, other = _enroll(api, http, customer, "dc02")
    _sync(http, headers, "s1", [[_user("Administrator", "administrator"), _user("jdoe")]])
    _sync(http, other, "o1", [[_user("svc-x", "service")]], directory="other-ad")
    _sync(http, other, "o2", [[]], directory="other-ad")
    jdoe = _accounts(api)["jdoe"]
    api.http.patch(f"/api/v1/accounts/{jdoe['id']}", headers=api.h(),
                   json={"itglue_password_id": "5002"})
    assert _accounts(api, agent_id=agent_id).keys() == {"Administrator", "jdoe"}
    assert _accounts(api, agent_id=other_id, state="gone").keys() == {"svc-x"}
    assert _accounts(api, state="present").keys() == {"Administrator", "jdoe"}
    assert _accounts(api, kind="administrator").keys() == {"Administrator"}
    assert _accounts(api, matched="true").keys() == {"jdoe"}
    assert _accounts(api, matched="false").keys() == {"Administrator", "svc-x"}
    assert api.get("/api/v1/accounts", params={"state": "missing"}).status_code == 422


def test_sync_now_reaches_a_waiting_agent_poll_at_once(api: Api, http: httpx.Client) -> None:
    customer = import_customers(api)["Northwind Traders"]
    agent_id, headers = _enroll(api, http, customer)
    assert http.get("/api/v1/agent/sync-request", headers=headers,
                    params={"wait": 0}).status_code == 204
    with httpx.Client(base_url=str(http.base_url), timeout=40) as poller:
        import threading

        answer: dict[str, Any] = {}

        def poll() -> None:
            started = time.monotonic()
            r = poller.get("/api/v1/agent/sync-request", headers=headers,
                           params={"wait": 30})
            answer.update(status=r.status_code, body=r.json() if r.content else None,
                          seconds=time.monotonic() - started)

        thread = threading.Thread(target=poll)
        thread.start()
        r = api.post(f"/api/v1/agents/{agent_id}/sync")
        assert r.status_code == 202, r.text
        thread.join(35)
    assert answer["status"] == 200 and answer["body"]["sync"] is True
    assert answer["seconds"] < 25  # well before the long poll's 30 s wait ran out
    # Delivered once: the next poll has nothing.
    assert http.get("/api/v1/agent/sync-request", headers=headers,
                    params={"wait": 0}).status_code == 204


def test_sync_now_refuses_revoked_and_unknown_agents(api: Api, http: httpx.Client) -> None:
    customer = import_customers(api)["Northwind Traders"]
    agent_id, _ = _enroll(api, http, customer)
    assert api.post("/api/v1/agents/999999/sync").status_code == 404
    assert api.delete(f"/api/v1/agents/{agent_id}").status_code == 204
    r = api.post(f"/api/v1/agents/{agent_id}/sync")
    assert r.status_code == 409 and r.json()["error"]["code"] == "agent_revoked"


def test_automatch_pairs_by_login_name_and_reports_both_sides(api: Api,
                                                              http: httpx.Client) -> None:
    customers = import_customers(api)
    northwind = customers["Northwind Traders"]
    _, headers = _enroll(api, http, northwind)
    # IT Glue (the emulator's demo data) has NWT\administrator, svc-backup and localadmin.
    _sync(http, headers, "s1", [[_user("Administrator", "administrator"),
                                 _user("svc-backup", "service"), _user("nobody-in-itglue"),
                                 _user("gone-user")]])
    _sync(http, headers, "s2", [[_user("Administrator", "administrator"),
                                 _user("svc-backup", "service"), _user("nobody-in-itglue")]])
    for directory in ("pc1", "pc2"):  # one user name on two machines: ambiguous
        _sync(http, headers, f"{directory}-1", [[{
            "identity": "localadmin", "display_name": f"localadmin on {directory}",
            "login_names": ["localadmin"], "kind": "end_user"}]],
            directory=directory, kind="local")
    r = api.post("/api/v1/accounts/automatch", json={"customer_id": northwind})
    assert r.status_code == 200, r.text
    result = r.json()
    pairs = {a["display_name"]: a["itglue_password_id"] for a in result["matched"]}
    assert pairs == {"Administrator": "5001", "svc-backup": "5002"}  # NWT\administrator too
    # The app shows a paired account's IT Glue password by its name, never by its id.
    assert all(a["itglue_password_name"] for a in result["matched"]), result["matched"]
    reasons = {a["display_name"]: a["reason"] for a in result["unmatched_accounts"]}
    assert "nobody-in-itglue" in reasons["nobody-in-itglue"]
    assert "gone" in reasons["gone-user"]
    assert "several accounts" in reasons["localadmin on pc1"]
    passwords = {p["username"]: p["reason"] for p in result["unmatched_passwords"]}
    assert "several accounts" in passwords["localadmin"]
    assert "localadmin on pc1" in passwords["localadmin"]
    assert "NWT\\administrator" not in passwords and "svc-backup" not in passwords

    # Run again: what is matched stays matched, nothing is paired twice.
    again = api.post("/api/v1/accounts/automatch", json={"customer_id": northwind}).json()
    assert again["matched"] == []


@pytest.mark.parametrize("directory_kind", ["active_directory"])
def test_a_gone_account_that_is_triggered_fails_with_the_reason(
        api: Api, http: httpx.Client, directory_kind: str) -> None:
    customer = import_customers(api)["Northwind Traders"]
    _, headers = _enroll(api, http, customer)
    _sync(http, headers, "s1", [[_user("svc-backup", "service")]], kind=directory_kind)
    account = _accounts(api)["svc-backup"]
    api.http.patch(f"/api/v1/accounts/{account['id']}", headers=api.h(),
                   json={"itglue_password_id": "5002"})
    _sync(http, headers, "s2", [[]], kind=directory_kind)
    trigger = fire(api.generate(), trigger_body(101, 5002, "Backup service account"))
    failed = wait_for_trigger_event(api, trigger, "password_reset.failed")
    assert failed["details"]["code"] == "account_gone"
    assert (f"svc-backup no longer exists in {AD}; it was last reported by agent dc01 on"
            in failed["summary"] + failed["details"].get("reason", ""))
