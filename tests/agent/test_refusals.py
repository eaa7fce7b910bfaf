"""The agent refuses what it must not touch: DNs outside its base DN, local system accounts."""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from qp_agent.backends import PasswordChangeFailed
from qp_agent.backends.ldap import ActiveDirectoryBackend, OpenLdapBackend, dn_within
from qp_agent.backends.local import ChpasswdCall, CommandResult, LocalAccountBackend
from qp_agent.config import ConfigError, DirectoryConfig, parse_config

from .conftest import BASE_DN, PEOPLE_DN, READER_DN, READER_PASSWORD, LdapUser, Slapd

NEW_PASSWORD = "N3w-Passw0rd-for-test"


@pytest.mark.parametrize(("dn", "base", "inside"), [
    ("uid=a,ou=people,dc=example,dc=test", "dc=example,dc=test", True),
    ("UID=a,OU=People,DC=Example,DC=Test", "ou=people,dc=example,dc=test", True),
    ("uid=a, ou=people, dc=example, dc=test", "ou=people,dc=example,dc=test", True),
    ("ou=people,dc=example,dc=test", "ou=people,dc=example,dc=test", True),
    ("cn=x,dc=evil-example,dc=test", "dc=example,dc=test", False),
    ("cn=x,dc=example,dc=test,dc=evil", "dc=example,dc=test", False),
    ("cn=Administrator,cn=Users,dc=example,dc=test", "ou=people,dc=example,dc=test", False),
    ("cn=x\\,ou=people,dc=example,dc=test", "ou=people,dc=example,dc=test", False),
    ("dc=test", "dc=example,dc=test", False),
    ("not a dn", "dc=example,dc=test", False),
    ("uid=a,dc=example,dc=test", "", False),
])
def test_only_dns_at_or_below_the_base_dn_are_within_it(dn: str, base: str,
                                                        inside: bool) -> None:
    assert dn_within(dn, base) is inside


@pytest.mark.slapd
async def test_a_dn_outside_the_base_dn_is_refused_and_left_unchanged(
    slapd: Slapd, ldap_user: LdapUser, bind_env: dict[str, str]
) -> None:
    people_only = dataclasses.replace(slapd.directory(), base_dn=PEOPLE_DN)
    backend = OpenLdapBackend(people_only, environ=bind_env)

    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password(READER_DN, NEW_PASSWORD)
    assert caught.value.reason == (
        f"The agent refused: {READER_DN} is outside the directory's base DN {PEOPLE_DN} "
        "(directory 'corp-ldap'); it only changes passwords of accounts under its base DN.")
    assert slapd.can_bind(READER_DN, READER_PASSWORD)

    look_alike = ldap_user.dn.replace(BASE_DN, "dc=evil-example,dc=test")
    with pytest.raises(PasswordChangeFailed, match="The agent refused: .* is outside"):
        await backend.set_password(look_alike, NEW_PASSWORD)

    # Inside the base, whatever the case of the DN, the change goes through.
    await backend.set_password(ldap_user.dn.replace("ou=people", "OU=People"), NEW_PASSWORD)
    assert slapd.can_bind(ldap_user.dn, NEW_PASSWORD)


class RecordingRunner:
    def __init__(self) -> None:
        self.calls: list[ChpasswdCall] = []

    def __call__(self, call: ChpasswdCall) -> CommandResult:
        self.calls.append(call)
        return CommandResult(0, "")


def _users(**uids: int) -> object:
    def lookup(name: str) -> object:
        return SimpleNamespace(pw_uid=uids[name])
    return lookup


@pytest.mark.parametrize(("user", "uid"), [("root", 0), ("backup", 34), ("nobody", 65534)])
async def test_local_system_accounts_are_refused_unless_allowed_by_name(user: str,
                                                                        uid: int) -> None:
    runner = RecordingRunner()
    local = DirectoryConfig(name="this-server", kind="local")
    backend = LocalAccountBackend(local, runner=runner, user_lookup=_users(**{user: uid}))
    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password(user, NEW_PASSWORD)
    assert caught.value.reason.startswith(
        f"The agent refused: '{user}' (uid {uid}) is a system account of this machine")
    assert "allow_system_accounts" in caught.value.reason
    assert runner.calls == []

    allowed = dataclasses.replace(local, allow_system_accounts=(user,))
    backend = LocalAccountBackend(allowed, runner=runner, user_lookup=_users(**{user: uid}))
    await backend.set_password(user, NEW_PASSWORD)
    assert len(runner.calls) == 1


async def test_root_is_refused_by_name_whatever_its_uid() -> None:
    backend = LocalAccountBackend(DirectoryConfig(name="this-server", kind="local"),
                                  runner=RecordingRunner(), user_lookup=_users(root=1500))
    with pytest.raises(PasswordChangeFailed, match="system account"):
        await backend.set_password("root", NEW_PASSWORD)


def test_allow_system_accounts_is_read_from_the_configuration(tmp_path: Path) -> None:
    config = parse_config({"directory": [{"name": "this-server", "kind": "local",
                                          "allow_system_accounts": ["backup"]}]},
                          tmp_path / "agent.toml")
    assert config.directories[0].allow_system_accounts == ("backup",)
    with pytest.raises(ConfigError, match="allow_system_accounts'.*list of user names"):
        parse_config({"directory": [{"name": "x", "kind": "local",
                                     "allow_system_accounts": "backup"}]},
                     tmp_path / "agent.toml")


@pytest.fixture
def system_user() -> Iterator[str]:
    """A throw-away system account (uid below 1000), deleted after the test."""
    if os.geteuid() != 0:
        pytest.skip("creating a throw-away local user needs root")
    name = f"qpsys-{secrets.token_hex(4)}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


async def test_a_real_system_account_keeps_its_password(system_user: str) -> None:
    before = _shadow(system_user)
    backend = LocalAccountBackend(DirectoryConfig(name="this-server", kind="local"))
    with pytest.raises(PasswordChangeFailed, match="is a system account"):
        await backend.set_password(system_user, "Throwaway-Pw-1")
    assert _shadow(system_user) == before


def _shadow(user: str) -> str:
    for line in Path("/etc/shadow").read_text().splitlines():
        name, hashed, *_ = line.split(":")
        if name == user:
            return hashed
    raise KeyError(user)


async def test_active_directory_refuses_the_domain_administrator_before_connecting() -> None:
    def no_connection(directory: DirectoryConfig, bind_password: str) -> object:
        raise AssertionError("the agent connected for a DN it must refuse")

    directory = DirectoryConfig(name="corp-ad", kind="active_directory",
                                url="ldaps://dc1.corp.example", bind_dn="cn=qp,dc=corp",
                                bind_password_env="QP_AD_BIND",
                                base_dn="OU=Staff,DC=corp,DC=example")
    backend = ActiveDirectoryBackend(directory, environ={"QP_AD_BIND": "x"},
                                     connection_factory=no_connection)  # type: ignore[arg-type]
    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password("CN=Administrator,CN=Users,DC=corp,DC=example", NEW_PASSWORD)
    assert caught.value.reason.startswith(
        "The agent refused: CN=Administrator,CN=Users,DC=corp,DC=example is outside the "
        "directory's base DN OU=Staff,DC=corp,DC=example (directory 'corp-ad')")
