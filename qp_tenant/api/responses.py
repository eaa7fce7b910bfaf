"""What each route answers, as the OpenAPI document declares it.

Routes return plain dicts built by the domain's ``*_to_dict`` functions; the models here only
*describe* those bodies (routes list them in ``responses=``), so a field a domain function
adds is sent as before and a client or a fuzzer can still rely on the declared ones. Every
refusal has the one error envelope, :class:`ErrorEnvelope`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from qp_tenant.api.bounds import MAX_ROW_ID


# ------------------------------------------------------------------------------- errors
class ErrorBody(BaseModel):
    code: str = Field(description="snake_case code a client can branch on")
    message: str = Field(description="a sentence a person can act on")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorEnvelope(BaseModel):
    """The one error shape: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorBody


_WHY = {
    400: "The request cannot be read: a body that is not JSON (`invalid_json`), or a "
         "malformed value.",
    401: "Not signed in, or the credential is unknown, expired or revoked "
         "(`unauthorized`, `token_expired`, …).",
    403: "The signed-in user's role is below what this asks for (`forbidden`).",
    404: "No such row in this tenant (`not_found`, …): another tenant's ids are never found.",
    409: "Conflicts with the current state (the code says which).",
    410: "The thing asked for has expired.",
    413: "The body is too large.",
    422: "The request is well-formed but not acceptable (`invalid_request` and the fields, "
         "or a domain code).",
    429: "Too many attempts: wait the `Retry-After` seconds.",
    502: "IT Glue or Microsoft 365 could not be reached or answered with an error "
         "(`itglue_unreachable`, `m365_unreachable`).",
    503: "A part of the tenant this needs is not running.",
}

USER = (401,)  # any signed-in user (viewer and above)
ROLE = (401, 403)  # technician- or admin-only


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these error statuses, each with the error envelope."""
    return {status: {"model": ErrorEnvelope, "description": _WHY[status]}
            for status in sorted(set(statuses))}


def answers(model: type[BaseModel] | None, *statuses: int, status: int = 200,
            description: str = "") -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: its success body (``model``) and its error statuses."""
    declared = errors(*statuses)
    if model is not None:
        declared[status] = {"model": model, "description": description or "Success"}
    return declared


# ----------------------------------------------------------------------------- sign-in
Role = Literal["viewer", "technician", "admin"]


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: Role


class TenantOut(BaseModel):
    id: int
    slug: str
    name: str


class SignedIn(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="seconds the access token lives")
    user: UserOut
    tenant: TenantOut


class Me(BaseModel):
    user: UserOut
    tenant: TenantOut


class SetupStatus(BaseModel):
    needs_admin: bool


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    db: Literal["ok", "unavailable"]
    version: str


# --------------------------------------------------------------------------- IT Glue
class WorkflowTokenOut(BaseModel):
    id: int
    status: Literal["active", "expiring", "expired", "revoked"]
    created_at: str
    expires_at: str
    days_left: int
    last_used_at: str | None
    grace_until: str | None
    url_hint: str
    public_url_ok: bool


class PayloadRow(BaseModel):
    key: str
    value: str


class WatcherOut(BaseModel):
    """The IT Glue watcher of the tenant (docs/itglue-watcher.md)."""

    enabled: bool = Field(description="false when QP_ITGLUE_WATCH_SECONDS is 0 or IT Glue is "
                                      "not connected")
    interval_seconds: int
    last_checked_at: str | None
    next_check_at: str | None
    last_error: str | None
    last_found_at: str | None
    changes_found: int


class IntegrationOut(BaseModel):
    connected: bool
    region: str | None
    api_key_hint: str | None
    last_verified_at: str | None
    last_error: str | None
    workflow_token: WorkflowTokenOut | None
    webhook_payload: list[PayloadRow]
    watcher: WatcherOut


class GeneratedToken(BaseModel):
    token: WorkflowTokenOut
    url: str = Field(description="the workflow URL with the new token (shown once)")


class RevealedUrl(BaseModel):
    url: str


# ----------------------------------------------------------------------------- events
class EventOut(BaseModel):
    id: int
    occurred_at: str
    type: str
    severity: Literal["info", "warning", "error"]
    summary: str
    resource_name: str | None
    resource_url: str | None
    account: str | None
    token_id: int | None
    details: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventOut]
    next_before_id: int | None = Field(le=MAX_ROW_ID)


class Replay(BaseModel):
    event_id: int
    job_id: int
    state: str
    status: Literal["started", "in_progress"]


class Retry(BaseModel):
    event_id: int = Field(description="the password_reset.requested event of this request")
    job_id: int


# ----------------------------------------------------------------------------- alerts
class AlertLimits(BaseModel):
    max_recipients: int
    max_expiry_warning_days: int
    max_warning_day: int


class AlertsOut(BaseModel):
    recipients: list[str]
    expiry_warning_days: list[int] = Field(
        description="the thresholds in use, largest first: the tenant's defaults until set")
    smtp_configured: bool
    limits: AlertLimits


