"""Routes: accounts (the source side of a reset) and automatch with IT Glue passwords."""

from __future__ import annotations

from typing import Any, Literal, get_args

from fastapi import APIRouter, Response
from pydantic import Field

from qp_tenant.api.bounds import Body, ItGlueId, NonBlank, RowId
from qp_tenant.api.deps import (
    AdminDep,
    SessionDep,
    StateDep,
    TechnicianDep,
    ViewerDep,
    ensure_role,
)
from qp_tenant.api.responses import (
    ROLE,
    USER,
    AccountList,
    AccountOut,
    Matched,
    Retry,
    answers,
    errors,
)
from qp_tenant.domain import accounts, itglue, matching
from qp_tenant.domain.auth import Principal
from qp_tenant.errors import ApiError
from qp_tenant.models import Account
from qp_tenant.state import AppState

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


class SourceBody(Body):
    type: Literal["openldap", "active_directory", "local", "entra_id"] | None = None
    agent_id: RowId | None = None
    directory: str | None = Field(None, max_length=200)
    identity: str | None = Field(None, max_length=500)


# SourceBody's type without its None: a new account must name its source type.
_SOURCE_TYPE = get_args(SourceBody.model_fields["type"].annotation)[0]


class NewSourceBody(SourceBody):
    type: _SOURCE_TYPE  # type: ignore[valid-type]
    identity: NonBlank = Field(max_length=500)


class AccountBody(Body):
    customer_id: RowId
    kind: Literal["administrator", "service", "end_user"]
    display_name: NonBlank = Field(max_length=200)
    source: NewSourceBody
    itglue_password_id: ItGlueId | None = None
    itglue_password_name: str | None = Field(None, max_length=255)


class AccountPatch(Body):
    customer_id: RowId | None = None
    kind: Literal["administrator", "service", "end_user"] | None = None
    display_name: NonBlank | None = Field(None, max_length=200)
    source: SourceBody | None = None
    itglue_password_id: ItGlueId | None = None
    itglue_password_name: str | None = Field(None, max_length=255)


class AutomatchBody(Body):
    customer_id: RowId


def _actor(principal: Principal) -> accounts.Actor:
    return accounts.Actor(principal.user.email, principal.user.id)


async def _with_password_name(changes: dict[str, Any], principal: Principal,
                              session: SessionDep, state: AppState,
                              customer_id: int) -> dict[str, Any]:
    return await matching.with_password_name(
        session, state.crypto, state.http, state.settings.itglue_base_url,
        principal.tenant.id, customer_id, changes)


def _changed(state: AppState, tenant_id: int) -> None:
    """Wake the event stream, and the mail loop for a source-change alert."""
    state.broker.notify(tenant_id)
    if state.alerts is not None:
        state.alerts.wake()


@router.get("", response_model=None, responses=answers(AccountList, *USER, 422))
async def list_accounts(principal: ViewerDep, session: SessionDep,
                        customer_id: RowId | None = None, agent_id: RowId | None = None,
                        state: Literal["present", "gone"] | None = None,
                        kind: Literal["administrator", "service", "end_user"] | None = None,
                        matched: bool | None = None) -> dict[str, Any]:
    """The tenant's accounts; each filter given narrows the list."""
    rows = await accounts.list_accounts(session, principal.tenant.id, customer_id,
                                        agent_id=agent_id, state=state, kind=kind,
                                        matched=matched)
    return {"accounts": [accounts.account_to_dict(a) for a in rows]}


# Creating an account sets its source: what a reset writes to, so an administrator's call.
@router.post("", status_code=201, response_model=None,
             responses=answers(AccountOut, *ROLE, 404, 409, 422, status=201))
async def create_account(body: AccountBody, principal: AdminDep,
                         session: SessionDep, state: StateDep) -> dict[str, Any]:
    changes = await _with_password_name(body.model_dump(exclude_unset=True), principal,
                                        session, state, body.customer_id)
    account = await accounts.create_account(session, principal.tenant.id, changes,
                                            _actor(principal))
    _changed(state, principal.tenant.id)
    return accounts.account_to_dict(account)


@router.post("/automatch", response_model=None,
             responses=answers(Matched, *ROLE, 404, 409, 422, 502))
