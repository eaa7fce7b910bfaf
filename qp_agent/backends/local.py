"""Local Linux accounts: the new password goes to ``chpasswd`` on its standard input.

The password is never put on a command line (where ``ps`` and audit logs would see it).
The command is built by :func:`chpasswd_call` and run through an injectable runner, so tests
can check exactly what would run; ``dry_run = true`` in the configuration checks that the
user exists and reports the command without running it.

System accounts (``root``, and every uid below the directory's ``min_uid`` (default
:data:`FIRST_REGULAR_UID`) or above :data:`LAST_REGULAR_UID`, e.g. ``nobody``) are refused
unless the directory names them in ``allow_system_accounts``: a tenant that was tricked into
pointing an account at ``root`` must not get the machine's root password changed. The same
rule (:func:`is_refused_system_account`) decides which users the directory sync reports,
together with a login shell (``nologin`` and ``false`` are none).
"""

from __future__ import annotations

import asyncio
import logging
import pwd
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from qp_agent.backends import (
    DirectoryAccount,
    DirectoryListingFailed,
    PasswordChangeFailed,
    scrub,
)
from qp_agent.config import DirectoryConfig

logger = logging.getLogger(__name__)

DEFAULT_CHPASSWD = "/usr/sbin/chpasswd"
CHPASSWD_TIMEOUT_SECONDS = 30.0
# Debian's regular-user range (UID_MIN / UID_MAX in login.defs); outside it: system accounts.
FIRST_REGULAR_UID = 1000
LAST_REGULAR_UID = 60000


@dataclass(frozen=True)
class ChpasswdCall:
    """One run of chpasswd: the argument vector and the bytes fed to its stdin."""

    argv: tuple[str, ...]
    stdin: bytes = field(repr=False)


@dataclass(frozen=True)
class CommandResult:
    """What a runner reports back: exit status and the command's stderr text."""

    returncode: int
    stderr: str


NO_LOGIN_SHELLS = frozenset({"nologin", "false"})


def is_refused_system_account(directory: DirectoryConfig, name: str, uid: int) -> bool:
    """Whether ``name`` (uid ``uid``) is a system account this directory does not allow:
    ``root``, or a uid outside ``min_uid`` .. :data:`LAST_REGULAR_UID`, unless named in
    ``allow_system_accounts``."""
    system = name == "root" or not directory.min_uid <= uid <= LAST_REGULAR_UID
    return system and name not in directory.allow_system_accounts


def has_login_shell(shell: str) -> bool:
    """An empty shell field means /bin/sh; ``nologin`` and ``false`` refuse logins."""
    return PurePosixPath(shell.strip() or "/bin/sh").name not in NO_LOGIN_SHELLS


@dataclass(frozen=True)
class PasswdEntry:
    """The fields of one passwd line the sync reads."""

    name: str
    uid: int
    gecos: str
    shell: str


def read_passwd_file(path: str) -> Iterator[PasswdEntry]:
    """Entries of a passwd(5) file; malformed lines are skipped."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.rstrip("\n").split(":")
            if len(fields) < 7 or not fields[0] or fields[0].startswith(("#", "+", "-")):
                continue
            try:
                uid = int(fields[2])
            except ValueError:
                continue
            yield PasswdEntry(fields[0], uid, fields[4], fields[6])


def system_passwd() -> Iterator[PasswdEntry]:
    """The system's user database (NSS: /etc/passwd and any directory service)."""
    for entry in pwd.getpwall():
        yield PasswdEntry(entry.pw_name, entry.pw_uid, entry.pw_gecos, entry.pw_shell)


CommandRunner = Callable[[ChpasswdCall], CommandResult]
"""Runs a :class:`ChpasswdCall` (blocking; the backend calls it in a worker thread)."""

UserLookup = Callable[[str], Any]
"""Returns an entry with ``pw_uid``; raises ``KeyError`` when the user does not exist
(``pwd.getpwnam``)."""


