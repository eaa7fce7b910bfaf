"""Typed async client for the tenant's HTTP API (v1), over one injected ``httpx.AsyncClient``.

The client knows the wire shapes and turns every failure into a :class:`TenantError` whose
``message`` is a sentence a technician can act on. It never logs request bodies or tokens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import httpx

from qp_common.transport import DNS, REFUSED, TIMEOUT, TLS, describe_transport_error
from qp_common.wire import format_rfc3339, parse_error
from qp_common.wire import parse_rfc3339 as parse_time

log = logging.getLogger(__name__)

API = "/api/v1"


class TenantError(Exception):
    """A failure talking to the tenant; ``message`` is safe to show and to log.

    ``code`` is the tenant's error code, or one of the client's own: ``unreachable``,
    ``tls_error``, ``timeout``, ``session_expired``, ``bad_response``.
    """

    def __init__(self, code: str, message: str, status: int | None = None,
                 details: Mapping[str, Any] | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = dict(details or {})
        self.retry_after = retry_after


class SessionExpired(TenantError):
    """The access token was refused and could not be refreshed: sign in again."""

    def __init__(self, message: str = "Your session has expired. Please sign in again."):
        super().__init__("session_expired", message, status=401)


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    role: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> User:
        return cls(id=str(data.get("id", "")), email=data.get("email", ""),
                   name=data.get("name") or "", role=data.get("role", ""))


@dataclass(frozen=True)
class TenantInfo:
    id: str
    slug: str
    name: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TenantInfo:
        return cls(id=str(data.get("id", "")), slug=data.get("slug", ""),
                   name=data.get("name", ""))


@dataclass(frozen=True, repr=False)
class AuthGrant:
    """What login/refresh/setup return. ``repr`` hides the tokens."""

    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    tenant: TenantInfo

    def __repr__(self) -> str:
        return f"AuthGrant(user={self.user.email!r}, tenant={self.tenant.slug!r})"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuthGrant:
        return cls(access_token=data["access_token"], refresh_token=data["refresh_token"],
                   expires_in=int(data.get("expires_in", 0)),
                   user=User.from_json(data.get("user", {})),
                   tenant=TenantInfo.from_json(data.get("tenant", {})))


@dataclass(frozen=True)
class WorkflowToken:
    id: str
    status: str  # active | expiring | expired | revoked
    created_at: datetime | None
    expires_at: datetime | None
    days_left: int | None
    last_used_at: datetime | None
    grace_until: datetime | None
    url_hint: str
    public_url_ok: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkflowToken:
        days = data.get("days_left")
        return cls(id=str(data.get("id", "")), status=data.get("status", ""),
                   created_at=parse_time(data.get("created_at")),
                   expires_at=parse_time(data.get("expires_at")),
                   days_left=None if days is None else int(days),
                   last_used_at=parse_time(data.get("last_used_at")),
                   grace_until=parse_time(data.get("grace_until")),
                   url_hint=data.get("url_hint") or "",
                   public_url_ok=bool(data.get("public_url_ok", False)))


@dataclass(frozen=True)
class PayloadRow:
    key: str
    value: str


@dataclass(frozen=True)
class ITGlueWatcher:
    """The tenant's IT Glue watcher: it asks IT Glue for changed passwords every
    ``interval_seconds``, for tenants IT Glue's workflow cannot call."""

    enabled: bool
    interval_seconds: int
    last_checked_at: datetime | None
    next_check_at: datetime | None
    last_error: str | None
    last_found_at: datetime | None
    changes_found: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ITGlueWatcher:
        return cls(enabled=bool(data.get("enabled")),
                   interval_seconds=int(data.get("interval_seconds") or 0),
                   last_checked_at=parse_time(data.get("last_checked_at")),
                   next_check_at=parse_time(data.get("next_check_at")),
                   last_error=data.get("last_error") or None,
                   last_found_at=parse_time(data.get("last_found_at")),
                   changes_found=int(data.get("changes_found") or 0))


