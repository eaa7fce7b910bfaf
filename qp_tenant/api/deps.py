"""Request dependencies: the process state, a database session, the signed-in principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.domain.auth import Principal, authenticate
from qp_tenant.errors import ApiError
from qp_tenant.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.qp
    return state


async def get_session(
    state: Annotated[AppState, Depends(get_state)],
) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "unauthorized", "Sign in to continue.",
                       headers={"WWW-Authenticate": "Bearer"})
    return value.strip()


async def get_principal(
    request: Request, session: Annotated[AsyncSession, Depends(get_session)]
) -> Principal:
    return await authenticate(session, bearer_token(request))


def require_admin(principal: Principal) -> None:
    if principal.user.role != "admin":
        raise ApiError(403, "forbidden", "Only an administrator of this tenant can do that.")


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
