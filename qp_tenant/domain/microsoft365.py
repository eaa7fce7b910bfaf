"""Microsoft 365 / Entra ID: customer links, the users sync, and cloud password resets.

A customer is linked to its Microsoft 365 tenant with an app registration (tenant id, client
id, client secret). The link is verified before it is saved (a token, one read of the users
list, the token's consented permission and directory roles); the secret is encrypted at rest
like the IT Glue key and only a hint is ever shown. "Sync now" turns the tenant's users into
accounts with source ``entra_id`` (no agent), and the reset pipeline applies a new IT Glue
value to such an account itself with ``PATCH /users/{id}`` (:class:`CloudResets`), naming
each of Microsoft's refusals in a sentence a technician can act on (docs/microsoft365.md).
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.config import Settings
from qp_tenant.crypto import Crypto
from qp_tenant.domain.accounts import CLOUD_CATEGORIES
from qp_tenant.domain.events import NewEvent, add_event, rfc3339
from qp_tenant.domain.integration import key_hint
from qp_tenant.errors import ApiError, not_found
from qp_tenant.itglue.client import ITGlueClient
from qp_tenant.m365.client import (
    GRAPH_PERMISSION,
    PRIVILEGED_ADMIN,
    USER_ADMIN,
    GraphClient,
    GraphError,
    GraphThrottle,
    GraphThrottled,
    M365Credentials,
    M365CredentialsRejected,
    M365Endpoints,
    M365Error,
    M365Unreachable,
    TokenProvider,
    directory_roles,
    missing_role,
    token_claims,
)
from qp_tenant.models import Account, Customer, Microsoft365Link, utcnow

log = logging.getLogger(__name__)

SOURCE_TYPE = "entra_id"
DIRECTORY_LABEL = "Microsoft 365"
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$")
_AADSTS = re.compile(r"AADSTS(\d+)")

# What to do about each sign-in refusal, by AADSTS number (Microsoft's text comes first).
SIGN_IN_ADVICE = {
    "7000215": "The client secret is wrong: paste the secret's Value (not its Secret ID) from "
               "the app's Certificates & secrets page, then link again.",
    "7000222": "The client secret has expired: create a new client secret on the app's "
               "Certificates & secrets page and link again with it.",
    "700016": "Check the Application (client) ID, and that the app is registered in this "
              "Microsoft 365 tenant (not in another one).",
    "90002": "Check the Directory (tenant) ID on the app's Overview page.",
    "900023": "Check the Directory (tenant) ID on the app's Overview page.",
}
CONSENT_ADVICE = (f"Give the app the Microsoft Graph application permission {GRAPH_PERMISSION} "
                  "and press \"Grant admin consent\" on its API permissions page.")


def role_advice(role: str) -> str:
    return (f"Assign the directory role {role} to the app (Entra admin center → Roles & admins "
            f"→ {role} → Add assignments → the app's name).")


class Microsoft365:
    """What one tenant process shares for Microsoft 365: endpoints, the Graph HTTP client,
    MSAL's token cache and one throttle per linked application."""

    def __init__(self, settings: Settings):
        self.endpoints = M365Endpoints(settings.m365_login_url, settings.m365_graph_url,
                                       settings.m365_ca_file)
        self.http = self.endpoints.http_client()
        self.tokens = TokenProvider(self.endpoints)
        self.max_throttle_seconds = settings.m365_max_throttle_seconds
        self._throttles: dict[tuple[str, str], GraphThrottle] = {}

    def client(self, credentials: M365Credentials) -> GraphClient:
        key = (credentials.tenant_id.casefold(), credentials.client_id.casefold())
        throttle = self._throttles.setdefault(key, GraphThrottle())
        return GraphClient(self.http, self.endpoints, self.tokens, credentials,
                           throttle=throttle, max_throttle_seconds=self.max_throttle_seconds)

    async def aclose(self) -> None:
        await self.http.aclose()


# ---------------------------------------------------------------------------------- links
def link_to_dict(link: Microsoft365Link | None) -> dict[str, Any]:
    if link is None:
        return {"linked": False, "tenant_id": None, "client_id": None, "secret_hint": None,
                "last_verified_at": None, "last_error": None, "directory_roles": None,
                "last_sync_at": None}
    return {"linked": True, "tenant_id": link.directory_id, "client_id": link.client_id,
            "secret_hint": link.secret_hint, "last_verified_at": rfc3339(link.last_verified_at),
            "last_error": link.last_error, "directory_roles": link.directory_roles,
            "last_sync_at": rfc3339(link.last_sync_at)}