def chpasswd_call(user: str, password: str, chpasswd: str = DEFAULT_CHPASSWD) -> ChpasswdCall:
    """The exact chpasswd invocation that sets ``user``'s password.

    chpasswd reads ``user:password`` lines, so a newline in either part could set a second
    account's password, and a colon in the user name would shift the split.

    Raises:
        PasswordChangeFailed: the user name or the password cannot be expressed safely.
    """
    if not user or any(c in user for c in ":\n\r\0") or user.startswith("-"):
        raise PasswordChangeFailed(f"{user!r} is not a valid local user name.")
    if not password:
        raise PasswordChangeFailed("The new password is empty; chpasswd was not run.")
    if any(c in password for c in "\n\r\0"):
        raise PasswordChangeFailed(
            "The new password contains a line break or NUL character, which chpasswd cannot "
            "take; chpasswd was not run."
        )
    return ChpasswdCall(argv=(chpasswd,), stdin=f"{user}:{password}\n".encode())


def run_command(call: ChpasswdCall) -> CommandResult:
    """Run ``call`` for real, with a timeout, capturing stderr."""
    try:
        completed = subprocess.run(
            list(call.argv),
            input=call.stdin,
            capture_output=True,
            timeout=CHPASSWD_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        return CommandResult(127, f"{call.argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return CommandResult(-1, f"{call.argv[0]} did not finish in {CHPASSWD_TIMEOUT_SECONDS:g} s")
    return CommandResult(completed.returncode, completed.stderr.decode("utf-8", "replace"))


class LocalAccountBackend:
    """Sets passwords of accounts on this machine through chpasswd."""

    def __init__(
        self,
        directory: DirectoryConfig,
        *,
        runner: CommandRunner = run_command,
        user_lookup: UserLookup = pwd.getpwnam,
    ) -> None:
        self.directory = directory
        self._runner = runner
        self._user_lookup = user_lookup
        self._chpasswd = directory.chpasswd or DEFAULT_CHPASSWD

    def plan(self, identity: str, password: str) -> ChpasswdCall:
        """Check that ``identity`` is a local user and return the command that would run.

        Raises:
            PasswordChangeFailed: no such user, or an unsafe name or password.
        """
        call = chpasswd_call(identity, password, self._chpasswd)
        try:
            entry = self._user_lookup(identity)
        except KeyError:
            raise PasswordChangeFailed(
                f"There is no local user {identity!r} on this machine."
            ) from None
        uid = int(entry.pw_uid)
        if is_refused_system_account(self.directory, identity, uid):
            raise PasswordChangeFailed(
                f"The agent refused: {identity!r} (uid {uid}) is a system account of this "
                f"machine, and directory '{self.directory.name}' does not allow it. To let "
                "the agent change it, add it by name to allow_system_accounts in the "
                "directory's configuration."
            )
        return call

    async def set_password(self, identity: str, password: str) -> str:
        """Set ``identity``'s password, or in dry-run mode only say what would run.

        Raises:
            PasswordChangeFailed: the change was not made; in dry-run mode always, since
                reporting success would tell the tenant a password changed when it did not.
        """
        call = self.plan(identity, password)
        if self.directory.dry_run:
            raise PasswordChangeFailed(
                f"Dry run (directory '{self.directory.name}'): the password was not changed; "
                f"would run {' '.join(call.argv)} with '{identity}:<new password>' on stdin."
            )
        result = await asyncio.to_thread(self._runner, call)
        if result.returncode != 0:
            stderr = scrub(result.stderr.strip(), password)
            raise PasswordChangeFailed(
                f"chpasswd could not set the password of local user {identity!r} "
                f"(exit {result.returncode}): {stderr or 'no message'}"
            )
        logger.info("Password changed for local user %r", identity)
        return f"password changed for local user '{identity}'"

    def list_accounts(self) -> Iterator[DirectoryAccount]:
        """Users with a login shell that are not refused system accounts (blocking)."""
        source = self.directory.passwd_file
        try:
            entries = read_passwd_file(str(source)) if source else system_passwd()
            seen: set[str] = set()
            for entry in entries:
                if entry.name in seen or not has_login_shell(entry.shell):
                    continue
                if is_refused_system_account(self.directory, entry.name, entry.uid):
                    continue
                seen.add(entry.name)
                full_name = entry.gecos.split(",", 1)[0].strip()
                yield DirectoryAccount(
                    identity=entry.name, display_name=full_name or entry.name,
                    login_names=(entry.name,),
                    kind="administrator" if entry.uid == 0 else "end_user")
        except OSError as exc:
            raise DirectoryListingFailed(
                f"Could not read the users of directory '{self.directory.name}' from "
                f"{source}: {exc.strerror or exc}."
            ) from None