# -------------------------------------------------------------- customers and accounts
class CustomerOut(BaseModel):
    id: int
    name: str
    itglue_organization_id: str | None
    created_at: str | None


class CustomerList(BaseModel):
    customers: list[CustomerOut]


class ImportResult(BaseModel):
    created: int
    linked: int


class SourceOut(BaseModel):
    type: str
    agent_id: int | None
    directory: str | None
    identity: str | None
    object_id: str | None = Field(None, description="entra_id only: the user's object id")
    on_premises_sync: bool | None = Field(None, description="entra_id only")


class AccountOut(BaseModel):
    id: int
    customer_id: int
    kind: str
    display_name: str
    source: SourceOut
    state: Literal["present", "gone"] = "present"
    enabled: bool | None = Field(None, description="as the directory reports it; null when "
                                 "no sync reported the account")
    login_names: list[str] = Field(default_factory=list,
                                   description="sAMAccountName, userPrincipalName, uid: "
                                   "what automatch compares")
    last_reported_at: str | None = None
    manual_fields: list[str] = Field(default_factory=list,
                                     description="fields set by a person, kept by syncs")
    itglue_password_id: str | None
    itglue_password_name: str | None = Field(
        None, description="the matched IT Glue password's name (null until known)")
    last_reset_at: str | None
    last_reset_by: str | None
    last_result: str | None


class ITGluePasswordOut(BaseModel):
    id: str
    name: str
    username: str | None
    category: str | None
    matched_account_id: int | None


class ITGluePasswordMeta(BaseModel):
    total: int


class ITGluePasswordList(BaseModel):
    data: list[ITGluePasswordOut]
    meta: ITGluePasswordMeta


class AccountList(BaseModel):
    accounts: list[AccountOut]


class UnmatchedAccount(BaseModel):
    id: int
    display_name: str
    reason: str


class UnmatchedPassword(BaseModel):
    id: str
    name: str
    username: str | None
    reason: str


class Matched(BaseModel):
    matched: list[AccountOut]
    unmatched_accounts: list[UnmatchedAccount]
    unmatched_passwords: list[UnmatchedPassword]


# ----------------------------------------------------------------------------- agents
class AgentOut(BaseModel):
    id: int
    name: str
    hostname: str
    status: Literal["online", "offline", "revoked"]
    last_seen_at: str | None
    directories: list[DirectoryOut]
    customer_id: int | None = None


class DirectoryOut(BaseModel):
    name: str
    kind: str
    last_sync_at: str | None = None
    accounts: int = Field(0, description="present accounts reported from it")
    gone: int = 0
    last_error: str | None = None


class AgentList(BaseModel):
    agents: list[AgentOut]


class EnrollmentCode(BaseModel):
    code: str = Field(description="QPE-…, single use")
    expires_at: str


class Enrolled(BaseModel):
    agent_id: int
    agent_token: str


class HeartbeatOut(BaseModel):
    status: Literal["ok"]
    agent_id: int


class JobOut(BaseModel):
    job: dict[str, Any]


class SyncRequested(BaseModel):
    status: Literal["requested"]
    agent_id: int


class SyncRequestOut(BaseModel):
    sync: Literal[True]
    requested_at: str


class AccountsReported(BaseModel):
    status: Literal["ok"]
    sync_id: str
    received: int
    created: int
    updated: int
    gone: int


class JobResultOut(BaseModel):
    status: Literal["recorded"]
    job_id: int
    state: str


# ---------------------------------------------------------------------- the document
def exact_integer_bounds(node: Any) -> Any:
    """Restore integer bounds that FastAPI's OpenAPI models turned into floats.

    FastAPI keeps ``minimum``/``maximum`` as floats, so a body field's 2^63-1 is served as
    9.223372036854776e18, i.e. 2^63, one more than the API accepts: a client generating
    values from the document would send one that is refused. Integer schemas get their
    bounds back as integers, clamped to the row-id range.
    """
    if isinstance(node, list):
        return [exact_integer_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    fixed = {key: exact_integer_bounds(value) for key, value in node.items()}
    if fixed.get("type") == "integer":
        for key in ("minimum", "maximum"):
            value = fixed.get(key)
            if isinstance(value, float) and value.is_integer():
                fixed[key] = min(int(value), MAX_ROW_ID)
    return fixed


def with_body_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Every operation that reads a JSON body may answer 400 (not JSON) and 422 (not valid)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" not in operation:
                continue
            declared = operation.setdefault("responses", {})
            for status in (400, 422):
                declared.setdefault(str(status), {
                    "description": _WHY[status],
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}})
    return document


def install_openapi(api: Any) -> None:
    """Serve ``/openapi.json`` with :func:`exact_integer_bounds` and
    :func:`with_body_errors` applied (built once)."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if not getattr(api, "_qp_openapi_fixed", False):
            api.openapi_schema = with_body_errors(exact_integer_bounds(build()))
            api._qp_openapi_fixed = True
        schema: dict[str, Any] = api.openapi_schema
        return schema

    api.openapi = openapi
