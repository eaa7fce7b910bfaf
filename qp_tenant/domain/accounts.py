"""Customers and their accounts, matched to IT Glue passwords by hand or by automatch.

Customers come from IT Glue organizations (import, idempotent) or are created by hand.
Automatch pairs an account with the IT Glue password whose username is the account's
identity, sAMAccountName or userPrincipalName, and whose category (if any) names a source of
the same type (docs/api.md, accounts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.domain import alerts
from qp_tenant.domain.events import NewEvent, add_event, rfc3339
from qp_tenant.domain.itglue import api_error as itglue_api_error
from qp_tenant.errors import ApiError, not_found
from qp_tenant.itglue.client import ITGlueClient, ITGlueError, Password
from qp_tenant.models import Account, Agent, Customer, Tenant, utcnow

ACCOUNT_KINDS = ("administrator", "service", "end_user")
SOURCE_TYPES = ("openldap", "active_directory", "local", "entra_id")
# Sources the tenant resets itself (Microsoft Graph): no agent, no directory.
AGENTLESS_SOURCES = ("entra_id",)

# IT Glue password category → the source types it can name (docs/microsoft365.md).
CATEGORY_SOURCES: dict[str, tuple[str, ...]] = {
    "active directory": ("active_directory", "openldap"),
    "office 365": ("entra_id",),
    "microsoft 365": ("entra_id",),
    "azure ad": ("entra_id",),
    "azure active directory": ("entra_id",),
    "entra id": ("entra_id",),
    "cloud": ("entra_id",),
    "local account": ("local",),
}
CLOUD_CATEGORIES = tuple(name for name, types in CATEGORY_SOURCES.items()
                         if types == ("entra_id",))


# ------------------------------------------------------------------------------ customers
def customer_to_dict(customer: Customer) -> dict[str, Any]:
    return {"id": customer.id, "name": customer.name,
            "itglue_organization_id": customer.itglue_organization_id,
            "created_at": rfc3339(customer.created_at)}


async def list_customers(session: AsyncSession, tenant_id: int) -> list[Customer]:
    stmt = select(Customer).where(Customer.tenant_id == tenant_id).order_by(Customer.name,
                                                                            Customer.id)
    return list((await session.scalars(stmt)).all())


def _itglue_number(value: Any, code: str, message: str) -> str | None:
    """An IT Glue id as text of digits (None when left out); a 422 ``code`` otherwise."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.isdigit():
        raise ApiError(422, code, message)
    return text


def _org_id(value: Any) -> str | None:
    return _itglue_number(
        value, "invalid_itglue_organization_id",
        "itglue_organization_id must be the number of an IT Glue organization.")


async def create_customer(session: AsyncSession, tenant_id: int, *, name: str,
                          itglue_organization_id: Any = None) -> Customer:
    name = (name or "").strip()
    if not name:
        raise ApiError(422, "invalid_customer_name", "Give the customer a name.")
    org_id = _org_id(itglue_organization_id)
    if org_id is not None:
        taken = (await session.scalars(select(Customer).where(
            Customer.tenant_id == tenant_id, Customer.itglue_organization_id == org_id
        ))).first()
        if taken is not None:
            raise ApiError(409, "itglue_organization_already_linked",
                           f"IT Glue organization {org_id} is already linked to customer "
                           f"{taken.name}.")
    customer = Customer(tenant_id=tenant_id, name=name[:200], itglue_organization_id=org_id)
    session.add(customer)
    await session.commit()
    return customer


async def get_customer(session: AsyncSession, tenant_id: int, customer_id: int) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.tenant_id != tenant_id:
        raise not_found("That customer")
    return customer


