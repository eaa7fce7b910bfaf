"""Tenant test fixtures: an HTTP client signed in to a real tenant process.

The signed-in client itself (:class:`Api`, :func:`sign_in`) lives in
``tests/support/tenant_api.py``, shared with the cluster tests, the end-to-end test and the
benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.processes import TenantProcess
from tests.support.tenant_api import Api, sign_in

__all__ = ["IT_GLUE_BODY", "Api", "sign_in"]

IT_GLUE_BODY = {"resourceUrl": "https://acme.itglue.com/2412/passwords/98765",
                "resourceName": "Domain Admin"}


@pytest.fixture
def http(tenant_proc: TenantProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tenant_proc.url, timeout=10) as client:
        yield client


@pytest.fixture
def api(http: httpx.Client) -> Api:
    return sign_in(http)
