"""Sign-in: argon2id password hashes, opaque access/refresh tokens, rotation, throttling."""

from __future__ import annotations

import asyncio
import functools
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.crypto import random_token, sha256_hex
from qp_tenant.domain.credentials import check_password_strength, normalize_email
from qp_tenant.domain.throttle import LoginThrottle
from qp_tenant.errors import ApiError
from qp_tenant.models import AccessToken, RefreshToken, Tenant, User, utcnow

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users, so timing does not reveal them."""
    return _hasher.hash("not a real password, used to keep timing even")

# Roles in increasing privilege: each may do everything the ones before it may. viewer reads;
# technician also matches accounts, syncs, imports customers, retries resets and copies or
# reveals the workflow URL; admin also manages tokens, integrations, alerts, agents and an
# account's source. The README's role table documents this order; routes enforce it through
# qp_tenant.api.deps.require_role.
ROLES = ("viewer", "technician", "admin")


def role_at_least(role: str, minimum: str) -> bool:
    """True when ``role`` may do what ``minimum`` may (an unknown role may do nothing)."""
    if role not in ROLES or minimum not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(minimum)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Verify off the event loop; unknown users are checked against a dummy hash too."""

    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    tenant: Tenant

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "user": user_to_dict(self.user),
            "tenant": tenant_to_dict(self.tenant),
        }


def user_to_dict(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name, "role": user.role}


def tenant_to_dict(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "slug": tenant.slug, "name": tenant.name}


@dataclass(frozen=True)
class TokenPolicy:
    access_ttl_seconds: int
    refresh_ttl_days: int


async def issue_tokens(session: AsyncSession, user: User, tenant: Tenant, policy: TokenPolicy,
                       family_id: str | None = None) -> IssuedTokens:
    now = utcnow()
    family = family_id or uuid.uuid4().hex
    access = random_token("qpat_")
    refresh = random_token("qprt_")
    session.add(AccessToken(
        tenant_id=tenant.id, user_id=user.id, family_id=family, token_hash=sha256_hex(access),
        created_at=now, expires_at=now + timedelta(seconds=policy.access_ttl_seconds),
    ))
    session.add(RefreshToken(
        tenant_id=tenant.id, user_id=user.id, family_id=family, token_hash=sha256_hex(refresh),
        created_at=now, expires_at=now + timedelta(days=policy.refresh_ttl_days),
    ))
    return IssuedTokens(access, refresh, policy.access_ttl_seconds, user, tenant)


INVALID_CREDENTIALS = ApiError(401, "invalid_credentials", "The email or password is not right.")


async def login(session: AsyncSession, throttle: LoginThrottle, policy: TokenPolicy, *,
                email: str, password: str, tenant_slug: str | None,
                client_ip: str) -> IssuedTokens:
    """Check the password (throttled per address and per email, see domain/throttle.py).

    A failure is counted and committed before the 401; a success is committed with its tokens.
    """
    now = utcnow()
    email_key = email.strip().lower()
    await throttle.check(session, email_key, client_ip, now)
    stmt = select(User, Tenant).join(Tenant, Tenant.id == User.tenant_id).where(
        func.lower(User.email) == email_key
    )
    if tenant_slug:
        stmt = stmt.where(Tenant.slug == tenant_slug)
    candidates = (await session.execute(stmt)).all()
    matches = []
    if not candidates:
        await verify_password(None, password)
    for user, tenant in candidates:
        if await verify_password(user.password_hash, password):
            matches.append((user, tenant))
    if not matches:
        await throttle.record_failure(session, email_key, client_ip, now)
        await session.commit()
        raise INVALID_CREDENTIALS
    if len(matches) > 1:
        raise ApiError(409, "tenant_required",
                       "This account exists in several tenants: choose which one to sign in to.",
                       details={"tenants": [t.slug for _, t in matches]})
    await throttle.record_success(session, email_key, client_ip, now)
    user, tenant = matches[0]
    issued = await issue_tokens(session, user, tenant, policy)
    await session.commit()
    return issued


INVALID_REFRESH = ApiError(401, "invalid_refresh_token",
                           "Your session has ended. Please sign in again.")


async def refresh(session: AsyncSession, policy: TokenPolicy, refresh_token: str) -> IssuedTokens:
    """Rotate a refresh token. A token presented twice revokes its whole family."""
    now = utcnow()
    row = (await session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(refresh_token))
    )).first()
    if row is None:
        raise INVALID_REFRESH
    if row.used_at is not None or row.revoked_at is not None:
        await _end_reused_family(session, row.family_id, now)
    if row.expires_at <= now:
        raise INVALID_REFRESH
    # Claim the token with a guarded UPDATE: of requests presenting it at the same moment
    # (on any process) exactly one changes the row; the others saw it unused a moment ago
    # but lost the claim, which is reuse all the same.
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None),
               RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        family_id = row.family_id
        await session.rollback()
        await _end_reused_family(session, family_id, now)
    user = await session.get(User, row.user_id)
    tenant = await session.get(Tenant, row.tenant_id)
    if user is None or tenant is None:
        raise INVALID_REFRESH
    issued = await issue_tokens(session, user, tenant, policy, family_id=row.family_id)
    await session.commit()
    return issued


