"""An IT Glue REST API emulator for tests and demos.

IT Glue cannot be reached from CI or a laptop demo, so this small ASGI app answers the
documented endpoints (organizations, passwords, their nested routes) with IT Glue's JSON:API
shapes, errors (403, 404, 415, 422, 429) and rate limit, as IT Glue documents them. Run it by
hand with ``python -m qp_tenant.itglue.emulator --port 0 --api-key ITG.demo-key --seed-demo``.

Everything under ``/_emulator/`` is emulator-only plumbing (no auth) that real IT Glue does not
have: it lets a demo change a password "in IT Glue" and lets a person peek at the state.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import math
import re
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from qp_common.wire import format_rfc3339 as rfc3339
from qp_common.wire import listening_line

logger = logging.getLogger(__name__)

JSONAPI_MEDIA_TYPE = "application/vnd.api+json"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
DEFAULT_RATE_LIMIT = 3000
DEFAULT_RATE_WINDOW_SECONDS = 300.0

# Attributes a PATCH may change. Read-only ones (organization-name, resource-url, the
# timestamps...) are refused with a 422 pointing at the attribute, so a client bug that sends
# them shows up in tests instead of being silently ignored.
WRITABLE_PASSWORD_ATTRIBUTES = frozenset(
    {
        "name",
        "username",
        "password",
        "url",
        "notes",
        "password-category-id",
        "restricted",
        "archived",
    }
)

Visibility = Literal["shared", "vault", "only_me"]


def _utc_now() -> datetime:
    return datetime.now(UTC)



def take_from_window(hits: collections.deque[float], now: float, limit: int,
                     window_seconds: float) -> float | None:
    """A sliding-window rate limit (what both emulators enforce): count one request made at
    ``now`` in ``hits``, or return the seconds to wait when ``limit`` are already in the
    window."""
    while hits and hits[0] <= now - window_seconds:
        hits.popleft()
    if len(hits) >= limit:
        return max(hits[0] + window_seconds - now, 0.0)
    hits.append(now)
    return None

@dataclass
class EmulatorUser:
    """An IT Glue user, enough for ``include=updater``."""

    id: int
    name: str
    email: str | None


@dataclass
class EmulatorOrganization:
    """An IT Glue organization (one MSP customer)."""

    id: int
    name: str
    short_name: str | None = None
    description: str | None = None
    organization_type_name: str | None = "Customer"
    organization_status_name: str | None = "Active"
    created_at: datetime = field(default_factory=_utc_now)
    updated_at: datetime = field(default_factory=_utc_now)


@dataclass
class EmulatorPassword:
    """An IT Glue password with all documented attributes plus emulator-only flags.

    ``visibility`` is ``"shared"`` for ordinary passwords; ``"vault"`` (host-proof Vault) and
    ``"only_me"`` passwords exist but the API cannot reach them. ``deleted`` passwords answer 404.
    """

    id: int
    organization_id: int
    name: str
    username: str | None
    password: str | None
    url: str | None = None
    notes: str | None = None
    password_category_id: int | None = None
    password_category_name: str | None = None
    resource_id: int | None = None
    resource_type: str | None = None
    restricted: bool = False
    archived: bool = False
    created_at: datetime = field(default_factory=_utc_now)
    updated_at: datetime = field(default_factory=_utc_now)
    password_updated_at: datetime | None = None
    updater_id: int | None = None
    visibility: Visibility = "shared"
    deleted: bool = False

    @property
    def reachable(self) -> bool:
        """Whether the API can see this password at all."""
        return not self.deleted and self.visibility == "shared"


@dataclass(frozen=True)
class RequestLogEntry:
    """One API request the emulator received (the key itself is never recorded)."""

    method: str
    path: str
    query: dict[str, str]
    status: int


@dataclass
class EmulatorState:
    """Everything the emulator knows; tests build one, mutate it and inspect it.

    ``api_keys`` maps a key to its options, e.g. ``{"ITG.x": {"password_access": True}}``.
    ``clock`` (monotonic seconds) drives the rate limit and ``now`` the RFC 3339 timestamps;
    both are injectable so tests never wait.
    """

    api_keys: dict[str, dict[str, bool]] = field(default_factory=dict)
    subdomain: str = "acme"
    rate_limit: int = DEFAULT_RATE_LIMIT
    rate_window_seconds: float = DEFAULT_RATE_WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = _utc_now
    api_user_name: str = "IT Glue API"
    organizations: dict[int, EmulatorOrganization] = field(default_factory=dict)
    passwords: dict[int, EmulatorPassword] = field(default_factory=dict)
    users: dict[int, EmulatorUser] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    requests: list[RequestLogEntry] = field(default_factory=list)
    # Emulator-only fault injection: status codes (e.g. 500, 503) answered, in order, by the
    # next authenticated API requests instead of the real answer.
    queued_failures: list[int] = field(default_factory=list)
    fault_retry_after: int = 1  # the Retry-After (seconds) a queued 429 carries
    _hits: dict[str, collections.deque[float]] = field(default_factory=dict, repr=False)
    _last_ids: dict[str, int] = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- helpers for tests/demos
    def _new_id(self, kind: str) -> int:
        # Each kind has its own sequence, like IT Glue's tables; start high enough that an id
        # never looks like a page number or a count in a test.
        new_id = self._last_ids.get(kind, {"organizations": 100, "passwords": 5000}.get(kind, 10))
        new_id += 1
        self._last_ids[kind] = new_id
        return new_id

    def add_api_key(self, key: str, *, password_access: bool = True) -> None:
        """Accept ``key``; ``password_access`` is IT Glue's per-key "Password Access" option."""
        self.api_keys[key] = {"password_access": password_access}

    def add_user(self, name: str, email: str | None = None) -> EmulatorUser:
        """Return the user called ``name``, creating it if needed."""
        for user in self.users.values():
            if user.name == name:
                return user
        if email is None:
            local = re.sub(r"[^a-z0-9]+", ".", name.lower()).strip(".") or "user"
            email = f"{local}@{self.subdomain}.example"
        user = EmulatorUser(id=self._new_id("users"), name=name, email=email)
        self.users[user.id] = user
        return user

    def add_organization(self, name: str, **attributes: Any) -> EmulatorOrganization:
        """Create an organization; extra keyword arguments set its other fields."""
        moment = self.now()
        org = EmulatorOrganization(
            id=self._new_id("organizations"),
            name=name,
            created_at=moment,
            updated_at=moment,
            **attributes,
        )
        self.organizations[org.id] = org
        return org

    def add_password(
        self,
        org_id: int,
        name: str,
        username: str | None,
        password: str | None,
        *,
        category_name: str | None = None,
        url: str | None = None,
        notes: str | None = None,
        updated_by: str | None = "Demo Technician",
        visibility: Visibility = "shared",
        restricted: bool = False,
        archived: bool = False,
        resource_id: int | None = None,
        resource_type: str | None = None,
    ) -> EmulatorPassword:
        """Create a password in organization ``org_id`` (which must exist)."""
        if org_id not in self.organizations:
            raise KeyError(f"no organization {org_id}")
        category_id = None
        if category_name is not None:
            if category_name not in self.categories:
                self.categories[category_name] = self._new_id("categories")
            category_id = self.categories[category_name]
        moment = self.now()
        updater = self.add_user(updated_by) if updated_by else None
        pw = EmulatorPassword(
            id=self._new_id("passwords"),
            organization_id=org_id,
            name=name,
            username=username,
            password=password,
            url=url,
            notes=notes,
            password_category_id=category_id,
            password_category_name=category_name,
            resource_id=resource_id,
            resource_type=resource_type,
            restricted=restricted,
            archived=archived,
            created_at=moment,
            updated_at=moment,
            password_updated_at=moment if password is not None else None,
            updater_id=updater.id if updater else None,
            visibility=visibility,
        )
        self.passwords[pw.id] = pw
        return pw

    def change_password(
        self, pw_id: int, new_value: str, updated_by: str = "Demo Technician"
    ) -> EmulatorPassword:
        """Change a password's value the way a technician does in IT Glue's web app."""
        pw = self.passwords[pw_id]
        moment = self.now()
        pw.password = new_value
        pw.password_updated_at = moment
        pw.updated_at = moment
        pw.updater_id = self.add_user(updated_by).id
        return pw

    def delete_password(self, pw_id: int) -> None:
        """Mark a password deleted: the API answers 404 for it from now on."""
        self.passwords[pw_id].deleted = True

    def resource_url(self, pw: EmulatorPassword) -> str:
        """The web-app URL IT Glue puts in ``resource-url`` and in workflow webhooks."""
        return f"https://{self.subdomain}.itglue.com/{pw.organization_id}/passwords/{pw.id}"

    def seed_demo(self) -> None:
        """Fill in a few MSP customers with realistic passwords for demos and screenshots."""
        northwind = self.add_organization("Northwind Traders", short_name="NWT")
        contoso = self.add_organization("Contoso Dental", short_name="CDN")
        fabrikam = self.add_organization("Fabrikam Logistics", short_name="FAB")
        self.add_password(
            northwind.id,
            "Domain Admin",
            "NWT\\administrator",
            "Winter-Harbor-42!",
            category_name="Active Directory",
            url="https://dc01.northwind.local",
            updated_by="Dana Whitfield",
        )
        self.add_password(
            northwind.id,
            "Backup service account",
            "svc-backup",
            "Copper-Lantern-77#",
            category_name="Active Directory",
            updated_by="Dana Whitfield",
        )
        self.add_password(
            northwind.id,
            "Reception PC local admin",
            "localadmin",
            "Maple-Orbit-19$",
            category_name="Local Account",
        )
        self.add_password(
            northwind.id,
            "Global admin",
            "admin@northwindtraders.onmicrosoft.com",
            "Quiet-Meadow-85%",
            category_name="Microsoft 365",
            url="https://admin.microsoft.com",
        )
        self.add_password(
            contoso.id,
            "Practice manager",
            "jsmith",
            "Silver-Canyon-23&",
            category_name="Active Directory",
            updated_by="Priya Raman",
        )
        self.add_password(
            contoso.id,
            "X-ray workstation",
            "imaging",
            "Amber-Falcon-61*",
            category_name="Local Account",
        )
        self.add_password(
            contoso.id,
            "Office 365 admin",
            "it@contosodental.com",
            "Velvet-Summit-38!",
            category_name="Microsoft 365",
            url="https://admin.microsoft.com",
        )
        self.add_password(
            contoso.id,
            "Owner's private notes",
            "owner",
            "Hidden-Value-00!",
            category_name="Local Account",
            visibility="only_me",
        )
        self.add_password(
            fabrikam.id,
            "Warehouse scanner service",
            "svc-scan",
            "Granite-Pulse-54+",
            category_name="Active Directory",
        )
        self.add_password(
            fabrikam.id,
            "Firewall admin",
            "admin",
            "Vault-Only-Secret-1!",
            category_name="Network Device",
            visibility="vault",
        )

    # ----------------------------------------------------------------------------- rate limit
    def _take_rate_token(self, key: str) -> float | None:
        """Count one request for ``key``; return seconds to wait if over the limit, else None."""
        return take_from_window(self._hits.setdefault(key, collections.deque()), self.clock(),
                                self.rate_limit, self.rate_window_seconds)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view of the state for ``GET /_emulator/state`` (no key, no values)."""
        return {
            "subdomain": self.subdomain,
            "api_keys": len(self.api_keys),
            "organizations": [{"id": o.id, "name": o.name} for o in self.organizations.values()],
            "passwords": [
                {
                    "id": p.id,
                    "organization_id": p.organization_id,
                    "name": p.name,
                    "username": p.username,
                    "resource_url": self.resource_url(p),
                    "visibility": p.visibility,
                    "deleted": p.deleted,
                    "password_updated_at": rfc3339(p.password_updated_at),
                }
                for p in self.passwords.values()
            ],
            "request_count": len(self.requests),
            # "GET /passwords": 12, ...: how often each route was called (no query, no key).
            "requests_by_route": dict(collections.Counter(
                f"{r.method} {r.path}" for r in self.requests)),
        }


# --------------------------------------------------------------------------------- responses
class _ApiError(Exception):
    """Raised inside handlers; turned into IT Glue's JSON:API error body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter
        self.headers = headers or {}

    def response(self) -> Response:
        error: dict[str, Any] = {"status": self.status, "title": self.title, "detail": self.detail}
        if self.pointer is not None:
            error["source"] = {"pointer": self.pointer}
        elif self.parameter is not None:
            error["source"] = {"parameter": self.parameter}
        return _jsonapi({"errors": [error]}, status=self.status, headers=self.headers)