async def import_itglue(session: AsyncSession, tenant_id: int,
                        client: ITGlueClient) -> dict[str, int]:
    """Every IT Glue organization becomes (or is linked to) a customer; idempotent."""
    try:
        organizations = await client.list_organizations()
    except ITGlueError as exc:
        raise itglue_api_error(exc) from None
    customers = await list_customers(session, tenant_id)
    linked_orgs = {c.itglue_organization_id for c in customers if c.itglue_organization_id}
    unlinked = {c.name.strip().casefold(): c for c in customers if not c.itglue_organization_id}
    created = linked = 0
    for org in organizations:
        if org.id in linked_orgs:
            continue
        match = unlinked.pop(org.name.strip().casefold(), None)
        if match is not None:
            match.itglue_organization_id = org.id
            linked += 1
        else:
            session.add(Customer(tenant_id=tenant_id, name=(org.name or f"Organization {org.id}")
                                 [:200], itglue_organization_id=org.id))
            created += 1
        linked_orgs.add(org.id)
    await session.commit()
    return {"created": created, "linked": linked}


# ---------------------------------------------------------------------------------- audit
@dataclass(frozen=True)
class Actor:
    """Who changed an account: a signed-in user, or the tenant itself (``id`` None)."""

    email: str
    id: int | None = None


SYSTEM = Actor("the tenant service")

# Audited fields, named as the API names them, and the Account attribute behind each.
AUDITED_FIELDS = (
    ("customer_id", "customer_id"), ("kind", "kind"), ("display_name", "display_name"),
    ("source.type", "source_type"), ("source.agent_id", "agent_id"),
    ("source.directory", "directory"), ("source.identity", "identity"),
    ("itglue_password_id", "itglue_password_id"), ("state", "state"), ("enabled", "enabled"),
)
# A change of any of these on a matched account points an IT Glue password at another real
# account: it is mailed to the alert recipients, not only logged.
SOURCE_FIELDS = ("source.type", "source.agent_id", "source.directory", "source.identity")


def _audited(values: dict[str, Any] | Account | None) -> dict[str, Any]:
    if values is None:
        return {name: None for name, _ in AUDITED_FIELDS}
    if isinstance(values, Account):
        return {name: getattr(values, attr) for name, attr in AUDITED_FIELDS}
    return {name: values.get(attr) for name, attr in AUDITED_FIELDS}


def account_changes(before: dict[str, Any], after: dict[str, Any]
                    ) -> dict[str, dict[str, Any]]:
    """``{field: {old, new}}`` for every audited field that differs."""
    return {name: {"old": before[name], "new": after[name]}
            for name, _ in AUDITED_FIELDS if before[name] != after[name]}


def _source_text(values: dict[str, Any]) -> str:
    where = f"{values['source.type']} account {values['source.identity']!r}"
    if values["source.agent_id"] is not None:
        where += (f" (agent {values['source.agent_id']}, "
                  f"directory {values['source.directory'] or '—'})")
    return where


async def _log_account_change(session: AsyncSession, tenant_id: int, account: Account,
                              type_: str, before: dict[str, Any], after: dict[str, Any],
                              actor: Actor) -> None:
    """One ``account.*`` event in the caller's transaction, and the source-change mail."""
    changes = account_changes(before, after)
    if not changes:
        return
    name = account.display_name
    source_moved = type_ == "account.updated" and any(f in changes for f in SOURCE_FIELDS)
    matched = before["itglue_password_id"] or after["itglue_password_id"]
    if type_ == "account.created":
        summary = f"Account {name} created by {actor.email}"
    elif type_ == "account.deleted":
        summary = f"Account {name} deleted by {actor.email}"
    elif source_moved:
        summary = (f"{actor.email} changed the source of account {name} from "
                   f"{_source_text(before)} to {_source_text(after)}")
    else:
        summary = f"Account {name} changed by {actor.email}: {', '.join(changes)}"
    add_event(session, tenant_id, NewEvent(
        type=type_, severity="warning" if source_moved and matched else "info",
        summary=summary, account=name,
        details={"account_id": account.id, "changes": changes,
                 "actor": actor.email, "actor_id": actor.id},
    ))
    if source_moved and matched:
        await _mail_source_change(session, tenant_id, name, before, after, actor)


