"""A real Active Directory for tests: a Samba 4 AD domain controller on its own loopback
address, speaking LDAPS with a throw-away CA whose server certificate names that address.

Provisioning takes seconds to minutes, so it happens once per session (:func:`provision`;
tests that use it allow :data:`SAMBA_TIMEOUT` seconds, since pytest-timeout counts a session
fixture's setup against the first test that asks for it);
each test or module gets a copy (:meth:`SambaDC.start`), whose only absolute paths (in
``etc/smb.conf``) are rewritten. LDAP's ports are fixed (389/636), so every copy listens on
its own 127.0.X.Y: ``interfaces`` needs the ``/8`` to be accepted.

Facts this relies on: provisioning drops ``old password allowed period``, so it is set to 0
here (else the old password binds for another hour after a reset); only SIMPLE binds over
LDAPS work from ldap3; ``samba -i`` with a pipe for stdin exits when the test process dies.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import ldap3

from qp_tenant.m365.emulator import make_test_ca

REALM = "EXAMPLE.TEST"
DOMAIN = "EXAMPLE"
BASE_DN = "DC=example,DC=test"
ADMIN_DN = f"CN=Administrator,CN=Users,{BASE_DN}"
ADMIN_PASSWORD = "Adm1n-Pass-Word!"  # noqa: S105 - a throw-away test domain
TEMPLATE_ADDRESS = "127.0.99.1"
_addresses = itertools.count(2)
SAMBA_TIMEOUT = 900


def _options(folder: Path, address: str) -> list[str]:
    return [
        f"interfaces={address}/8", "bind interfaces only=yes", "server services=ldap",
        f"log file={folder}/log.%m", f"pid directory={folder}/run",
        f"ncalrpc dir={folder}/run/ncalrpc", f"winbindd socket directory={folder}/run/winbindd",
        f"ntp signd socket directory={folder}/run/ntp_signd", "unix password sync=no",
        # A throw-away domain: no fsync per write (provisioning is several times faster).
        "ldb:nosync=true",
        "tls enabled=yes", f"tls keyfile={folder}/tls/server-key.pem",
        f"tls certfile={folder}/tls/server.pem", f"tls cafile={folder}/tls/ca.pem",
    ]


def provision(folder: Path) -> Path:
    """Provision a domain into ``folder`` once; :class:`SambaDC` starts copies of it."""
    folder.mkdir(parents=True)
    command = ["samba-tool", "domain", "provision", f"--targetdir={folder}",
               f"--realm={REALM}", f"--domain={DOMAIN}", "--server-role=dc",
               "--dns-backend=NONE", f"--adminpass={ADMIN_PASSWORD}", "--host-name=dc1",
               *(f"--option={o}" for o in _options(folder, TEMPLATE_ADDRESS))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "TDB_NO_FSYNC": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"samba-tool domain provision failed:\n{done.stderr[-3000:]}")
    conf = folder / "etc" / "smb.conf"
    text = conf.read_text().replace("[global]\n", "[global]\n\told password allowed period = 0\n",
                                    1)
    conf.write_text(text)
    return folder


@dataclass
class SambaDC:
    """A running copy of the provisioned domain controller."""

    folder: Path
    address: str
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def copy_of(cls, template: Path, folder: Path) -> SambaDC:
        shutil.copytree(template, folder, symlinks=True)
        n = next(_addresses)
        address = f"127.0.{100 + n // 250}.{n % 250 + 1}"
        conf = folder / "etc" / "smb.conf"
        conf.write_text(conf.read_text().replace(str(template), str(folder))
                        .replace(TEMPLATE_ADDRESS, address))
        make_test_ca(folder / "tls", ip=address)
        os.chmod(folder / "tls" / "server-key.pem", 0o600)  # Samba refuses a readable key
        (folder / "run").mkdir(exist_ok=True)
        return cls(folder, address)

    @property
    def url(self) -> str:
        return f"ldaps://{self.address}"

    @property
    def ca_file(self) -> Path:
        return self.folder / "tls" / "ca.pem"

    @property
    def conf(self) -> Path:
        return self.folder / "etc" / "smb.conf"

    def start(self, timeout: float = 60.0) -> None:
        self.process = subprocess.Popen(
            ["samba", "-i", "-M", "single", "-s", str(self.conf)],
            env={**os.environ, "TDB_NO_FSYNC": "1"},
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "samba.err", "wb"))  # noqa: SIM115 - the child owns it
        deadline = time.monotonic() + timeout
        while not self.can_bind(ADMIN_DN, ADMIN_PASSWORD):
            if self.process.poll() is not None:
                raise RuntimeError("samba exited:\n"
                                   + (self.folder / "samba.err").read_text()[-3000:])
            if time.monotonic() > deadline:
                raise RuntimeError("samba did not accept an LDAPS bind in time")
            time.sleep(0.1)  # waiting for the server to listen

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def connection(self, user: str = ADMIN_DN, password: str = ADMIN_PASSWORD
                   ) -> ldap3.Connection:
        import ssl

        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.ca_file))
        server = ldap3.Server(self.url, use_ssl=True, tls=tls, get_info=ldap3.NONE,
                              connect_timeout=5)
        return ldap3.Connection(server, user=user, password=password,
                                authentication=ldap3.SIMPLE, raise_exceptions=False,
                                receive_timeout=10)

    def can_bind(self, dn: str, password: str) -> bool:
        try:
            conn = self.connection(dn, password)
            ok = bool(conn.bind())
            conn.unbind()
            return ok
        except ldap3.core.exceptions.LDAPException:
            return False

    def admin(self) -> ldap3.Connection:
        conn = self.connection()
        assert conn.bind(), conn.result
        return conn

    # ------------------------------------------------------------------- directory content
    def add_ou(self, name: str, parent: str = BASE_DN) -> str:
        dn = f"OU={name},{parent}"
        conn = self.admin()
        try:
            assert conn.add(dn, ["top", "organizationalUnit"]), conn.result
        finally:
            conn.unbind()
        return dn

    def add_user(self, sam: str, password: str = "Start-Pass-123!", *,
                 container: str = f"CN=Users,{BASE_DN}", display_name: str | None = None,
                 disabled: bool = False, spn: str | None = None) -> str:
        """Create an enabled (or disabled) user over LDAPS; returns its DN."""
        dn = f"CN={display_name or sam},{container}"
        attributes: dict[str, object] = {
            "sAMAccountName": sam, "userPrincipalName": f"{sam}@example.test",
            "displayName": display_name or sam,
            "unicodePwd": f'"{password}"'.encode("utf-16-le"),
            "userAccountControl": 0x202 if disabled else 0x200,
        }
        if spn:
            attributes["servicePrincipalName"] = spn
        conn = self.admin()
        try:
            assert conn.add(dn, ["top", "person", "organizationalPerson", "user"],
                            attributes), conn.result
        finally:
            conn.unbind()
        return dn

    def add_group(self, name: str, members: list[str],
                  container: str = f"CN=Users,{BASE_DN}") -> str:
        dn = f"CN={name},{container}"
        conn = self.admin()
        try:
            assert conn.add(dn, ["top", "group"], {"sAMAccountName": name,
                                                  "member": members}), conn.result
        finally:
            conn.unbind()
        return dn

    def add_member(self, group_dn: str, member_dn: str) -> None:
        conn = self.admin()
        try:
            assert conn.modify(group_dn, {"member": [(ldap3.MODIFY_ADD, [member_dn])]}), \
                conn.result
        finally:
            conn.unbind()

    def delete(self, dn: str) -> None:
        conn = self.admin()
        try:
            assert conn.delete(dn), conn.result
        finally:
            conn.unbind()
