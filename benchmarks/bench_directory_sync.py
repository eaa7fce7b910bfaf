"""Directory sync and automatch at 10,000 accounts.

- ``directory_sync_first_s`` / ``directory_sync_again_s``: a real ``qp-agent run`` process
  reports 10,000 users of a real slapd (bulk-loaded with slapadd) to a real tenant: the first
  sync creates the accounts, the second ("Sync now") finds them unchanged. Baseline: the same
  paged listing of the directory alone, in this process.
- ``directory_sync_agent_peak_mib``: the agent's peak resident memory (VmHWM) after those
  syncs. Baseline: the same agent process idle (a directory with no users).
- ``automatch_10k_s``: automatch of 10,000 accounts against 10,000 IT Glue passwords (the
  emulator). Baseline: listing the organization's passwords alone.

``python benchmarks/bench_directory_sync.py [--users N]``; prints JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from _common import EMAIL, PASSWORD, emit, start_tenant

from qp_agent.backends.ldap import OpenLdapBackend
from qp_agent.config import DirectoryConfig
from tests.agent.conftest import (
    ADMIN_DN,
    ADMIN_PASSWORD,
    BASE_DN,
    SLAPADD,
    SLAPD,
    _seed_ldif,
    _slapd_conf,
    _wait_for_bind,
    free_port,
)
from tests.support.processes import ServerProcess

ITGLUE_KEY = "ITG.bench0123456789abcdef0123456789ab"
T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling a condition with a deadline


# ------------------------------------------------------------------------------ slapd
def start_slapd(folder: Path, users: int) -> tuple[str, subprocess.Popen[bytes]]:
    (folder / "db").mkdir(parents=True)
    conf = folder / "slapd.conf"
    conf.write_text(_slapd_conf(folder).replace("maxsize 10485760", "maxsize 1073741824"))
    ldif = [_seed_ldif(), f"dn: ou=bench,{BASE_DN}\nobjectClass: organizationalUnit\n"
                          "ou: bench\n", f"dn: ou=empty,{BASE_DN}\nobjectClass: "
                                         "organizationalUnit\nou: empty\n"]
    ldif += [f"dn: uid=user{n:05d},ou=bench,{BASE_DN}\nobjectClass: inetOrgPerson\n"
             f"uid: user{n:05d}\ncn: Bench User {n}\nsn: User\n" for n in range(users)]
    (folder / "users.ldif").write_text("\n".join(ldif))
    subprocess.run([SLAPADD, "-q", "-f", str(conf), "-l", str(folder / "users.ldif")],
                   check=True, capture_output=True)
    url = f"ldap://127.0.0.1:{free_port()}"
    log = folder / "slapd.log"
    with log.open("wb") as handle:
        process = subprocess.Popen([SLAPD, "-f", str(conf), "-h", f"{url}/", "-d", "0"],
                                   stdout=handle, stderr=subprocess.STDOUT)
    _wait_for_bind(url, process, log)
    return url, process


# --------------------------------------------------------------------- IT Glue emulator
def serve_emulator(users: int) -> None:
    """Child mode: an IT Glue emulator with one organization of ``users`` passwords."""
    from qp_tenant.itglue import emulator

    state = emulator.EmulatorState(subdomain="bench", rate_limit=10**9)
    state.add_api_key(ITGLUE_KEY, password_access=True)
    org = state.add_organization("Bench Org")
    for n in range(users):
        state.add_password(org.id, f"Bench user {n}", f"BENCH\\user{n:05d}", f"Pw-{n}-x!",
                           category_name="Active Directory")
    sock = emulator._listening_socket("127.0.0.1", 0)
    asyncio.run(emulator._serve(emulator.create_app(state), sock))


# ------------------------------------------------------------------------------ agent
def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def agent_process(folder: Path, tenant_url: str, token_code: str, slapd_url: str,
                  base_dn: str) -> subprocess.Popen[str]:
    credential = folder / "credential.json"
    if not credential.exists():
        enrolled = subprocess.run(
            [sys.executable, "-m", "qp_agent", "enroll", "--tenant", tenant_url, "--code",
             token_code, "--credential-file", str(credential), "--no-keyring"],
            capture_output=True, text=True, timeout=120)
        if enrolled.returncode != 0:
            raise RuntimeError(enrolled.stderr)
    config = folder / f"agent-{base_dn.split(',')[0].split('=')[1]}.toml"
    config.write_text(
        f'credential_file = "{credential}"\nheartbeat_seconds = 1\n'
        "sync_interval_seconds = 3600\n\n[[directory]]\n"
        f'name = "bench-ldap"\nkind = "openldap"\nurl = "{slapd_url}"\n'
        f'bind_dn = "{ADMIN_DN}"\nbind_password_env = "QP_BENCH_BIND"\n'
        f'base_dn = "{base_dn}"\n')
    return subprocess.Popen([sys.executable, "-m", "qp_agent", "run", "--config", str(config)],
                            env={**os.environ, "QP_BENCH_BIND": ADMIN_PASSWORD},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


def stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--serve-emulator", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator is not None:
        serve_emulator(args.serve_emulator)
        return 0
    users = args.users
    folder = Path(tempfile.mkdtemp(prefix="qp-bench-sync-"))
    slapd_url, slapd = start_slapd(folder / "slapd", users)
    emu = ServerProcess([sys.executable, __file__, "--serve-emulator", str(users)])
    emu.start()
    tenant = start_tenant({"QP_ITGLUE_BASE_URL": emu.url, "QP_PUBLIC_URL": ""})
    agents: list[subprocess.Popen[str]] = []
    try:
        with httpx.Client(base_url=tenant.url, timeout=600) as http:
            token = http.post("/api/v1/auth/login",
                              json={"email": EMAIL, "password": PASSWORD}).json()["access_token"]
            h = {"Authorization": f"Bearer {token}"}
            assert http.put("/api/v1/integrations/itglue", headers=h,
                            json={"region": "us", "api_key": ITGLUE_KEY}).status_code == 200
            http.post("/api/v1/customers/import-itglue", headers=h).raise_for_status()
            customer = http.get("/api/v1/customers", headers=h).json()["customers"][0]["id"]

            def directory() -> dict[str, Any] | None:
                for agent in http.get("/api/v1/agents", headers=h).json()["agents"]:
                    for item in agent["directories"]:
                        if item["last_sync_at"]:
                            return {"agent": agent["id"], **item}
                return None

            # Baseline memory: the same agent, idle (its directory has no users).
            code = http.post("/api/v1/agents/enrollment-codes", headers=h,
                             json={"name": "bench", "customer_id": customer}).json()["code"]
            idle = agent_process(folder, tenant.url, code, slapd_url, f"ou=empty,{BASE_DN}")
            agents.append(idle)
            idle_sync = wait_for(directory, 120, "the idle agent's sync")
            idle_kib = vm_hwm_kib(idle.pid)
            stop(idle)
            agents.remove(idle)

            # The listing alone, in this process.
            config = DirectoryConfig(name="bench-ldap", kind="openldap", url=slapd_url,
                                     bind_dn=ADMIN_DN, bind_password_env="B",
                                     base_dn=f"ou=bench,{BASE_DN}")
            started = time.perf_counter()
            listed = sum(1 for _ in OpenLdapBackend(
                config, environ={"B": ADMIN_PASSWORD}).list_accounts())
            listing_s = time.perf_counter() - started
            assert listed == users, listed

            started = time.perf_counter()
            agent = agent_process(folder, tenant.url, code, slapd_url, f"ou=bench,{BASE_DN}")
            agents.append(agent)
            first = wait_for(lambda: (d := directory()) and d["accounts"] == users
                             and d["last_sync_at"] > idle_sync["last_sync_at"] and d, 1800,
                             "the first full sync")
            first_s = time.perf_counter() - started
            started = time.perf_counter()
            http.post(f"/api/v1/agents/{first['agent']}/sync", headers=h).raise_for_status()
            wait_for(lambda: (d := directory()) and d["last_sync_at"] > first["last_sync_at"],
                     1800, "the second sync")
            again_s = time.perf_counter() - started
            peak_kib = vm_hwm_kib(agent.pid)
            emit("directory_sync_first_s", first_s, "s", listing_s, users=users,
                 note="agent start to all accounts created; baseline: the paged listing alone")
            emit("directory_sync_again_s", again_s, "s", listing_s, users=users,
                 note="Sync now of unchanged accounts; baseline: the paged listing alone")
            emit("directory_sync_agent_peak_mib", peak_kib / 1024, "MiB", idle_kib / 1024,
                 users=users, note="VmHWM after both syncs; baseline: the same agent idle")

            # Automatch: every synced account has a password whose username is BENCH\uid.
            from qp_tenant.itglue.client import ITGlueClient

            async def list_only() -> float:
                async with httpx.AsyncClient(timeout=600) as client:
                    itg = ITGlueClient(client, emu.url, ITGLUE_KEY)
                    begun = time.perf_counter()
                    orgs = await itg.list_organizations()
                    assert len(await itg.list_passwords(orgs[0].id)) == users
                    return time.perf_counter() - begun

            listing_pw_s = asyncio.run(list_only())
            started = time.perf_counter()
            r = http.post("/api/v1/accounts/automatch", headers=h, json={"customer_id": customer})
            automatch_s = time.perf_counter() - started
            r.raise_for_status()
            matched = len(r.json()["matched"])
            emit("automatch_10k_s", automatch_s, "s", listing_pw_s, accounts=users,
                 passwords=users, matched=matched,
                 note="baseline: listing the organization's IT Glue passwords alone")
    finally:
        for process in agents:
            stop(process)
        tenant.stop()
        emu.stop()
        stop(slapd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
