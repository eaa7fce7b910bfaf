"""Accounts discovered by agents: the pages an agent reports from each of its directories.

An agent lists each configured directory (Active Directory, OpenLDAP, local accounts) and
reports the accounts in pages that share one ``sync_id``; the last page says ``final``.
Accounts are upserted per (agent, directory, identity), where the identity is the DN for
LDAP/AD and the user name for local accounts, and belong to the agent's customer. On the final
page, accounts an earlier sync reported and this one did not become ``gone`` (never deleted);
a gone account reported again is ``present`` again.

What a person set by hand (``kind`` and ``display_name`` through PATCH, or on an account they
created) is remembered in ``manual_fields`` and left alone by later syncs.

Only changes are logged: each created, changed or gone account is an ``account.*`` event
with actor "agent <name>", up to :data:`MAX_ACCOUNT_EVENTS_PER_SYNC` per directory sync, and
every sync ends with one ``agent.synced`` summary ("Agent dc01 reported 10000 accounts from
corp-ad: 3 new, 0 changed, 1 gone"). See docs/agent.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.domain.accounts import (
    ACCOUNT_KINDS,
    Actor,
    _audited,
    _log_account_change,
    account_changes,
)
from qp_tenant.domain.agents import get_agent
from qp_tenant.domain.events import NewEvent, add_event, rfc3339
from qp_tenant.errors import ApiError
from qp_tenant.models import Account, Agent, DirectorySync, utcnow

DIRECTORY_KINDS = ("openldap", "active_directory", "local")
MAX_PAGE_ACCOUNTS = 1000
MAX_ACCOUNT_EVENTS_PER_SYNC = 100
# Fields a sync fills in and a person may override (then the sync leaves them alone).
OVERRIDABLE_FIELDS = ("kind", "display_name")


@dataclass(frozen=True)
class ReportedAccount:
    """One account as the agent saw it in its directory."""

    identity: str
    display_name: str
    login_names: tuple[str, ...]
    enabled: bool
    kind: str


def no_customer_message(agent: Agent) -> str:
    return (f"Agent {agent.name} is not assigned to a customer, so the tenant cannot keep "
            "the accounts it reports. An administrator assigns it one in the app (Agents → "
            f"{agent.name} → customer) or with PATCH /api/v1/agents/{agent.id} "
            "{\"customer_id\": …}; the agent reports again at its next sync.")


async def _sync_row(session: AsyncSession, agent: Agent, directory: str,
                    kind: str) -> DirectorySync:
    row = (await session.scalars(select(DirectorySync).where(
        DirectorySync.agent_id == agent.id, DirectorySync.directory == directory))).first()
    if row is None:
        row = DirectorySync(tenant_id=agent.tenant_id, agent_id=agent.id, directory=directory,
                            kind=kind, reported=0, created=0, updated=0, events=0)
        session.add(row)
    return row


async def report_accounts(session: AsyncSession, agent: Agent, *, sync_id: str,
                          directory: str, directory_kind: str,
                          accounts: list[ReportedAccount], final: bool,
                          error: str | None = None) -> dict[str, Any]:
    """Upsert one page of a directory's accounts; on ``final`` mark the unreported gone.

    An ``error`` (the agent could not list the directory) is recorded for the app and ends
    the sync without marking anything gone: a directory that cannot be read is not empty.

    Raises:
        ApiError: 409 ``agent_has_no_customer``; 422 for an unknown kind or too many accounts.
    """
    if agent.customer_id is None:
        raise ApiError(409, "agent_has_no_customer", no_customer_message(agent))
    if directory_kind not in DIRECTORY_KINDS:
        raise ApiError(422, "invalid_directory_kind",
                       f"directory_kind must be one of: {', '.join(DIRECTORY_KINDS)}.")
    if len(accounts) > MAX_PAGE_ACCOUNTS:
        raise ApiError(422, "too_many_accounts",
                       f"Report at most {MAX_PAGE_ACCOUNTS} accounts per page.")
    if not sync_id.strip() or not directory.strip():
        raise ApiError(422, "invalid_sync_report",
                       "A report names its sync (sync_id) and the directory it lists.")
    for item in accounts:
        if not item.identity.strip():
            raise ApiError(422, "invalid_identity",
                           "Every reported account needs its identity: the DN, or the local "
                           "user name.")
        if item.kind not in ACCOUNT_KINDS:
            raise ApiError(422, "invalid_account_kind",
                           f"The account kind must be one of: {', '.join(ACCOUNT_KINDS)}.")
    now = utcnow()
    actor = Actor(f"agent {agent.name}")
    row = await _sync_row(session, agent, directory, directory_kind)
    if row.sync_id != sync_id:
        row.sync_id, row.kind, row.started_at = sync_id, directory_kind, now
        row.reported = row.created = row.updated = row.events = 0
    if error is not None:
        row.last_error = error.strip()[:2000] or "The agent could not list the directory."
        await session.commit()
        return {"status": "ok", "sync_id": sync_id, "received": 0, "created": 0,
                "updated": 0, "gone": 0}

    created, updated = await _upsert_page(session, agent, row, actor, sync_id, directory,
                                          directory_kind, accounts, now)
    row.reported += len(accounts)
    row.created += created
    row.updated += updated
    gone = 0
    if final:
        gone = await _mark_gone(session, agent, row, actor, sync_id, directory, now)
        row.last_sync_at, row.last_error = now, None
        _summary_event(session, agent, row, gone)
    await session.commit()
    return {"status": "ok", "sync_id": sync_id, "received": len(accounts),
            "created": created, "updated": updated, "gone": gone}


async def _log(session: AsyncSession, agent: Agent, row: DirectorySync, account: Account,
               type_: str, before: dict[str, Any], actor: Actor) -> None:
    """An ``account.*`` event, unless this sync already wrote its share of them."""
    if row.events >= MAX_ACCOUNT_EVENTS_PER_SYNC:
        return
    row.events += 1
    await _log_account_change(session, agent.tenant_id, account, type_, before,
                              _audited(account), actor)


async def _upsert_page(session: AsyncSession, agent: Agent, row: DirectorySync, actor: Actor,
                       sync_id: str, directory: str, kind: str,
                       accounts: list[ReportedAccount], now: datetime) -> tuple[int, int]:
    page: dict[str, ReportedAccount] = {}
    for item in accounts:
        page.setdefault(item.identity.strip().casefold(), item)
    existing: dict[str, Account] = {}
    if page:
        found = (await session.scalars(select(Account).where(
            Account.tenant_id == agent.tenant_id, Account.agent_id == agent.id,
            Account.directory == directory,
            func.lower(Account.identity).in_(list(page))))).all()
        # func.lower folds ASCII only; the dict below is the exact key.
        existing = {a.identity.strip().casefold(): a for a in found}
    created = updated = 0
    unchanged: list[int] = []
    for key, item in page.items():
        account = existing.get(key)
        names = sorted({n for n in item.login_names if n}, key=str.casefold)
        display = (item.display_name.strip() or (names[0] if names else item.identity))[:200]
        if account is None:
            account = Account(
                tenant_id=agent.tenant_id, customer_id=agent.customer_id, kind=item.kind,
                display_name=display, source_type=kind, agent_id=agent.id,
                directory=directory, identity=item.identity.strip()[:500], login_names=names,
                enabled=item.enabled, state="present", last_sync_id=sync_id,
                last_reported_at=now, created_at=now, updated_at=now)
            session.add(account)
            created += 1
            if row.events < MAX_ACCOUNT_EVENTS_PER_SYNC:
                await session.flush()  # the event names the new account's id
                await _log(session, agent, row, account, "account.created", _audited(None),
                           actor)
            continue
        before = _audited(account)
        manual = set(account.manual_fields or ())
        wanted: dict[str, Any] = {"state": "present", "enabled": item.enabled,
                                  "login_names": names, "source_type": kind}
        if "kind" not in manual:
            wanted["kind"] = item.kind
        if "display_name" not in manual:
            wanted["display_name"] = display
        if all(getattr(account, k) == v for k, v in wanted.items()):
            unchanged.append(account.id)
            continue
        for attr, value in wanted.items():
            setattr(account, attr, value)
        account.last_sync_id, account.last_reported_at, account.updated_at = sync_id, now, now
        if account_changes(before, _audited(account)):
            updated += 1
            await _log(session, agent, row, account, "account.updated", before, actor)
    if unchanged:
        await session.execute(update(Account).where(Account.id.in_(unchanged))
                              .values(last_sync_id=sync_id, last_reported_at=now)
                              .execution_options(synchronize_session=False))
    return created, updated


async def _mark_gone(session: AsyncSession, agent: Agent, row: DirectorySync, actor: Actor,
                     sync_id: str, directory: str, now: datetime) -> int:
    # Only accounts a sync once reported: one a person added for this directory and no sync
    # has seen (e.g. an account the listing skips) is not "gone".
    missing = (await session.scalars(select(Account).where(
        Account.tenant_id == agent.tenant_id, Account.agent_id == agent.id,
        Account.directory == directory, Account.state == "present",
        Account.last_sync_id.is_not(None), Account.last_sync_id != sync_id))).all()
    for account in missing:
        before = _audited(account)
        account.state, account.updated_at = "gone", now
        await _log(session, agent, row, account, "account.updated", before, actor)
    return len(missing)


def _summary_event(session: AsyncSession, agent: Agent, row: DirectorySync, gone: int) -> None:
    summary = (f"Agent {agent.name} reported {row.reported} accounts from {row.directory}: "
               f"{row.created} new, {row.updated} changed, {gone} gone")
    changes = row.created + row.updated + gone
    if changes > row.events:
        summary += (f" (the first {row.events} changes are logged one by one, the other "
                    f"{changes - row.events} only counted here)")
    add_event(session, agent.tenant_id, NewEvent(
        type="agent.synced", severity="info", summary=summary,
        details={"agent_id": agent.id, "directory": row.directory, "kind": row.kind,
                 "accounts": row.reported, "created": row.created, "updated": row.updated,
                 "gone": gone, "actor": f"agent {agent.name}"}))


# ------------------------------------------------------------------------- sync requests
async def request_sync(session: AsyncSession, tenant_id: int, agent_id: int) -> Agent:
    """Ask the agent to sync its directories now (it picks the request up at once).

    Raises:
        ApiError: 404 for another tenant's agent, 409 for a revoked one.
    """
    agent = await get_agent(session, tenant_id, agent_id)
    if agent.revoked_at is not None:
        raise ApiError(409, "agent_revoked",
                       f"Agent {agent.name} was revoked; it no longer reports accounts.")
    agent.sync_requested_at = utcnow()
    await session.commit()
    return agent


async def take_sync_request(session: AsyncSession, agent_id: int) -> datetime | None:
    """The pending sync request of the agent, cleared so only one poll delivers it."""
    requested = (await session.scalars(select(Agent.sync_requested_at).where(
        Agent.id == agent_id))).first()
    if requested is None:
        return None
    claimed = await session.execute(
        update(Agent).where(Agent.id == agent_id, Agent.sync_requested_at == requested)
        .values(sync_requested_at=None).execution_options(synchronize_session=False))
    await session.commit()
    return requested if getattr(claimed, "rowcount", 0) == 1 else None


# ----------------------------------------------------------------------------- read side
async def directory_status(session: AsyncSession, tenant_id: int
                           ) -> dict[int, dict[str, dict[str, Any]]]:
    """Per agent and directory: ``{last_sync_at, accounts, gone, last_error}``."""
    status: dict[int, dict[str, dict[str, Any]]] = {}

    def entry(agent_id: int, directory: str) -> dict[str, Any]:
        return status.setdefault(agent_id, {}).setdefault(directory, {
            "last_sync_at": None, "accounts": 0, "gone": 0, "last_error": None})

    for row in (await session.scalars(select(DirectorySync).where(
            DirectorySync.tenant_id == tenant_id))).all():
        item = entry(row.agent_id, row.directory)
        item["last_sync_at"] = rfc3339(row.last_sync_at)
        item["last_error"] = row.last_error
        item["kind"] = row.kind
    counts = await session.execute(
        select(Account.agent_id, Account.directory, Account.state, func.count())
        .where(Account.tenant_id == tenant_id, Account.agent_id.is_not(None))
        .group_by(Account.agent_id, Account.directory, Account.state))
    for agent_id, directory, state, count in counts.all():
        if agent_id is None:
            continue
        item = entry(agent_id, directory)
        item["gone" if state == "gone" else "accounts"] += count
    return status


def directories_with_status(agent: Agent, status: dict[int, dict[str, dict[str, Any]]]
                            ) -> list[dict[str, Any]]:
    """The agent's heartbeat directories, each with its sync status (docs/api.md)."""
    known = status.get(agent.id, {})
    listed: list[dict[str, Any]] = []
    for directory in agent.directories or []:
        name = str(directory.get("name", ""))
        item = known.get(name, {})
        listed.append({"name": name, "kind": directory.get("kind") or item.get("kind") or "",
                       "last_sync_at": item.get("last_sync_at"),
                       "accounts": item.get("accounts", 0), "gone": item.get("gone", 0),
                       "last_error": item.get("last_error")})
    return listed


def gone_reason(account: Account, agent_name: str | None) -> str:
    """Why a reset of a gone account cannot be applied, in one sentence."""
    where = account.directory or "its directory"
    reporter = f"agent {agent_name}" if agent_name else "its agent"
    when = (account.last_reported_at.strftime("%Y-%m-%d %H:%M UTC")
            if account.last_reported_at else "an earlier sync")
    return (f"Account {account.display_name} no longer exists in {where}; it was last "
            f"reported by {reporter} on {when}. Match the IT Glue password to the account "
            "that replaced it, or restore the account in the directory.")