async def _mail_source_change(session: AsyncSession, tenant_id: int, name: str,
                              before: dict[str, Any], after: dict[str, Any],
                              actor: Actor) -> None:
    recipients = await alerts.recipients(session, tenant_id)
    if not recipients:
        return
    tenant = await session.get(Tenant, tenant_id)
    tenant_name = tenant.name if tenant is not None else "your tenant"
    password_id = after["itglue_password_id"] or before["itglue_password_id"]
    sentence = (f"{actor.email} changed the source of account {name} (matched to IT Glue "
                f"password {password_id}) from {_source_text(before)} to "
                f"{_source_text(after)}.")
    alerts.enqueue_mail(session, tenant_id, alerts.source_change_mail(tenant_name, name,
                                                                      sentence),
                        recipients, utcnow())


# ------------------------------------------------------------------------------- accounts
def account_to_dict(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "customer_id": account.customer_id,
        "kind": account.kind,
        "display_name": account.display_name,
        "source": {"type": account.source_type, "agent_id": account.agent_id,
                   "directory": account.directory, "identity": account.identity,
                   **({"object_id": account.external_id,
                       "on_premises_sync": bool(account.on_premises_sync)}
                      if account.source_type in AGENTLESS_SOURCES else {})},
        "state": account.state or "present",
        "enabled": account.enabled,
        "login_names": list(account.login_names or []),
        "last_reported_at": rfc3339(account.last_reported_at),
        "manual_fields": list(account.manual_fields or []),
        "itglue_password_id": account.itglue_password_id,
        "itglue_password_name": account.itglue_password_name,
        "last_reset_at": rfc3339(account.last_reset_at),
        "last_reset_by": account.last_reset_by,
        "last_result": account.last_result,
    }


async def list_accounts(session: AsyncSession, tenant_id: int,
                        customer_id: int | None = None, *, agent_id: int | None = None,
                        state: str | None = None, kind: str | None = None,
                        matched: bool | None = None) -> list[Account]:
    """The tenant's accounts, narrowed by any filter given."""
    stmt = select(Account).where(Account.tenant_id == tenant_id)
    if customer_id is not None:
        stmt = stmt.where(Account.customer_id == customer_id)
    if agent_id is not None:
        stmt = stmt.where(Account.agent_id == agent_id)
    if state is not None:
        stmt = stmt.where(Account.state == state)
    if kind is not None:
        stmt = stmt.where(Account.kind == kind)
    if matched is not None:
        stmt = stmt.where(Account.itglue_password_id.is_not(None) if matched
                          else Account.itglue_password_id.is_(None))
    return list((await session.scalars(stmt.order_by(Account.display_name, Account.id))).all())


async def get_account(session: AsyncSession, tenant_id: int, account_id: int) -> Account:
    account = await session.get(Account, account_id)
    if account is None or account.tenant_id != tenant_id:
        raise not_found("That account")
    return account


def _password_id(value: Any) -> str | None:
    return _itglue_number(
        value, "invalid_itglue_password_id",
        "itglue_password_id must be the number of an IT Glue password (the last part of its "
        "URL).")


def _password_name(password_id: str | None, body: dict[str, Any]) -> str | None:
    """The matched password's name as the body gives it (none without a match)."""
    name = (body.get("itglue_password_name") or "").strip()[:255]
    return name or None if password_id is not None else None


async def _check_password_free(session: AsyncSession, tenant_id: int, password_id: str | None,
                               account_id: int | None) -> None:
    if password_id is None:
        return
    stmt = select(Account).where(Account.tenant_id == tenant_id,
                                 Account.itglue_password_id == password_id)
    if account_id is not None:
        stmt = stmt.where(Account.id != account_id)
    other = (await session.scalars(stmt.limit(1))).first()
    if other is not None:
        raise ApiError(409, "itglue_password_already_matched",
                       f"IT Glue password {password_id} is already matched to account "
                       f"{other.display_name}; one IT Glue password resets one account.")