@dataclass(frozen=True)
class ITGlueIntegration:
    connected: bool
    region: str | None
    api_key_hint: str | None
    last_verified_at: datetime | None
    last_error: str | None
    workflow_token: WorkflowToken | None
    webhook_payload: list[PayloadRow] = field(default_factory=list)
    watcher: ITGlueWatcher | None = None  # None: a tenant without one

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ITGlueIntegration:
        token = data.get("workflow_token")
        return cls(connected=bool(data.get("connected")), region=data.get("region"),
                   api_key_hint=data.get("api_key_hint"),
                   last_verified_at=parse_time(data.get("last_verified_at")),
                   last_error=data.get("last_error"),
                   workflow_token=WorkflowToken.from_json(token) if token else None,
                   webhook_payload=[PayloadRow(str(r.get("key", "")), str(r.get("value", "")))
                                    for r in data.get("webhook_payload") or []],
                   watcher=(ITGlueWatcher.from_json(data["watcher"])
                            if isinstance(data.get("watcher"), Mapping) else None))


@dataclass(frozen=True, repr=False)
class GeneratedToken:
    token: WorkflowToken
    url: str

    def __repr__(self) -> str:
        return f"GeneratedToken(token={self.token.id!r}, url=<hidden>)"


@dataclass(frozen=True)
class Health:
    status: str
    db: str
    version: str


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    itglue_organization_id: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Customer:
        org = data.get("itglue_organization_id")
        return cls(id=int(data.get("id", 0)), name=str(data.get("name") or ""),
                   itglue_organization_id=None if org in (None, "") else str(org))


@dataclass(frozen=True)
class AccountSource:
    type: str | None  # openldap | active_directory | local | entra_id (Microsoft 365)
    agent_id: int | None
    directory: str
    identity: str
    on_premises_sync: bool = False  # entra_id: synced from on-premises AD


@dataclass(frozen=True)
class Account:
    """An account the tenant resets, and the IT Glue password it follows (if matched)."""

    id: int
    customer_id: int
    kind: str  # administrator | service | end_user
    display_name: str
    source: AccountSource
    itglue_password_id: str | None
    last_reset_at: datetime | None
    last_reset_by: str | None
    last_result: str | None  # "succeeded" | "failed: <reason>" | None
    state: str = "present"  # or "gone": its source no longer lists it
    itglue_password_name: str | None = None  # the matched password's name, for people
    enabled: bool | None = None  # from the directory sync; None: no sync reported it
    last_reported_at: datetime | None = None  # the last sync that listed it

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Account:
        src = data.get("source") or {}
        agent_id = src.get("agent_id")
        password_id = data.get("itglue_password_id")
        return cls(id=int(data.get("id", 0)), customer_id=int(data.get("customer_id", 0)),
                   kind=str(data.get("kind") or ""),
                   display_name=str(data.get("display_name") or ""),
                   source=AccountSource(type=src.get("type"),
                                        agent_id=None if agent_id is None else int(agent_id),
                                        directory=str(src.get("directory") or ""),
                                        identity=str(src.get("identity") or ""),
                                        on_premises_sync=bool(src.get("on_premises_sync"))),
                   itglue_password_id=None if password_id in (None, "") else str(password_id),
                   last_reset_at=parse_time(data.get("last_reset_at")),
                   last_reset_by=data.get("last_reset_by"),
                   last_result=data.get("last_result"),
                   state=str(data.get("state") or "present"),
                   itglue_password_name=data.get("itglue_password_name") or None,
                   enabled=None if data.get("enabled") is None else bool(data.get("enabled")),
                   last_reported_at=parse_time(data.get("last_reported_at")))

    @property
    def reported_by_agent(self) -> bool:
        """Whether an agent's directory sync reports it (else a person added it)."""
        return self.last_reported_at is not None or self.enabled is not None


@dataclass(frozen=True)
class ITGluePassword:
    """One of a customer's IT Glue passwords as the Match dialog lists it (never a value)."""

    id: str
    name: str
    username: str
    category: str
    matched_account_id: int | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ITGluePassword:
        matched = data.get("matched_account_id")
        return cls(id=str(data.get("id") or ""), name=str(data.get("name") or ""),
                   username=str(data.get("username") or ""),
                   category=str(data.get("category") or ""),
                   matched_account_id=None if matched is None else int(matched))


@dataclass(frozen=True)
class UnpairedAccount:
    id: int
    display_name: str
    reason: str


@dataclass(frozen=True)
class UnpairedPassword:
    id: str
    name: str
    username: str
    reason: str


