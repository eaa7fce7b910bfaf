"""Routes: a customer's link to its Microsoft 365 tenant, and the sync of its users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from qp_tenant.api.bounds import Body, NonBlank, RowId
from qp_tenant.api.deps import AdminDep, SessionDep, StateDep, TechnicianDep, ViewerDep
from qp_tenant.api.responses import ROLE, USER, answers, errors
from qp_tenant.domain import accounts, itglue, microsoft365
from qp_tenant.errors import ApiError
from qp_tenant.itglue.client import ITGlueError
from qp_tenant.state import AppState

router = APIRouter(prefix="/api/v1/customers/{customer_id:int}/microsoft365",
                   tags=["microsoft365"])
status_router = APIRouter(prefix="/api/v1/microsoft365", tags=["microsoft365"])


class LinkBody(Body):
    tenant_id: NonBlank = Field(min_length=1, max_length=64)
    client_id: NonBlank = Field(min_length=1, max_length=64)
    client_secret: NonBlank = Field(min_length=1, max_length=512, repr=False)


def _m365(state: AppState) -> microsoft365.Microsoft365:
    if state.m365 is None:
        raise ApiError(503, "m365_unavailable",
                       "Microsoft 365 is not available in this tenant process.")
    return state.m365


@router.get("", response_model=None, responses=answers(None, *USER, 404, 422))
async def get_link(customer_id: RowId, principal: ViewerDep,
                   session: SessionDep) -> dict[str, Any]:
    return await microsoft365.link_view(session, principal.tenant.id, customer_id)


@router.put("", response_model=None, responses=answers(None, *ROLE, 404, 422, 502, 503))
async def put_link(customer_id: RowId, body: LinkBody, principal: AdminDep, state: StateDep,
                   session: SessionDep) -> dict[str, Any]:
    """Verify the app registration with Microsoft (a token, one users read), then save it."""
    link = await microsoft365.put_link(
        session, state.crypto, _m365(state), principal.tenant.id, customer_id,
        directory_id=body.tenant_id, client_id=body.client_id,
        client_secret=body.client_secret, actor=principal.user.email)
    return microsoft365.link_to_dict(link)


@router.delete("", status_code=204, responses=errors(*ROLE, 404, 422))
async def delete_link(customer_id: RowId, principal: AdminDep, session: SessionDep) -> Response:
    await microsoft365.delete_link(session, principal.tenant.id, customer_id,
                                   principal.user.email)
    return Response(status_code=204)


@router.post("/sync", status_code=202, response_model=None,
             responses=answers(None, *ROLE, 404, 409, 422, 502, 503, status=202))
async def sync(customer_id: RowId, principal: TechnicianDep, state: StateDep,
               session: SessionDep) -> dict[str, Any]:
    """Read the tenant's users into accounts now, then automatch them with IT Glue passwords.

    Answers once the sync has run, with what it found; ``matched`` is null (and
    ``automatch_error`` says why) when IT Glue could not be asked.
    """
    tenant_id = principal.tenant.id
    # Read before the sync commits: the principal's rows expire with that commit.
    actor = accounts.Actor(principal.user.email, principal.user.id)
    result = await microsoft365.sync_users(session, state.crypto, _m365(state), tenant_id,
                                           customer_id)
    body: dict[str, Any] = {"status": "synced", **result.to_dict(), "matched": None,
                            "automatch_error": None}
    try:
        client = await itglue.tenant_client(session, state.crypto, state.http, tenant_id,
                                            state.settings.itglue_base_url)
        matched = await accounts.automatch(session, tenant_id, customer_id, client, actor)
        body["matched"] = len(matched.matched)
    except ApiError as exc:
        body["automatch_error"] = exc.message
    except ITGlueError as exc:
        body["automatch_error"] = str(exc)
    return body


@status_router.get("/prerequisites", response_model=None,
                   responses=answers(None, *USER, 409, 502))
async def prerequisites(principal: ViewerDep, state: StateDep,
                        session: SessionDep) -> dict[str, Any]:
    """Customers whose IT Glue passwords are in cloud categories, and whether each is linked
    (the setup checklist's "Microsoft 365 customers are linked" check)."""
    client = await itglue.tenant_client(session, state.crypto, state.http, principal.tenant.id,
                                        state.settings.itglue_base_url)
    try:
        rows = await microsoft365.prerequisites(session, principal.tenant.id, client)
    except ITGlueError as exc:
        raise itglue.api_error(exc) from None
    return {"customers": rows}