def _jsonapi(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type=JSONAPI_MEDIA_TYPE,
        headers=headers,
    )


def _not_found(kind: str, ident: str) -> _ApiError:
    return _ApiError(404, "Record not found", f"The {kind} with id {ident!r} was not found.")


def _parse_int(value: str, kind: str) -> int:
    if not value.isdigit():
        raise _not_found(kind, value)
    return int(value)


def _bool_param(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"true", "1", "yes"}


def _paging(request: Request) -> tuple[int, int]:
    raw_number = request.query_params.get("page[number]", "1")
    raw_size = request.query_params.get("page[size]", str(DEFAULT_PAGE_SIZE))
    try:
        number = int(raw_number)
        if number < 1:
            raise ValueError
    except ValueError:
        raise _ApiError(
            422,
            "Invalid page number",
            f"page[number] must be a positive integer, got {raw_number!r}.",
            parameter="page[number]",
        ) from None
    try:
        size = int(raw_size)
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValueError
    except ValueError:
        raise _ApiError(
            422,
            "Invalid page size",
            f"page[size] must be an integer between 1 and {MAX_PAGE_SIZE}, got {raw_size!r}.",
            parameter="page[size]",
        ) from None
    return number, size


def _page_response(request: Request, resources: list[dict[str, Any]]) -> Response:
    number, size = _paging(request)
    total = len(resources)
    total_pages = max(math.ceil(total / size), 1)
    start = (number - 1) * size
    page = resources[start : start + size]

    def link(page_number: int) -> str:
        params = dict(request.query_params)
        params["page[number]"] = str(page_number)
        params["page[size]"] = str(size)
        return f"{request.url.scheme}://{request.url.netloc}{request.url.path}?{urlencode(params)}"

    next_page = number + 1 if number < total_pages else None
    prev_page = number - 1 if number > 1 else None
    links: dict[str, str | None] = {
        "self": link(number),
        "first": link(1),
        "prev": link(prev_page) if prev_page else None,
        "next": link(next_page) if next_page else None,
        "last": link(total_pages),
    }
    meta = {
        "current-page": number,
        "next-page": next_page,
        "prev-page": prev_page,
        "total-pages": total_pages,
        "total-count": total,
    }
    return _jsonapi({"data": page, "meta": meta, "links": links})


