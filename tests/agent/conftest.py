"""Fixtures for the agent: a real OpenLDAP slapd and a small tenant that speaks the agent API.

slapd runs from a throw-away slapd.conf and MDB database on a free loopback port; it never
touches the system's slapd. The tenant is a Starlette app on uvicorn in a thread (it has no
SSE, so thread shutdown is prompt); tests queue jobs into it and read back what the agent
posted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import itertools
import queue
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qp_agent.config import DirectoryConfig

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SLAPPASSWD = "/usr/sbin/slappasswd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

BASE_DN = "dc=example,dc=test"
PEOPLE_DN = f"ou=people,{BASE_DN}"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "admin-secret"
AGENT_DN = f"cn=agent,ou=services,{BASE_DN}"
AGENT_PASSWORD = "agent-bind-secret"
READER_DN = f"cn=reader,ou=services,{BASE_DN}"
READER_PASSWORD = "reader-bind-secret"
POLICY_MIN_LENGTH = 8


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Slapd:
    """A running test slapd."""

    url: str
    base_dn: str = BASE_DN
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def admin(self) -> ldap3.Connection:
        """A bound connection as the rootdn (bypasses ACLs and password policy)."""
        return ldap3.Connection(self.url, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)

    def can_bind(self, dn: str, password: str) -> bool:
        """Whether a simple bind as ``dn`` with ``password`` succeeds."""
        conn = ldap3.Connection(self.url, dn, password, raise_exceptions=False)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()

    def directory(
        self,
        name: str = "corp-ldap",
        bind_dn: str = AGENT_DN,
        bind_password_env: str = "QP_TEST_LDAP_BIND",
    ) -> DirectoryConfig:
        """An ``openldap`` directory config pointing at this slapd."""
        return DirectoryConfig(
            name=name,
            kind="openldap",
            url=self.url,
            bind_dn=bind_dn,
            bind_password_env=bind_password_env,
            base_dn=self.base_dn,
            timeout_seconds=10,
        )


@dataclass(frozen=True)
class LdapUser:
    """A person created for one test."""

    uid: str
    dn: str
    password: str = field(repr=False)


def _slapd_conf(workdir: Path) -> str:
    return textwrap.dedent(
        f"""\
        include {SCHEMA_DIR}/core.schema
        include {SCHEMA_DIR}/cosine.schema
        include {SCHEMA_DIR}/inetorgperson.schema
        include {SCHEMA_DIR}/nis.schema
        modulepath {MODULE_DIR}
        moduleload back_mdb
        moduleload ppolicy
        pidfile {workdir}/slapd.pid
        argsfile {workdir}/slapd.args

        database mdb
        maxsize 10485760
        suffix "{BASE_DN}"
        rootdn "{ADMIN_DN}"
        rootpw {ADMIN_PASSWORD}
        directory {workdir}/db

        overlay ppolicy
        ppolicy_default "cn=default,ou=policies,{BASE_DN}"

        # The agent's service account may set passwords; the reader may only look.
        access to attrs=userPassword
          by dn.exact="{AGENT_DN}" write
          by self write
          by anonymous auth
          by * none
        access to *
          by * read
        """
    )


def _ssha(password: str) -> str:
    return subprocess.run(
        [SLAPPASSWD, "-s", password], capture_output=True, text=True, check=True
    ).stdout.strip()


def _seed_ldif() -> str:
    return textwrap.dedent(
        f"""\
        dn: {BASE_DN}
        objectClass: dcObject
        objectClass: organization
        dc: example
        o: Example

        dn: {PEOPLE_DN}
        objectClass: organizationalUnit
        ou: people

        dn: ou=services,{BASE_DN}
        objectClass: organizationalUnit
        ou: services

        dn: ou=policies,{BASE_DN}
        objectClass: organizationalUnit
        ou: policies

        dn: cn=default,ou=policies,{BASE_DN}
        objectClass: device
        objectClass: pwdPolicy
        cn: default
        pwdAttribute: userPassword
        pwdMinLength: {POLICY_MIN_LENGTH}
        pwdCheckQuality: 2

        dn: {AGENT_DN}
        objectClass: organizationalRole
        objectClass: simpleSecurityObject
        cn: agent
        userPassword: {_ssha(AGENT_PASSWORD)}

        dn: {READER_DN}
        objectClass: organizationalRole
        objectClass: simpleSecurityObject
        cn: reader
        userPassword: {_ssha(READER_PASSWORD)}
        """
    )


def _wait_for_bind(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"slapd exited with status {process.returncode}: {log.read_text()[-2000:]}"
            )
        conn = ldap3.Connection(url, ADMIN_DN, ADMIN_PASSWORD, raise_exceptions=False)
        try:
            if conn.bind():
                return
        except ldap3.core.exceptions.LDAPException:
            pass
        finally:
            with contextlib.suppress(Exception):
                conn.unbind()
        time.sleep(0.05)  # polling for the server to come up
    raise RuntimeError(f"slapd did not accept a bind within 20 s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A private slapd with a password policy, an agent and a read-only service account."""
    missing = [p for p in (SLAPD, SLAPADD, SLAPPASSWD) if not Path(p).exists()]
    if missing or not (MODULE_DIR / "back_mdb.so").exists():
        pytest.fail(
            f"OpenLDAP is not installed ({', '.join(missing) or MODULE_DIR / 'back_mdb.so'} "
            "missing): apt-get install -y slapd ldap-utils",
            pytrace=False,
        )
    workdir = tmp_path_factory.mktemp("slapd")
    (workdir / "db").mkdir()
    conf = workdir / "slapd.conf"
    conf.write_text(_slapd_conf(workdir))
    seed = workdir / "seed.ldif"
    seed.write_text(_seed_ldif())
    subprocess.run([SLAPADD, "-f", str(conf), "-l", str(seed)], check=True, capture_output=True)
    log = workdir / "slapd.log"
    process: subprocess.Popen[bytes] | None = None
    url = ""
    for _attempt in range(3):  # a port can be taken between probing and binding
        url = f"ldap://127.0.0.1:{free_port()}"
        with log.open("wb") as log_handle:
            # -d 0 keeps slapd in the foreground (no fork) so the fixture owns the process.
            process = subprocess.Popen(
                [SLAPD, "-f", str(conf), "-h", f"{url}/", "-d", "0"],
                stdout=log_handle,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_bind(url, process, log)
            break
        except BaseException as exc:
            process.kill()
            process.wait()
            process = None
            if not isinstance(exc, RuntimeError):
                raise
    if process is None:
        pytest.fail(f"slapd would not start: {log.read_text()[-2000:]}", pytrace=False)
    try:
        yield Slapd(url=url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def ldap_user(slapd: Slapd, request: pytest.FixtureRequest) -> Iterator[LdapUser]:
    """A fresh inetOrgPerson with a known password, deleted after the test."""
    uid = f"user{next(slapd._counter)}-{request.node.name[:20].replace('[', '-')}"
    uid = "".join(c if c.isalnum() or c == "-" else "-" for c in uid)
    dn = f"uid={uid},{PEOPLE_DN}"
    password = f"Old-{uid}-pw1"
    conn = slapd.admin()
    try:
        assert conn.add(
            dn,
            ["inetOrgPerson"],
            {"uid": uid, "cn": f"Test {uid}", "sn": "Test", "userPassword": password},
        ), conn.result
    finally:
        conn.unbind()
    yield LdapUser(uid=uid, dn=dn, password=password)
    conn = slapd.admin()
    try:
        conn.delete(dn)
    finally:
        conn.unbind()


# --------------------------------------------------------------------------------------
# A tenant that speaks the agent contract
# --------------------------------------------------------------------------------------

AGENT_TOKEN = "qpat_test-agent-token-0123456789"
GOOD_CODE = "ENROLL-GOOD"
USED_CODE = "ENROLL-USED"
EXPIRED_CODE = "ENROLL-EXPIRED"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": {}}}, status)


class FakeTenant:
    """The tenant's agent API, faithful to the contract in docs/api.md, with inspection queues."""

    def __init__(self) -> None:
        self.results: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.heartbeats: queue.Queue[dict[str, Any]] = queue.Queue()
        self.enrollments: queue.Queue[dict[str, Any]] = queue.Queue()
        self.max_wait = 2.0
        self._jobs: asyncio.Queue[dict[str, Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""
        self.app = Starlette(
            routes=[
                Route("/api/v1/agent/enroll", self.enroll, methods=["POST"]),
                Route("/api/v1/agent/jobs", self.jobs, methods=["GET"]),
                Route("/api/v1/agent/jobs/{job_id}/result", self.result, methods=["POST"]),
                Route("/api/v1/agent/heartbeat", self.heartbeat, methods=["POST"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        self._jobs = asyncio.Queue()
        yield

    def add_job(self, job: dict[str, Any]) -> None:
        """Queue a job for the next poll (thread-safe: called from the test)."""
        assert self._loop is not None and self._jobs is not None
        asyncio.run_coroutine_threadsafe(self._jobs.put(job), self._loop).result(5)

    @staticmethod
    def _authorised(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {AGENT_TOKEN}"

    async def enroll(self, request: Request) -> Response:
        body = await request.json()
        self.enrollments.put(body)
        code = body.get("code")
        if code == USED_CODE:
            return _error(409, "enrollment_code_used", "This enrollment code was already used.")
        if code == EXPIRED_CODE:
            return _error(410, "enrollment_code_expired", "This enrollment code has expired.")
        if code != GOOD_CODE:
            return _error(400, "enrollment_code_invalid", "This enrollment code is not valid.")
        return JSONResponse({"agent_id": "agent-7", "agent_token": AGENT_TOKEN}, 201)

    async def jobs(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(401, "unauthorized", "Unknown or revoked agent token.")
        assert self._jobs is not None
        wait = min(float(request.query_params.get("wait", "30")), self.max_wait)
        try:
            job = await asyncio.wait_for(self._jobs.get(), timeout=wait)
        except TimeoutError:
            return Response(status_code=204)
        return JSONResponse({"job": job})

    async def result(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(401, "unauthorized", "Unknown or revoked agent token.")
        self.results.put((request.path_params["job_id"], await request.json()))
        return JSONResponse({"status": "recorded"})

    async def heartbeat(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(401, "unauthorized", "Unknown or revoked agent token.")
        self.heartbeats.put(await request.json())
        return JSONResponse({"status": "ok"})


def _serve(fake: FakeTenant, tls: tuple[Path, Path] | None = None) -> Iterator[FakeTenant]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake.app,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake tenant did not start")
        time.sleep(0.02)  # polling for the server to come up
    fake.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def bind_env() -> dict[str, str]:
    """The environment the LDAP backends read bind passwords from."""
    return {"QP_TEST_LDAP_BIND": AGENT_PASSWORD, "QP_TEST_READER_BIND": READER_PASSWORD}


@pytest.fixture
def unused_port_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def tenant() -> Iterator[FakeTenant]:
    """The fake tenant on uvicorn, in a thread, on a free loopback port (plain http)."""
    yield from _serve(FakeTenant())


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by nobody anyone trusts, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qp test tenant")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tenant.pem", folder / "tenant.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_tenant(tmp_path: Path) -> Iterator[tuple[FakeTenant, Path]]:
    """The fake tenant over https with a self-signed certificate; yields it and the cert."""
    cert, key = _self_signed(tmp_path)
    for fake in _serve(FakeTenant(), (cert, key)):
        yield fake, cert