async def _validate(session: AsyncSession, tenant_id: int, values: dict[str, Any]) -> None:
    if values["kind"] not in ACCOUNT_KINDS:
        raise ApiError(422, "invalid_account_kind",
                       f"The account kind must be one of: {', '.join(ACCOUNT_KINDS)}.")
    if not values["display_name"]:
        raise ApiError(422, "invalid_display_name", "Give the account a display name.")
    if values["source_type"] not in SOURCE_TYPES:
        raise ApiError(422, "invalid_source_type",
                       f"The source type must be one of: {', '.join(SOURCE_TYPES)}.")
    if not values["identity"]:
        raise ApiError(422, "invalid_identity",
                       "Give the account's identity: its DN, sAMAccountName or "
                       "userPrincipalName, or the local user name.")
    await get_customer(session, tenant_id, values["customer_id"])
    if values["source_type"] in AGENTLESS_SOURCES:
        if values["agent_id"] is not None:
            raise ApiError(422, "agent_not_used",
                           "A Microsoft 365 (entra_id) account is reset by the tenant through "
                           "Microsoft Graph, not by an agent: leave agent_id empty.")
        values["directory"] = ""
    elif values["agent_id"] is not None:
        agent = await session.get(Agent, values["agent_id"])
        if agent is None or agent.tenant_id != tenant_id or agent.revoked_at is not None:
            raise ApiError(422, "unknown_agent",
                           f"There is no agent {values['agent_id']} in this tenant.")
        if not values["directory"]:
            raise ApiError(422, "invalid_directory",
                           "Name the directory of the agent's configuration that holds this "
                           "account.")


async def create_account(session: AsyncSession, tenant_id: int, body: dict[str, Any],
                         actor: Actor = SYSTEM) -> Account:
    source = body.get("source") or {}
    values = {
        "customer_id": body.get("customer_id"),
        "kind": body.get("kind"),
        "display_name": (body.get("display_name") or "").strip()[:200],
        "source_type": source.get("type"),
        "agent_id": source.get("agent_id"),
        "directory": (source.get("directory") or "").strip()[:200],
        "identity": (source.get("identity") or "").strip()[:500],
        "itglue_password_id": _password_id(body.get("itglue_password_id")),
    }
    values["itglue_password_name"] = _password_name(values["itglue_password_id"], body)
    await _validate(session, tenant_id, values)
    await _check_password_free(session, tenant_id, values["itglue_password_id"], None)
    # A person chose the kind and the name: a directory sync reporting the same identity
    # later leaves them alone.
    account = Account(tenant_id=tenant_id, manual_fields=["display_name", "kind"], **values)
    session.add(account)
    await session.flush()
    await _log_account_change(session, tenant_id, account, "account.created", _audited(None),
                              _audited(values), actor)
    await session.commit()
    return account


async def update_account(session: AsyncSession, tenant_id: int, account_id: int,
                         body: dict[str, Any], actor: Actor = SYSTEM) -> Account:
    account = await get_account(session, tenant_id, account_id)
    source = body.get("source") or {}
    values = {
        "customer_id": body.get("customer_id", account.customer_id),
        "kind": body.get("kind", account.kind),
        "display_name": (body.get("display_name", account.display_name) or "").strip()[:200],
        "source_type": source.get("type", account.source_type),
        "agent_id": source.get("agent_id", account.agent_id),
        "directory": (source.get("directory", account.directory) or "").strip()[:200],
        "identity": (source.get("identity", account.identity) or "").strip()[:500],
        "itglue_password_id": (_password_id(body["itglue_password_id"])
                               if "itglue_password_id" in body
                               else account.itglue_password_id),
    }
    values["itglue_password_name"] = (_password_name(values["itglue_password_id"], body)
                                      if "itglue_password_id" in body
                                      else account.itglue_password_name)
    await _validate(session, tenant_id, values)
    await _check_password_free(session, tenant_id, values["itglue_password_id"], account.id)
    # last_applied_hash survives a re-match or a new source on purpose: it is keyed by the
    # account, and clearing it would let a replayed old trigger apply its value again.
    before = _audited(account)
    overridden = {f for f in ("kind", "display_name") if values[f] != getattr(account, f)}
    if overridden:  # set by a person: later directory syncs keep the person's value
        account.manual_fields = sorted(set(account.manual_fields or ()) | overridden)
    for key, value in values.items():
        setattr(account, key, value)
    account.updated_at = utcnow()
    await _log_account_change(session, tenant_id, account, "account.updated", before,
                              _audited(account), actor)
    await session.commit()
    return account