# ---------------------------------------------------------------------------- serialisation
def _organization_resource(org: EmulatorOrganization) -> dict[str, Any]:
    return {
        "id": str(org.id),
        "type": "organizations",
        "attributes": {
            "name": org.name,
            "short-name": org.short_name,
            "description": org.description,
            "organization-type-name": org.organization_type_name,
            "organization-status-name": org.organization_status_name,
            "created-at": rfc3339(org.created_at),
            "updated-at": rfc3339(org.updated_at),
        },
    }


def _password_resource(
    state: EmulatorState, pw: EmulatorPassword, *, show_value: bool, with_updater: bool = False
) -> dict[str, Any]:
    org = state.organizations.get(pw.organization_id)
    updater = state.users.get(pw.updater_id) if pw.updater_id is not None else None
    attributes: dict[str, Any] = {
        "organization-id": pw.organization_id,
        "organization-name": org.name if org else None,
        "resource-url": state.resource_url(pw),
        "name": pw.name,
        "username": pw.username,
        "password": pw.password,
        "url": pw.url,
        "notes": pw.notes,
        "password-updated-at": rfc3339(pw.password_updated_at),
        "updated-by": updater.name if updater else None,
        "password-category-id": pw.password_category_id,
        "password-category-name": pw.password_category_name,
        "resource-id": pw.resource_id,
        "resource-type": pw.resource_type,
        "restricted": pw.restricted,
        "archived": pw.archived,
        "created-at": rfc3339(pw.created_at),
        "updated-at": rfc3339(pw.updated_at),
    }
    # Without show_password (lists, PATCH by default) or without the key's Password Access
    # option, the value is left out entirely rather than sent as null: null would read as "this
    # password is empty", which is a different and wrong statement.
    if not show_value:
        del attributes["password"]
    resource: dict[str, Any] = {"id": str(pw.id), "type": "passwords", "attributes": attributes}
    if with_updater:
        resource["relationships"] = {
            "updater": {"data": {"id": str(updater.id), "type": "users"} if updater else None}
        }
    return resource


