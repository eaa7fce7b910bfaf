"""A client signed in to a running tenant, for tests and benchmarks.

The one place that knows how a test gets a user onto a tenant and talks to it: the user is
made by the CLI (:meth:`tests.support.processes.TenantProcess.create_user`) or by the
embedded app's first-run set-up (:func:`first_run_admin`), signs in over real HTTP
(:func:`sign_in`), and :class:`Api` adds the bearer header to every call and has a few
typed calls most tests need. Tests of sign-in itself still post to ``/auth/login`` by hand:
what they check is that request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

ADMIN_EMAIL = "admin@acme.test"
ADMIN_PASSWORD = "correct horse battery staple"


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for an access token or an agent credential."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Api:
    """A signed-in user talking to a tenant over real HTTP."""

    http: httpx.Client
    access_token: str
    refresh_token: str

    def h(self) -> dict[str, str]:
        return bearer(self.access_token)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, headers=self.h(), **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, headers=self.h(), **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.put(path, headers=self.h(), **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(path, headers=self.h(), **kw)

    def generate(self, grace_hours: int = 0) -> str:
        """A new workflow token; its URL."""
        r = self.post("/api/v1/integrations/itglue/workflow-token",
                      json={"grace_hours": grace_hours})
        assert r.status_code == 201, r.text
        return str(r.json()["url"])

    def events(self, **params: Any) -> list[dict[str, Any]]:
        r = self.get("/api/v1/events", params=params)
        assert r.status_code == 200, r.text
        return list(r.json()["events"])

    def connect_itglue(self, api_key: str, region: str = "us") -> None:
        """Connect IT Glue (the tenant checks the key with IT Glue first)."""
        r = self.put("/api/v1/integrations/itglue", json={"region": region, "api_key": api_key})
        assert r.status_code == 200, r.text

    def import_customers(self) -> None:
        """Every IT Glue organization becomes a customer."""
        r = self.post("/api/v1/customers/import-itglue")
        assert r.status_code == 200, r.text

    def customers(self) -> list[dict[str, Any]]:
        r = self.get("/api/v1/customers")
        assert r.status_code == 200, r.text
        return list(r.json()["customers"])


def sign_in(http: httpx.Client, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD,
            tenant: str | None = None) -> Api:
    """Sign in with ``http`` (its ``base_url`` is the tenant); fails the test if refused."""
    body = {"email": email, "password": password}
    if tenant:
        body["tenant"] = tenant
    r = http.post("/api/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    return Api(http, data["access_token"], data["refresh_token"])


def first_run_admin(http: httpx.Client, setup_token: str, email: str = ADMIN_EMAIL,
                    password: str = ADMIN_PASSWORD, name: str = "") -> Api:
    """Create the first administrator as the embedded app does, signed in at once."""
    r = http.post("/api/v1/setup/admin", headers={"X-QP-Setup-Token": setup_token},
                  json={"email": email, "password": password, "name": name})
    assert r.status_code == 200, r.text
    data = r.json()
    return Api(http, data["access_token"], data["refresh_token"])
