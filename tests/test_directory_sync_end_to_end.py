"""End to end: a real agent process syncs real directories to a real tenant process.

The agent (``qp-agent run``) serves three directories: a Samba AD DC, a slapd and local
accounts from a passwd file. Its accounts appear in the tenant, automatch pairs them with the
IT Glue emulator's passwords, "Sync now" reaches the running agent, a deleted AD user becomes
gone and comes back when re-created, and an IT Glue change reaches the AD account the sync
found (a bind with the new password proves the DN is right).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent import conftest as agent_fixtures
from tests.agent.conftest import AGENT_DN, AGENT_PASSWORD, PEOPLE_DN, LdapUser, Slapd
from tests.support import samba
from tests.support.pipeline import (
    change_in_itglue,
    import_customers,
    start_tenant,
    stop_agent,
    wait_for,
    wait_for_trigger_event,
    workflow_call,
)
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.tenant.conftest import Api, sign_in

slapd = agent_fixtures.slapd
ldap_user = agent_fixtures.ldap_user

pytestmark = [pytest.mark.slapd, pytest.mark.samba, pytest.mark.timeout(samba.SAMBA_TIMEOUT)]

SVC_BACKUP = 5002  # the emulator's "Backup service account" (username svc-backup, AD)


def _start_agent(tmp_path: Path, tenant: TenantProcess, api: Api, customer_id: int,
                 dc: samba.SambaDC, slapd: Slapd) -> subprocess.Popen[str]:
    code = api.post("/api/v1/agents/enrollment-codes",
                    json={"name": "nwt-dc01", "customer_id": customer_id})
    assert code.status_code == 201, code.text
    credential = tmp_path / "agent-credential.json"
    enrolled = subprocess.run(
        [sys.executable, "-m", "qp_agent", "enroll", "--tenant", tenant.url,
         "--code", code.json()["code"], "--credential-file", str(credential), "--no-keyring"],
        capture_output=True, text=True, timeout=60)
    assert enrolled.returncode == 0, enrolled.stderr
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n"
                      "sshd:x:105:65534::/run/sshd:/usr/sbin/nologin\n"
                      "localadmin:x:1001:1001:Reception PC admin:/home/la:/bin/bash\n")
    config = tmp_path / "agent.toml"
    config.write_text(
        f'credential_file = "{credential}"\n'
        "heartbeat_seconds = 1\n"
        "sync_interval_seconds = 3600\n\n"  # only on start and when asked, in this test
        "[[directory]]\n"
        'name = "corp-ad"\n'
        'kind = "active_directory"\n'
        f'url = "{dc.url}"\n'
        f'ca_file = "{dc.ca_file}"\n'
        f'bind_dn = "{samba.ADMIN_DN}"\n'
        'bind_password_env = "QP_E2E_AD_BIND"\n'
        f'base_dn = "{samba.BASE_DN}"\n'
        "page_size = 3\n\n"
        "[[directory]]\n"
        'name = "corp-ldap"\n'
        'kind = "openldap"\n'
        f'url = "{slapd.url}"\n'
        f'bind_dn = "{AGENT_DN}"\n'
        'bind_password_env = "QP_E2E_LDAP_BIND"\n'
        f'base_dn = "{PEOPLE_DN}"\n\n'
        "[[directory]]\n"
        'name = "reception-pc"\n'
        'kind = "local"\n'
        f'passwd_file = "{passwd}"\n'
        "dry_run = true\n")
    return subprocess.Popen(
        [sys.executable, "-m", "qp_agent", "run", "--config", str(config), "--verbose"],
        env={**os.environ, "QP_E2E_AD_BIND": samba.ADMIN_PASSWORD,
             "QP_E2E_LDAP_BIND": AGENT_PASSWORD},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _accounts(api: Api, **params: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Accounts by (directory, first login name)."""
    rows = api.get("/api/v1/accounts", params=params).json()["accounts"]
    return {(a["source"]["directory"], (a["login_names"] or [a["source"]["identity"]])[0]): a
            for a in rows}


