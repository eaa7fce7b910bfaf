"""Password backends: the code that writes a new password into a real directory.

Every backend offers one coroutine, ``set_password(identity, password)``, which returns a
short human summary on success and raises :class:`PasswordChangeFailed` with the
directory's own reason otherwise. Reasons never contain the password.

Each also lists its directory's accounts for the directory sync (``list_accounts``): a
blocking generator of :class:`DirectoryAccount`, read page by page so a directory of any
size is held in bounded memory (the runner drives it from a worker thread).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from qp_agent.config import DirectoryConfig


class PasswordChangeFailed(Exception):
    """The directory did not take the new password; ``reason`` is safe to show and report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DirectoryAccount:
    """One account as the directory describes it (no secret: passwords are never read).

    ``identity`` is what a reset names (the DN in LDAP/AD, the user name locally);
    ``login_names`` what people sign in with (sAMAccountName, userPrincipalName, uid).
    ``kind`` is administrator, service or end_user.
    """

    identity: str
    display_name: str
    login_names: tuple[str, ...]
    enabled: bool = True
    kind: str = "end_user"

    def to_json(self) -> dict[str, Any]:
        return {"identity": self.identity, "display_name": self.display_name,
                "login_names": list(self.login_names), "enabled": self.enabled,
                "kind": self.kind}


class AccountLister(Protocol):
    """A backend that can list its directory's accounts."""

    def list_accounts(self) -> Iterator[DirectoryAccount]:
        """Every account of the directory (blocking; raises ``DirectoryListingFailed``)."""
        ...


class DirectoryListingFailed(Exception):
    """The directory's accounts could not be listed; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PasswordBackend(Protocol):
    """Something that can set an account's password in one configured directory."""

    directory: DirectoryConfig

    async def set_password(self, identity: str, password: str) -> str:
        """Set ``identity``'s password; return a one-line summary (no secret in it).

        Raises:
            PasswordChangeFailed: the directory refused, or could not be reached.
        """
        ...


def scrub(text: str, *secrets: str | None) -> str:
    """Return ``text`` with every non-empty ``secret`` replaced by ``***``.

    Defence in depth: messages are built without secrets, but a directory or a library
    could echo one back.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def build_backends(
    directories: tuple[DirectoryConfig, ...] | list[DirectoryConfig],
    environ: Mapping[str, str] | None = None,
) -> dict[str, PasswordBackend]:
    """Create one backend per configured directory, keyed by directory name.

    Args:
        environ: where LDAP bind passwords are read from (default ``os.environ``); read when
            a job runs, so a missing variable fails that job with a clear reason.
    """
    from qp_agent.backends.ldap import ActiveDirectoryBackend, OpenLdapBackend
    from qp_agent.backends.local import LocalAccountBackend

    env = os.environ if environ is None else environ
    backends: dict[str, PasswordBackend] = {}
    for directory in directories:
        if directory.kind == "openldap":
            backends[directory.name] = OpenLdapBackend(directory, environ=env)
        elif directory.kind == "active_directory":
            backends[directory.name] = ActiveDirectoryBackend(directory, environ=env)
        else:
            backends[directory.name] = LocalAccountBackend(directory)
    return backends


__all__ = ["AccountLister", "DirectoryAccount", "DirectoryListingFailed", "PasswordBackend",
           "PasswordChangeFailed", "build_backends", "scrub"]
