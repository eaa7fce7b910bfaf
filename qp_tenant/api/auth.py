"""Routes: sign-in, refresh, sign-out, who am I, and the embedded first-run set-up."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Header, Request, Response
from pydantic import Field
from sqlalchemy import func, select

from qp_common.credentials import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH
from qp_tenant.api.bounds import Body
from qp_tenant.api.deps import SessionDep, StateDep, ViewerDep
from qp_tenant.api.responses import USER, Me, SetupStatus, SignedIn, answers, errors
from qp_tenant.domain import auth
from qp_tenant.domain.auth import tenant_to_dict, user_to_dict
from qp_tenant.errors import ApiError
from qp_tenant.models import User

router = APIRouter(prefix="/api/v1")


class LoginBody(Body):
    email: str = Field(min_length=1, max_length=MAX_EMAIL_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    tenant: str | None = None


class RefreshBody(Body):
    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutBody(Body):
    refresh_token: str | None = None


class SetupAdminBody(Body):
    email: str = Field(min_length=3, max_length=MAX_EMAIL_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    name: str = ""


@router.post("/auth/login", response_model=None,
             responses=answers(SignedIn, 401, 409, 422, 429))
async def login(body: LoginBody, request: Request, state: StateDep,
                session: SessionDep) -> dict[str, Any]:
    client_ip = request.client.host if request.client else "unknown"
    issued = await auth.login(session, state.throttle, state.token_policy, email=body.email,
                              password=body.password, tenant_slug=body.tenant,
                              client_ip=client_ip)
    await session.commit()
    return issued.to_dict()


@router.post("/auth/refresh", response_model=None, responses=answers(SignedIn, 401, 422))
async def refresh(body: RefreshBody, state: StateDep, session: SessionDep) -> dict[str, Any]:
    issued = await auth.refresh(session, state.token_policy, body.refresh_token)
    await session.commit()
    return issued.to_dict()


@router.post("/auth/logout", status_code=204, responses=errors(*USER, 422))
async def logout(principal: ViewerDep, session: SessionDep,
                 body: LogoutBody | None = None) -> Response:
    await auth.revoke_family(session, principal.family_id)
    await session.commit()
    return Response(status_code=204)


@router.get("/me", response_model=None, responses=answers(Me, *USER))
async def me(principal: ViewerDep) -> dict[str, Any]:
    return {"user": user_to_dict(principal.user), "tenant": tenant_to_dict(principal.tenant)}


@router.get("/setup", response_model=None, responses=answers(SetupStatus))
async def setup_status(session: SessionDep) -> dict[str, Any]:
    """Whether this deployment still needs its first administrator (embedded first run)."""
    users = await session.scalar(select(func.count()).select_from(User))
    return {"needs_admin": not users}


@router.post("/setup/admin", response_model=None,
             responses=answers(SignedIn, 403, 409, 422))
async def setup_admin(body: SetupAdminBody, state: StateDep, session: SessionDep,
                      x_qp_setup_token: str = Header(default="")) -> dict[str, Any]:
    """Create the local tenant and its administrator, once, for the app that started us."""
    expected = state.settings.setup_token
    if not expected or not hmac.compare_digest(expected.encode(), x_qp_setup_token.encode()):
        raise ApiError(403, "setup_not_allowed",
                       "First-run set-up is only possible from the app that started this tenant.")
    if await session.scalar(select(func.count()).select_from(User)):
        raise ApiError(409, "already_set_up",
                       "An administrator already exists. Sign in instead.")
    tenant = await auth.create_tenant(session, "local", "This computer")
    user = await auth.create_user(session, tenant, body.email, body.password, "admin", body.name)
    issued = await auth.issue_tokens(session, user, tenant, state.token_policy)
    await session.commit()
    return issued.to_dict()
