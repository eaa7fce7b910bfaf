"""Request dependencies: the process state, a database session, the signed-in principal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.domain.auth import ROLES, Principal, authenticate, role_at_least
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


# Declared in the OpenAPI document only (auto_error=False): bearer_token() reads the header
# and answers the contract's own 401.
USER_BEARER = HTTPBearer(scheme_name="user", auto_error=False,
                         description="A signed-in user's access token (`qpat_…`).")
AGENT_BEARER = HTTPBearer(scheme_name="agent", auto_error=False,
                          description="An enrolled agent's credential (`qpag_…`).")


async def get_principal(
    request: Request, session: Annotated[AsyncSession, Depends(get_session)],
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(USER_BEARER)] = None,
) -> Principal:
    return await authenticate(session, bearer_token(request))


_ROLE_SENTENCE = {
    "technician": "Only a technician or an administrator of this tenant can do that.",
    "admin": "Only an administrator of this tenant can do that.",
}


def ensure_role(principal: Principal, minimum: str, **details: object) -> None:
    """403 ``forbidden`` when the principal's role is below ``minimum``.

    Routes name their least role as a dependency (below); a route whose least role depends on
    the body (an account's source) calls this itself, so both answer the same refusal.
    """
    if not role_at_least(principal.user.role, minimum):
        raise ApiError(403, "forbidden", _ROLE_SENTENCE.get(minimum, "You cannot do that."),
                       details={"required_role": minimum, "role": principal.user.role,
                                **details})


def require_role(minimum: str) -> Callable[[Principal], Principal]:
    """A route dependency: the signed-in principal, or 403 ``forbidden`` below ``minimum``."""
    if minimum not in ROLES:
        raise ValueError(f"unknown role {minimum!r}")

    def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        ensure_role(principal, minimum)
        return principal

    return dependency


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
# Route signatures name the least role they need: ViewerDep, TechnicianDep or AdminDep.
ViewerDep = Annotated[Principal, Depends(require_role("viewer"))]
TechnicianDep = Annotated[Principal, Depends(require_role("technician"))]
AdminDep = Annotated[Principal, Depends(require_role("admin"))]