@dataclass(frozen=True)
class AutomatchResult:
    """What automatch paired, and what it could not pair on either side (with why)."""

    matched: list[Account]
    unmatched_accounts: list[UnpairedAccount]
    unmatched_passwords: list[UnpairedPassword]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AutomatchResult:
        return cls(
            matched=[Account.from_json(a) for a in data.get("matched") or []],
            unmatched_accounts=[
                UnpairedAccount(id=int(a.get("id", 0)),
                                display_name=str(a.get("display_name") or ""),
                                reason=str(a.get("reason") or ""))
                for a in data.get("unmatched_accounts") or []],
            unmatched_passwords=[
                UnpairedPassword(id=str(p.get("id") or ""), name=str(p.get("name") or ""),
                                 username=str(p.get("username") or ""),
                                 reason=str(p.get("reason") or ""))
                for p in data.get("unmatched_passwords") or []])


@dataclass(frozen=True)
class AlertSettings:
    """The tenant's alert settings: who gets mail, and the expiry warning days in use."""

    recipients: list[str]
    expiry_warning_days: list[int]
    smtp_configured: bool
    max_recipients: int = 10

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertSettings:
        limits = data.get("limits") or {}
        return cls(recipients=[str(r) for r in data.get("recipients") or []],
                   expiry_warning_days=[int(d) for d in data.get("expiry_warning_days") or []],
                   smtp_configured=bool(data.get("smtp_configured")),
                   max_recipients=int(limits.get("max_recipients") or 10))


@dataclass(frozen=True)
class Microsoft365Link:
    """A customer's link to its Microsoft 365 tenant (the secret itself never comes back)."""

    linked: bool
    tenant_id: str | None
    client_id: str | None
    secret_hint: str | None
    last_verified_at: datetime | None
    last_error: str | None
    directory_roles: tuple[str, ...] | None
    last_sync_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Microsoft365Link:
        roles = data.get("directory_roles")
        return cls(linked=bool(data.get("linked")), tenant_id=data.get("tenant_id"),
                   client_id=data.get("client_id"), secret_hint=data.get("secret_hint"),
                   last_verified_at=parse_time(data.get("last_verified_at")),
                   last_error=data.get("last_error"),
                   directory_roles=None if roles is None else tuple(str(r) for r in roles),
                   last_sync_at=parse_time(data.get("last_sync_at")))


@dataclass(frozen=True)
class Microsoft365Sync:
    """What "Sync now" found; ``matched`` is None when IT Glue could not be asked."""

    users: int
    created: int
    gone: int
    on_premises: int
    matched: int | None
    automatch_error: str | None


@dataclass(frozen=True)
class CloudPrerequisite:
    customer_id: int
    name: str
    cloud_passwords: int
    linked: bool


@dataclass(frozen=True)
class Agent:
    id: int
    name: str
    hostname: str
    status: str  # online | offline
    last_seen_at: datetime | None
    directories: list[str] = field(default_factory=list)
    customer_id: int | None = None
    syncs: list[DirectorySync] = field(default_factory=list)  # per directory, when reported

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Agent:
        raw = data.get("directories") or []
        dirs = [str(d.get("name", "")) if isinstance(d, Mapping) else str(d) for d in raw]
        customer = data.get("customer_id")
        return cls(id=int(data.get("id", 0)), name=str(data.get("name") or ""),
                   hostname=str(data.get("hostname") or ""),
                   status=str(data.get("status") or "offline"),
                   last_seen_at=parse_time(data.get("last_seen_at")),
                   directories=[d for d in dirs if d],
                   customer_id=None if customer is None else int(customer),
                   syncs=[DirectorySync.from_json(d) for d in raw if isinstance(d, Mapping)])


@dataclass(frozen=True)
class DirectorySync:
    """One directory of an agent and how its last sync went."""

    name: str
    kind: str
    last_sync_at: datetime | None
    accounts: int
    gone: int
    last_error: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DirectorySync:
        return cls(name=str(data.get("name") or ""), kind=str(data.get("kind") or ""),
                   last_sync_at=parse_time(data.get("last_sync_at")),
                   accounts=int(data.get("accounts") or 0), gone=int(data.get("gone") or 0),
                   last_error=data.get("last_error") or None)


@dataclass(frozen=True)
class CustomerImport:
    created: int
    linked: int


