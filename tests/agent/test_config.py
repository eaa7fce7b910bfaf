"""The agent's TOML configuration: what it accepts and how it says what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from qp_agent.config import ConfigError, load_config

GOOD = """\
tenant_url = "https://tenant.example.com"
heartbeat_seconds = 10

[[directory]]
name = "corp-ldap"
kind = "openldap"
url = "ldaps://ldap.corp.example:636"
bind_dn = "cn=agent,ou=services,dc=corp,dc=example"
bind_password_env = "CORP_LDAP_BIND_PASSWORD"
base_dn = "dc=corp,dc=example"
ca_file = "certs/corp-ca.pem"

[[directory]]
name = "corp-ad"
kind = "active_directory"
url = "ldaps://dc1.corp.example"
bind_dn = "CN=qp-agent,OU=Service Accounts,DC=corp,DC=example"
bind_password_env = "CORP_AD_BIND_PASSWORD"
base_dn = "DC=corp,DC=example"

[[directory]]
name = "this-server"
kind = "local"
dry_run = true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_a_complete_config_is_parsed_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))

    assert config.tenant_url == "https://tenant.example.com"
    assert config.heartbeat_seconds == 10
    assert [(d.name, d.kind) for d in config.directories] == [
        ("corp-ldap", "openldap"),
        ("corp-ad", "active_directory"),
        ("this-server", "local"),
    ]
    ldap = config.by_name["corp-ldap"]
    assert ldap.bind_password_env == "CORP_LDAP_BIND_PASSWORD"
    assert ldap.ca_file == tmp_path / "certs" / "corp-ca.pem"
    assert config.by_name["this-server"].dry_run is True
    assert config.by_name["corp-ad"].describe() == {"name": "corp-ad", "kind": "active_directory"}


def test_heartbeat_defaults_to_thirty_seconds(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[[directory]]\nname = "box"\nkind = "local"\n'))
    assert config.heartbeat_seconds == 30
    assert config.tenant_url is None


def test_a_bind_password_in_the_file_is_refused_naming_file_table_and_key(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        GOOD.replace(
            'bind_password_env = "CORP_AD_BIND_PASSWORD"',
            'bind_password = "Sup3rSecret!"',
        ),
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert "[[directory]] #2 ('corp-ad')" in message
    assert "'bind_password'" in message
    assert "bind_password_env" in message
    assert "Sup3rSecret!" not in message


@pytest.mark.parametrize(
    ("edit", "table", "key", "says"),
    [
        (
            ('url = "ldaps://dc1.corp.example"', 'url = "ldap://dc1.corp.example"'),
            "#2 ('corp-ad')",
            "url",
            "ldaps://",
        ),
        (('kind = "openldap"', 'kind = "novell"'), "#1 ('corp-ldap')", "kind", "must be one of"),
        (('base_dn = "dc=corp,dc=example"\n', ""), "#1 ('corp-ldap')", "base_dn", "is required"),
        (
            ('url = "ldaps://ldap.corp.example:636"', 'url = "https://ldap.corp.example"'),
            "#1 ('corp-ldap')",
            "url",
            "ldap://",
        ),
        (
            ('bind_password_env = "CORP_LDAP_BIND_PASSWORD"', 'bind_password_env = "hunter2!"'),
            "#1 ('corp-ldap')",
            "bind_password_env",
            "NAME of an environment variable",
        ),
        (("dry_run = true", "dry_run = 1"), "#3 ('this-server')", "dry_run", "true or false"),
        (
            ("dry_run = true", 'url = "ldap://x"'),
            "#3 ('this-server')",
            "url",
            "not a setting of a local directory",
        ),
        (('name = "corp-ad"', 'name = "corp-ldap"'), "#2 ('corp-ldap')", "name", "already"),
    ],
)
def test_a_bad_directory_setting_is_reported_as_one_sentence_naming_it(
    tmp_path: Path, edit: tuple[str, str], table: str, key: str, says: str
) -> None:
    assert edit[0] in GOOD
    path = write(tmp_path, GOOD.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: [[directory]] {table}, key '{key}': ")
    assert says in message
    assert "\n" not in message


def test_unknown_top_level_keys_and_missing_directories_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"top level, key 'tenant': unknown key"):
        load_config(write(tmp_path, 'tenant = "x"\n'))
    with pytest.raises(ConfigError, match=r"no \[\[directory\]\] table"):
        load_config(write(tmp_path, 'tenant_url = "https://t.example"\n'))


def test_invalid_toml_and_missing_files_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[[directory]\nname=")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_sync_settings_have_defaults_and_are_read_per_directory(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.sync_interval_seconds == 300
    assert config.by_name["corp-ad"].page_size == 500
    assert config.by_name["this-server"].min_uid == 1000
    tuned = GOOD.replace("heartbeat_seconds = 10", "heartbeat_seconds = 10\n"
                         "sync_interval_seconds = 60").replace(
        'base_dn = "DC=corp,DC=example"',
        'base_dn = "DC=corp,DC=example"\npage_size = 200\n'
        'service_ou = "OU=Service Accounts,DC=corp,DC=example"').replace(
        "dry_run = true", 'dry_run = true\nmin_uid = 500\npasswd_file = "passwd"')
    config = load_config(write(tmp_path, tuned))
    assert config.sync_interval_seconds == 60
    ad = config.by_name["corp-ad"]
    assert ad.page_size == 200 and ad.service_ou == "OU=Service Accounts,DC=corp,DC=example"
    assert config.by_name["this-server"].min_uid == 500
    assert config.by_name["this-server"].passwd_file == tmp_path / "passwd"


@pytest.mark.parametrize(("change", "where"), [
    (("heartbeat_seconds = 10", "heartbeat_seconds = 10\nsync_interval_seconds = 0"),
     "key 'sync_interval_seconds'"),
    (('base_dn = "DC=corp,DC=example"', 'base_dn = "DC=corp,DC=example"\npage_size = 5000'),
     "key 'page_size'"),
    (('base_dn = "dc=corp,dc=example"\n', 'base_dn = "dc=corp,dc=example"\nservice_ou = "x"\n'),
     "('corp-ldap'), key 'service_ou'"),
    (("dry_run = true", "dry_run = true\nmin_uid = 0"), "key 'min_uid'"),
])
def test_wrong_sync_settings_name_the_key(tmp_path: Path, change: tuple[str, str],
                                          where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace("(", r"\(").replace(")", r"\)")):
        load_config(write(tmp_path, GOOD.replace(*change, 1)))
