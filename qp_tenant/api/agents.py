"""Routes: agents as technicians see them, and the agent's own API (agent credential).

``/api/v1/agents…`` is for signed-in technicians. ``/api/v1/agent/…`` is what ``qp-agent``
calls with its own bearer token: enroll, long-poll for jobs, post results, heartbeat.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import Field

from qp_tenant.api.bounds import Body, NonBlank, RowId, documented_schema
from qp_tenant.api.deps import (
    AGENT_BEARER,
    AdminDep,
    SessionDep,
    StateDep,
    TechnicianDep,
    ViewerDep,
    bearer_token,
)
from qp_tenant.api.responses import (
    ROLE,
    USER,
    AccountsReported,
    AgentList,
    AgentOut,
    Enrolled,
    EnrollmentCode,
    HeartbeatOut,
    JobOut,
    JobResultOut,
    SyncRequested,
    SyncRequestOut,
    answers,
    errors,
)
from qp_tenant.domain import agents, directory_sync, jobs
from qp_tenant.domain.events import rfc3339
from qp_tenant.domain.pipeline import ResetPipeline
from qp_tenant.models import Agent
from qp_tenant.state import AppState

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])
agent_router = APIRouter(prefix="/api/v1/agent", tags=["agent API"])

MAX_WAIT_SECONDS = 60


class EnrollmentCodeBody(Body):
    name: NonBlank = Field(max_length=200)
    customer_id: RowId | None = None


class AgentPatch(Body):
    customer_id: RowId | None


class EnrollBody(Body):
    code: NonBlank = Field(max_length=100)
    name: str = Field("", max_length=200)
    hostname: str = Field("", max_length=255)


class ResultBody(Body):
    ok: bool
    error: str | None = Field(None, max_length=10_000)


class HeartbeatBody(Body):
    directories: list[Annotated[dict[str, Any], documented_schema(
        required=["name"],
        properties={"name": {"type": "string"},
                    "kind": {"description": "openldap, active_directory or local"}})]] = Field(
        default_factory=list, max_length=100)


def _pipeline(state: AppState) -> ResetPipeline:
    assert state.pipeline is not None, "the reset pipeline is not running"
    return state.pipeline


async def get_agent(
    request: Request, session: SessionDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(AGENT_BEARER)] = None,
) -> Agent:
    return await agents.authenticate_agent(session, bearer_token(request))


AgentDep = Annotated[Agent, Depends(get_agent)]


# ----------------------------------------------------------------------- technicians
@router.post("/enrollment-codes", status_code=201, response_model=None,
             responses=answers(EnrollmentCode, *ROLE, 422, status=201))
async def create_enrollment_code(body: EnrollmentCodeBody, principal: AdminDep,
                                 state: StateDep, session: SessionDep) -> dict[str, Any]:
    """A single-use code (one hour) for ``qp-agent enroll --code``."""
    code, expires_at = await agents.create_enrollment_code(
        session, principal.tenant.id, name=body.name, created_by=principal.user.id,
        ttl_seconds=state.settings.agent_enrollment_code_ttl_seconds,
        customer_id=body.customer_id)
    state.broker.notify(principal.tenant.id)
    return {"code": code, "expires_at": rfc3339(expires_at)}


@router.get("", response_model=None, responses=answers(AgentList, *USER, 422))
async def list_agents(principal: ViewerDep, session: SessionDep,
                      include_revoked: bool = False) -> dict[str, Any]:
    """Live agents; ``include_revoked=true`` adds revoked ones (``status: "revoked"``)."""
    rows = await agents.list_agents(session, principal.tenant.id, include_revoked)
    status = await directory_sync.directory_status(session, principal.tenant.id)
    return {"agents": [{**agents.agent_to_dict(a),
                        "directories": directory_sync.directories_with_status(a, status)}
                       for a in rows]}




@router.patch("/{agent_id:int}", response_model=None,
              responses=answers(AgentOut, *ROLE, 404, 409, 422))
async def patch_agent(agent_id: RowId, body: AgentPatch, principal: AdminDep, state: StateDep,
                      session: SessionDep) -> dict[str, Any]:
    """Assign the agent to the customer whose directories it serves."""
    agent = await agents.assign_customer(session, principal.tenant.id, agent_id,
                                         body.customer_id, principal.user.email)
    state.broker.notify(principal.tenant.id)
    return agents.agent_to_dict(agent)


@router.delete("/{agent_id:int}", status_code=204, responses=errors(*ROLE, 404, 422))
async def revoke_agent(agent_id: RowId, principal: AdminDep, state: StateDep,
                       session: SessionDep) -> Response:
    """Refuse the agent's credential from now on; its unfinished jobs go to another agent."""
    await agents.revoke_agent(session, principal.tenant.id, agent_id, principal.user.email)
    state.broker.notify(principal.tenant.id)
    if state.pipeline is not None:
        state.pipeline.job_broker.notify(agent_id)  # ends its long poll now
        state.pipeline.wake()
    return Response(status_code=204)


# -------------------------------------------------------------------------- the agent
@agent_router.post("/enroll", status_code=201, response_model=None,
                   responses=answers(Enrolled, 400, 409, 410, 422, status=201))
async def enroll(body: EnrollBody, state: StateDep, session: SessionDep) -> dict[str, Any]:
    agent, token = await agents.enroll(session, code=body.code, name=body.name,
                                       hostname=body.hostname)
    state.broker.notify(agent.tenant_id)
    return {"agent_id": agent.id, "agent_token": token}


@agent_router.post("/heartbeat", response_model=None,
                   responses=answers(HeartbeatOut, 401, 422))
