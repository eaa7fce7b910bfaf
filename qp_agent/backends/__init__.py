"""Password backends: the code that writes a new password into a real directory.

Every backend offers one coroutine, ``set_password(identity, password)``, which returns a
short human summary on success and raises :class:`PasswordChangeFailed` with the
directory's own reason otherwise. Reasons never contain the password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from qp_agent.config import DirectoryConfig


class PasswordChangeFailed(Exception):
    """The directory did not take the new password; ``reason`` is safe to show and report."""

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


__all__ = ["PasswordBackend", "PasswordChangeFailed", "build_backends", "scrub"]
