"""Local accounts: the exact chpasswd call, dry runs, and (as root) a real password change."""

from __future__ import annotations

import os
import secrets
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from qp_agent.backends import PasswordChangeFailed
from qp_agent.backends.local import (
    ChpasswdCall,
    CommandResult,
    LocalAccountBackend,
    chpasswd_call,
)
from qp_agent.config import DirectoryConfig

LOCAL = DirectoryConfig(name="this-server", kind="local")
DRY = DirectoryConfig(name="this-server", kind="local", dry_run=True,
                      allow_system_accounts=("root",))
NEW_PASSWORD = "N3w:pass word!"


class RecordingRunner:
    """Stands in for subprocess: records each call and answers with a fixed result."""

    def __init__(self, result: CommandResult = CommandResult(0, "")) -> None:
        self.calls: list[ChpasswdCall] = []
        self.result = result

    def __call__(self, call: ChpasswdCall) -> CommandResult:
        self.calls.append(call)
        return self.result


def existing_user(name: str) -> object:
    return SimpleNamespace(pw_uid=1001)


def test_the_password_goes_on_stdin_and_never_on_the_command_line() -> None:
    call = chpasswd_call("alice", NEW_PASSWORD)
    assert call.argv == ("/usr/sbin/chpasswd",)
    assert call.stdin == b"alice:N3w:pass word!\n"
    assert NEW_PASSWORD not in repr(call)


@pytest.mark.parametrize(
    ("user", "password", "says"),
    [
        ("alice", "one\nroot:owned", "line break"),
        ("alice", "x\rroot:owned", "line break"),
        ("al:ice", "fine", "not a valid local user name"),
        ("-alice", "fine", "not a valid local user name"),
        ("alice", "", "empty"),
    ],
)
def test_names_and_passwords_that_could_smuggle_a_second_line_are_refused(
    user: str, password: str, says: str
) -> None:
    with pytest.raises(PasswordChangeFailed, match=says) as caught:
        chpasswd_call(user, password)
    if password:
        assert password not in str(caught.value)


async def test_the_backend_runs_exactly_the_built_command() -> None:
    runner = RecordingRunner()
    backend = LocalAccountBackend(LOCAL, runner=runner, user_lookup=existing_user)

    summary = await backend.set_password("alice", NEW_PASSWORD)

    assert runner.calls == [ChpasswdCall(("/usr/sbin/chpasswd",), b"alice:N3w:pass word!\n")]
    assert summary == "password changed for local user 'alice'"


async def test_a_chpasswd_failure_reports_its_stderr_without_the_password() -> None:
    runner = RecordingRunner(
        CommandResult(1, f"chpasswd: (user alice) pam_chauthtok() failed: {NEW_PASSWORD}\n")
    )
    backend = LocalAccountBackend(LOCAL, runner=runner, user_lookup=existing_user)

    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password("alice", NEW_PASSWORD)

    assert caught.value.reason == (
        "chpasswd could not set the password of local user 'alice' (exit 1): "
        "chpasswd: (user alice) pam_chauthtok() failed: ***"
    )


async def test_dry_run_checks_the_user_and_reports_the_command_without_running_it() -> None:
    runner = RecordingRunner()
    backend = LocalAccountBackend(DRY, runner=runner)

    assert backend.plan("root", NEW_PASSWORD) == ChpasswdCall(
        ("/usr/sbin/chpasswd",), b"root:N3w:pass word!\n"
    )
    with pytest.raises(PasswordChangeFailed) as caught:
        await backend.set_password("root", NEW_PASSWORD)

    assert runner.calls == []
    assert caught.value.reason == (
        "Dry run (directory 'this-server'): the password was not changed; would run "
        "/usr/sbin/chpasswd with 'root:<new password>' on stdin."
    )


async def test_an_unknown_local_user_is_a_clear_failure() -> None:
    runner = RecordingRunner()
    backend = LocalAccountBackend(DRY, runner=runner)
    with pytest.raises(PasswordChangeFailed, match="There is no local user 'no-such-user-qp'"):
        await backend.set_password("no-such-user-qp", NEW_PASSWORD)
    assert runner.calls == []


def shadow_hash(user: str) -> str:
    for line in Path("/etc/shadow").read_text().splitlines():
        name, hashed, *_ = line.split(":")
        if name == user:
            return hashed
    raise KeyError(user)


@pytest.fixture
def throwaway_user() -> Iterator[str]:
    """A locked regular user without a home, created for one test and deleted after it."""
    if os.geteuid() != 0:
        pytest.skip("creating a throw-away local user needs root")
    name = f"qpagent-{secrets.token_hex(4)}"
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


async def test_a_real_local_password_changes_in_etc_shadow(throwaway_user: str) -> None:
    before = shadow_hash(throwaway_user)
    backend = LocalAccountBackend(LOCAL)

    await backend.set_password(throwaway_user, "Throwaway-Pw-1")

    after = shadow_hash(throwaway_user)
    assert after != before
    assert after.startswith("$")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")  # removed in Python 3.13
    assert crypt.crypt("Throwaway-Pw-1", after) == after