async def heartbeat(body: HeartbeatBody, agent: AgentDep, state: StateDep,
                    session: SessionDep) -> dict[str, Any]:
    if await agents.mark_seen(session, agent, body.directories):
        state.broker.notify(agent.tenant_id)
    return {"status": "ok", "agent_id": agent.id}


@agent_router.get("/jobs", response_model=None, responses={
    **answers(JobOut, 401, 422),
    204: {"description": "No job came during the wait."},
})
async def next_job(request: Request, agent: AgentDep, state: StateDep, session: SessionDep,
                   wait: int = Query(30, ge=0, le=MAX_WAIT_SECONDS)) -> Response | dict[str, Any]:
    """Long poll: the next job at once if one is queued, else wait up to ``wait`` seconds."""
    if await agents.mark_seen(session, agent):
        state.broker.notify(agent.tenant_id)
    await session.close()  # no connection is held while waiting
    job = await jobs.wait_for_job(
        state.sessions, state.crypto, _pipeline(state).job_broker, agent, wait=wait,
        lease_seconds=state.settings.reset_lease_seconds,
        fallback_seconds=state.settings.agent_poll_fallback_seconds,
        gone=request.is_disconnected, stopping=lambda: state.shutting_down)
    if job is None:
        return Response(status_code=204)
    return JSONResponse({"job": job})


@agent_router.post("/jobs/{job_id:int}/result", response_model=None,
                   responses=answers(JobResultOut, 401, 404, 409, 422))
async def job_result(job_id: RowId, body: ResultBody, agent: AgentDep, state: StateDep,
                     session: SessionDep) -> dict[str, Any]:
    job = await jobs.record_result(session, agent, job_id, ok=body.ok, error=body.error,
                                   crypto=state.crypto)
    state.broker.notify(agent.tenant_id)
    return {"status": "recorded", "job_id": job.id, "state": job.state}


# ------------------------------------------------------------- directory sync (accounts)
class ReportedAccountBody(Body):
    identity: NonBlank = Field(max_length=500, description="the DN (LDAP/AD) or user name")
    display_name: str = Field("", max_length=200)
    login_names: list[Annotated[str, Field(max_length=320)]] = Field(
        default_factory=list, max_length=10,
        description="sAMAccountName, userPrincipalName, uid or the local user name")
    enabled: bool = True
    kind: Literal["administrator", "service", "end_user"] = "end_user"


class AccountsReportBody(Body):
    sync_id: NonBlank = Field(max_length=64, description="the same for every page of a sync")
    directory: NonBlank = Field(max_length=200)
    directory_kind: Literal["openldap", "active_directory", "local"]
    accounts: list[ReportedAccountBody] = Field(
        default_factory=list, max_length=directory_sync.MAX_PAGE_ACCOUNTS)
    final: bool = False
    error: str | None = Field(None, max_length=2000,
                              description="the directory could not be listed (ends the sync, "
                                          "marks nothing gone)")


@router.post("/{agent_id:int}/sync", status_code=202, response_model=None,
             responses=answers(SyncRequested, *ROLE, 404, 409, 422, status=202))
async def request_sync(agent_id: RowId, principal: TechnicianDep, state: StateDep,
                       session: SessionDep) -> dict[str, Any]:
    """Ask the agent to report its directories' accounts now."""
    await directory_sync.request_sync(session, principal.tenant.id, agent_id)
    if state.pipeline is not None:
        state.pipeline.job_broker.notify(agent_id)  # wakes its sync-request poll
    return {"status": "requested", "agent_id": agent_id}


@agent_router.get("/sync-request", response_model=None, responses={
    **answers(SyncRequestOut, 401, 422),
    204: {"description": "No sync was asked for during the wait."},
})
async def next_sync_request(request: Request, agent: AgentDep, state: StateDep,
                            session: SessionDep,
                            wait: int = Query(30, ge=0, le=MAX_WAIT_SECONDS)
                            ) -> Response | dict[str, Any]:
    """Long poll: answers as soon as a technician asks this agent to sync (``Sync now``)."""
    agent_id = agent.id
    await session.close()  # no connection is held while waiting

    async def look() -> datetime | None:
        async with state.sessions() as poll_session:
            return await directory_sync.take_sync_request(poll_session, agent_id)

    requested = await jobs.agent_long_poll(
        look, _pipeline(state).job_broker, agent_id, wait=wait,
        fallback_seconds=state.settings.agent_poll_fallback_seconds,
        gone=request.is_disconnected, stopping=lambda: state.shutting_down)
    if requested is None:
        return Response(status_code=204)
    return {"sync": True, "requested_at": rfc3339(requested)}


@agent_router.post("/accounts", response_model=None,
                   responses=answers(AccountsReported, 401, 409, 422))
async def report_accounts(body: AccountsReportBody, agent: AgentDep, state: StateDep,
                          session: SessionDep) -> dict[str, Any]:
    """One page of a directory's accounts (at most 1000); the last page says ``final``."""
    result = await directory_sync.report_accounts(
        session, agent, sync_id=body.sync_id.strip(), directory=body.directory.strip(),
        directory_kind=body.directory_kind,
        accounts=[directory_sync.ReportedAccount(
            identity=a.identity.strip(), display_name=a.display_name,
            login_names=tuple(n.strip() for n in a.login_names), enabled=a.enabled,
            kind=a.kind) for a in body.accounts],
        final=body.final, error=body.error)
    if result["created"] or result["updated"] or result["gone"] or body.final:
        state.broker.notify(agent.tenant_id)
    return result
