"""Where the agent credential lives: the keyring when it works, else a 0600 file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import keyring.backend
import keyring.errors
import pytest

from qp_agent.credentials import (
    AgentCredential,
    CredentialError,
    CredentialStore,
    keyring_service,
)

TENANT = "https://tenant.example.com"
CREDENTIAL = AgentCredential(TENANT, "agent-7", "qpat_secret-token-value")


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An in-memory keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


class BrokenKeyring(MemoryKeyring):
    """What keyring's ``fail`` backend does on a server without a Secret Service."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.NoKeyringError("No recommended backend was available.")

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.NoKeyringError("No recommended backend was available.")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_working_keyring_holds_the_token_and_the_file_only_points_to_it(tmp_path: Path) -> None:
    ring = MemoryKeyring()
    path = tmp_path / "cfg" / "agent-credential.json"
    store = CredentialStore(path, keyring_backend=ring)

    where = store.save(CREDENTIAL)

    assert "keyring" in where
    assert json.loads(ring.items[(f"qp-agent:{TENANT}", "agent")]) == {
        "agent_id": "agent-7",
        "agent_token": "qpat_secret-token-value",
    }
    assert CREDENTIAL.agent_token not in path.read_text()
    assert mode(path) == 0o600
    assert store.load() == CREDENTIAL
    assert keyring_service(TENANT) == "qp-agent:https://tenant.example.com"


def test_without_a_keyring_the_token_goes_to_a_file_only_the_owner_can_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new-folder" / "cred.json"
    store = CredentialStore(path, keyring_backend=BrokenKeyring())

    where = store.save(CREDENTIAL)

    assert str(path) in where
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert json.loads(path.read_text())["agent_token"] == CREDENTIAL.agent_token
    assert CredentialStore(path, keyring_backend=BrokenKeyring()).load() == CREDENTIAL


def test_saving_again_keeps_the_file_private_even_if_it_was_loosened(tmp_path: Path) -> None:
    path = tmp_path / "cred.json"
    store = CredentialStore(path, keyring_backend=False)
    store.save(CREDENTIAL)
    path.chmod(0o644)

    store.save(CREDENTIAL)

    assert mode(path) == 0o600


def test_the_token_is_not_in_the_credentials_repr() -> None:
    assert CREDENTIAL.agent_token not in repr(CREDENTIAL)


def test_an_agent_that_never_enrolled_is_told_to_enroll(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "none.json", keyring_backend=MemoryKeyring())
    with pytest.raises(CredentialError, match="not enrolled.*qp-agent enroll"):
        store.load()
    with pytest.raises(CredentialError, match=f"No agent credential for {TENANT}"):
        store.load(TENANT)


def test_the_config_tenant_url_finds_the_keyring_entry_without_a_file(tmp_path: Path) -> None:
    ring = MemoryKeyring()
    CredentialStore(tmp_path / "a.json", keyring_backend=ring).save(CREDENTIAL)

    loaded = CredentialStore(tmp_path / "other.json", keyring_backend=ring).load(TENANT)

    assert loaded == CREDENTIAL
