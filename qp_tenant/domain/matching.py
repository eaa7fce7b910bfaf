"""What the Match dialog needs: a customer's IT Glue passwords by name, and the name of the
password an account is matched to.

Only names, usernames and categories ever leave here: passwords are listed the way IT Glue
lists them (without ``show_password``), and nothing secret is copied into the answer.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.crypto import Crypto
from qp_tenant.domain.accounts import get_customer
from qp_tenant.domain.itglue import api_error as itglue_api_error
from qp_tenant.domain.itglue import tenant_client as itglue_client
from qp_tenant.errors import ApiError
from qp_tenant.itglue.client import ITGlueClient, ITGlueError, Password
from qp_tenant.models import Account

MAX_SEARCH = 200


def password_to_dict(password: Password, matched_account_id: int | None) -> dict[str, Any]:
    """The Match dialog's row: never the value (``Password.password`` is not read here)."""
    return {"id": password.id, "name": password.name, "username": password.username,
            "category": password.category_name, "matched_account_id": matched_account_id}


def matches_search(password: Password, search: str) -> bool:
    """Case-insensitive substring of the name, username or category."""
    needle = search.strip().casefold()
    if not needle:
        return True
    return any(needle in (text or "").casefold()
               for text in (password.name, password.username, password.category_name))


async def customer_passwords(session: AsyncSession, crypto: Crypto, http: httpx.AsyncClient,
                             base_url_override: str | None, tenant_id: int, customer_id: int,
                             search: str | None = None) -> dict[str, Any]:
    """The customer's IT Glue organization's passwords (every page), filtered by ``search``,
    each with the account it is matched to in this tenant, if any."""
    customer = await get_customer(session, tenant_id, customer_id)
    if not customer.itglue_organization_id:
        raise ApiError(409, "customer_not_linked",
                       f"Customer {customer.name} is not linked to an IT Glue organization, so "
                       "it has no IT Glue passwords to match. Import customers from IT Glue, "
                       "or link this one to its organization.")
    client = await itglue_client(session, crypto, http, tenant_id, base_url_override)
    try:
        passwords = await client.list_passwords(customer.itglue_organization_id)
    except ITGlueError as exc:
        raise itglue_api_error(exc) from None
    matched = dict((await session.execute(
        select(Account.itglue_password_id, Account.id).where(
            Account.tenant_id == tenant_id, Account.itglue_password_id.is_not(None)))).all())
    rows = [password_to_dict(p, matched.get(p.id)) for p in passwords
            if search is None or matches_search(p, search)]
    rows.sort(key=lambda row: (row["name"].casefold(), row["id"]))
    return {"data": rows, "meta": {"total": len(rows)}}


async def password_name(client: ITGlueClient, password_id: str,
                        organization_id: str | None) -> str | None:
    """The name of one IT Glue password (read without its value), or None when IT Glue
    cannot say: the match is kept, and the app shows the id until the name is known."""
    try:
        password = await client.get_password(password_id, org_id=organization_id,
                                             include_updater=False, show_password=False)
    except ITGlueError:
        return None
    return password.name or None


async def with_password_name(session: AsyncSession, crypto: Crypto, http: httpx.AsyncClient,
                             base_url_override: str | None, tenant_id: int, customer_id: int,
                             changes: dict[str, Any]) -> dict[str, Any]:
    """An account body that matches a password but does not name it gets the name from IT
    Glue (the Match dialog sends the name it listed; this is for every other caller). When
    IT Glue is not connected or cannot answer, the match stands and the name stays unknown."""
    password_id = changes.get("itglue_password_id")
    if password_id is None or changes.get("itglue_password_name"):
        return changes
    try:
        client = await itglue_client(session, crypto, http, tenant_id, base_url_override)
        customer = await get_customer(session, tenant_id, customer_id)
    except ApiError:
        return changes
    name = await password_name(client, str(password_id), customer.itglue_organization_id)
    return {**changes, "itglue_password_name": name}
