"""The IT Glue integration of a tenant: connect (verify the key first), show, disconnect."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.crypto import Crypto
from qp_tenant.domain.events import NewEvent, add_event, rfc3339
from qp_tenant.domain.itglue import api_error, build_client, get_integration
from qp_tenant.domain.tokens import current_token, token_to_dict
from qp_tenant.errors import ApiError
from qp_tenant.itglue.client import ITGlueError
from qp_tenant.models import ITGlueIntegration, utcnow

REGIONS = ("us", "eu", "au")

WEBHOOK_PAYLOAD = [
    {"key": "resourceUrl", "value": "[resource_url]"},
    {"key": "resourceName", "value": "[resource_name]"},
]


def key_hint(api_key: str) -> str:
    return "…" + api_key[-4:] if len(api_key) >= 8 else "…"


async def integration_view(session: AsyncSession, tenant_id: int,
                           public_url: str) -> dict[str, Any]:
    integration = await get_integration(session, tenant_id)
    token = await current_token(session, tenant_id)
    now = utcnow()
    return {
        "connected": bool(integration and integration.connected),
        "region": integration.region if integration else None,
        "api_key_hint": integration.api_key_hint if integration else None,
        "last_verified_at": rfc3339(integration.last_verified_at) if integration else None,
        "last_error": integration.last_error if integration else None,
        "workflow_token": token_to_dict(token, public_url, now) if token else None,
        "webhook_payload": WEBHOOK_PAYLOAD,
    }


async def connect(session: AsyncSession, crypto: Crypto, http: httpx.AsyncClient, tenant_id: int,
                  *, region: str, api_key: str, base_url_override: str | None) -> None:
    """Verify the key against IT Glue, then store it encrypted. Nothing is saved on refusal."""
    region = (region or "").strip().lower()
    api_key = (api_key or "").strip()
    if region not in REGIONS:
        raise ApiError(422, "invalid_region", "Choose the IT Glue region: us, eu or au.")
    if not api_key:
        raise ApiError(422, "missing_api_key", "Paste the IT Glue API key.")
    client = build_client(http, region, api_key, base_url_override)
    existing = await get_integration(session, tenant_id)
    try:
        await client.verify()
    except ITGlueError as exc:
        await _record_error(session, tenant_id, existing, str(exc))
        raise api_error(exc) from None
    now = utcnow()
    if existing is None:
        existing = ITGlueIntegration(tenant_id=tenant_id, region=region,
                                     api_key_encrypted="", api_key_hint="")
        session.add(existing)
    existing.region = region
    existing.api_key_encrypted = crypto.encrypt(api_key)
    existing.api_key_hint = key_hint(api_key)
    existing.connected = True
    existing.last_verified_at = now
    existing.last_error = None
    existing.updated_at = now
    add_event(session, tenant_id, NewEvent(
        type="integration.connected", severity="info",
        summary=f"IT Glue connected ({region.upper()} region, key {key_hint(api_key)})",
        details={"region": region},
    ))
    await session.commit()


async def _record_error(session: AsyncSession, tenant_id: int,
                        existing: ITGlueIntegration | None, message: str) -> None:
    if existing is not None:
        existing.last_error = message
        existing.updated_at = utcnow()
    add_event(session, tenant_id, NewEvent(
        type="integration.error", severity="error",
        summary=f"IT Glue key check failed: {message}",
    ))
    await session.commit()


async def disconnect(session: AsyncSession, tenant_id: int) -> None:
    await session.execute(delete(ITGlueIntegration).where(ITGlueIntegration.tenant_id == tenant_id))
    add_event(session, tenant_id, NewEvent(
        type="integration.disconnected", severity="warning",
        summary="IT Glue disconnected: the stored API key was deleted",
    ))
    await session.commit()