async def _end_reused_family(session: AsyncSession, family_id: str, now: datetime) -> NoReturn:
    await revoke_family(session, family_id, now)
    await session.commit()
    raise ApiError(401, "refresh_token_reused",
                   "This session was used from somewhere else and has been ended for "
                   "safety. Please sign in again.")


async def revoke_family(session: AsyncSession, family_id: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    await session.execute(update(RefreshToken).where(
        RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None)
    ).values(revoked_at=now))
    await session.execute(update(AccessToken).where(
        AccessToken.family_id == family_id, AccessToken.revoked_at.is_(None)
    ).values(revoked_at=now))


async def sign_out(session: AsyncSession, family_id: str) -> None:
    """End one sign-in: its access and refresh tokens stop working at once."""
    await revoke_family(session, family_id)
    await session.commit()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, their tenant and their sign-in family."""

    user: User
    tenant: Tenant
    family_id: str


async def authenticate(session: AsyncSession, access_token: str) -> Principal:
    now = utcnow()
    row = (await session.execute(
        select(AccessToken, User, Tenant)
        .join(User, User.id == AccessToken.user_id)
        .join(Tenant, Tenant.id == AccessToken.tenant_id)
        .where(AccessToken.token_hash == sha256_hex(access_token))
    )).first()
    if row is None:
        raise ApiError(401, "unauthorized", "Sign in to continue.")
    token, user, tenant = row
    if token.revoked_at is not None or token.expires_at <= now:
        raise ApiError(401, "token_expired", "Your session has expired. Please sign in again.")
    return Principal(user, tenant, token.family_id)


async def create_tenant(session: AsyncSession, slug: str, name: str) -> Tenant:
    slug = slug.strip().lower()
    if not slug or not all(c.isalnum() or c == "-" for c in slug):
        raise ApiError(422, "invalid_slug", "A tenant slug uses letters, digits and dashes only.")
    exists = (await session.scalars(select(Tenant).where(Tenant.slug == slug))).first()
    if exists:
        raise ApiError(409, "tenant_exists", f"A tenant with the slug {slug!r} already exists.")
    tenant = Tenant(slug=slug, name=name.strip() or slug)
    session.add(tenant)
    await session.flush()
    return tenant


async def create_user(session: AsyncSession, tenant: Tenant, email: str, password: str,
                      role: str = "admin", name: str = "") -> User:
    email = normalize_email(email)
    if role not in ROLES:
        raise ApiError(422, "invalid_role", f"The role must be one of: {', '.join(ROLES)}.")
    await asyncio.to_thread(check_password_strength, password,
                            [email, name, tenant.slug, tenant.name])
    exists = (await session.scalars(select(User).where(
        User.tenant_id == tenant.id, func.lower(User.email) == email.lower()
    ))).first()
    if exists:
        raise ApiError(409, "user_exists", f"{email} already has an account in this tenant.")
    user = User(tenant_id=tenant.id, email=email, name=name or email.split("@")[0], role=role,
                password_hash=await asyncio.to_thread(hash_password, password))
    session.add(user)
    await session.flush()
    return user


# -------------------------------------------------------------------------- first run
LOCAL_TENANT_SLUG = "local"
LOCAL_TENANT_NAME = "This computer"


async def needs_admin(session: AsyncSession) -> bool:
    """Whether this deployment still has no user at all (the embedded app's first run)."""
    return not await session.scalar(select(func.count()).select_from(User))


async def first_run_setup(session: AsyncSession, policy: TokenPolicy, *, expected_token: str,
                          presented_token: str, email: str, password: str,
                          name: str = "") -> IssuedTokens:
    """Create the local tenant and its administrator, once, and sign them in.

    Only the app that started this tenant knows ``expected_token`` (it passes it in the
    child's environment); without one configured, nobody may set up over HTTP.
    """
    if not expected_token or not hmac.compare_digest(expected_token.encode(),
                                                     presented_token.encode()):
        raise ApiError(403, "setup_not_allowed",
                       "First-run set-up is only possible from the app that started this tenant.")
    if not await needs_admin(session):
        raise ApiError(409, "already_set_up",
                       "An administrator already exists. Sign in instead.")
    tenant = await create_tenant(session, LOCAL_TENANT_SLUG, LOCAL_TENANT_NAME)
    user = await create_user(session, tenant, email, password, "admin", name)
    issued = await issue_tokens(session, user, tenant, policy)
    await session.commit()
    return issued