async def _customer(session: AsyncSession, tenant_id: int, customer_id: int) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.tenant_id != tenant_id:
        raise not_found("That customer")
    return customer


async def get_link(session: AsyncSession, tenant_id: int, customer_id: int
                   ) -> Microsoft365Link | None:
    return (await session.scalars(select(Microsoft365Link).where(
        Microsoft365Link.tenant_id == tenant_id, Microsoft365Link.customer_id == customer_id
    ))).first()


async def link_view(session: AsyncSession, tenant_id: int, customer_id: int) -> dict[str, Any]:
    await _customer(session, tenant_id, customer_id)
    return link_to_dict(await get_link(session, tenant_id, customer_id))


def credentials_of(link: Microsoft365Link, crypto: Crypto) -> M365Credentials:
    return M365Credentials(link.directory_id, link.client_id,
                           crypto.decrypt(link.client_secret_encrypted))


def sign_in_refusal(exc: M365CredentialsRejected) -> tuple[str, str | None]:
    """Microsoft's sentence followed by what to do, and the AADSTS number if there is one."""
    found = _AADSTS.search(exc.message)
    number = found.group(1) if found else None
    advice = SIGN_IN_ADVICE.get(number or "", "Check the tenant ID, client ID and secret.")
    return f"Microsoft refused the app's sign-in: {exc.message} {advice}", number


def _validated(directory_id: str, client_id: str, client_secret: str) -> M365Credentials:
    directory_id, client_id = directory_id.strip(), client_id.strip()
    if not _ID_PATTERN.match(directory_id):
        raise ApiError(422, "invalid_tenant_id",
                       "Give the Directory (tenant) ID from the app's Overview page: a GUID "
                       "such as 8a6b1c2d-…, or the tenant's domain (contoso.onmicrosoft.com).")
    if not _ID_PATTERN.match(client_id):
        raise ApiError(422, "invalid_client_id",
                       "Give the Application (client) ID from the app's Overview page (a GUID).")
    if not client_secret.strip():
        raise ApiError(422, "missing_client_secret",
                       "Paste the client secret's Value from the app's Certificates & secrets "
                       "page.")
    return M365Credentials(directory_id, client_id, client_secret.strip())


async def verify(m365: Microsoft365, credentials: M365Credentials) -> list[str] | None:
    """A token, then one read of the users list; returns the app's known directory roles
    (None when the token does not list them). Raises ApiError with Microsoft's text."""
    client = m365.client(credentials)
    try:
        claims = token_claims(await client.token())
    except M365CredentialsRejected as exc:
        message, number = sign_in_refusal(exc)
        raise ApiError(422, "m365_credentials_rejected", message,
                       details={"microsoft_error": exc.message, "aadsts": number}) from None
    except M365Unreachable as exc:
        raise ApiError(502, "m365_unreachable",
                       f"{exc.message} Check the tenant's network access to Microsoft 365 "
                       "and try again.") from None
    try:
        async for _ in client.users(page_size=1):
            break
    except GraphThrottled as exc:
        raise ApiError(502, "m365_unreachable", exc.message) from None
    except M365Unreachable as exc:
        raise ApiError(502, "m365_unreachable", exc.message) from None
    except GraphError as exc:
        advice = CONSENT_ADVICE if exc.status == 403 else "Check the app registration."
        raise ApiError(422, "m365_credentials_rejected",
                       f"Microsoft Graph refused to list the users: {exc.message} {advice}",
                       details={"microsoft_error": exc.message, "graph_code": exc.graph_code,
                                "missing": "admin_consent" if exc.status == 403 else None}
                       ) from None
    permissions = claims.get("roles")
    if isinstance(permissions, list) and GRAPH_PERMISSION not in permissions:
        raise ApiError(422, "m365_credentials_rejected",
                       f"The app signs in and may read users, but it has no consented "
                       f"{GRAPH_PERMISSION} application permission, so it could not reset a "
                       f"password. {CONSENT_ADVICE}",
                       details={"missing": "admin_consent", "permission": GRAPH_PERMISSION})
    roles = directory_roles(claims)
    if roles is not None and not roles:
        raise ApiError(422, "m365_credentials_rejected",
                       f"The app has no directory role that may reset passwords. "
                       f"{role_advice(USER_ADMIN)} To reset administrators' passwords too, "
                       f"assign {PRIVILEGED_ADMIN} instead.",
                       details={"missing": "directory_role", "role": USER_ADMIN})
    return roles