def _synced(api: Api, directory: str, after: str | None = None) -> dict[str, Any] | None:
    for agent in api.get("/api/v1/agents").json()["agents"]:
        for item in agent["directories"]:
            if item["name"] == directory and item["last_sync_at"] and (
                    after is None or item["last_sync_at"] > after):
                return dict(item)
    return None


def test_an_agent_syncs_three_directories_and_automatch_and_resets_use_them(
        tmp_path: Path, tenant_template: Path, emulator: EmulatorProcess, slapd: Slapd,
        ldap_user: LdapUser, samba_dc: samba.SambaDC) -> None:
    svc_dn = samba_dc.add_user("svc-backup", spn="backup/nwt-backup.example.test")
    leaver_dn = samba_dc.add_user("leaver", display_name="Leaver")
    tenant = start_tenant(tmp_path, tenant_template, emulator.url)
    agent: subprocess.Popen[str] | None = None
    try:
        with httpx.Client(base_url=tenant.url, timeout=10) as http:
            api = sign_in(http)
            northwind = import_customers(api)["Northwind Traders"]
            workflow_url = api.generate()
            agent = _start_agent(tmp_path, tenant, api, northwind, samba_dc, slapd)

            for directory in ("corp-ad", "corp-ldap", "reception-pc"):
                wait_for(lambda d=directory: _synced(api, d), 90, f"{directory} synced")
            accounts = _accounts(api)
            svc = accounts[("corp-ad", "svc-backup")]
            assert svc["kind"] == "service" and svc["source"]["identity"] == svc_dn
            assert svc["customer_id"] == northwind and svc["state"] == "present"
            assert accounts[("corp-ad", "Administrator")]["kind"] == "administrator"
            assert accounts[("corp-ldap", ldap_user.uid)]["source"]["identity"] == ldap_user.dn
            assert ("reception-pc", "localadmin") in accounts
            assert ("reception-pc", "root") not in accounts  # a system account

            # Automatch: NWT\administrator, svc-backup and localadmin are in IT Glue.
            r = api.post("/api/v1/accounts/automatch", json={"customer_id": northwind})
            assert r.status_code == 200, r.text
            result = r.json()
            pairs = {(a["source"]["directory"], a["login_names"][0]): a["itglue_password_id"]
                     for a in result["matched"]}
            assert pairs == {("corp-ad", "Administrator"): "5001",
                             ("corp-ad", "svc-backup"): "5002",
                             ("reception-pc", "localadmin"): "5003"}
            unmatched = {a["display_name"] for a in result["unmatched_accounts"]}
            assert "Leaver" in unmatched
            assert all(p["reason"] for p in result["unmatched_passwords"])

            # "Sync now" reaches the running agent: a deleted user becomes gone...
            before = _synced(api, "corp-ad")
            assert before is not None
            samba_dc.delete(leaver_dn)
            agent_id = svc["source"]["agent_id"]
            assert api.post(f"/api/v1/agents/{agent_id}/sync").status_code == 202
            wait_for(lambda: _synced(api, "corp-ad", before["last_sync_at"]), 60,
                     "the requested sync")
            assert _accounts(api)[("corp-ad", "leaver")]["state"] == "gone"
            # ...and present again once re-created.
            samba_dc.add_user("leaver", display_name="Leaver")
            again = _synced(api, "corp-ad")
            assert again is not None
            assert api.post(f"/api/v1/agents/{agent_id}/sync").status_code == 202
            wait_for(lambda: _synced(api, "corp-ad", again["last_sync_at"]), 60,
                     "the second requested sync")
            assert _accounts(api)[("corp-ad", "leaver")]["state"] == "present"

            # A change in IT Glue reaches the AD account the sync found.
            new_password = "Copper-Lantern-2032!"
            changed = change_in_itglue(emulator.url, SVC_BACKUP, new_password)
            hook = workflow_call(workflow_url, changed)
            assert hook.status_code == 202, hook.text
            wait_for_trigger_event(api, hook.json()["event_id"], "password_reset.succeeded", 60)
            assert samba_dc.can_bind(svc_dn, new_password)
            assert not samba_dc.can_bind(svc_dn, "Start-Pass-123!")
    finally:
        output = stop_agent(agent)
        tenant.stop()
    assert "Copper-Lantern-2032!" not in output
    assert samba.ADMIN_PASSWORD not in output
