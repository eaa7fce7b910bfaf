"""The signed-in session: tokens in memory, the refresh token in the keyring when remembered.

Access tokens are refreshed by themselves: the tenant client reports a 401, the session
refreshes once (serialised, because refresh tokens rotate and a reused one revokes the whole
family) and the call is retried. If the refresh fails the session ends with ``expired``.
"""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import QObject, Signal

from qp_desktop.services.secret_store import SecretStore
from qp_desktop.services.tenant_client import AuthGrant, TenantClient, TenantError, TenantInfo, User

log = logging.getLogger(__name__)


class Session(QObject):
    """Who is signed in to which tenant.

    Signals:
        changed: signed in, or the user/tenant changed.
        signed_out: the technician signed out.
        expired(str): the session ended on its own; the argument says why.
    """

    changed = Signal()
    signed_out = Signal()
    expired = Signal(str)

    def __init__(self, client: TenantClient, store: SecretStore,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.client = client
        self.store = store
        client.tokens = self
        self.tenant_key = ""
        self.user: User | None = None
        self.tenant: TenantInfo | None = None
        self.remember = False
        self._access: str | None = None
        self._refresh: str | None = None
        self._refresh_lock = asyncio.Lock()

    def __repr__(self) -> str:
        who = self.user.email if self.user else None
        return f"Session(tenant_key={self.tenant_key!r}, user={who!r})"

    # -- TokenSource ------------------------------------------------------------------------

    @property
    def access_token(self) -> str | None:
        return self._access

    @property
    def signed_in(self) -> bool:
        return self._access is not None

    async def refresh_after_rejection(self, rejected: str | None) -> bool:
        async with self._refresh_lock:
            if self._access is not None and self._access != rejected:
                return True  # another call refreshed while we waited
            if not self._refresh:
                return False
            try:
                grant = await self.client.refresh(self._refresh)
            except TenantError as exc:
                log.info("refresh failed: %s", exc.code)
                if exc.status in (400, 401, 403):
                    self.store.delete_refresh_token(self.tenant_key)
                self._clear()
                self.expired.emit("Your session has expired. Please sign in again."
                                  if exc.status in (400, 401, 403) else exc.message)
                return False
            self._accept(grant, emit=False)
            return True

    # -- starting and ending ----------------------------------------------------------------

    def _target(self, base_url: str, tenant_key: str) -> None:
        self.client.base_url = base_url.rstrip("/")
        self.tenant_key = tenant_key

    async def sign_in(self, base_url: str, tenant_key: str, email: str, password: str,
                      remember: bool) -> None:
        """Raises:
            TenantError: with the tenant's message (wrong credentials, throttled, ...).
        """
        self._target(base_url, tenant_key)
        self.remember = remember
        grant = await self.client.login(email, password)
        self._accept(grant)

    async def create_admin(self, base_url: str, tenant_key: str, setup_token: str, email: str,
                           password: str, remember: bool, name: str | None = None) -> None:
        """First run of the local tenant: create its administrator and sign in."""
        self._target(base_url, tenant_key)
        self.remember = remember
        grant = await self.client.setup_admin(setup_token, email, password, name)
        self._accept(grant)

    def has_remembered(self, tenant_key: str) -> bool:
        return self.store.get_refresh_token(tenant_key) is not None

    async def resume(self, base_url: str, tenant_key: str) -> bool:
        """Silent sign-in with the remembered refresh token. False if there is none or the
        tenant refused it (the entry is then deleted).

        Raises:
            TenantError: the tenant could not be reached (the entry is kept).
        """
        self._target(base_url, tenant_key)
        token = self.store.get_refresh_token(tenant_key)
        if not token:
            return False
        try:
            grant = await self.client.refresh(token)
        except TenantError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                self.store.delete_refresh_token(tenant_key)
                return False
            raise
        self.remember = True
        self._accept(grant)
        return True

    async def sign_out(self) -> None:
        """Revoke the refresh token at the tenant (best effort) and forget it everywhere."""
        access, refresh = self._access, self._refresh
        self.store.delete_refresh_token(self.tenant_key)
        self._clear()
        if access:
            try:
                await self.client.logout(access, refresh)
            except TenantError as exc:
                log.warning("sign-out could not reach the tenant: %s", exc.code)
        self.signed_out.emit()

    def _accept(self, grant: AuthGrant, emit: bool = True) -> None:
        self._access, self._refresh = grant.access_token, grant.refresh_token
        self.user, self.tenant = grant.user, grant.tenant
        if self.remember:
            self.store.set_refresh_token(self.tenant_key, grant.refresh_token)
        if emit:
            self.changed.emit()

    def _clear(self) -> None:
        self._access = self._refresh = None
        self.user = self.tenant = None