async def delete_account(session: AsyncSession, tenant_id: int, account_id: int,
                         actor: Actor = SYSTEM) -> None:
    account = await get_account(session, tenant_id, account_id)
    await _log_account_change(session, tenant_id, account, "account.deleted",
                              _audited(account), _audited(None), actor)
    await session.delete(account)
    await session.commit()


# ------------------------------------------------------------------------------ automatch
def identity_keys(identity: str) -> set[str]:
    """The names an account answers to: as given, a DN's first RDN value, DOMAIN\\user's user."""
    text = identity.strip()
    keys = {text}
    if "=" in text and "," in text:  # a DN: uid=jdoe,ou=people,… or CN=Jane Doe,…
        first = text.split(",", 1)[0]
        keys.add(first.split("=", 1)[1].strip())
    if "\\" in text:
        keys.add(text.rsplit("\\", 1)[1])
    return {k.casefold() for k in keys if k}


def category_allows(category: str | None, source_type: str) -> bool:
    if not category:
        return True
    allowed = CATEGORY_SOURCES.get(category.strip().casefold())
    return allowed is None or source_type in allowed


def username_keys(username: str) -> set[str]:
    """The names an IT Glue username stands for: as written, and ``DOMAIN\\user``'s user."""
    text = username.strip()
    keys = {text}
    if "\\" in text:
        keys.add(text.rsplit("\\", 1)[1].strip())
    return {k.casefold() for k in keys if k}


def account_keys(account: Account) -> set[str]:
    """The names automatch compares: the login names a directory sync reported
    (sAMAccountName, userPrincipalName, uid, local user name), else the identity's."""
    if account.login_names:
        keys: set[str] = set()
        for name in account.login_names:
            keys |= username_keys(name)
        return keys
    return identity_keys(account.identity)


@dataclass
class AutomatchResult:
    """What automatch paired, and why the rest of each side was left alone."""

    matched: list[Account]
    unmatched_accounts: list[dict[str, Any]]
    unmatched_passwords: list[dict[str, Any]]


