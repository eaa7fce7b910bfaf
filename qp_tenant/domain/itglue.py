"""The one place the tenant builds an IT Glue client and turns its failures into API errors.

Every caller that talks to IT Glue goes through here: connecting a key
(``domain/integration.py``), importing customers and automatch (``domain/accounts.py``),
Microsoft 365 prerequisites, and the reset pipeline reading a new password. So the base URL
(region, or ``QP_ITGLUE_BASE_URL`` for an emulator or proxy), the stored key's decryption and
the "connect IT Glue first" refusal are decided once, and an :class:`ITGlueError` becomes the
same :class:`ApiError` wherever a route meets it.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.crypto import Crypto
from qp_tenant.errors import ApiError
from qp_tenant.itglue.client import ITGlueAuthError, ITGlueClient, ITGlueError, base_url_for
from qp_tenant.models import ITGlueIntegration


def build_client(http: httpx.AsyncClient, region: str, api_key: str,
                 base_url_override: str | None, **options: Any) -> ITGlueClient:
    """A client for ``api_key`` in ``region``; ``base_url_override`` (settings) wins.

    ``options`` go to :class:`ITGlueClient` (a shared rate limiter, retries, back-off).
    """
    return ITGlueClient(http, base_url_for(region, base_url_override or None), api_key,
                        **options)


async def get_integration(session: AsyncSession, tenant_id: int) -> ITGlueIntegration | None:
    """The tenant's IT Glue integration row, connected or not, or None if there is none."""
    stmt = select(ITGlueIntegration).where(ITGlueIntegration.tenant_id == tenant_id)
    return (await session.scalars(stmt)).first()


NOT_CONNECTED_MESSAGE = "Connect IT Glue first (Integrations → IT Glue) with an API key."


async def tenant_client(session: AsyncSession, crypto: Crypto, http: httpx.AsyncClient,
                        tenant_id: int, base_url_override: str | None,
                        **options: Any) -> ITGlueClient:
    """A client with the tenant's stored key; 409 ``itglue_not_connected`` without one.

    ``options`` go to :class:`ITGlueClient` (the watcher passes the shared limiter).
    """
    integration = await get_integration(session, tenant_id)
    if integration is None or not integration.connected:
        raise ApiError(409, "itglue_not_connected", NOT_CONNECTED_MESSAGE)
    return build_client(http, integration.region, crypto.decrypt(integration.api_key_encrypted),
                        base_url_override, **options)


def api_error(exc: ITGlueError) -> ApiError:
    """IT Glue's refusal of the key is the caller's to fix (422); anything else is a 502.

    The message is the client's sentence (never the key); IT Glue's own status, title and
    detail go into ``details``.
    """
    if isinstance(exc, ITGlueAuthError):
        return ApiError(422, "itglue_key_rejected",
                        f"IT Glue refused the API key: {exc.detail or exc.title}",
                        details={"itglue_status": exc.status, "itglue_title": exc.title,
                                 "itglue_detail": exc.detail})
    return ApiError(502, "itglue_unreachable", str(exc), details={"itglue_status": exc.status})
