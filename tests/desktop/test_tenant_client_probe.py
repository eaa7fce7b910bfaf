"""Probing another tenant address (the local tenant starting, its first-run state) never moves
the shared client: calls made meanwhile still go to the signed-in tenant, with its token."""

from __future__ import annotations

import asyncio

import httpx

from qp_desktop.services.tenant_client import TenantClient

SIGNED_IN = "https://qp.example.com"
PROBED = "http://127.0.0.1:8750"


class _Tokens:
    access_token = "signed-in-token"

    async def refresh_after_rejection(self, rejected: str | None) -> bool:
        return False


def test_a_probe_leaves_the_shared_client_where_it_is_across_its_await():
    seen: list[tuple[str, str | None]] = []
    probe_arrived = asyncio.Event()
    release_probe = asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append((f"{request.url.scheme}://{request.url.netloc.decode()}{request.url.path}",
                     request.headers.get("authorization")))
        if request.url.path == "/api/v1/setup":
            probe_arrived.set()
            await release_probe.wait()  # the probe is in flight ...
            return httpx.Response(200, json={"needs_admin": True})
        return httpx.Response(200, json={"connected": False, "workflow_token": None})

    async def scenario() -> bool:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
            shared = TenantClient(http, SIGNED_IN, tokens=_Tokens())
            probe = asyncio.create_task(shared.at(PROBED).setup_status())
            await probe_arrived.wait()
            # ... while another part of the app uses the shared client.
            assert shared.base_url == SIGNED_IN
            await shared.get_itglue()
            release_probe.set()
            return await probe

    assert asyncio.run(scenario()) is True
    assert seen == [(f"{PROBED}/api/v1/setup", None),
                    (f"{SIGNED_IN}/api/v1/integrations/itglue", "Bearer signed-in-token")]
