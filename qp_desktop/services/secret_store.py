"""The refresh token's home: the OS keyring, or nowhere.

If no keyring is available (no backend, locked, D-Bus missing) the store says so through
``warning`` and the session stays in memory only. There is deliberately no file fallback.
"""

from __future__ import annotations

import logging

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends import fail

log = logging.getLogger(__name__)

SERVICE_PREFIX = "qp-desktop"
REFRESH_TOKEN = "refresh_token"  # noqa: S105 - the entry's user name

NO_KEYRING_WARNING = (
    "No system keyring is available, so \u201cRemember me\u201d cannot keep you signed in. "
    "Your session is kept in memory only and ends when you quit."
)


def service_name(tenant_key: str) -> str:
    """The keyring service for one tenant, e.g. ``qp-desktop:https://qp.example.com``."""
    return f"{SERVICE_PREFIX}:{tenant_key}"


class SecretStore:
    """Refresh tokens in the keyring, one entry per tenant.

    Every method catches keyring failures: a failed write or read switches the store to
    session-only mode and sets ``warning``; it never raises and never logs a secret.
    """

    def __init__(self) -> None:
        self.warning: str | None = None
        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring):
            self._degrade("no keyring backend")

    @property
    def available(self) -> bool:
        return self.warning is None

    def _degrade(self, why: str) -> None:
        if self.warning is None:
            log.warning("keyring unavailable (%s); keeping the session in memory only", why)
        self.warning = NO_KEYRING_WARNING

    def get_refresh_token(self, tenant_key: str) -> str | None:
        if not self.available:
            return None
        try:
            return keyring.get_password(service_name(tenant_key), REFRESH_TOKEN)
        except Exception as exc:  # KeyringError, or a D-Bus failure a backend did not wrap
            self._degrade(type(exc).__name__)
            return None

    def set_refresh_token(self, tenant_key: str, token: str) -> bool:
        """Store the token; False (and ``warning`` set) when the keyring refuses."""
        if not self.available:
            return False
        try:
            keyring.set_password(service_name(tenant_key), REFRESH_TOKEN, token)
            return True
        except Exception as exc:  # KeyringError, or a D-Bus failure a backend did not wrap
            self._degrade(type(exc).__name__)
            return False

    def delete_refresh_token(self, tenant_key: str) -> None:
        if not self.available:
            return
        try:
            keyring.delete_password(service_name(tenant_key), REFRESH_TOKEN)
        except keyring.errors.PasswordDeleteError:
            pass  # nothing stored
        except Exception as exc:  # KeyringError, or a D-Bus failure a backend did not wrap
            self._degrade(type(exc).__name__)


class MemoryKeyring(KeyringBackend):
    """A keyring that lives in this process only: for tests and ``--screenshot``, where the
    real keyring must not be touched. Never installed in normal runs."""

    # keyring picks its default among every KeyringBackend subclass it can see, this one
    # included: at priority 0 it tied with the "fail" backend (0) and could win, and the app
    # then believed a keyring was there. Below zero it always loses; it is only ever
    # installed explicitly with keyring.set_keyring().
    priority = -1

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")
