"""The OpenLDAP backend against a real slapd: passwords really change, refusals are verbatim."""

from __future__ import annotations

import logging

import pytest

from qp_agent.backends import PasswordChangeFailed
from qp_agent.backends.ldap import OpenLdapBackend, describe_ldap_result, is_dn

from .conftest import AGENT_DN, READER_DN, LdapUser, Slapd

pytestmark = pytest.mark.slapd

NEW_PASSWORD = "N3w-Passw0rd-for-test"


async def test_password_modify_changes_the_password_of_a_dn(
    slapd: Slapd, ldap_user: LdapUser, bind_env: dict[str, str]
) -> None:
    backend = OpenLdapBackend(slapd.directory(), environ=bind_env)

    summary = await backend.set_password(ldap_user.dn, NEW_PASSWORD)

    assert ldap_user.dn in summary
    assert NEW_PASSWORD not in summary
    assert slapd.can_bind(ldap_user.dn, NEW_PASSWORD)
    assert not slapd.can_bind(ldap_user.dn, ldap_user.password)


async def test_a_uid_identity_is_resolved_to_its_dn_under_base_dn(
    slapd: Slapd, ldap_user: LdapUser, bind_env: dict[str, str]
) -> None:
    backend = OpenLdapBackend(slapd.directory(), environ=bind_env)

    summary = await backend.set_password(ldap_user.uid, NEW_PASSWORD)

    assert f"password changed for {ldap_user.dn}" in summary
    assert slapd.can_bind(ldap_user.dn, NEW_PASSWORD)
    assert not slapd.can_bind(ldap_user.dn, ldap_user.password)


async def test_an_unknown_user_name_fails_with_a_clear_reason(
    slapd: Slapd, bind_env: dict[str, str]
) -> None:
    backend = OpenLdapBackend(slapd.directory(), environ=bind_env)

    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password("nobody-here", NEW_PASSWORD)

    assert caught.value.reason.startswith("No account matches 'nobody-here' under dc=example")
    assert NEW_PASSWORD not in caught.value.reason


async def test_an_unknown_dn_reports_the_directorys_no_such_object(
    slapd: Slapd, bind_env: dict[str, str]
) -> None:
    backend = OpenLdapBackend(slapd.directory(), environ=bind_env)
    missing = f"uid=ghost,ou=people,{slapd.base_dn}"

    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password(missing, NEW_PASSWORD)

    assert caught.value.reason == (
        f"Changing the password of {missing} failed: the account does not exist in the "
        "directory (noSuchObject)."
    )


async def test_a_bind_account_without_write_access_gets_insufficient_access_rights(
    slapd: Slapd, ldap_user: LdapUser, bind_env: dict[str, str]
) -> None:
    backend = OpenLdapBackend(
        slapd.directory(bind_dn=READER_DN, bind_password_env="QP_TEST_READER_BIND"),
        environ=bind_env,
    )

    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password(ldap_user.dn, NEW_PASSWORD)

    assert caught.value.reason == (
        f"Changing the password of {ldap_user.dn} failed: the agent's bind account is not "
        "allowed to change this password (insufficientAccessRights)."
    )
    assert slapd.can_bind(ldap_user.dn, ldap_user.password)


async def test_a_password_policy_refusal_keeps_the_directorys_message_verbatim(
    slapd: Slapd, ldap_user: LdapUser, bind_env: dict[str, str]
) -> None:
    backend = OpenLdapBackend(slapd.directory(), environ=bind_env)
    too_short = "Ab1!"

    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password(ldap_user.dn, too_short)

    assert caught.value.reason == (
        f"Changing the password of {ldap_user.dn} failed: the directory's password policy "
        "refused the new password (constraintViolation: Password fails quality checking policy)."
    )
    assert too_short not in str(caught.value)
    assert slapd.can_bind(ldap_user.dn, ldap_user.password)


async def test_a_wrong_bind_password_reports_invalid_credentials_and_the_variable(
    slapd: Slapd, ldap_user: LdapUser
) -> None:
    backend = OpenLdapBackend(
        slapd.directory(), environ={"QP_TEST_LDAP_BIND": "not-the-bind-password"}
    )

    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password(ldap_user.dn, NEW_PASSWORD)

    reason = caught.value.reason
    assert reason.startswith(f"Signing in to directory 'corp-ldap' as {AGENT_DN}")
    assert "$QP_TEST_LDAP_BIND" in reason
    assert "(invalidCredentials" in reason
    assert "not-the-bind-password" not in reason


async def test_a_missing_bind_password_variable_is_named(slapd: Slapd) -> None:
    backend = OpenLdapBackend(slapd.directory(), environ={})

    with pytest.raises(PasswordChangeFailed, match="QP_TEST_LDAP_BIND.*is not set"):
        await backend.set_password("anyone", NEW_PASSWORD)


async def test_an_unreachable_directory_fails_with_its_url(unused_port_url: str) -> None:
    from qp_agent.config import DirectoryConfig

    url = unused_port_url.replace("http://", "ldap://")
    backend = OpenLdapBackend(
        DirectoryConfig(
            name="gone",
            kind="openldap",
            url=url,
            bind_dn="cn=x",
            bind_password_env="V",
            base_dn="dc=x",
            timeout_seconds=2,
        ),
        environ={"V": "bind-pw"},
    )
    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password("alice", NEW_PASSWORD)
    assert caught.value.reason.startswith(f"Could not talk to directory 'gone' at {url}")


async def test_the_new_password_never_reaches_the_log(
    slapd: Slapd, ldap_user: LdapUser, bind_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = OpenLdapBackend(slapd.directory(), environ=bind_env)

    await backend.set_password(ldap_user.uid, NEW_PASSWORD)
    with pytest.raises(PasswordChangeFailed):
        await backend.set_password(ldap_user.uid, "Ab1!")

    assert ldap_user.dn in caplog.text
    assert NEW_PASSWORD not in caplog.text
    assert "Ab1!" not in caplog.text
    assert bind_env["QP_TEST_LDAP_BIND"] not in caplog.text


def test_dn_detection_tells_dns_from_user_names() -> None:
    assert is_dn("uid=alice,ou=people,dc=example,dc=test")
    assert not is_dn("alice")
    assert not is_dn("alice@example.test")
    assert not is_dn("EXAMPLE\\alice")


def test_result_description_keeps_the_message_verbatim() -> None:
    assert describe_ldap_result(
        {"result": 19, "description": "constraintViolation", "message": "  no way  "},
        "Doing it",
    ) == (
        "Doing it failed: the directory's password policy refused the new password "
        "(constraintViolation: no way)."
    )
    assert describe_ldap_result({"result": 80, "description": "other", "message": ""}, "X") == (
        "X failed: the directory refused the change (other)."
    )