@dataclass(frozen=True, repr=False)
class EnrollmentCode:
    """A single-use code for ``qp-agent enroll``. ``repr`` hides the code (a credential)."""

    code: str
    expires_at: datetime | None

    def __repr__(self) -> str:
        return f"EnrollmentCode(code=<hidden>, expires_at={self.expires_at!r})"


_EVENT_FIELDS = frozenset({"id", "occurred_at", "type", "severity", "summary",
                           "resource_name", "resource_url", "account", "token_id", "details"})


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Event:
    """One entry of the tenant's event log (the history pages and the live stream alike).

    ``duplicates`` counts the identical requests folded into this one (the tenant reports it
    in ``details``); ``extra`` keeps top-level fields this version of the app does not know,
    so nothing the tenant sent is lost when the event is shown or exported.
    """

    id: int
    type: str
    severity: str  # info | warning | error
    summary: str
    occurred_at: datetime | None
    resource_name: str | None = None
    resource_url: str | None = None
    account: str | None = None
    token_id: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    duplicates: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        details = data.get("details")
        details = dict(details) if isinstance(details, Mapping) else {}
        token = data.get("token_id")
        try:
            duplicates = int(details.get("duplicates") or 0)
        except (TypeError, ValueError):
            duplicates = 0
        return cls(id=int(data["id"]), type=str(data.get("type") or "unknown"),
                   severity=str(data.get("severity") or "info"),
                   summary=str(data.get("summary") or ""),
                   occurred_at=parse_time(data.get("occurred_at")),
                   resource_name=_optional_text(data.get("resource_name")),
                   resource_url=_optional_text(data.get("resource_url")),
                   account=_optional_text(data.get("account")),
                   token_id=token if isinstance(token, int) else None,
                   details=details, duplicates=max(0, duplicates),
                   extra={k: v for k, v in data.items() if k not in _EVENT_FIELDS})

    def to_json(self) -> dict[str, Any]:
        """The event in its wire shape, as the tenant sent it."""
        out: dict[str, Any] = {
            "id": self.id, "occurred_at": format_rfc3339(self.occurred_at) or "",
            "type": self.type, "severity": self.severity, "summary": self.summary,
            "resource_name": self.resource_name, "resource_url": self.resource_url,
            "account": self.account, "token_id": self.token_id, "details": dict(self.details)}
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class EventPage:
    """One page of ``GET /api/v1/events``: events newest first, and where the next starts."""

    events: list[Event]
    next_before_id: int | None


MAX_EVENT_PAGE = 500  # the tenant's own limit on ``limit``


class TokenSource(Protocol):
    """Supplies the access token and refreshes it (implemented by the session)."""

    @property
    def access_token(self) -> str | None: ...

    async def refresh_after_rejection(self, rejected: str | None) -> bool:
        """Get a fresh access token after ``rejected`` was refused; False if impossible."""
        ...


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0, int(float(value)))
    except ValueError:
        return None


