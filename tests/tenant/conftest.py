"""Tenant test helpers: an HTTP client signed in to a real tenant process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.processes import TenantProcess

IT_GLUE_BODY = {"resourceUrl": "https://acme.itglue.com/2412/passwords/98765",
                "resourceName": "Domain Admin"}


@dataclass
class Api:
    """A signed-in technician talking to a tenant over real HTTP."""

    http: httpx.Client
    access_token: str
    refresh_token: str

    def h(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, headers=self.h(), **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, headers=self.h(), **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.put(path, headers=self.h(), **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(path, headers=self.h(), **kw)

    def generate(self, grace_hours: int = 0) -> str:
        r = self.post("/api/v1/integrations/itglue/workflow-token",
                      json={"grace_hours": grace_hours})
        assert r.status_code == 201, r.text
        return r.json()["url"]

    def events(self, **params: Any) -> list[dict[str, Any]]:
        r = self.get("/api/v1/events", params=params)
        assert r.status_code == 200, r.text
        return r.json()["events"]


def sign_in(http: httpx.Client, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD,
            tenant: str | None = None) -> Api:
    body = {"email": email, "password": password}
    if tenant:
        body["tenant"] = tenant
    r = http.post("/api/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    return Api(http, data["access_token"], data["refresh_token"])


@pytest.fixture
def http(tenant_proc: TenantProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tenant_proc.url, timeout=10) as client:
        yield client


@pytest.fixture
def api(http: httpx.Client) -> Api:
    return sign_in(http)
