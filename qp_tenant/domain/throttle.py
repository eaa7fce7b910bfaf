"""Sign-in throttling, kept in the database so every process of a deployment counts together.

Two counters slow down password guessing without letting a stranger lock a user out:

* **Per (email, client address)**: after ``max_failures`` failures within ``window_seconds``
  that address may not try that email again for ``window_seconds``. Someone guessing from
  their own address locks only themselves out; the user's own address is not affected.
* **Per email, from any address**: after ``email_max_failures`` failures within the window,
  each further attempt on that email must wait ``email_delay_seconds`` after the previous
  failure. A spray from many addresses (each staying under the first limit) is slowed to one
  guess per delay. Addresses the user signed in from successfully within
  ``known_address_days`` are exempt, so an attacker cannot keep the real user out this way.

Refusals answer 429 ``too_many_attempts`` with ``Retry-After``; they happen before the
password is checked, so they reveal nothing about it and cost no hashing.

The client address is the ASGI client host. Behind a reverse proxy, uvicorn's proxy-header
handling sets it from ``X-Forwarded-For``, believing it only from ``FORWARDED_ALLOW_IPS``
(127.0.0.1 by default): see docs/deployment.md, "Sign-in throttling and client addresses".

Counters use fixed windows and atomic ``UPDATE … SET failures = failures + 1`` statements, so
concurrent failures on several processes are all counted. Rows are deleted once nothing in
them matters any more (``forget_at``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.crypto import sha256_hex
from qp_tenant.errors import ApiError
from qp_tenant.models import SignInThrottle


def _key(kind: str, email: str, address: str = "") -> str:
    return sha256_hex(f"{kind}\x00{email}\x00{address}")


@dataclass(frozen=True)
class LoginThrottle:
    """The limits (from settings); the state lives in the ``sign_in_throttle`` table."""

    max_failures: int = 5
    window_seconds: int = 300
    email_max_failures: int = 20
    email_delay_seconds: int = 10
    known_address_days: int = 30

    async def check(self, session: AsyncSession, email: str, address: str,
                    now: datetime) -> None:
        """Raise 429 ``too_many_attempts`` when this attempt must wait."""
        keys = {"pair": _key("pair", email, address), "email": _key("email", email),
                "known": _key("known", email, address)}
        rows = {row.kind: row for row in (await session.scalars(
            select(SignInThrottle).where(SignInThrottle.key.in_(keys.values()))
        )).all()}
        until: datetime | None = None
        pair = rows.get("pair")
        if pair is not None and pair.blocked_until is not None and pair.blocked_until > now:
            until = pair.blocked_until
        per_email = rows.get("email")
        known = rows.get("known")
        recognised = known is not None and known.forget_at > now
        if (per_email is not None and per_email.blocked_until is not None
                and per_email.blocked_until > now and not recognised):
            until = max(until or per_email.blocked_until, per_email.blocked_until)
        if until is None:
            return
        wait = max(1, math.ceil((until - now).total_seconds()))
        raise ApiError(429, "too_many_attempts",
                       f"Too many failed sign-in attempts. Try again in {wait} seconds.",
                       details={"retry_after": wait}, headers={"Retry-After": str(wait)})

    async def record_failure(self, session: AsyncSession, email: str, address: str,
                             now: datetime) -> None:
        """Count a failure on both counters (the caller commits)."""
        await self._count(session, _key("pair", email, address), "pair", now,
                          self.max_failures, self.window_seconds)
        await self._count(session, _key("email", email), "email", now,
                          self.email_max_failures, self.email_delay_seconds)
        await session.execute(delete(SignInThrottle).where(SignInThrottle.forget_at <= now))

    async def record_success(self, session: AsyncSession, email: str, address: str,
                             now: datetime) -> None:
        """Clear this address's failures for the email and remember the address (the caller
        commits). The per-email counter stays: a spray goes on being slowed."""
        await session.execute(delete(SignInThrottle).where(
            SignInThrottle.key == _key("pair", email, address)))
        known_key = _key("known", email, address)
        forget = now + timedelta(days=self.known_address_days)
        values: dict[str, object] = {"window_started_at": now, "forget_at": forget}
        if not await self._update(session, known_key, values):
            await self._insert(session, known_key, "known", now, forget, values)

    async def _count(self, session: AsyncSession, key: str, kind: str, now: datetime,
                     threshold: int, block_seconds: int) -> None:
        cutoff = now - timedelta(seconds=self.window_seconds)
        forget = now + timedelta(seconds=self.window_seconds + block_seconds)
        expired = SignInThrottle.window_started_at <= cutoff
        values: dict[str, object] = {
            "failures": case((expired, 1), else_=SignInThrottle.failures + 1),
            "window_started_at": case((expired, now), else_=SignInThrottle.window_started_at),
            "forget_at": forget,
        }
        if not await self._update(session, key, values):
            await self._insert(session, key, kind, now, forget, values)
        # Reaching the threshold (on whichever process) blocks the key from now on.
        await session.execute(
            update(SignInThrottle)
            .where(SignInThrottle.key == key, SignInThrottle.failures >= threshold)
            .values(blocked_until=now + timedelta(seconds=block_seconds))
            .execution_options(synchronize_session=False)
        )

    @staticmethod
    async def _update(session: AsyncSession, key: str, values: dict[str, object]) -> bool:
        result = await session.execute(
            update(SignInThrottle).where(SignInThrottle.key == key).values(values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def _insert(self, session: AsyncSession, key: str, kind: str, now: datetime,
                      forget: datetime, values: dict[str, object]) -> None:
        try:
            async with session.begin_nested():
                session.add(SignInThrottle(key=key, kind=kind, failures=1,
                                           window_started_at=now, forget_at=forget))
        except IntegrityError:
            # Another process inserted the same key a moment ago: count on its row.
            await self._update(session, key, values)
