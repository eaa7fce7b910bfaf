"""Where the agent keeps its credential (tenant URL, agent id, agent token).

The token goes into the OS keyring (service ``qp-agent:<tenant url>``) when a keyring backend
works. Otherwise, typically for a headless service account, it goes into a file only the
agent's user can read (mode 0600, in a 0700 folder). The credential file always exists after
enrollment: without a token in it, it records which tenant the keyring entry belongs to,
so ``qp-agent run`` finds it without more configuration.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.errors
import platformdirs

logger = logging.getLogger(__name__)

KEYRING_USERNAME = "agent"
CREDENTIAL_FILE_NAME = "agent-credential.json"


class CredentialError(Exception):
    """No usable credential: the agent has not been enrolled, or the file is damaged."""


@dataclass(frozen=True)
class AgentCredential:
    """This agent's identity at one tenant. The token is left out of repr."""

    tenant_url: str
    agent_id: str
    agent_token: str = field(repr=False)


def keyring_service(tenant_url: str) -> str:
    """The keyring service name the credential of ``tenant_url`` is stored under."""
    return f"qp-agent:{tenant_url}"


def default_credential_file() -> Path:
    """The credential file in the user's config folder (``~/.config/qp-agent/`` on Linux)."""
    return Path(platformdirs.user_config_dir("qp-agent", appauthor=False)) / CREDENTIAL_FILE_NAME


class CredentialStore:
    """Saves and loads the agent credential.

    Args:
        path: the credential file; ``None`` for :func:`default_credential_file`.
        keyring_backend: the keyring to try first; ``None`` for the system's default,
            ``False`` to never use a keyring (an explicit ``--credential-file``).
    """

    def __init__(
        self,
        path: Path | None = None,
        keyring_backend: keyring.backend.KeyringBackend | None | bool = None,
    ) -> None:
        self.path = path or default_credential_file()
        self._keyring = keyring_backend

    def _backend(self) -> keyring.backend.KeyringBackend | None:
        if self._keyring is False:
            return None
        if self._keyring is None or self._keyring is True:
            return keyring.get_keyring()
        return self._keyring

    def save(self, credential: AgentCredential) -> str:
        """Store ``credential``; return where the token went, in words for the operator."""
        backend = self._backend()
        if backend is not None:
            try:
                backend.set_password(
                    keyring_service(credential.tenant_url),
                    KEYRING_USERNAME,
                    json.dumps(
                        {"agent_id": credential.agent_id, "agent_token": credential.agent_token}
                    ),
                )
            except keyring.errors.KeyringError as exc:
                logger.info("No usable keyring (%s); storing the credential in a file.", exc)
            else:
                self._write_file(
                    {
                        "tenant_url": credential.tenant_url,
                        "agent_id": credential.agent_id,
                        "token_in_keyring": True,
                    }
                )
                return f"the system keyring (pointer in {self.path})"
        self._write_file(
            {
                "tenant_url": credential.tenant_url,
                "agent_id": credential.agent_id,
                "agent_token": credential.agent_token,
            }
        )
        return f"{self.path} (readable only by this user)"

    def load(self, tenant_url: str | None = None) -> AgentCredential:
        """Load the credential; ``tenant_url`` (from the config) wins over the file's.

        Raises:
            CredentialError: not enrolled, a damaged file, or a keyring that lost the token.
        """
        data: dict[str, Any] = {}
        if self.path.exists():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CredentialError(
                    f"The credential file {self.path} cannot be read ({exc}); "
                    "enroll the agent again with qp-agent enroll."
                ) from None
            if isinstance(loaded, dict):
                data = loaded
            _warn_if_readable_by_others(self.path)
        url = tenant_url or data.get("tenant_url")
        if not isinstance(url, str) or not url:
            raise CredentialError(
                f"This agent is not enrolled (no credential in {self.path} and no tenant_url "
                "in the config); run qp-agent enroll --tenant URL --code CODE first."
            )
        file_matches = data.get("tenant_url") in (None, url)
        token = data.get("agent_token") if file_matches else None
        agent_id = data.get("agent_id") if file_matches else None
        if isinstance(token, str) and token and agent_id is not None:
            return AgentCredential(url, str(agent_id), token)
        backend = self._backend()
        stored: str | None = None
        if backend is not None:
            try:
                stored = backend.get_password(keyring_service(url), KEYRING_USERNAME)
            except keyring.errors.KeyringError as exc:
                raise CredentialError(
                    f"The agent credential for {url} should be in the system keyring, "
                    f"which cannot be used here ({exc})."
                ) from None
        if stored:
            try:
                secret = json.loads(stored)
                return AgentCredential(url, str(secret["agent_id"]), str(secret["agent_token"]))
            except (ValueError, KeyError, TypeError):
                raise CredentialError(
                    f"The keyring entry {keyring_service(url)!r} is damaged; enroll again."
                ) from None
        raise CredentialError(
            f"No agent credential for {url} (looked in {self.path} and the system keyring); "
            "run qp-agent enroll first."
        )

    def _write_file(self, data: dict[str, Any]) -> None:
        """Write ``data`` atomically to a file created with mode 0600 in a 0700 folder."""
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file with mode 0600 from the start: there is no moment where
        # the token sits in a file others can read.
        fd, temp_name = tempfile.mkstemp(prefix=".credential-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o600)
                json.dump(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o077:
        logger.warning(
            "The credential file %s has mode %o; it should be 0600 (chmod 600 %s).",
            path,
            mode,
            path,
        )
