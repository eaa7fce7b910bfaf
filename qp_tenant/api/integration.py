"""Routes: the IT Glue integration and its workflow trigger token."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.api.bounds import Body, documented_pattern
from qp_tenant.api.deps import AdminDep, SessionDep, StateDep, TechnicianDep, ViewerDep
from qp_tenant.api.responses import (
    ROLE,
    USER,
    GeneratedToken,
    IntegrationOut,
    RevealedUrl,
    answers,
    errors,
)
from qp_tenant.domain import integration, tokens, watcher
from qp_tenant.models import utcnow
from qp_tenant.state import AppState

router = APIRouter(prefix="/api/v1/integrations/itglue")


API_KEY_PATTERN = r"^[ \t]*[!-~]+[ \t]*$"


class ConnectBody(Body):
    region: Literal["us", "eu", "au"]
    api_key: Annotated[str, documented_pattern(API_KEY_PATTERN)] = Field(max_length=512)

    @field_validator("api_key")
    @classmethod
    def _printable(cls, value: str) -> str:
        # It becomes an HTTP header to IT Glue: anything but visible ASCII cannot be sent
        # (and is no IT Glue key), so it is refused here rather than failing there.
        if value.strip() and not re.fullmatch(API_KEY_PATTERN, value):
            raise ValueError("An IT Glue API key is letters, digits and punctuation "
                             "(ITG.…); copy it again from IT Glue.")
        return value


class GenerateBody(Body):
    grace_hours: int = Field(0, ge=0, le=tokens.MAX_GRACE_HOURS)


async def _view(state: AppState, session: AsyncSession, tenant_id: int) -> dict[str, Any]:
    view = await integration.integration_view(session, tenant_id, state.public_url)
    view["watcher"] = await watcher.watcher_view(
        session, tenant_id, state.settings.itglue_watch_seconds, view["connected"])
    return view


@router.get("", response_model=None, responses=answers(IntegrationOut, *USER))
async def get_integration(principal: ViewerDep, state: StateDep,
                          session: SessionDep) -> dict[str, Any]:
    return await _view(state, session, principal.tenant.id)


@router.put("", response_model=None, responses=answers(IntegrationOut, *ROLE, 422, 502))
async def put_integration(body: ConnectBody, principal: AdminDep, state: StateDep,
                          session: SessionDep) -> dict[str, Any]:
    try:
        await integration.connect(session, state.crypto, state.http, principal.tenant.id,
                                  region=body.region, api_key=body.api_key,
                                  base_url_override=state.settings.itglue_base_url)
    finally:
        state.broker.notify(principal.tenant.id)
    return await _view(state, session, principal.tenant.id)


@router.delete("", status_code=204, responses=errors(*ROLE))
async def delete_integration(principal: AdminDep, state: StateDep,
                             session: SessionDep) -> Response:
    await integration.disconnect(session, principal.tenant.id)
    state.broker.notify(principal.tenant.id)
    return Response(status_code=204)


@router.post("/workflow-token", status_code=201, response_model=None,
             responses=answers(GeneratedToken, *ROLE, 422, status=201))
async def generate(principal: AdminDep, state: StateDep, session: SessionDep,
                   body: GenerateBody | None = None) -> dict[str, Any]:
    body = body or GenerateBody()
    made = await tokens.generate_token(
        session, state.crypto, principal.tenant.id,
        lifetime_days=state.settings.token_lifetime_days, grace_hours=body.grace_hours,
        user_id=principal.user.id,
    )
    state.broker.notify(principal.tenant.id)
    return {"token": tokens.token_to_dict(made.token, state.public_url, utcnow()),
            "url": tokens.webhook_url(state.public_url, made.plaintext)}


@router.post("/workflow-token/reveal", response_model=None,
             responses=answers(RevealedUrl, *ROLE, 404))
async def reveal(principal: TechnicianDep, state: StateDep, session: SessionDep) -> dict[str, Any]:
    token, plaintext = await tokens.reveal_token(session, state.crypto, principal.tenant.id,
                                                 principal.user.id, principal.user.email)
    state.broker.notify(principal.tenant.id)
    return {"url": tokens.webhook_url(state.public_url, plaintext)}


@router.delete("/workflow-token", status_code=204, responses=errors(*ROLE))
async def revoke(principal: AdminDep, state: StateDep, session: SessionDep) -> Response:
    await tokens.revoke_tokens(session, principal.tenant.id, principal.user.email)
    state.broker.notify(principal.tenant.id)
    return Response(status_code=204)
