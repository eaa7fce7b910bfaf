"""Agents: enrollment codes, enrollment, the agent credential, heartbeats, online/offline,
the customer an agent serves, and revocation.

An enrollment code is single use and short-lived; the agent trades it for an opaque random
token (``qpag_…``). Both are stored only as SHA-256 hashes (they are high-entropy random
strings, so a plain hash is enough). Agent tokens live in their own table: a user's access
token is never an agent credential, and the other way round.

An agent serves one customer (``customer_id``, given with the enrollment code or assigned
later). Revoking an agent refuses its credential at once and hands its unfinished jobs back
to the pipeline, which resolves them again for another agent of that customer.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.crypto import random_token, sha256_hex
from qp_tenant.domain.events import NewEvent, add_event, rfc3339
from qp_tenant.errors import ApiError, not_found
from qp_tenant.models import Agent, AgentEnrollmentCode, Customer, ResetJob, utcnow

AGENT_TOKEN_PREFIX = "qpag_"  # noqa: S105 - a prefix, not a secret
# Only refresh last_seen_at this often: every long poll would otherwise be a write.
SEEN_WRITE_INTERVAL = timedelta(seconds=5)
MAX_DIRECTORIES = 100


def new_enrollment_code() -> str:
    """``QPE-XXXX-XXXX-XXXX-XXXX``: 80 random bits, easy to read out and type."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii")
    return "QPE-" + "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def _normalise_code(code: str) -> str:
    return code.strip().upper()


async def _customer(session: AsyncSession, tenant_id: int, customer_id: int | None
                    ) -> Customer | None:
    if customer_id is None:
        return None
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.tenant_id != tenant_id:
        raise ApiError(422, "unknown_customer",
                       f"There is no customer {customer_id} in this tenant.")
    return customer


async def create_enrollment_code(session: AsyncSession, tenant_id: int, *, name: str,
                                 created_by: int | None, ttl_seconds: float,
                                 customer_id: int | None = None) -> tuple[str, datetime]:
    name = name.strip()
    if not name:
        raise ApiError(422, "invalid_agent_name", "Give the agent a name, e.g. the server's.")
    customer = await _customer(session, tenant_id, customer_id)
    code = new_enrollment_code()
    expires_at = utcnow() + timedelta(seconds=ttl_seconds)
    session.add(AgentEnrollmentCode(
        tenant_id=tenant_id, name=name[:200], code_hash=sha256_hex(_normalise_code(code)),
        expires_at=expires_at, created_by=created_by, customer_id=customer_id,
    ))
    add_event(session, tenant_id, NewEvent(
        type="agent.enrollment_code_created", severity="info",
        summary=f"Enrollment code created for agent {name}"
                + (f" of customer {customer.name}" if customer is not None else ""),
        details={"name": name, "expires_at": rfc3339(expires_at), "customer_id": customer_id},
    ))
    await session.commit()
    return code, expires_at