async def automatch(body: AutomatchBody, principal: TechnicianDep, state: StateDep,
                    session: SessionDep) -> dict[str, Any]:
    """Match unmatched accounts of a customer to IT Glue passwords with the same username;
    report what stayed unmatched on both sides, with the reason."""
    client = await itglue.tenant_client(session, state.crypto, state.http, principal.tenant.id,
                                        state.settings.itglue_base_url)
    result = await accounts.automatch(session, principal.tenant.id, body.customer_id, client,
                                      _actor(principal))
    _changed(state, principal.tenant.id)
    return {"matched": [accounts.account_to_dict(a) for a in result.matched],
            "unmatched_accounts": result.unmatched_accounts,
            "unmatched_passwords": result.unmatched_passwords}


@router.get("/{account_id:int}", response_model=None,
            responses=answers(AccountOut, *USER, 404, 422))
async def get_account(account_id: RowId, principal: ViewerDep,
                      session: SessionDep) -> dict[str, Any]:
    return accounts.account_to_dict(
        await accounts.get_account(session, principal.tenant.id, account_id))


def source_changes(account: Account, changes: dict[str, Any]) -> list[str]:
    """The fields of a PATCH body that move the account to another source or customer.

    Fields sent with their current value change nothing, so a client that sends the whole
    account back with only its match changed still counts as a technician's edit.
    """
    changed = []
    if "customer_id" in changes and changes["customer_id"] != account.customer_id:
        changed.append("customer_id")
    source = changes.get("source") or {}
    current = {"type": account.source_type, "agent_id": account.agent_id,
               "directory": (account.directory or "").strip(),
               "identity": (account.identity or "").strip()}
    for key, value in source.items():
        if isinstance(value, str):
            value = value.strip()
        if value != current.get(key):
            changed.append(f"source.{key}")
    return changed


def without_nulls(changes: dict[str, Any]) -> dict[str, Any]:
    """A PATCH's ``null`` leaves a field as it is, except where null is a value: no match
    (``itglue_password_id``), no agent (``source.agent_id``), no directory."""
    kept = {k: v for k, v in changes.items() if v is not None or k == "itglue_password_id"}
    if "source" in kept:
        kept["source"] = {k: v for k, v in kept["source"].items()
                          if v is not None or k in ("agent_id", "directory")}
    return kept


@router.patch("/{account_id:int}", response_model=None,
              responses=answers(AccountOut, *ROLE, 404, 409, 422))
async def patch_account(account_id: RowId, body: AccountPatch, principal: TechnicianDep,
                        session: SessionDep, state: StateDep) -> dict[str, Any]:
    """A technician changes the match (``itglue_password_id``), ``display_name`` or ``kind``;
    changing the source or the customer takes an administrator."""
    changes = without_nulls(body.model_dump(exclude_unset=True))
    current = await accounts.get_account(session, principal.tenant.id, account_id)
    moved = source_changes(current, changes)
    if moved:
        ensure_role(principal, "admin", fields=moved)
    if changes.get("itglue_password_id") is not None and str(
            changes["itglue_password_id"]) == current.itglue_password_id:
        changes.setdefault("itglue_password_name", current.itglue_password_name)
    changes = await _with_password_name(changes, principal, session, state,
                                        changes.get("customer_id", current.customer_id))
    account = await accounts.update_account(session, principal.tenant.id, account_id, changes,
                                            _actor(principal))
    _changed(state, principal.tenant.id)
    return accounts.account_to_dict(account)


@router.post("/{account_id:int}/reset", status_code=202, response_model=None,
             responses=answers(Retry, *ROLE, 404, 409, 422, 503, status=202))
async def reset_account(account_id: RowId, principal: TechnicianDep, state: StateDep,
                        session: SessionDep) -> dict[str, Any]:
    """"Reset again from IT Glue": run the reset pipeline for the account's matched password
    with the value IT Glue holds now (after a failed reset, even if it is the last applied)."""
    if state.pipeline is None:
        raise ApiError(503, "pipeline_unavailable", "The reset pipeline is not running.")
    event_id, job_id = await state.pipeline.retry_account(session, principal.tenant.id,
                                                          account_id, principal.user.email)
    return {"event_id": event_id, "job_id": job_id}


@router.delete("/{account_id:int}", status_code=204, responses=errors(*ROLE, 404, 422))
async def delete_account(account_id: RowId, principal: AdminDep,
                         session: SessionDep, state: StateDep) -> Response:
    await accounts.delete_account(session, principal.tenant.id, account_id, _actor(principal))
    _changed(state, principal.tenant.id)
    return Response(status_code=204)
