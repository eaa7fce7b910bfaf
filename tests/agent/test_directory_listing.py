"""What the agent reports from each directory: a real slapd, a real Samba AD DC, and a
passwd file. Kinds, enabled flags, login names, and listings larger than one LDAP page."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qp_agent.backends import DirectoryAccount, DirectoryListingFailed
from qp_agent.backends.ldap import ActiveDirectoryBackend, OpenLdapBackend
from qp_agent.backends.local import LocalAccountBackend
from qp_agent.config import DirectoryConfig
from tests.agent.conftest import AGENT_PASSWORD, BASE_DN, Slapd
from tests.support import samba

_ous = itertools.count()


@pytest.fixture
def people_ou(slapd: Slapd) -> Iterator[str]:
    """An OU of its own with five people, so other tests' entries do not count here."""
    ou = f"ou=sync{next(_ous)},{BASE_DN}"
    conn = slapd.admin()
    added = [ou]
    try:
        assert conn.add(ou, ["organizationalUnit"]), conn.result
        for n in range(5):
            dn = f"uid=person{n},{ou}"
            assert conn.add(dn, ["inetOrgPerson"], {"uid": f"person{n}", "cn": f"Person {n}",
                                                    "sn": "P"}), conn.result
            added.append(dn)
    finally:
        conn.unbind()
    yield ou
    conn = slapd.admin()
    try:
        for dn in reversed(added):
            conn.delete(dn)
    finally:
        conn.unbind()


def _list(backend: Any) -> dict[str, DirectoryAccount]:
    return {a.login_names[0]: a for a in backend.list_accounts()}


@pytest.mark.slapd
def test_openldap_lists_every_person_across_pages_with_uid_and_cn(
        slapd: Slapd, people_ou: str) -> None:
    config = DirectoryConfig(name="corp-ldap", kind="openldap", url=slapd.url,
                             bind_dn=slapd.directory().bind_dn, bind_password_env="BIND",
                             base_dn=people_ou, page_size=2)
    accounts = _list(OpenLdapBackend(config, environ={"BIND": AGENT_PASSWORD}))
    assert sorted(accounts) == [f"person{n}" for n in range(5)]  # 3 pages of 2
    person = accounts["person3"]
    assert person.identity == f"uid=person3,{people_ou}"
    assert person.display_name == "Person 3" and person.kind == "end_user" and person.enabled


@pytest.mark.slapd
def test_an_openldap_listing_that_fails_is_an_error_never_an_empty_directory(
        slapd: Slapd) -> None:
    config = DirectoryConfig(name="corp-ldap", kind="openldap", url=slapd.url,
                             bind_dn=slapd.directory().bind_dn, bind_password_env="BIND",
                             base_dn=f"ou=missing,{BASE_DN}", page_size=2)
    with pytest.raises(DirectoryListingFailed, match="corp-ldap"):
        list(OpenLdapBackend(config, environ={"BIND": AGENT_PASSWORD}).list_accounts())
    wrong = DirectoryConfig(name="corp-ldap", kind="openldap", url=slapd.url,
                            bind_dn=slapd.directory().bind_dn, bind_password_env="BIND",
                            base_dn=BASE_DN)
    with pytest.raises(DirectoryListingFailed) as refused:
        list(OpenLdapBackend(wrong, environ={"BIND": "not-the-password"}).list_accounts())
    assert "could not sign in" in refused.value.reason
    assert "not-the-password" not in refused.value.reason


def ad_directory(dc: samba.SambaDC, **overrides: Any) -> DirectoryConfig:
    values: dict[str, Any] = {
        "name": "corp-ad", "kind": "active_directory", "url": dc.url,
        "bind_dn": samba.ADMIN_DN, "bind_password_env": "AD_BIND", "base_dn": samba.BASE_DN,
        "ca_file": dc.ca_file, "page_size": 2, **overrides}
    return DirectoryConfig(**values)


def ad_backend(dc: samba.SambaDC, **overrides: Any) -> ActiveDirectoryBackend:
    return ActiveDirectoryBackend(ad_directory(dc, **overrides),
                                  environ={"AD_BIND": samba.ADMIN_PASSWORD})


@pytest.mark.samba
@pytest.mark.timeout(samba.SAMBA_TIMEOUT)
def test_active_directory_kinds_nested_admins_disabled_users_and_service_accounts(
        samba_dc: samba.SambaDC) -> None:
    base = samba.BASE_DN
    helpdesk_lead = samba_dc.add_user("hlead", display_name="Helpdesk Lead")
    tier2 = samba_dc.add_group("Tier2 Admins", [helpdesk_lead])
    tier1 = samba_dc.add_group("Tier1 Admins", [tier2])  # nested twice
    samba_dc.add_member(f"CN=Domain Admins,CN=Users,{base}", tier1)
    samba_dc.add_user("jdoe", display_name="Jane Doe")
    samba_dc.add_user("leaver", disabled=True)
    samba_dc.add_user("svc-sql", spn="MSSQLSvc/sql01.example.test:1433")
    services = samba_dc.add_ou("Service Accounts")
    samba_dc.add_user("svc-backup", container=services)

    accounts = _list(ad_backend(samba_dc, service_ou=services))  # pages of 2
    assert accounts["hlead"].kind == "administrator"
    assert accounts["hlead"].identity == f"CN=Helpdesk Lead,CN=Users,{base}"
    assert accounts["hlead"].login_names == ("hlead", "hlead@example.test")
    assert accounts["hlead"].display_name == "Helpdesk Lead"
    assert accounts["Administrator"].kind == "administrator"
    assert accounts["jdoe"].kind == "end_user" and accounts["jdoe"].enabled
    assert accounts["leaver"].enabled is False
    assert accounts["svc-sql"].kind == "service"
    assert accounts["svc-backup"].kind == "service"
    assert accounts["svc-backup"].identity == f"CN=svc-backup,{services}"
    assert len(accounts) > 2 * 3  # more than three pages of two


def test_local_accounts_are_users_with_a_login_shell_from_min_uid(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        "backup:x:34:34:backup:/var/backups:/bin/sh\n"
        "alice:x:1000:1000:Alice Smith,,,:/home/alice:/bin/bash\n"
        "svc:x:1001:1001::/srv:/usr/sbin/nologin\n"
        "ftp:x:1002:1002::/srv/ftp:/bin/false\n"
        "bob:x:1500:1500:Bob:/home/bob:\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
        "broken line\n")
    config = DirectoryConfig(name="box", kind="local", passwd_file=passwd,
                             allow_system_accounts=("backup",))
    accounts = _list(LocalAccountBackend(config))
    assert sorted(accounts) == ["alice", "backup", "bob"]  # backup: allowed by name
    assert accounts["alice"].display_name == "Alice Smith"
    assert accounts["alice"].identity == "alice"
    higher = DirectoryConfig(name="box", kind="local", passwd_file=passwd, min_uid=1200)
    assert sorted(_list(LocalAccountBackend(higher))) == ["bob"]


def test_a_passwd_file_that_cannot_be_read_is_a_listing_failure(tmp_path: Path) -> None:
    config = DirectoryConfig(name="box", kind="local", passwd_file=tmp_path / "absent")
    with pytest.raises(DirectoryListingFailed, match="box"):
        list(LocalAccountBackend(config).list_accounts())