async def put_link(session: AsyncSession, crypto: Crypto, m365: Microsoft365, tenant_id: int,
                   customer_id: int, *, directory_id: str, client_id: str, client_secret: str,
                   actor: str) -> Microsoft365Link:
    """Verify, then save (encrypted). Nothing is saved on refusal."""
    customer = await _customer(session, tenant_id, customer_id)
    customer_name = customer.name
    credentials = _validated(directory_id, client_id, client_secret)
    await session.rollback()  # no transaction held open across Microsoft's answers
    roles = await verify(m365, credentials)
    link = await get_link(session, tenant_id, customer_id)
    now = utcnow()
    if link is None:
        link = Microsoft365Link(tenant_id=tenant_id, customer_id=customer_id, created_at=now)
        session.add(link)
    link.directory_id = credentials.tenant_id
    link.client_id = credentials.client_id
    link.client_secret_encrypted = crypto.encrypt(credentials.client_secret)
    link.secret_hint = key_hint(credentials.client_secret)
    link.directory_roles = roles
    link.last_verified_at = now
    link.last_error = None
    link.error_since = None
    link.updated_at = now
    roles_text = ", ".join(roles) if roles else "not stated by the token"
    add_event(session, tenant_id, NewEvent(
        type="integration.connected", severity="info",
        summary=f"Microsoft 365 linked for {customer_name} by {actor} (tenant "
                f"{credentials.tenant_id}, app {credentials.client_id}; directory roles: "
                f"{roles_text})",
        details={"integration": "microsoft365", "customer_id": customer_id,
                 "tenant_id": credentials.tenant_id, "client_id": credentials.client_id,
                 "directory_roles": roles},
    ))
    await session.commit()
    return link


async def delete_link(session: AsyncSession, tenant_id: int, customer_id: int,
                      actor: str) -> None:
    customer = await _customer(session, tenant_id, customer_id)
    link = await get_link(session, tenant_id, customer_id)
    if link is None:
        return
    await session.delete(link)
    add_event(session, tenant_id, NewEvent(
        type="integration.disconnected", severity="warning",
        summary=f"Microsoft 365 unlinked for {customer.name} by {actor}: its cloud accounts "
                "can no longer be reset",
        details={"integration": "microsoft365", "customer_id": customer_id},
    ))
    await session.commit()


# ----------------------------------------------------------------------------------- sync
@dataclass
class SyncResult:
    users: int = 0
    created: int = 0
    updated: int = 0
    gone: int = 0
    on_premises: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"users": self.users, "created": self.created, "updated": self.updated,
                "gone": self.gone, "on_premises": self.on_premises}