async def enroll(session: AsyncSession, *, code: str, name: str, hostname: str
                 ) -> tuple[Agent, str]:
    """Trade a code for a new agent and its token. Refusals say exactly what is wrong."""
    now = utcnow()
    row = (await session.scalars(select(AgentEnrollmentCode).where(
        AgentEnrollmentCode.code_hash == sha256_hex(_normalise_code(code or ""))
    ))).first()
    if row is None:
        raise ApiError(400, "enrollment_code_invalid",
                       "This enrollment code is not valid. Create a new code in the tenant and "
                       "copy it exactly.")
    if row.used_at is not None:
        raise ApiError(409, "enrollment_code_used",
                       "This enrollment code was already used. Each code enrolls one agent; "
                       "create a new one.")
    if row.expires_at <= now:
        raise ApiError(410, "enrollment_code_expired",
                       "This enrollment code has expired (codes last one hour). Create a new "
                       "one.")
    token = random_token(AGENT_TOKEN_PREFIX)
    agent = Agent(tenant_id=row.tenant_id, name=(row.name or name or hostname)[:200],
                  hostname=(hostname or "")[:255], token_hash=sha256_hex(token),
                  status="offline", directories=[], customer_id=row.customer_id)
    session.add(agent)
    await session.flush()
    # Single use even under concurrent enrollments: only one UPDATE finds it unused.
    claimed = await session.execute(
        update(AgentEnrollmentCode)
        .where(AgentEnrollmentCode.id == row.id, AgentEnrollmentCode.used_at.is_(None))
        .values(used_at=now, agent_id=agent.id)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        await session.rollback()
        raise ApiError(409, "enrollment_code_used",
                       "This enrollment code was already used. Each code enrolls one agent; "
                       "create a new one.")
    add_event(session, row.tenant_id, NewEvent(
        type="agent.enrolled", severity="info",
        summary=f"Agent {agent.name} enrolled from {agent.hostname or 'an unnamed host'}",
        details={"agent_id": agent.id, "hostname": agent.hostname,
                 "customer_id": agent.customer_id},
    ))
    await session.commit()
    return agent, token


async def authenticate_agent(session: AsyncSession, token: str) -> Agent:
    agent = (await session.scalars(
        select(Agent).where(Agent.token_hash == sha256_hex(token))
    )).first()
    if agent is None or agent.revoked_at is not None:
        raise ApiError(401, "unauthorized",
                       "Unknown or revoked agent credential. Enroll the agent again.",
                       headers={"WWW-Authenticate": "Bearer"})
    return agent


def _clean_directories(directories: Any) -> list[dict[str, str]]:
    if not isinstance(directories, list):
        raise ApiError(422, "invalid_directories", "directories must be a list of objects.")
    cleaned: list[dict[str, str]] = []
    for item in directories[:MAX_DIRECTORIES]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ApiError(422, "invalid_directories",
                           "Each directory needs a name (and a kind).")
        cleaned.append({"name": item["name"][:200], "kind": str(item.get("kind") or "")[:32]})
    return cleaned


async def mark_seen(session: AsyncSession, agent: Agent,
                    directories: Any = None) -> bool:
    """Record that the agent called; log ``agent.online`` when it was offline.

    Returns whether the agent came online (the caller then wakes event subscribers).
    """
    now = utcnow()
    came_online = False
    if agent.status != "online":
        back = agent.last_seen_at is not None
        result = await session.execute(
            update(Agent).where(Agent.id == agent.id, Agent.status != "online")
            .values(status="online", last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            came_online = True
            add_event(session, agent.tenant_id, NewEvent(
                type="agent.online", severity="info",
                summary=(f"Agent {agent.name} is back online" if back
                         else f"Agent {agent.name} is online"),
                details={"agent_id": agent.id, "hostname": agent.hostname},
            ))
        agent.status = "online"
        agent.last_seen_at = now
    elif agent.last_seen_at is None or now - agent.last_seen_at >= SEEN_WRITE_INTERVAL:
        agent.last_seen_at = now
    if directories is not None:
        agent.directories = _clean_directories(directories)
    if session.dirty or came_online:
        await session.commit()
    return came_online


async def mark_lapsed_offline(session: AsyncSession, offline_after_seconds: float) -> set[int]:
    """Agents whose heartbeat lapsed go offline (one ``agent.offline`` each). Returns tenants."""
    cutoff = utcnow() - timedelta(seconds=offline_after_seconds)
    lapsed = (await session.scalars(select(Agent).where(
        Agent.status == "online", Agent.last_seen_at < cutoff, Agent.revoked_at.is_(None)
    ))).all()
    tenants: set[int] = set()
    for agent in lapsed:
        result = await session.execute(
            update(Agent).where(Agent.id == agent.id, Agent.status == "online",
                                Agent.last_seen_at < cutoff)
            .values(status="offline")
        )
        if getattr(result, "rowcount", 0) == 1:
            tenants.add(agent.tenant_id)
            add_event(session, agent.tenant_id, NewEvent(
                type="agent.offline", severity="warning",
                summary=(f"Agent {agent.name} is offline: no heartbeat for "
                         f"{int(offline_after_seconds)} seconds"),
                details={"agent_id": agent.id, "hostname": agent.hostname,
                         "last_seen_at": rfc3339(agent.last_seen_at)},
            ))
    await session.commit()
    return tenants


def agent_status(agent: Agent) -> str:
    if agent.revoked_at is not None:
        return "revoked"
    return "online" if agent.status == "online" else "offline"


def agent_to_dict(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "name": agent.name,
        "hostname": agent.hostname,
        "status": agent_status(agent),
        "last_seen_at": rfc3339(agent.last_seen_at),
        "directories": list(agent.directories or []),
        "customer_id": agent.customer_id,
    }


async def list_agents(session: AsyncSession, tenant_id: int,
                      include_revoked: bool = False) -> list[Agent]:
    """The tenant's agents; revoked ones only when asked for (they can serve nothing)."""
    stmt = select(Agent).where(Agent.tenant_id == tenant_id)
    if not include_revoked:
        stmt = stmt.where(Agent.revoked_at.is_(None))
    return list((await session.scalars(stmt.order_by(Agent.name, Agent.id))).all())


async def get_agent(session: AsyncSession, tenant_id: int, agent_id: int) -> Agent:
    agent = await session.get(Agent, agent_id)
    if agent is None or agent.tenant_id != tenant_id:
        raise not_found("That agent")
    return agent


async def assign_customer(session: AsyncSession, tenant_id: int, agent_id: int,
                          customer_id: int | None, actor: str) -> Agent:
    """Assign the agent to the customer whose directories it serves (None: unassign)."""
    agent = await get_agent(session, tenant_id, agent_id)
    if agent.revoked_at is not None:
        raise ApiError(409, "agent_revoked",
                       f"Agent {agent.name} was revoked; enroll a new agent instead.")
    customer = await _customer(session, tenant_id, customer_id)
    if agent.customer_id != customer_id:
        old = agent.customer_id
        agent.customer_id = customer_id
        add_event(session, tenant_id, NewEvent(
            type="agent.updated", severity="info",
            summary=(f"Agent {agent.name} assigned to customer {customer.name} by {actor}"
                     if customer is not None
                     else f"Agent {agent.name} unassigned from its customer by {actor}"),
            details={"agent_id": agent.id, "actor": actor,
                     "changes": {"customer_id": {"old": old, "new": customer_id}}},
        ))
    await session.commit()
    return agent


async def revoke_agent(session: AsyncSession, tenant_id: int, agent_id: int,
                       actor: str) -> tuple[Agent, list[int]]:
    """Refuse the agent's credential from now on and hand its jobs back to the pipeline.

    Its queued and leased jobs return to ``pending`` with their password erased: the pipeline
    resolves them again (reading IT Glue afresh) for another agent of the same customer.
    Idempotent. Returns the agent and the ids of the jobs handed back.
    """
    agent = await get_agent(session, tenant_id, agent_id)
    if agent.revoked_at is not None:
        return agent, []
    now = utcnow()
    # The agent row first: a lease or a queueing that locked it (FOR UPDATE, see
    # jobs.lease_next_job) commits before this, and its job is then handed back below.
    await session.execute(update(Agent).where(Agent.id == agent.id)
                          .values(revoked_at=now, status="offline")
                          .execution_options(synchronize_session=False))
    handed_back = list((await session.scalars(
        select(ResetJob.id).where(ResetJob.agent_id == agent.id,
                                  ResetJob.state.in_(("queued", "leased")))
    )).all())
    if handed_back:
        await session.execute(
            update(ResetJob).where(ResetJob.id.in_(handed_back),
                                   ResetJob.state.in_(("queued", "leased")))
            .values(state="pending", agent_id=None, password_encrypted=None,
                    password_hash=None, claimed_until=None, leased_at=None,
                    lease_expires_at=None, queue_deadline=None, attempts=0,
                    next_attempt_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
    await session.refresh(agent)
    add_event(session, tenant_id, NewEvent(
        type="agent.revoked", severity="warning",
        summary=f"Agent {agent.name} revoked by {actor}"
                + (f"; {len(handed_back)} unfinished reset(s) handed to another agent"
                   if handed_back else ""),
        details={"agent_id": agent.id, "hostname": agent.hostname, "actor": actor,
                 "requeued_job_ids": handed_back},
    ))
    await session.commit()
    return agent, handed_back