def _user_resource(user: EmulatorUser) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "type": "users",
        "attributes": {"name": user.name, "email": user.email},
    }


# --------------------------------------------------------------------------------- the app
_KeyOptions = dict[str, bool]
_Handler = Callable[[Request, EmulatorState, _KeyOptions], Awaitable[Response]]


def create_app(state: EmulatorState) -> ASGIApp:
    """Build the emulator's ASGI app over ``state`` (shared, mutable, inspectable by tests)."""

    def api(handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler with what every IT Glue call does: auth, faults, rate limit, log."""

        async def endpoint(request: Request) -> Response:
            response = await _answer(request)
            state.requests.append(
                RequestLogEntry(
                    method=request.method,
                    path=request.url.path,
                    query=dict(request.query_params),
                    status=response.status_code,
                )
            )
            return response

        async def _answer(request: Request) -> Response:
            try:
                key = request.headers.get("x-api-key")
                options = state.api_keys.get(key) if key else None
                if options is None:
                    raise _ApiError(
                        403,
                        "Forbidden",
                        "The API key is missing, invalid or has been revoked."
                        if key
                        else "No API key was sent: send it in the x-api-key header.",
                    )
                wait = state._take_rate_token(key or "")
                if wait is not None:
                    raise _ApiError(
                        429,
                        "Too Many Requests",
                        f"Rate limit of {state.rate_limit} requests per "
                        f"{state.rate_window_seconds:g} seconds exceeded.",
                        headers={"Retry-After": str(max(math.ceil(wait), 1))},
                    )
                if state.queued_failures:
                    status = state.queued_failures.pop(0)
                    if status == 429:
                        raise _ApiError(
                            429,
                            "Too Many Requests",
                            "Rate limit exceeded (emulated).",
                            headers={"Retry-After": str(state.fault_retry_after)},
                        )
                    raise _ApiError(status, "Server Error", "Something went wrong (emulated).")
                return await handler(request, state, options)
            except _ApiError as error:
                return error.response()

        return endpoint

    routes = [
        Route("/organizations", api(_list_organizations), methods=["GET"]),
        Route("/organizations/{org_id}", api(_show_organization), methods=["GET"]),
        Route("/passwords", api(_list_passwords), methods=["GET"]),
        Route("/passwords/{pw_id}", api(_show_password), methods=["GET"]),
        Route("/passwords/{pw_id}", api(_update_password), methods=["PATCH"]),
        Route(
            "/organizations/{org_id}/relationships/passwords",
            api(_list_passwords),
            methods=["GET"],
        ),
        Route(
            "/organizations/{org_id}/relationships/passwords/{pw_id}",
            api(_show_password),
            methods=["GET"],
        ),
        Route(
            "/organizations/{org_id}/relationships/passwords/{pw_id}",
            api(_update_password),
            methods=["PATCH"],
        ),
        Route("/_emulator/state", _emulator_state(state), methods=["GET"]),
        Route("/_emulator/passwords/{pw_id}/change", _emulator_change(state), methods=["POST"]),
        Route("/_emulator/faults", _emulator_faults(state), methods=["POST"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            return _ApiError(
                405, "Method Not Allowed", f"{request.method} is not allowed here."
            ).response()
        return _ApiError(status, "Not Found", f"No route matches {request.url.path}.").response()

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def _visible_password(state: EmulatorState, request: Request) -> EmulatorPassword:
    """Find the password of the path, honouring the nested organization if there is one."""
    raw_id = request.path_params["pw_id"]
    pw_id = _parse_int(raw_id, "password")
    pw = state.passwords.get(pw_id)
    # Vault and "Only Me" passwords answer 404, like deleted ones. IT Glue documents them as
    # unreachable through the API and never lists them for an API key; a record the caller may
    # not even know exists is conventionally "not found" in its Rails/JSON:API stack rather than
    # 403 (403 is what the API uses for the key itself). The detail does not confirm existence.
    if pw is None or not pw.reachable:
        raise _not_found("password", raw_id)
    raw_org = request.path_params.get("org_id")
    if raw_org is not None:
        org_id = _parse_int(raw_org, "organization")
        if org_id not in state.organizations:
            raise _not_found("organization", raw_org)
        if pw.organization_id != org_id:
            raise _not_found("password", raw_id)
    return pw


async def _list_organizations(
    request: Request, state: EmulatorState, options: _KeyOptions
) -> Response:
    orgs = sorted(state.organizations.values(), key=lambda o: o.id)
    wanted = request.query_params.get("filter[name]")
    if wanted is not None:
        orgs = [o for o in orgs if o.name.casefold() == wanted.casefold()]
    return _page_response(request, [_organization_resource(o) for o in orgs])


async def _show_organization(
    request: Request, state: EmulatorState, options: _KeyOptions
) -> Response:
    raw_id = request.path_params["org_id"]
    org = state.organizations.get(_parse_int(raw_id, "organization"))
    if org is None:
        raise _not_found("organization", raw_id)
    return _jsonapi({"data": _organization_resource(org)})


# Sort keys of the passwords list: IT Glue's documented ones (name, username, id, created_at,
# updated_at) and password_updated_at; "-" in front sorts descending. Both spellings of the
# timestamps are accepted (IT Glue's examples use either).
_PASSWORD_SORTS: dict[str, Callable[[EmulatorPassword], Any]] = {
    "id": lambda p: p.id,
    "name": lambda p: (p.name.casefold(), p.id),
    "username": lambda p: ((p.username or "").casefold(), p.id),
    "created_at": lambda p: (p.created_at, p.id),
    "updated_at": lambda p: (p.updated_at, p.id),
    "password_updated_at": lambda p: (p.password_updated_at or datetime.min.replace(tzinfo=UTC),
                                      p.id),
}
# filter[...] of the passwords list, as IT Glue documents them: exact matches except name and
# url (case-insensitive substring, like IT Glue's search filters).
_PASSWORD_FILTERS = ("id", "name", "organization_id", "password_category_id", "url",
                     "cached_resource_name")


def _sorted_passwords(request: Request, pws: list[EmulatorPassword]) -> list[EmulatorPassword]:
    raw = request.query_params.get("sort", "").strip()
    if not raw:
        return pws
    # JSON:API allows several comma-separated keys; the first one that differs decides.
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    for part in reversed(keys):  # stable sorts, least significant key first
        descending = part.startswith("-")
        name = part.lstrip("-").replace("-", "_")
        if name not in _PASSWORD_SORTS:
            raise _ApiError(
                422,
                "Invalid sort",
                f"Passwords cannot be sorted by {part!r}; use one of "
                + ", ".join(sorted(_PASSWORD_SORTS)) + " (with - for descending).",
                parameter="sort",
            )
        pws = sorted(pws, key=_PASSWORD_SORTS[name], reverse=descending)
    return pws


def _filtered_passwords(request: Request, pws: list[EmulatorPassword]) -> list[EmulatorPassword]:
    for param, value in request.query_params.items():
        match = re.fullmatch(r"filter\[(\w+)\]", param)
        if match is None:
            continue
        name = match.group(1)
        if name not in _PASSWORD_FILTERS:
            raise _ApiError(
                422,
                "Invalid filter",
                f"Passwords cannot be filtered by {name!r}; use one of "
                + ", ".join(_PASSWORD_FILTERS) + ".",
                parameter=param,
            )
        if name in {"id", "organization_id", "password_category_id"}:
            wanted = {part.strip() for part in value.split(",")}
            if not all(part.isdigit() for part in wanted):
                raise _ApiError(
                    422,
                    "Invalid filter",
                    f"{name} must be an integer, got {value!r}.",
                    parameter=param,
                )
            attribute = {"id": "id", "organization_id": "organization_id",
                         "password_category_id": "password_category_id"}[name]
            pws = [p for p in pws if str(getattr(p, attribute)) in wanted]
        elif name == "cached_resource_name":
            pws = [p for p in pws if (p.resource_type or "") == value]
        else:
            needle = value.casefold()
            pws = [p for p in pws if needle in (getattr(p, name) or "").casefold()]
    return pws


async def _list_passwords(request: Request, state: EmulatorState, options: _KeyOptions) -> Response:
    raw_org = request.path_params.get("org_id")
    pws = sorted((p for p in state.passwords.values() if p.reachable), key=lambda p: p.id)
    if raw_org is not None:
        if not raw_org.isdigit() or int(raw_org) not in state.organizations:
            raise _not_found("organization", raw_org)
        pws = [p for p in pws if p.organization_id == int(raw_org)]
    pws = _sorted_passwords(request, _filtered_passwords(request, pws))
    return _page_response(request, [_password_resource(state, p, show_value=False) for p in pws])


async def _show_password(request: Request, state: EmulatorState, options: _KeyOptions) -> Response:
    pw = _visible_password(state, request)
    show = _bool_param(request, "show_password", True) and options.get("password_access", False)
    includes = {part.strip() for part in request.query_params.get("include", "").split(",")}
    with_updater = "updater" in includes
    body: dict[str, Any] = {
        "data": _password_resource(state, pw, show_value=show, with_updater=with_updater)
    }
    if with_updater:
        updater = state.users.get(pw.updater_id) if pw.updater_id is not None else None
        body["included"] = [_user_resource(updater)] if updater else []
    return _jsonapi(body)


async def _update_password(
    request: Request, state: EmulatorState, options: _KeyOptions
) -> Response:
    pw = _visible_password(state, request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in {JSONAPI_MEDIA_TYPE, "application/json"}:
        raise _ApiError(
            415,
            "Unsupported Media Type",
            f"Send the body as {JSONAPI_MEDIA_TYPE}, not {content_type or 'nothing'}.",
        )
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise _ApiError(
            422, "Invalid request body", "The request body is not valid JSON.", pointer=""
        ) from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise _ApiError(
            422, "Invalid request body", "A 'data' object is required.", pointer="/data"
        )
    if data.get("type") != "passwords":
        raise _ApiError(
            422, "Invalid resource type", "data.type must be 'passwords'.", pointer="/data/type"
        )
    if "id" in data and str(data["id"]) != str(pw.id):
        raise _ApiError(
            422, "Invalid id", "data.id does not match the id in the URL.", pointer="/data/id"
        )
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        raise _ApiError(
            422,
            "Invalid request body",
            "data.attributes must be an object.",
            pointer="/data/attributes",
        )
    for name, value in attributes.items():
        problem = _attribute_problem(name, value)
        if problem:
            raise _ApiError(422, "Invalid attribute", problem, pointer=f"/data/attributes/{name}")
    # Writing a value needs the key's Password Access option just as reading one does. IT Glue
    # documents the requirement but not the status; 403 is how its API refuses a key that is
    # valid but not allowed, so a PATCH touching "password" is refused whole (nothing applied).
    if "password" in attributes and not options.get("password_access", False):
        raise _ApiError(
            403,
            "Forbidden",
            "This API key does not have Password Access, so it cannot change password values.",
            pointer="/data/attributes/password",
        )
    moment = state.now()
    if "password" in attributes and attributes["password"] != pw.password:
        pw.password = attributes["password"]
        pw.password_updated_at = moment
    for simple in ("name", "username", "url", "notes", "restricted", "archived"):
        if simple in attributes:
            setattr(pw, simple, attributes[simple])
    if "password-category-id" in attributes:
        category_id = attributes["password-category-id"]
        pw.password_category_id = category_id
        pw.password_category_name = next(
            (n for n, i in state.categories.items() if i == category_id), None
        )
    pw.updated_at = moment
    pw.updater_id = state.add_user(state.api_user_name, email=None).id
    show = _bool_param(request, "show_password", False) and options.get("password_access", False)
    return _jsonapi({"data": _password_resource(state, pw, show_value=show)})


def _attribute_problem(name: str, value: Any) -> str | None:
    """Why a PATCH attribute is unacceptable, or None if it is fine."""
    if name not in WRITABLE_PASSWORD_ATTRIBUTES:
        return f"{name} is not a writable attribute."
    if name in {"restricted", "archived"}:
        return None if isinstance(value, bool) else f"{name} must be true or false."
    if name == "password-category-id":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
        return None if ok else f"{name} must be an integer."
    if value is not None and not isinstance(value, str):
        return f"{name} must be a string."
    if name == "name" and not value:
        return "name can't be blank."
    return None


def _emulator_state(state: EmulatorState) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return _jsonapi(state.snapshot())

    return endpoint


def _emulator_faults(state: EmulatorState) -> Callable[[Request], Awaitable[Response]]:
    """Emulator-only: ``{"statuses": [429, 503], "retry_after": 2}`` makes the next API
    requests answer those statuses, in order (a 429 with that ``Retry-After``)."""

    async def endpoint(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        statuses = body.get("statuses") if isinstance(body, dict) else None
        retry_after = body.get("retry_after", 1) if isinstance(body, dict) else 1
        if (not isinstance(statuses, list)
                or not all(isinstance(s, int) and 400 <= s <= 599 for s in statuses)
                or not isinstance(retry_after, int) or retry_after < 0):
            return _ApiError(422, "Invalid request body",
                             'Send {"statuses": [429, ...], "retry_after": seconds}.').response()
        state.queued_failures.extend(statuses)
        state.fault_retry_after = retry_after
        return _jsonapi({"queued": list(state.queued_failures)})

    return endpoint


def _emulator_change(state: EmulatorState) -> Callable[[Request], Awaitable[Response]]:
    """Emulator-only: change a password as if a technician did it in IT Glue's web app."""

    async def endpoint(request: Request) -> Response:
        raw_id = request.path_params["pw_id"]
        try:
            pw_id = _parse_int(raw_id, "password")
            if pw_id not in state.passwords:
                raise _not_found("password", raw_id)
            try:
                body = json.loads(await request.body())
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("password"), str):
                raise _ApiError(
                    422, "Invalid request body", 'Send {"password": "..."}.', pointer="/password"
                )
            updated_by = body.get("updated_by")
            pw = state.change_password(
                pw_id,
                body["password"],
                updated_by=updated_by if isinstance(updated_by, str) else "Demo Technician",
            )
        except _ApiError as error:
            return error.response()
        return _jsonapi(
            {
                "id": str(pw.id),
                "resource_url": state.resource_url(pw),
                "resource_name": pw.name,
                "organization_name": state.organizations[pw.organization_id].name,
                "password_updated_at": rfc3339(pw.password_updated_at),
            }
        )

    return endpoint


