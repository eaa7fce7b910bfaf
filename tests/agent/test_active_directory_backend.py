"""Active Directory: the exact unicodePwd request, and resolve+modify on ldap3's mock."""

from __future__ import annotations

from typing import Any

import ldap3
import pytest

from qp_agent.backends import PasswordChangeFailed
from qp_agent.backends.ldap import (
    ActiveDirectoryBackend,
    ad_password_changes,
    ad_unicode_pwd,
)
from qp_agent.config import DirectoryConfig

BIND_DN = "CN=qp-agent,OU=Service Accounts,DC=corp,DC=example"
ALICE_DN = "CN=Alice Example,OU=Staff,DC=corp,DC=example"
ENV = {"AD_BIND": "bind-Secret-1"}
NEW_PASSWORD = 'Pässw0rd!"x'

AD = DirectoryConfig(
    name="corp-ad",
    kind="active_directory",
    url="ldaps://dc1.corp.example",
    bind_dn=BIND_DN,
    bind_password_env="AD_BIND",
    base_dn="DC=corp,DC=example",
)


def test_unicode_pwd_is_the_quoted_password_in_utf16le_without_bom() -> None:
    assert ad_unicode_pwd("Ab1!") == b'"\x00A\x00b\x001\x00!\x00"\x00'
    assert ad_unicode_pwd("é€") == b'"\x00\xe9\x00\xac\x20"\x00'


def test_the_modify_request_is_one_replace_of_unicode_pwd() -> None:
    assert ad_password_changes("Ab1!") == {
        "unicodePwd": [("MODIFY_REPLACE", [b'"\x00A\x00b\x001\x00!\x00"\x00'])]
    }


def test_plain_ldap_is_refused_for_active_directory() -> None:
    plain = DirectoryConfig(**{**AD.__dict__, "url": "ldap://dc1.corp.example"})
    with pytest.raises(PasswordChangeFailed, match="only accepts a new password over TLS"):
        ActiveDirectoryBackend(plain, environ=ENV)


class MockDomain:
    """An ldap3 MOCK_SYNC server holding a service account and two users."""

    def __init__(self) -> None:
        self.server = ldap3.Server("dc1.corp.example")
        self.opened: list[ldap3.Connection] = []
        seed = ldap3.Connection(self.server, client_strategy=ldap3.MOCK_SYNC)
        seed.strategy.add_entry(BIND_DN, {"objectClass": "user", "userPassword": ENV["AD_BIND"]})
        seed.strategy.add_entry(
            ALICE_DN,
            {
                "objectClass": "user",
                "sAMAccountName": "alice",
                "userPrincipalName": "alice@corp.example",
            },
        )

    def connect(self, directory: DirectoryConfig, bind_password: str) -> ldap3.Connection:
        conn = ldap3.Connection(
            self.server,
            user=directory.bind_dn,
            password=bind_password,
            client_strategy=ldap3.MOCK_SYNC,
            raise_exceptions=False,
        )
        self.opened.append(conn)
        return conn

    def unicode_pwd(self, dn: str) -> list[bytes] | None:
        return self.server.dit[dn].get("unicodePwd")


@pytest.mark.parametrize("identity", ["alice", "alice@corp.example", "CORP\\alice", ALICE_DN])
async def test_an_identity_is_resolved_and_unicode_pwd_replaced(identity: str) -> None:
    domain = MockDomain()
    backend = ActiveDirectoryBackend(AD, environ=ENV, connection_factory=domain.connect)

    summary = await backend.set_password(identity, NEW_PASSWORD)

    assert summary == f"password changed for {ALICE_DN} in directory 'corp-ad'"
    assert domain.unicode_pwd(ALICE_DN) == [f'"{NEW_PASSWORD}"'.encode("utf-16-le")]


async def test_an_unknown_account_name_is_a_clear_failure() -> None:
    backend = ActiveDirectoryBackend(AD, environ=ENV, connection_factory=MockDomain().connect)

    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password("bob", NEW_PASSWORD)

    assert caught.value.reason == (
        "No account matches 'bob' under DC=corp,DC=example (searched with "
        "(|(sAMAccountName=bob)(userPrincipalName=bob))); check the account's identity."
    )


async def test_a_wrong_bind_password_is_reported_as_invalid_credentials() -> None:
    backend = ActiveDirectoryBackend(
        AD, environ={"AD_BIND": "wrong"}, connection_factory=MockDomain().connect
    )
    with pytest.raises(PasswordChangeFailed, match=r"\(invalidCredentials: invalid credentials\)"):
        await backend.set_password("alice", NEW_PASSWORD)


class RefusingConnection(ldap3.Connection):
    """A mock connection whose modify answers like a DC whose password filter said no."""

    refusal = (
        "0000052D: Constraint violation - check_password_restrictions: the password does "
        "not meet the complexity criteria!\x00"
    )
    last_changes: Any = None

    def modify(self, dn: str, changes: Any, controls: Any = None) -> bool:
        RefusingConnection.last_changes = changes
        self.result = {
            "result": 19,
            "description": "constraintViolation",
            "message": self.refusal,
            "dn": "",
            "type": "modifyResponse",
        }
        return False


async def test_a_password_filter_refusal_reaches_the_reason_verbatim() -> None:
    domain = MockDomain()

    def connect(directory: DirectoryConfig, bind_password: str) -> ldap3.Connection:
        return RefusingConnection(
            domain.server,
            user=directory.bind_dn,
            password=bind_password,
            client_strategy=ldap3.MOCK_SYNC,
            raise_exceptions=False,
        )

    backend = ActiveDirectoryBackend(AD, environ=ENV, connection_factory=connect)
    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password("alice", NEW_PASSWORD)

    assert caught.value.reason == (
        f"Resetting the password of {ALICE_DN} failed: the directory's password policy "
        "refused the new password (constraintViolation: 0000052D: Constraint violation - "
        "check_password_restrictions: the password does not meet the complexity criteria!)."
    )
    assert NEW_PASSWORD not in str(caught.value)
    assert RefusingConnection.last_changes == ad_password_changes(NEW_PASSWORD)