async def sync_users(session: AsyncSession, crypto: Crypto, m365: Microsoft365, tenant_id: int,
                     customer_id: int) -> SyncResult:
    """Read every user of the linked tenant into the customer's ``entra_id`` accounts.

    Users are matched to accounts by object id (then by UPN); accounts of users no longer
    listed become ``gone``, and come back ``present`` when the user does.
    """
    customer = await _customer(session, tenant_id, customer_id)
    customer_name = customer.name
    link = await get_link(session, tenant_id, customer_id)
    if link is None:
        raise ApiError(409, "m365_not_linked",
                       f"Customer {customer_name} is not linked to Microsoft 365; link it first "
                       "(Link Microsoft 365… on the customer).")
    link_id = link.id
    credentials = credentials_of(link, crypto)
    await session.rollback()  # no transaction held open while Graph pages through users
    users = []
    try:
        async for page in m365.client(credentials).users():
            users.extend(page)
    except M365CredentialsRejected as exc:
        message, _ = sign_in_refusal(exc)
        await _record_link_error(session, link_id, message)
        raise ApiError(422, "m365_credentials_rejected", message,
                       details={"microsoft_error": exc.message}) from None
    except M365Error as exc:
        code = "m365_unreachable" if isinstance(exc, (M365Unreachable, GraphThrottled)) else (
            "m365_sync_refused")
        message = f"Microsoft Graph could not list the users: {exc.message}"
        if exc.status == 403:
            message += f" {CONSENT_ADVICE}"
        raise ApiError(502 if code == "m365_unreachable" else 422, code, message) from None
    result = SyncResult(users=len(users))
    existing = list((await session.scalars(select(Account).where(
        Account.tenant_id == tenant_id, Account.customer_id == customer_id,
        Account.source_type == SOURCE_TYPE))).all())
    by_id = {a.external_id: a for a in existing if a.external_id}
    by_upn = {a.identity.casefold(): a for a in existing}
    seen: set[int] = set()
    now = utcnow()
    for user in users:
        if not user.id or not user.user_principal_name:
            continue
        result.on_premises += user.on_premises_sync_enabled
        account = by_id.get(user.id) or by_upn.get(user.user_principal_name.casefold())
        if account is None:
            account = Account(
                tenant_id=tenant_id, customer_id=customer_id, kind="end_user",
                display_name=(user.display_name or user.user_principal_name)[:200],
                source_type=SOURCE_TYPE, agent_id=None, directory="",
                identity=user.user_principal_name[:500], external_id=user.id[:64],
                on_premises_sync=user.on_premises_sync_enabled, state="present",
                created_at=now, updated_at=now)
            session.add(account)
            result.created += 1
            continue
        seen.add(account.id)
        changed = (account.identity != user.user_principal_name
                   or account.external_id != user.id
                   or account.on_premises_sync != user.on_premises_sync_enabled
                   or account.state != "present")
        if changed:
            account.identity = user.user_principal_name[:500]
            account.external_id = user.id[:64]
            account.on_premises_sync = user.on_premises_sync_enabled
            account.state = "present"
            account.updated_at = now
            result.updated += 1
    for account in existing:
        if account.id not in seen and account.state != "gone":
            account.state = "gone"
            account.updated_at = now
            result.gone += 1
    await session.execute(update(Microsoft365Link).where(Microsoft365Link.id == link_id)
                          .values(last_sync_at=now, last_error=None, error_since=None,
                                  last_verified_at=now, updated_at=now))
    add_event(session, tenant_id, NewEvent(
        type="integration.synced", severity="info",
        summary=f"Microsoft 365 users of {customer_name} synced: {result.users} users "
                f"({result.created} new, {result.gone} gone, {result.on_premises} synced from "
                "on-premises AD)",
        details={"integration": "microsoft365", "customer_id": customer_id,
                 **result.to_dict()},
    ))
    await session.commit()
    return result


async def _record_link_error(session: AsyncSession, link_id: int, message: str) -> None:
    now = utcnow()
    await session.execute(update(Microsoft365Link).where(Microsoft365Link.id == link_id)
                          .values(last_error=message, updated_at=now))
    await session.commit()


# -------------------------------------------------------------------------- cloud resets
@dataclass(frozen=True)
class CloudOutcome:
    """What applying a password to a cloud account came to: ``code`` None means success."""

    code: str | None = None
    reason: str = ""
    credentials_failed: bool = False


class CloudResets:
    """Applies one password to one ``entra_id`` account through Graph and names the refusal."""

    def __init__(self, m365: Microsoft365):
        self.m365 = m365

    async def apply(self, credentials: M365Credentials, account: Account,
                    password: str) -> CloudOutcome:
        client = self.m365.client(credentials)
        user = account.external_id or account.identity
        upn = account.identity
        try:
            await client.reset_password(user, password)
        except M365CredentialsRejected as exc:
            message, _ = sign_in_refusal(exc)
            return CloudOutcome("m365_credentials_rejected", message, credentials_failed=True)
        except GraphThrottled:
            return CloudOutcome(
                "m365_throttled",
                f"Microsoft Graph throttled the reset of {upn}: it kept answering HTTP 429 "
                f"after the tenant waited as told (Retry-After) for "
                f"{self.m365.max_throttle_seconds:.0f} s. Replay the event later.")
        except M365Unreachable as exc:
            return CloudOutcome("m365_unreachable", exc.message)
        except GraphError as exc:
            return await self._refusal(client, account, exc)
        return CloudOutcome()

    async def _refusal(self, client: GraphClient, account: Account,
                       exc: GraphError) -> CloudOutcome:
        upn = account.identity
        quoted = f"Microsoft says: \"{exc.message}\""
        if exc.status == 403:
            claims: dict[str, Any] = {}
            with contextlib.suppress(M365Error):
                claims = token_claims(await client.token())
            permissions = claims.get("roles")
            if isinstance(permissions, list) and GRAPH_PERMISSION not in permissions:
                return CloudOutcome("m365_insufficient_privileges",
                                    f"Microsoft Graph refused to reset {upn}. {quoted} The app "
                                    f"lacks the {GRAPH_PERMISSION} permission. {CONSENT_ADVICE}")
            role = missing_role(directory_roles(claims), account.kind == "administrator")
            target = "an administrator's password" if role == PRIVILEGED_ADMIN else (
                "a user's password")
            return CloudOutcome("m365_insufficient_privileges",
                                f"Microsoft Graph refused to reset {upn}. {quoted} Resetting "
                                f"{target} needs the directory role {role}. {role_advice(role)}")
        if exc.status == 404:
            return CloudOutcome("m365_user_not_found",
                                f"Microsoft 365 has no user {upn}: it was deleted or renamed. "
                                f"{quoted} Run Sync now on the customer's Microsoft 365 link and "
                                "match the IT Glue password again.")
        text = exc.message.casefold()
        if exc.status == 400 and "on-premises" in text:
            return CloudOutcome("m365_on_premises_synced",
                                f"{upn} is synced from an on-premises Active Directory, so "
                                f"Microsoft 365 cannot change its password. {quoted} Reset it "
                                "through the agent's Active Directory instead: set this "
                                "account's source to active_directory on the agent that serves "
                                "that domain.")
        if exc.status == 400 and "password" in text:
            return CloudOutcome("m365_password_policy",
                                f"Microsoft 365 refused the new password of {upn}. {quoted} "
                                "Change it in IT Glue to one the tenant's password policy "
                                "accepts.")
        return CloudOutcome("m365_graph_error",
                            f"Microsoft Graph refused to reset {upn} ({exc.graph_code}). "
                            f"{quoted}")