def _names(items: list[Account]) -> str:
    shown = ", ".join(a.display_name for a in items[:5])
    return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def _pw_names(items: list[Password]) -> str:
    shown = ", ".join(f"{p.name} (#{p.id})" for p in items[:5])
    return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def pair_accounts(accounts: list[Account], passwords: list[Password],
                  taken: set[str]) -> tuple[list[tuple[Account, Password]],
                                            list[dict[str, Any]], list[dict[str, Any]]]:
    """Pair unmatched accounts with free IT Glue passwords by user name, never guessing.

    A pair is made only when the account's names fit exactly one password and that
    password's username fits exactly that one account. Gone accounts are not paired.
    Returns the pairs, and the unmatched accounts and passwords with a reason each.
    """
    free = [p for p in passwords if p.id not in taken]
    usable = [p for p in free if p.username and p.username.strip() and not p.archived]
    by_key: dict[str, list[Password]] = {}
    for password in usable:
        for key in username_keys(password.username or ""):
            by_key.setdefault(key, []).append(password)
    candidates: dict[int, list[Password]] = {}
    wrong_category: dict[str, list[Account]] = {}
    claims: dict[str, list[Account]] = {}
    unmatched_accounts: list[dict[str, Any]] = []
    for account in accounts:
        if account.state == "gone":
            unmatched_accounts.append({
                "id": account.id, "display_name": account.display_name,
                "reason": f"It no longer exists in {account.directory or 'its source'} "
                          "(gone), so it is not matched."})
            continue
        found: dict[str, Password] = {}
        for key in account_keys(account):
            for password in by_key.get(key, ()):
                if category_allows(password.category_name, account.source_type):
                    found[password.id] = password
                else:
                    wrong_category.setdefault(password.id, []).append(account)
        candidates[account.id] = list(found.values())
        for password in found.values():
            claims.setdefault(password.id, []).append(account)
    pairs: list[tuple[Account, Password]] = []
    for account in accounts:
        if account.id not in candidates:
            continue
        found_list = candidates[account.id]
        names = " or ".join(sorted(account_keys(account))) or "—"
        if len(found_list) == 1 and len(claims[found_list[0].id]) == 1:
            pairs.append((account, found_list[0]))
            continue
        if not found_list:
            reason = f"No free IT Glue password of the customer has the username {names}."
        elif len(found_list) > 1:
            reason = (f"Several IT Glue passwords have its username: {_pw_names(found_list)}; "
                      "match it by hand.")
        else:
            reason = (f"The username of IT Glue password {found_list[0].name} fits several "
                      f"accounts: {_names(claims[found_list[0].id])}; match it by hand.")
        unmatched_accounts.append({"id": account.id, "display_name": account.display_name,
                                   "reason": reason})
    paired = {p.id for _, p in pairs}
    unmatched_passwords: list[dict[str, Any]] = []
    for password in free:
        if password.id in paired:
            continue
        if password.archived:
            reason = "It is archived in IT Glue."
        elif not (password.username or "").strip():
            reason = "It has no username to compare."
        elif len(claims.get(password.id, ())) > 1:
            reason = (f"Its username fits several accounts: "
                      f"{_names(claims[password.id])}; match one by hand.")
        elif password.id in claims:
            reason = ("Another IT Glue password has the same username, so the account's "
                      "match is ambiguous; match it by hand.")
        elif password.id in wrong_category:
            reason = (f"Its category {password.category_name!r} names another kind of source "
                      f"than the account {wrong_category[password.id][0].display_name}.")
        else:
            reason = "No unmatched account answers to its username."
        unmatched_passwords.append({"id": password.id, "name": password.name,
                                    "username": password.username, "reason": reason})
    return pairs, unmatched_accounts, unmatched_passwords


async def automatch(session: AsyncSession, tenant_id: int, customer_id: int,
                    client: ITGlueClient, actor: Actor = SYSTEM) -> AutomatchResult:
    """Match the customer's unmatched accounts to its IT Glue passwords by username
    (docs/api.md, automatch): each pair is logged as ``account.updated``."""
    customer = await get_customer(session, tenant_id, customer_id)
    if not customer.itglue_organization_id:
        raise ApiError(422, "customer_not_linked",
                       f"Customer {customer.name} is not linked to an IT Glue organization; "
                       "import or link it first.")
    try:
        passwords = await client.list_passwords(customer.itglue_organization_id)
    except ITGlueError as exc:
        raise itglue_api_error(exc) from None
    taken = {pid for pid in (await session.scalars(select(Account.itglue_password_id).where(
        Account.tenant_id == tenant_id, Account.itglue_password_id.is_not(None)
    ))).all() if pid is not None}
    accounts = await list_accounts(session, tenant_id, customer_id, matched=False)
    pairs, unmatched_accounts, unmatched_passwords = pair_accounts(accounts, passwords, taken)
    matched: list[Account] = []
    now = utcnow()
    for account, password in pairs:
        before = _audited(account)
        account.itglue_password_id = password.id
        account.itglue_password_name = (password.name or "").strip()[:255] or None
        account.updated_at = now
        await _log_account_change(session, tenant_id, account, "account.updated", before,
                                  _audited(account), actor)
        matched.append(account)
    await session.commit()
    return AutomatchResult(matched, unmatched_accounts, unmatched_passwords)
