"""Routes: customers, and importing them from IT Glue organizations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import Field

from qp_tenant.api.bounds import Body, ItGlueId, NonBlank, RowId
from qp_tenant.api.deps import SessionDep, StateDep, TechnicianDep, ViewerDep
from qp_tenant.api.responses import (
    ROLE,
    USER,
    CustomerList,
    CustomerOut,
    ImportResult,
    ITGluePasswordList,
    answers,
)
from qp_tenant.domain import accounts, itglue, matching

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


class CustomerBody(Body):
    name: NonBlank = Field(max_length=200)
    itglue_organization_id: ItGlueId | None = None


@router.get("", response_model=None, responses=answers(CustomerList, *USER))
async def list_customers(principal: ViewerDep, session: SessionDep) -> dict[str, Any]:
    rows = await accounts.list_customers(session, principal.tenant.id)
    return {"customers": [accounts.customer_to_dict(c) for c in rows]}


@router.post("", status_code=201, response_model=None,
             responses=answers(CustomerOut, *ROLE, 409, 422, status=201))
async def create_customer(body: CustomerBody, principal: TechnicianDep,
                          session: SessionDep) -> dict[str, Any]:
    customer = await accounts.create_customer(
        session, principal.tenant.id, name=body.name,
        itglue_organization_id=body.itglue_organization_id)
    return accounts.customer_to_dict(customer)


@router.post("/import-itglue", response_model=None,
             responses=answers(ImportResult, *ROLE, 409, 422, 502))
async def import_itglue(principal: TechnicianDep, state: StateDep,
                        session: SessionDep) -> dict[str, Any]:
    """Create a customer for every IT Glue organization, or link one of the same name."""
    client = await itglue.tenant_client(session, state.crypto, state.http, principal.tenant.id,
                                        state.settings.itglue_base_url)
    return await accounts.import_itglue(session, principal.tenant.id, client)


@router.get("/{customer_id:int}/itglue-passwords", response_model=None,
            responses=answers(ITGluePasswordList, *USER, 404, 409, 422, 502))
async def itglue_passwords(
        customer_id: RowId, principal: ViewerDep, state: StateDep, session: SessionDep,
        search: str | None = Query(None, max_length=matching.MAX_SEARCH,
                                   description="case-insensitive part of the name, "
                                               "username or category")) -> dict[str, Any]:
    """The customer's IT Glue passwords for the Match dialog: names, never values."""
    return await matching.customer_passwords(
        session, state.crypto, state.http, state.settings.itglue_base_url, principal.tenant.id,
        customer_id, search)