class TenantClient:
    """The tenant's v1 API. ``base_url`` can change (local tenant vs a remote one).

    Authenticated calls use ``tokens`` (the session); a 401 triggers one refresh and one
    retry, then :class:`SessionExpired`.
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str = "",
                 tokens: TokenSource | None = None):
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens

    def at(self, base_url: str) -> TenantClient:
        """A client for another tenant address on the same HTTP connection pool, without
        credentials: for probing a tenant (health, first-run state) while this client keeps
        its own address across the awaits."""
        return TenantClient(self.http, base_url)

    # -- plumbing ---------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        if not self.base_url:
            raise TenantError("no_tenant", "No tenant is selected.")
        return self.base_url + path

    async def _send(self, method: str, path: str, *, json: Any = None,
                    headers: Mapping[str, str] | None = None,
                    access_token: str | None = None) -> httpx.Response:
        hdrs = dict(headers or {})
        if access_token:
            hdrs["Authorization"] = f"Bearer {access_token}"
        host = urlsplit(self.base_url).netloc or self.base_url
        try:
            return await self.http.request(method, self._url(path), json=json, headers=hdrs)
        except httpx.TransportError as exc:
            failure = describe_transport_error(exc, host)
            if failure.kind == TLS:
                raise TenantError(
                    "tls_error", f"The secure connection to the tenant failed. {failure} "
                    "Check the address, or ask your administrator about the tenant's "
                    "certificate.") from exc
            if failure.kind == TIMEOUT:
                raise TenantError("timeout", f"The tenant at {host} did not answer in time. "
                                  "Check your connection and try again.") from exc
            advice = "" if failure.kind in (DNS, REFUSED) else (
                " Check the address and your network connection.")  # those two carry their own
            raise TenantError("unreachable",
                              f"Cannot reach the tenant at {host}. {failure}{advice}") from exc

    @staticmethod
    def _raise_for_error(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        error = parse_error(body, response.status_code, response.reason_phrase)
        raise TenantError(error.code, error.message, status=response.status_code,
                          details=error.details, retry_after=_retry_after(response))

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise TenantError("bad_response", "The tenant sent an answer this app does not "
                              "understand. Is the address really a QP tenant?",
                              status=response.status_code) from exc

    async def _call(self, method: str, path: str, *, json: Any = None,
                    headers: Mapping[str, str] | None = None) -> httpx.Response:
        response = await self._send(method, path, json=json, headers=headers)
        self._raise_for_error(response)
        return response

    async def _authed(self, method: str, path: str, *, json: Any = None) -> httpx.Response:
        if self.tokens is None or not self.tokens.access_token:
            raise SessionExpired("You are not signed in.")
        token = self.tokens.access_token
        response = await self._send(method, path, json=json, access_token=token)
        if response.status_code == 401:
            if not await self.tokens.refresh_after_rejection(token):
                raise SessionExpired()
            response = await self._send(method, path, json=json,
                                        access_token=self.tokens.access_token)
            if response.status_code == 401:
                raise SessionExpired()
        self._raise_for_error(response)
        return response

    # -- unauthenticated --------------------------------------------------------------------

    async def health(self) -> Health:
        data = self._json(await self._call("GET", "/healthz"))
        return Health(str(data.get("status", "")), str(data.get("db", "")),
                      str(data.get("version", "")))

    async def wait_healthy(self, within: float = 30.0, interval: float = 0.1) -> Health:
        """Poll ``/healthz`` until it answers ``ok`` (used for a freshly started tenant)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            try:
                health = await self.health()
                if health.status == "ok":
                    return health
            except TenantError:
                if loop.time() >= deadline:
                    raise
            if loop.time() >= deadline:
                raise TenantError("unhealthy", "The tenant started but does not report "
                                  "itself healthy.")
            await asyncio.sleep(interval)

    async def login(self, email: str, password: str, tenant: str | None = None) -> AuthGrant:
        body: dict[str, Any] = {"email": email, "password": password}
        if tenant:
            body["tenant"] = tenant
        return AuthGrant.from_json(self._json(
            await self._call("POST", f"{API}/auth/login", json=body)))

    async def refresh(self, refresh_token: str) -> AuthGrant:
        return AuthGrant.from_json(self._json(
            await self._call("POST", f"{API}/auth/refresh",
                             json={"refresh_token": refresh_token})))

    async def logout(self, access_token: str, refresh_token: str | None) -> None:
        body = {"refresh_token": refresh_token} if refresh_token else None
        response = await self._send("POST", f"{API}/auth/logout", json=body,
                                    access_token=access_token)
        if response.status_code != 401:  # an expired access token: nothing left to revoke
            self._raise_for_error(response)

    async def setup_status(self) -> bool:
        """True when the tenant has no administrator yet (first run of the local tenant)."""
        data = self._json(await self._call("GET", f"{API}/setup"))
        return bool(data.get("needs_admin"))

    async def setup_admin(self, setup_token: str, email: str, password: str,
                          name: str | None = None) -> AuthGrant:
        body: dict[str, Any] = {"email": email, "password": password}
        if name:
            body["name"] = name
        return AuthGrant.from_json(self._json(await self._call(
            "POST", f"{API}/setup/admin", json=body,
            headers={"X-QP-Setup-Token": setup_token})))

    # -- authenticated ----------------------------------------------------------------------

    async def me(self) -> tuple[User, TenantInfo]:
        data = self._json(await self._authed("GET", f"{API}/me"))
        return User.from_json(data.get("user", {})), TenantInfo.from_json(data.get("tenant", {}))

    async def get_itglue(self) -> ITGlueIntegration:
        return ITGlueIntegration.from_json(self._json(
            await self._authed("GET", f"{API}/integrations/itglue")))

    async def connect_itglue(self, region: str, api_key: str) -> ITGlueIntegration:
        response = await self._authed("PUT", f"{API}/integrations/itglue",
                                      json={"region": region, "api_key": api_key})
        try:
            return ITGlueIntegration.from_json(response.json())
        except (ValueError, AttributeError):
            return await self.get_itglue()

    async def disconnect_itglue(self) -> None:
        await self._authed("DELETE", f"{API}/integrations/itglue")

    async def generate_workflow_token(self, grace_hours: int = 0) -> GeneratedToken:
        body = {"grace_hours": grace_hours} if grace_hours else {}
        data = self._json(await self._authed(
            "POST", f"{API}/integrations/itglue/workflow-token", json=body))
        return GeneratedToken(WorkflowToken.from_json(data["token"]), data["url"])

    async def reveal_workflow_url(self) -> str:
        data = self._json(await self._authed(
            "POST", f"{API}/integrations/itglue/workflow-token/reveal"))
        return str(data["url"])

    async def revoke_workflow_token(self) -> None:
        await self._authed("DELETE", f"{API}/integrations/itglue/workflow-token")

    # -- customers, accounts, agents (reset pipeline) -----------------------------------------

    async def list_customers(self) -> list[Customer]:
        data = self._json(await self._authed("GET", f"{API}/customers"))
        return [Customer.from_json(c) for c in data.get("customers") or []]

    async def import_itglue_customers(self) -> CustomerImport:
        """Create (or link) a customer for every IT Glue organization; idempotent."""
        data = self._json(await self._authed("POST", f"{API}/customers/import-itglue"))
        return CustomerImport(created=int(data.get("created", 0)),
                              linked=int(data.get("linked", 0)))

    async def list_accounts(self, customer_id: int | None = None) -> list[Account]:
        path = f"{API}/accounts" + ("" if customer_id is None else f"?customer_id={customer_id}")
        data = self._json(await self._authed("GET", path))
        return [Account.from_json(a) for a in data.get("accounts") or []]

    async def create_account(self, customer_id: int, kind: str, display_name: str,
                             source: Mapping[str, Any],
                             itglue_password_id: str | None = None) -> Account:
        body: dict[str, Any] = {"customer_id": customer_id, "kind": kind,
                                "display_name": display_name, "source": dict(source)}
        if itglue_password_id is not None:
            body["itglue_password_id"] = itglue_password_id
        return Account.from_json(self._json(
            await self._authed("POST", f"{API}/accounts", json=body)))

    async def update_account(self, account_id: int, **changes: Any) -> Account:
        """PATCH an account, e.g. ``itglue_password_id="123"`` (or ``None``) to match by hand."""
        return Account.from_json(self._json(
            await self._authed("PATCH", f"{API}/accounts/{account_id}", json=changes)))

    async def automatch(self, customer_id: int) -> list[Account]:
        """Match the customer's unmatched accounts by username; returns those matched now."""
        data = self._json(await self._authed("POST", f"{API}/accounts/automatch",
                                             json={"customer_id": customer_id}))
        return [Account.from_json(a) for a in data.get("matched") or []]

    async def automatch_report(self, customer_id: int) -> AutomatchResult:
        """Automatch, with what it could not pair on both sides (and why)."""
        return AutomatchResult.from_json(self._json(await self._authed(
            "POST", f"{API}/accounts/automatch", json={"customer_id": customer_id})))

    async def delete_account(self, account_id: int) -> None:
        await self._authed("DELETE", f"{API}/accounts/{account_id}")

    async def list_itglue_passwords(self, customer_id: int,
                                    search: str = "") -> list[ITGluePassword]:
        """The customer's IT Glue passwords by name (no values), for the Match dialog."""
        path = f"{API}/customers/{customer_id}/itglue-passwords"
        if search:
            path += "?" + urlencode({"search": search})
        data = self._json(await self._authed("GET", path))
        return [ITGluePassword.from_json(p) for p in data.get("data") or []]

    async def reset_account(self, account_id: int) -> int | None:
        """"Reset again from IT Glue": re-run the pipeline with IT Glue's current value.
        Returns the id of the event that records the request."""
        data = self._json(await self._authed("POST", f"{API}/accounts/{account_id}/reset"))
        event_id = data.get("event_id")
        return None if event_id is None else int(event_id)

    async def replay_event(self, event_id: int) -> int | None:
        """Retry a failed reset from its trigger event. Returns the new job's id."""
        data = self._json(await self._authed("POST", f"{API}/events/{event_id}/replay"))
        job_id = data.get("job_id")
        return None if job_id is None else int(job_id)

    async def event_page(self, before_id: int | None = None, limit: int = 200, *,
                         after_id: int | None = None, type: str | None = None,
                         severity: str | None = None, q: str | None = None) -> EventPage:
        """One page of the event log, newest first, older than ``before_id`` and newer than
        ``after_id``; ``type`` may end in ``.*`` (a family)."""
        params: dict[str, str | int] = {"limit": max(1, min(limit, MAX_EVENT_PAGE))}
        for key, value in (("before_id", before_id), ("after_id", after_id), ("type", type),
                           ("severity", severity), ("q", q)):
            if value is not None:
                params[key] = value
        data = self._json(await self._authed("GET", f"{API}/events?{urlencode(params)}"))
        if not isinstance(data, Mapping):
            raise TenantError("bad_response", "The tenant sent an event page this app does "
                              "not understand.")
        next_before = data.get("next_before_id")
        try:
            events = [Event.from_json(e) for e in data.get("events") or []]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TenantError("bad_response", "The tenant sent an event page this app does "
                              "not understand.") from exc
        return EventPage(events, None if next_before is None else int(next_before))

    async def get_m365_link(self, customer_id: int) -> Microsoft365Link:
        return Microsoft365Link.from_json(self._json(
            await self._authed("GET", f"{API}/customers/{customer_id}/microsoft365")))

    async def link_m365(self, customer_id: int, tenant_id: str, client_id: str,
                        client_secret: str) -> Microsoft365Link:
        """Verified by the tenant with Microsoft before it is saved (422 with their text)."""
        body = {"tenant_id": tenant_id, "client_id": client_id, "client_secret": client_secret}
        return Microsoft365Link.from_json(self._json(await self._authed(
            "PUT", f"{API}/customers/{customer_id}/microsoft365", json=body)))

    async def unlink_m365(self, customer_id: int) -> None:
        await self._authed("DELETE", f"{API}/customers/{customer_id}/microsoft365")

    async def sync_m365(self, customer_id: int) -> Microsoft365Sync:
        data = self._json(await self._authed(
            "POST", f"{API}/customers/{customer_id}/microsoft365/sync"))
        matched = data.get("matched")
        return Microsoft365Sync(users=int(data.get("users", 0)),
                                created=int(data.get("created", 0)),
                                gone=int(data.get("gone", 0)),
                                on_premises=int(data.get("on_premises", 0)),
                                matched=None if matched is None else int(matched),
                                automatch_error=data.get("automatch_error"))

    async def m365_prerequisites(self) -> list[CloudPrerequisite]:
        data = self._json(await self._authed("GET", f"{API}/microsoft365/prerequisites"))
        return [CloudPrerequisite(customer_id=int(c.get("customer_id", 0)),
                                  name=str(c.get("name") or ""),
                                  cloud_passwords=int(c.get("cloud_passwords", 0)),
                                  linked=bool(c.get("linked")))
                for c in data.get("customers") or []]

    async def list_agents(self) -> list[Agent]:
        data = self._json(await self._authed("GET", f"{API}/agents"))
        return [Agent.from_json(a) for a in data.get("agents") or []]

    async def sync_agent(self, agent_id: int) -> None:
        """"Sync now": the agent reports its directories' accounts at once."""
        await self._authed("POST", f"{API}/agents/{agent_id}/sync")

    # -- alerts -------------------------------------------------------------------------------

    async def get_alerts(self) -> AlertSettings:
        return AlertSettings.from_json(self._json(await self._authed("GET", f"{API}/alerts")))

    async def put_alerts(self, recipients: list[str],
                         expiry_warning_days: list[int]) -> AlertSettings:
        """Save both (422 with a sentence naming the entry the tenant refuses)."""
        body = {"recipients": recipients, "expiry_warning_days": expiry_warning_days}
        return AlertSettings.from_json(self._json(
            await self._authed("PUT", f"{API}/alerts", json=body)))

    async def create_enrollment_code(self, name: str) -> EnrollmentCode:
        data = self._json(await self._authed("POST", f"{API}/agents/enrollment-codes",
                                             json={"name": name}))
        return EnrollmentCode(code=str(data["code"]),
                              expires_at=parse_time(data.get("expires_at")))