async def link_for_account(session: AsyncSession, account: Account) -> Microsoft365Link | None:
    return (await session.scalars(select(Microsoft365Link).where(
        Microsoft365Link.tenant_id == account.tenant_id,
        Microsoft365Link.customer_id == account.customer_id))).first()


async def note_credentials_failure(session: AsyncSession, link_id: int, reason: str) -> bool:
    """Record that the link's sign-in fails. True only for the first failure since it last
    worked: later resets failing for the same reason alert nobody again."""
    now = utcnow()
    first = await session.execute(
        update(Microsoft365Link).where(Microsoft365Link.id == link_id,
                                       Microsoft365Link.error_since.is_(None))
        .values(last_error=reason, error_since=now, updated_at=now)
        .execution_options(synchronize_session=False))
    if getattr(first, "rowcount", 0) == 1:
        return True
    await session.execute(update(Microsoft365Link).where(Microsoft365Link.id == link_id)
                          .values(last_error=reason, updated_at=now)
                          .execution_options(synchronize_session=False))
    return False


async def note_link_works(session: AsyncSession, link_id: int) -> None:
    """A reset went through: a sign-in error recorded earlier is over."""
    now = utcnow()
    await session.execute(
        update(Microsoft365Link).where(Microsoft365Link.id == link_id,
                                       Microsoft365Link.error_since.is_not(None))
        .values(last_error=None, error_since=None, last_verified_at=now, updated_at=now)
        .execution_options(synchronize_session=False))


# ---------------------------------------------------------------------------- prerequisites
def is_cloud_category(category: str | None) -> bool:
    return category is not None and category.strip().casefold() in CLOUD_CATEGORIES


async def prerequisites(session: AsyncSession, tenant_id: int,
                        client: ITGlueClient) -> list[dict[str, Any]]:
    """Per customer in IT Glue: how many of its passwords are in cloud categories (Office 365,
    Microsoft 365, Azure AD, Cloud …) and whether it is linked to Microsoft 365."""
    customers = list((await session.scalars(select(Customer).where(
        Customer.tenant_id == tenant_id, Customer.itglue_organization_id.is_not(None))
        .order_by(Customer.name, Customer.id))).all())
    linked = set((await session.scalars(select(Microsoft365Link.customer_id).where(
        Microsoft365Link.tenant_id == tenant_id))).all())
    rows = [(c.id, c.name, str(c.itglue_organization_id)) for c in customers]
    await session.rollback()  # nothing held open while IT Glue answers
    result = []
    for customer_id, name, org_id in rows:
        passwords = await client.list_passwords(org_id)
        cloud = sum(1 for p in passwords if not p.archived and is_cloud_category(p.category_name))
        result.append({"customer_id": customer_id, "name": name, "cloud_passwords": cloud,
                       "linked": customer_id in linked})
    return result