# ------------------------------------------------------------------------------------ CLI
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m qp_tenant.itglue.emulator",
        description="Serve an IT Glue REST API emulator for demos and tests.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--api-key", action="append", default=[], help="accepted key with Password Access"
    )
    parser.add_argument(
        "--api-key-without-password-access",
        action="append",
        default=[],
        help="accepted key lacking the Password Access option",
    )
    parser.add_argument("--subdomain", default="acme")
    parser.add_argument("--seed-demo", action="store_true", help="fill in demo customers")
    parser.add_argument("--rate-limit", type=int, default=DEFAULT_RATE_LIMIT)
    parser.add_argument("--rate-window", type=float, default=DEFAULT_RATE_WINDOW_SECONDS)
    return parser.parse_args(argv)


def _listening_socket(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP matters: with protocol 0 asyncio never sets TCP_NODELAY on accepted
    # connections, and every response stalls about 40 ms (Nagle + delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


async def _serve(app: ASGIApp, sock: socket.socket) -> None:
    import uvicorn

    config = uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=1, lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving
            return
        await asyncio.sleep(0.01)
    host, port = sock.getsockname()[:2]
    print(listening_line(host, port), flush=True)
    await serving


def main(argv: list[str] | None = None) -> int:
    """Run the emulator under uvicorn until SIGINT/SIGTERM."""
    args = _parse_args(argv)
    # Logs go to stderr: stdout carries only the "listening on" line scripts wait for.
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    state = EmulatorState(
        subdomain=args.subdomain,
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
    )
    for key in args.api_key:
        state.add_api_key(key, password_access=True)
    for key in args.api_key_without_password_access:
        state.add_api_key(key, password_access=False)
    if not state.api_keys:
        logger.warning("no --api-key given: every API request will be refused with 403")
    if args.seed_demo:
        state.seed_demo()
    sock = _listening_socket(args.host, args.port)
    try:
        asyncio.run(_serve(create_app(state), sock))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
