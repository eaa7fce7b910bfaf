"""The Microsoft 365 emulator (qp_tenant/m365/emulator.py) as a real TLS server process.

A throw-away CA made with ``cryptography`` signs its certificate; tenant processes trust it
through ``QP_M365_CA_FILE`` (:meth:`M365EmulatorProcess.tenant_env`).
"""

from __future__ import annotations

import ssl
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from qp_tenant.m365.emulator import make_test_ca
from tests.support.processes import ServerProcess


class M365EmulatorProcess(ServerProcess):
    """``python -m qp_tenant.m365.emulator`` on loopback over TLS."""

    def __init__(self, tls_dir: Path, rate_limit: int = 0, rate_window: float = 10.0):
        self.ca_file = make_test_ca(tls_dir)
        super().__init__([sys.executable, "-m", "qp_tenant.m365.emulator", "--port", "0",
                          "--tls-dir", str(tls_dir), "--rate-limit", str(rate_limit),
                          "--rate-window", str(rate_window)])

    def tenant_env(self) -> dict[str, str]:
        """``QP_M365_*`` variables that point a tenant process here."""
        return {"QP_M365_LOGIN_URL": self.url, "QP_M365_GRAPH_URL": self.url,
                "QP_M365_CA_FILE": str(self.ca_file)}

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, trust_env=False,
                            verify=ssl.create_default_context(cafile=str(self.ca_file)))

    def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._client() as http:
            r = http.post(f"/_emulator/{path}", json=body)
            r.raise_for_status()
            return dict(r.json())

    def state(self) -> dict[str, Any]:
        with self._client() as http:
            r = http.get("/_emulator/state")
            r.raise_for_status()
            return dict(r.json())

    def add_tenant(self, users: list[dict[str, Any]], *, secret: str,
                   directory_roles: list[str] | None = None,
                   permissions: list[str] | None = None) -> EntraTenant:
        """A fresh Entra tenant (unique ids) with one app registration and ``users``."""
        tenant = EntraTenant(str(uuid.uuid4()), str(uuid.uuid4()), secret)
        app: dict[str, Any] = {"client_id": tenant.client_id, "secret": secret}
        if directory_roles is not None:
            app["directory_roles"] = directory_roles
        if permissions is not None:
            app["permissions"] = permissions
        self.control("tenants", {"id": tenant.tenant_id, "domain": f"t{tenant.tenant_id[:8]}"
                                 ".onmicrosoft.com", "apps": [app], "users": users})
        return tenant

    def change_app(self, tenant: EntraTenant, **changes: Any) -> None:
        self.control(f"tenants/{tenant.tenant_id}/apps/{tenant.client_id}", changes)

    def delete_user(self, tenant: EntraTenant, upn: str) -> None:
        with self._client() as http:
            http.delete(f"/_emulator/tenants/{tenant.tenant_id}/users/{upn}").raise_for_status()

    def password_changes(self, tenant: EntraTenant) -> list[dict[str, Any]]:
        return [c for c in self.state()["password_changes"]
                if c["tenant_id"] == tenant.tenant_id]


class EntraTenant:
    """Ids and secret of an emulated tenant's app registration, as a technician pastes them."""

    def __init__(self, tenant_id: str, client_id: str, client_secret: str):
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret

    def link_body(self, secret: str | None = None) -> dict[str, str]:
        return {"tenant_id": self.tenant_id, "client_id": self.client_id,
                "client_secret": secret if secret is not None else self.client_secret}
