"""The agent's TOML configuration: which directories it serves and how to reach the tenant.

A configuration never holds a password: an LDAP directory names the environment variable
that carries its bind password (``bind_password_env``). Every error is one sentence that
names the file, the table and the key, so an administrator can fix it without reading code.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

DirectoryKind = Literal["openldap", "active_directory", "local"]
DIRECTORY_KINDS: tuple[DirectoryKind, ...] = ("openldap", "active_directory", "local")
LDAP_KINDS: tuple[DirectoryKind, ...] = ("openldap", "active_directory")

DEFAULT_HEARTBEAT_SECONDS = 30.0
DEFAULT_LDAP_TIMEOUT_SECONDS = 15.0
DEFAULT_SYNC_INTERVAL_SECONDS = 300.0
DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000
# Debian's first regular user id (UID_MIN in login.defs): below it, system accounts.
DEFAULT_MIN_UID = 1000

_TOP_LEVEL_KEYS = frozenset(
    {"tenant_url", "credential_file", "tenant_ca_file", "heartbeat_seconds",
     "sync_interval_seconds", "directory"}
)
_COMMON_KEYS = frozenset({"name", "kind"})
_LDAP_KEYS = frozenset(
    {"url", "bind_dn", "bind_password_env", "base_dn", "ca_file", "timeout_seconds",
     "page_size"}
)
_AD_KEYS = frozenset({"service_ou"})
_LOCAL_KEYS = frozenset(
    {"dry_run", "chpasswd", "allow_system_accounts", "min_uid", "passwd_file"}
)
_SECRET_KEYS = frozenset({"bind_password", "password", "bindpw"})


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says where and why."""


_Fail = Callable[[str, str], ConfigError]


@dataclass(frozen=True)
class DirectoryConfig:
    """One ``[[directory]]`` table: a directory this agent may change passwords in."""

    name: str
    kind: DirectoryKind
    url: str | None = None
    bind_dn: str | None = None
    bind_password_env: str | None = None
    base_dn: str | None = None
    ca_file: Path | None = None
    timeout_seconds: float = DEFAULT_LDAP_TIMEOUT_SECONDS
    dry_run: bool = False
    chpasswd: str | None = None
    # Local system accounts (root, uid < min_uid) the agent may change anyway, by name.
    allow_system_accounts: tuple[str, ...] = ()
    # Directory sync (docs/agent.md): entries per LDAP page; AD accounts under service_ou are
    # service accounts; local users from uid min_uid, read from passwd_file if one is named
    # (else the system's user database).
    page_size: int = DEFAULT_PAGE_SIZE
    service_ou: str | None = None
    min_uid: int = DEFAULT_MIN_UID
    passwd_file: Path | None = None

    def describe(self) -> dict[str, str]:
        """What the heartbeat tells the tenant about this directory (no secrets)."""
        return {"name": self.name, "kind": self.kind}


