"""Routes: accounts (the source side of a reset) and automatch with IT Glue passwords."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from qp_tenant.api.deps import PrincipalDep, SessionDep, StateDep
from qp_tenant.domain import accounts
from qp_tenant.domain.auth import Principal
from qp_tenant.state import AppState

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


class SourceBody(BaseModel):
    type: Literal["openldap", "active_directory", "local", "entra_id"] | None = None
    agent_id: int | None = None
    directory: str | None = Field(None, max_length=200)
    identity: str | None = Field(None, max_length=500)


class AccountBody(BaseModel):
    customer_id: int
    kind: Literal["administrator", "service", "end_user"]
    display_name: str = Field(max_length=200)
    source: SourceBody
    itglue_password_id: str | int | None = None


class AccountPatch(BaseModel):
    customer_id: int | None = None
    kind: Literal["administrator", "service", "end_user"] | None = None
    display_name: str | None = Field(None, max_length=200)
    source: SourceBody | None = None
    itglue_password_id: str | int | None = None


class AutomatchBody(BaseModel):
    customer_id: int


def _actor(principal: Principal) -> accounts.Actor:
    return accounts.Actor(principal.user.email, principal.user.id)


def _changed(state: AppState, tenant_id: int) -> None:
    """Wake the event stream, and the mail loop for a source-change alert."""
    state.broker.notify(tenant_id)
    if state.alerts is not None:
        state.alerts.wake()


@router.get("")
async def list_accounts(principal: PrincipalDep, session: SessionDep,
                        customer_id: int | None = None) -> dict[str, Any]:
    rows = await accounts.list_accounts(session, principal.tenant.id, customer_id)
    return {"accounts": [accounts.account_to_dict(a) for a in rows]}


@router.post("", status_code=201)
async def create_account(body: AccountBody, principal: PrincipalDep,
                         session: SessionDep, state: StateDep) -> dict[str, Any]:
    account = await accounts.create_account(session, principal.tenant.id,
                                            body.model_dump(exclude_unset=True),
                                            _actor(principal))
    _changed(state, principal.tenant.id)
    return accounts.account_to_dict(account)


@router.post("/automatch")
async def automatch(body: AutomatchBody, principal: PrincipalDep, state: StateDep,
                    session: SessionDep) -> dict[str, Any]:
    """Match unmatched accounts of a customer to IT Glue passwords with the same username."""
    client = await accounts.itglue_client(session, state.crypto, state.http, principal.tenant.id,
                                          state.settings.itglue_base_url)
    matched = await accounts.automatch(session, principal.tenant.id, body.customer_id, client,
                                       _actor(principal))
    _changed(state, principal.tenant.id)
    return {"matched": [accounts.account_to_dict(a) for a in matched]}


@router.get("/{account_id}")
async def get_account(account_id: int, principal: PrincipalDep,
                      session: SessionDep) -> dict[str, Any]:
    return accounts.account_to_dict(
        await accounts.get_account(session, principal.tenant.id, account_id))


@router.patch("/{account_id}")
async def patch_account(account_id: int, body: AccountPatch, principal: PrincipalDep,
                        session: SessionDep, state: StateDep) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if "source" in changes and changes["source"] is None:
        changes.pop("source")
    account = await accounts.update_account(session, principal.tenant.id, account_id, changes,
                                            _actor(principal))
    _changed(state, principal.tenant.id)
    return accounts.account_to_dict(account)


@router.delete("/{account_id}", status_code=204)
async def delete_account(account_id: int, principal: PrincipalDep,
                         session: SessionDep, state: StateDep) -> Response:
    await accounts.delete_account(session, principal.tenant.id, account_id, _actor(principal))
    _changed(state, principal.tenant.id)
    return Response(status_code=204)
