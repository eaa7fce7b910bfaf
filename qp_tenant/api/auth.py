"""Routes: sign-in, refresh, sign-out, who am I, and the embedded first-run set-up."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request, Response
from pydantic import Field

from qp_common.credentials import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH
from qp_tenant.api.bounds import Body
from qp_tenant.api.deps import SessionDep, StateDep, ViewerDep
from qp_tenant.api.responses import USER, Me, SetupStatus, SignedIn, answers, errors
from qp_tenant.domain import auth
from qp_tenant.domain.auth import tenant_to_dict, user_to_dict

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
    return issued.to_dict()


@router.post("/auth/refresh", response_model=None, responses=answers(SignedIn, 401, 422))
async def refresh(body: RefreshBody, state: StateDep, session: SessionDep) -> dict[str, Any]:
    issued = await auth.refresh(session, state.token_policy, body.refresh_token)
    return issued.to_dict()


@router.post("/auth/logout", status_code=204, responses=errors(*USER, 422))
async def logout(principal: ViewerDep, session: SessionDep,
                 body: LogoutBody | None = None) -> Response:
    await auth.sign_out(session, principal.family_id)
    return Response(status_code=204)


@router.get("/me", response_model=None, responses=answers(Me, *USER))
async def me(principal: ViewerDep) -> dict[str, Any]:
    return {"user": user_to_dict(principal.user), "tenant": tenant_to_dict(principal.tenant)}


@router.get("/setup", response_model=None, responses=answers(SetupStatus))
async def setup_status(session: SessionDep) -> dict[str, Any]:
    """Whether this deployment still needs its first administrator (embedded first run)."""
    return {"needs_admin": await auth.needs_admin(session)}


@router.post("/setup/admin", response_model=None,
             responses=answers(SignedIn, 403, 409, 422))
async def setup_admin(body: SetupAdminBody, state: StateDep, session: SessionDep,
                      x_qp_setup_token: str = Header(default="")) -> dict[str, Any]:
    """Create the local tenant and its administrator, once, for the app that started us."""
    issued = await auth.first_run_setup(
        session, state.token_policy, expected_token=state.settings.setup_token,
        presented_token=x_qp_setup_token, email=body.email, password=body.password,
        name=body.name)
    return issued.to_dict()