@dataclass(frozen=True)
class AgentConfig:
    """The whole configuration file."""

    path: Path
    directories: tuple[DirectoryConfig, ...]
    tenant_url: str | None = None
    credential_file: Path | None = None
    tenant_ca_file: Path | None = None
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    sync_interval_seconds: float = DEFAULT_SYNC_INTERVAL_SECONDS
    by_name: Mapping[str, DirectoryConfig] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {d.name: d for d in self.directories})


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate the agent configuration at ``path``.

    Raises:
        ConfigError: the file is missing, is not TOML, or a table or key is wrong.
    """
    config_path = Path(path)
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: the configuration file does not exist.") from None
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot read the file ({exc.strerror}).") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{config_path}: the file is not UTF-8 text.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: the file is not valid TOML ({exc}).") from None
    return parse_config(data, config_path)


def parse_config(data: Mapping[str, Any], path: str | Path) -> AgentConfig:
    """Validate already-parsed TOML ``data``; ``path`` is only used in error messages."""
    source = Path(path)

    def fail(where: str, message: str) -> ConfigError:
        return ConfigError(f"{source}: {where}: {message}")

    for key in data:
        if key in _SECRET_KEYS:
            raise fail(
                f"top level, key '{key}'",
                "passwords do not belong in the file; name an environment variable "
                "with bind_password_env in the [[directory]] table instead.",
            )
        if key not in _TOP_LEVEL_KEYS:
            raise fail(f"top level, key '{key}'", "unknown key.")

    tenant_url = _optional_str(data, "tenant_url", "top level", fail)
    credential_file = _optional_path(data, "credential_file", "top level", fail, source)
    tenant_ca_file = _optional_path(data, "tenant_ca_file", "top level", fail, source)
    heartbeat = data.get("heartbeat_seconds", DEFAULT_HEARTBEAT_SECONDS)
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int | float) or heartbeat <= 0:
        raise fail("top level, key 'heartbeat_seconds'", "must be a positive number of seconds.")
    sync_interval = data.get("sync_interval_seconds", DEFAULT_SYNC_INTERVAL_SECONDS)
    if (isinstance(sync_interval, bool) or not isinstance(sync_interval, int | float)
            or sync_interval <= 0):
        raise fail("top level, key 'sync_interval_seconds'",
                   "must be a positive number of seconds (how often the agent reports its "
                   "directories' accounts).")

    tables = data.get("directory")
    if tables is None:
        raise fail(
            "top level",
            "no [[directory]] table; add one per directory the agent may change passwords in.",
        )
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise fail("top level, key 'directory'", "must be written as [[directory]] tables.")

    directories: list[DirectoryConfig] = []
    seen: set[str] = set()
    for index, table in enumerate(tables, start=1):
        directory = _parse_directory(cast(dict[str, Any], table), index, fail, source)
        if directory.name in seen:
            raise fail(
                f"[[directory]] #{index} ('{directory.name}'), key 'name'",
                "another [[directory]] already has this name.",
            )
        seen.add(directory.name)
        directories.append(directory)

    return AgentConfig(
        path=source,
        directories=tuple(directories),
        tenant_url=tenant_url,
        credential_file=credential_file,
        tenant_ca_file=tenant_ca_file,
        heartbeat_seconds=float(heartbeat),
        sync_interval_seconds=float(sync_interval),
    )


def _parse_directory(
    table: dict[str, Any], index: int, fail: _Fail, source: Path
) -> DirectoryConfig:
    name = table.get("name")
    label = f"[[directory]] #{index}"
    if not isinstance(name, str) or not name.strip():
        raise fail(f"{label}, key 'name'", "is required and must be a non-empty string.")
    label = f"[[directory]] #{index} ('{name}')"

    for key in table:
        if key in _SECRET_KEYS:
            raise fail(
                f"{label}, key '{key}'",
                "passwords do not belong in the file; put the password in an environment "
                "variable and give its name as bind_password_env.",
            )

    kind = table.get("kind")
    if kind not in DIRECTORY_KINDS:
        raise fail(
            f"{label}, key 'kind'",
            f"must be one of {', '.join(DIRECTORY_KINDS)} (got {kind!r}).",
        )
    allowed = _COMMON_KEYS | (_LDAP_KEYS if kind in LDAP_KINDS else _LOCAL_KEYS)
    if kind == "active_directory":
        allowed |= _AD_KEYS
    for key in table:
        if key not in allowed:
            raise fail(f"{label}, key '{key}'", f"is not a setting of a {kind} directory.")

    if kind == "local":
        dry_run = table.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise fail(f"{label}, key 'dry_run'", "must be true or false.")
        allowed_system = table.get("allow_system_accounts", [])
        if not isinstance(allowed_system, list) or not all(
            isinstance(u, str) and u.strip() for u in allowed_system
        ):
            raise fail(
                f"{label}, key 'allow_system_accounts'",
                'must be a list of user names, e.g. ["backup"].',
            )
        min_uid = table.get("min_uid", DEFAULT_MIN_UID)
        if isinstance(min_uid, bool) or not isinstance(min_uid, int) or min_uid < 1:
            raise fail(f"{label}, key 'min_uid'",
                       "must be a whole number of at least 1 (the first regular user id).")
        return DirectoryConfig(
            name=name,
            kind="local",
            dry_run=dry_run,
            chpasswd=_optional_str(table, "chpasswd", label, fail),
            allow_system_accounts=tuple(u.strip() for u in allowed_system),
            min_uid=min_uid,
            passwd_file=_optional_path(table, "passwd_file", label, fail, source),
        )

    # ldap3 cannot parse a port followed by a slash ("ldaps://dc1:636/").
    url = _required_str(table, "url", label, fail).strip().rstrip("/")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("ldap", "ldaps"):
        raise fail(f"{label}, key 'url'", f"must start with ldap:// or ldaps:// (got {url!r}).")
    if kind == "active_directory" and scheme != "ldaps":
        raise fail(
            f"{label}, key 'url'",
            "Active Directory only accepts a new password over TLS; use an ldaps:// URL.",
        )
    bind_password_env = _required_str(table, "bind_password_env", label, fail)
    if not bind_password_env.replace("_", "A").isalnum() or bind_password_env[0].isdigit():
        raise fail(
            f"{label}, key 'bind_password_env'",
            "must be the NAME of an environment variable (letters, digits and _), "
            "not the password itself.",
        )
    timeout = table.get("timeout_seconds", DEFAULT_LDAP_TIMEOUT_SECONDS)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise fail(f"{label}, key 'timeout_seconds'", "must be a positive number of seconds.")
    page_size = table.get("page_size", DEFAULT_PAGE_SIZE)
    if (isinstance(page_size, bool) or not isinstance(page_size, int)
            or not 1 <= page_size <= MAX_PAGE_SIZE):
        raise fail(f"{label}, key 'page_size'",
                   f"must be a whole number from 1 to {MAX_PAGE_SIZE} (entries per LDAP page).")
    return DirectoryConfig(
        name=name,
        kind=cast(DirectoryKind, kind),
        url=url,
        bind_dn=_required_str(table, "bind_dn", label, fail),
        bind_password_env=bind_password_env,
        base_dn=_required_str(table, "base_dn", label, fail),
        ca_file=_optional_path(table, "ca_file", label, fail, source),
        timeout_seconds=float(timeout),
        page_size=page_size,
        service_ou=_optional_str(table, "service_ou", label, fail),
    )


def _required_str(table: Mapping[str, Any], key: str, label: str, fail: _Fail) -> str:
    value = table.get(key)
    if value is None:
        raise fail(f"{label}, key '{key}'", "is required.")
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{label}, key '{key}'", "must be a non-empty string.")
    return value


def _optional_str(table: Mapping[str, Any], key: str, label: str, fail: _Fail) -> str | None:
    if table.get(key) is None:
        return None
    return _required_str(table, key, label, fail)


def _optional_path(
    table: Mapping[str, Any], key: str, label: str, fail: _Fail, source: Path
) -> Path | None:
    value = _optional_str(table, key, label, fail)
    if value is None:
        return None
    path = Path(value).expanduser()
    # Relative paths are relative to the configuration file, not to the working directory
    # of whatever service manager started the agent.
    return path if path.is_absolute() else source.parent / path
