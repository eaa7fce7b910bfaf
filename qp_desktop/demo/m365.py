"""Demo data for the Microsoft 365 screenshots: Northwind Traders linked to the Microsoft 365
emulator's demo tenant (``python -m qp_tenant.m365.emulator --seed-demo``) and its users
synced, through the tenant's real API. Idempotent."""

from __future__ import annotations

from qp_desktop.services.tenant_client import TenantClient

# The emulator's demo tenant and app registration (qp_tenant.m365.emulator.seed_demo); the
# secret is the emulator's throw-away demo value, not a real credential.
DEMO_TENANT_ID = "8a6b1c2d-0000-4000-8000-00000000a001"
DEMO_CLIENT_ID = "5f0c9d1e-0000-4000-8000-00000000b001"
DEMO_SECRET = "demo-secret~1"  # noqa: S105 - the emulator's demo value
DEMO_CUSTOMER = "Northwind Traders"


async def seed_cloud(client: TenantClient) -> int | None:
    """Link the demo customer and sync its users; returns its customer id (None if absent)."""
    customer = next((c for c in await client.list_customers() if c.name == DEMO_CUSTOMER),
                    None)
    if customer is None:
        return None
    link = await client.get_m365_link(customer.id)
    if not link.linked:
        await client.link_m365(customer.id, DEMO_TENANT_ID, DEMO_CLIENT_ID, DEMO_SECRET)
        await client.sync_m365(customer.id)
    return customer.id
