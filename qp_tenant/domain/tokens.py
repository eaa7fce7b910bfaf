"""Workflow trigger tokens: generate ("Generate New"), reveal, revoke, and their status."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qp_common.urls import public_url_ok
from qp_common.wire import TOKEN_ACTIVE, TOKEN_EXPIRED, TOKEN_EXPIRING, TOKEN_REVOKED
from qp_tenant.crypto import Crypto, random_token
from qp_tenant.domain.events import NewEvent, add_event, rfc3339
from qp_tenant.errors import ApiError
from qp_tenant.models import WorkflowToken, utcnow

TOKEN_PREFIX = "qpwt_"  # noqa: S105 - a prefix, not a secret
EXPIRING_DAYS = 30
MAX_GRACE_HOURS = 168
HOOK_PATH = "/hooks/itglue/"


def token_status(token: WorkflowToken, now: datetime) -> str:
    if token.revoked_at is not None and token.revoked_at <= now:
        return TOKEN_REVOKED
    if token.expires_at <= now:
        return TOKEN_EXPIRED
    if days_left(token, now) <= EXPIRING_DAYS:
        return TOKEN_EXPIRING
    return TOKEN_ACTIVE


def days_left(token: WorkflowToken, now: datetime) -> int:
    """Whole days left, rounded up: ``days_left <= N`` exactly when N days or less remain."""
    seconds = (token.expires_at - now).total_seconds()
    return max(0, math.ceil(seconds / 86400))


def webhook_url(public_url: str, token: str) -> str:
    return public_url.rstrip("/") + HOOK_PATH + token


def url_hint(public_url: str, last4: str) -> str:
    return public_url.rstrip("/") + HOOK_PATH + TOKEN_PREFIX + "…" + last4


def token_to_dict(token: WorkflowToken, public_url: str, now: datetime) -> dict[str, Any]:
    return {
        "id": token.id,
        "status": token_status(token, now),
        "created_at": rfc3339(token.created_at),
        "expires_at": rfc3339(token.expires_at),
        "days_left": days_left(token, now),
        "last_used_at": rfc3339(token.last_used_at),
        "grace_until": rfc3339(token.grace_until),
        "url_hint": url_hint(public_url, token.last4),
        "public_url_ok": public_url_ok(public_url),
    }


async def current_token(session: AsyncSession, tenant_id: int) -> WorkflowToken | None:
    """The newest token of the tenant (whatever its status), or None if none was ever made."""
    stmt = (
        select(WorkflowToken)
        .where(WorkflowToken.tenant_id == tenant_id)
        .order_by(WorkflowToken.id.desc())
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


@dataclass(frozen=True)
class GeneratedToken:
    token: WorkflowToken
    plaintext: str


async def generate_token(
    session: AsyncSession,
    crypto: Crypto,
    tenant_id: int,
    *,
    lifetime_days: int,
    grace_hours: int = 0,
    user_id: int | None = None,
    now: datetime | None = None,
) -> GeneratedToken:
    """Make a new token; revoke the previous ones now, or at the end of a grace period.

    Commits: the new token and its events are one unit of work.
    """
    if not 0 <= grace_hours <= MAX_GRACE_HOURS:
        raise ApiError(422, "invalid_grace_hours",
                       f"The grace period must be between 0 and {MAX_GRACE_HOURS} hours.")
    now = now or utcnow()
    plaintext = random_token(TOKEN_PREFIX)
    previous = (
        await session.scalars(
            select(WorkflowToken).where(
                WorkflowToken.tenant_id == tenant_id,
                (WorkflowToken.revoked_at.is_(None)) | (WorkflowToken.revoked_at > now),
            )
        )
    ).all()
    new = WorkflowToken(
        tenant_id=tenant_id,
        token_hmac=crypto.lookup_hash(plaintext),
        token_encrypted=crypto.encrypt(plaintext),
        last4=plaintext[-4:],
        created_at=now,
        expires_at=now + timedelta(days=lifetime_days),
        created_by=user_id,
    )
    session.add(new)
    await session.flush()
    for old in previous:
        if old.expires_at <= now:
            old.revoked_at = now
            continue
        if grace_hours:
            until = min(now + timedelta(hours=grace_hours), old.expires_at)
            old.grace_until = until
            old.revoked_at = until
            # A person reads the summary: a plain date, not RFC 3339 (details keep that).
            summary = ("Previous workflow token stays valid until "
                       f"{until.day} {until:%b %Y, %H:%M} UTC (grace period)")
        else:
            old.revoked_at = now
            old.grace_until = None
            summary = "Previous workflow token revoked: its URL no longer works"
        add_event(session, tenant_id, NewEvent(
            type="token.revoked", severity="info", summary=summary, token_id=old.id,
            details={"replaced_by": new.id, "effective_at": rfc3339(old.revoked_at),
                     "grace_hours": grace_hours},
        ), occurred_at=now)
    add_event(session, tenant_id, NewEvent(
        type="token.generated", severity="info",
        summary=f"New workflow trigger token generated (expires {new.expires_at:%d %b %Y})",
        token_id=new.id,
        details={"expires_at": rfc3339(new.expires_at), "grace_hours": grace_hours,
                 "replaced": [old.id for old in previous], "by_user_id": user_id},
    ), occurred_at=now)
    await session.commit()
    return GeneratedToken(new, plaintext)


async def reveal_token(session: AsyncSession, crypto: Crypto, tenant_id: int,
                       user_id: int | None, user_email: str | None) -> tuple[WorkflowToken, str]:
    """Decrypt the current token so its URL can be shown again; logs ``token.revealed``
    (committed: every reveal leaves its trace)."""
    token = await current_token(session, tenant_id)
    now = utcnow()
    if token is None or token_status(token, now) == "revoked":
        raise ApiError(404, "no_workflow_token",
                       "There is no workflow token to reveal. Generate a new one first.")
    plaintext = crypto.decrypt(token.token_encrypted)
    add_event(session, tenant_id, NewEvent(
        type="token.revealed", severity="info",
        summary=f"Workflow URL revealed by {user_email or 'a technician'}",
        token_id=token.id, details={"by_user_id": user_id},
    ))
    await session.commit()
    return token, plaintext


async def revoke_tokens(session: AsyncSession, tenant_id: int, user_email: str | None) -> int:
    """Revoke every token that still works, and commit. Returns how many were revoked."""
    now = utcnow()
    live = (
        await session.scalars(
            select(WorkflowToken).where(
                WorkflowToken.tenant_id == tenant_id,
                (WorkflowToken.revoked_at.is_(None)) | (WorkflowToken.revoked_at > now),
            )
        )
    ).all()
    for token in live:
        token.revoked_at = now
        token.grace_until = None
        add_event(session, tenant_id, NewEvent(
            type="token.revoked", severity="warning",
            summary=f"Workflow token revoked by {user_email or 'a technician'}: "
                    "IT Glue triggers to its URL are refused",
            token_id=token.id,
        ))
    await session.commit()
    return len(live)
