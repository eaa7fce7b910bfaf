"""An async client for the parts of IT Glue's REST API the tenant uses.

It verifies API keys, lists organizations and passwords, reads a password's value and writes
one back. The ``httpx.AsyncClient`` is injected (one long-lived client per process; tests hand
in one over ``httpx.ASGITransport`` to the emulator). Every failure is an :class:`ITGlueError`
whose message is a sentence a technician can act on, carrying IT Glue's own title and detail,
and never the API key or a password value.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from qp_common.redact import redact
from qp_common.transport import TransportFailure, describe_transport_error

logger = logging.getLogger(__name__)

REGION_BASE_URLS: dict[str, str] = {
    "us": "https://api.itglue.com",
    "eu": "https://api.eu.itglue.com",
    "au": "https://api.au.itglue.com",
}
JSONAPI_MEDIA_TYPE = "application/vnd.api+json"
MAX_PAGE_SIZE = 1000

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


def base_url_for(region: str, override: str | None = None) -> str:
    """The API base URL for ``region`` ("us", "eu", "au"), unless ``override`` is set.

    ``override`` (``QP_ITGLUE_BASE_URL``: an emulator, a proxy) wins over the region.

    Raises:
        ValueError: the region is unknown and there is no override.
    """
    if override:
        return override.rstrip("/")
    try:
        return REGION_BASE_URLS[region.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(REGION_BASE_URLS))
        raise ValueError(f"Unknown IT Glue region {region!r}; expected one of {known}.") from None


# -------------------------------------------------------------------------------- errors
class ITGlueError(Exception):
    """A failed IT Glue call. ``title``/``detail`` are IT Glue's own words (may be empty)."""

    summary = "The IT Glue request failed"

    def __init__(self, status: int | None = None, title: str = "", detail: str = "") -> None:
        super().__init__(status, title, detail)
        self.status = status
        self.title = title
        self.detail = detail

    def __str__(self) -> str:
        said = ": ".join(part for part in (self.title, self.detail) if part)
        where = f" (HTTP {self.status})" if self.status is not None else ""
        if said:
            return f"{self.summary}{where}. IT Glue said: {said}"
        return f"{self.summary}{where}."


class ITGlueAuthError(ITGlueError):
    """401/403: the key is missing, wrong, revoked, or not allowed to do this."""

    summary = "IT Glue refused the API key"


class ITGluePasswordAccessDenied(ITGlueAuthError):
    """403 on a write of a password value: most likely the key lacks "Password Access"."""

    summary = (
        "IT Glue refused to change the password value; check that the API key has the "
        "Password Access option"
    )


class ITGlueNotFound(ITGlueError):
    """404: no such record, or one the API cannot reach (Vault, "Only Me", deleted)."""

    summary = "IT Glue has no such record (or it is not reachable through the API)"


class ITGlueValidationError(ITGlueError):
    """422 (and other 4xx about the request): IT Glue rejected what was sent."""

    summary = "IT Glue rejected the request"

    def __init__(
        self,
        status: int | None = None,
        title: str = "",
        detail: str = "",
        pointer: str | None = None,
    ) -> None:
        super().__init__(status, title, detail)
        self.pointer = pointer


class ITGlueRateLimited(ITGlueError):
    """429 after every retry: the key's rate limit is exhausted for now."""

    summary = "IT Glue's rate limit is exhausted; try again later"

    def __init__(
        self,
        status: int | None = 429,
        title: str = "",
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, title, detail)
        self.retry_after = retry_after

    def __str__(self) -> str:
        text = super().__str__()
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g} s)"
        return text


class ITGlueUnreachable(ITGlueError):
    """Network error, timeout, TLS failure, a 5xx, or an answer that is not IT Glue's.

    When no HTTP answer came back at all, ``transport`` says why (the name did not resolve,
    the certificate is not trusted...): IT Glue said nothing, so nothing is quoted as its.
    """

    summary = "IT Glue could not be reached"

    def __init__(
        self,
        status: int | None = None,
        title: str = "",
        detail: str = "",
        transport: TransportFailure | None = None,
    ) -> None:
        super().__init__(status, title, detail)
        self.transport = transport

    def __str__(self) -> str:
        if self.transport is not None:
            return f"{self.summary}: {self.transport.message}"
        return super().__str__()


# ----------------------------------------------------------------------------- rate limit
class RateLimiter:
    """A sliding-window limiter: at most ``max_requests`` per ``per_seconds``.

    Share one instance across all the work done with one API key (IT Glue counts per key:
    3000 requests per 5 minutes), not one per call. ``acquire()`` waits, through the injected
    ``sleep``, until a request may go out; waiters are served in order.
    """

    def __init__(
        self,
        max_requests: int = 3000,
        per_seconds: float = 300.0,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_requests < 1 or per_seconds <= 0:
            raise ValueError("max_requests must be >= 1 and per_seconds > 0")
        self.max_requests = max_requests
        self.per_seconds = per_seconds
        self._clock = clock
        self._sleep = sleep
        self._sent: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, then count it."""
        async with self._lock:
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.per_seconds:
                    self._sent.popleft()
                if len(self._sent) < self.max_requests:
                    self._sent.append(now)
                    return
                await self._sleep(self._sent[0] + self.per_seconds - now)


# --------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class Organization:
    """An IT Glue organization (an MSP customer)."""

    id: str
    name: str


@dataclass(frozen=True)
class Password:
    """An IT Glue password. ``password`` is None when not shown (lists, no Password Access)."""

    id: str
    organization_id: str | None
    organization_name: str | None
    name: str
    username: str | None
    password: str | None = field(repr=False)
    url: str | None
    resource_url: str | None
    category_name: str | None
    updated_at: datetime | None
    password_updated_at: datetime | None
    updated_by: str | None
    updater_name: str | None
    updater_email: str | None
    restricted: bool
    archived: bool
    # Whether IT Glue sent the value at all: an empty password is null, a value withheld
    # (no show_password, or a key without Password Access) is left out.
    value_shown: bool = False


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _time_or_none(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        logger.warning("IT Glue sent an unparsable time %r", value)
        return None


def _parse_organization(resource: dict[str, Any]) -> Organization:
    attributes = resource.get("attributes") or {}
    return Organization(id=str(resource["id"]), name=str(attributes.get("name") or ""))


def _parse_password(resource: dict[str, Any], included: Iterable[dict[str, Any]] = ()) -> Password:
    attributes = resource.get("attributes") or {}
    updater: dict[str, Any] = {}
    relation = ((resource.get("relationships") or {}).get("updater") or {}).get("data")
    for item in included:
        if item.get("type") != "users":
            continue
        if relation is None or str(item.get("id")) == str(relation.get("id")):
            updater = item.get("attributes") or {}
            break
    return Password(
        id=str(resource["id"]),
        organization_id=_str_or_none(attributes.get("organization-id")),
        organization_name=attributes.get("organization-name"),
        name=str(attributes.get("name") or ""),
        username=attributes.get("username"),
        password=attributes.get("password"),
        url=attributes.get("url"),
        resource_url=attributes.get("resource-url"),
        category_name=attributes.get("password-category-name"),
        updated_at=_time_or_none(attributes.get("updated-at")),
        password_updated_at=_time_or_none(attributes.get("password-updated-at")),
        updated_by=_str_or_none(attributes.get("updated-by")),
        updater_name=updater.get("name"),
        updater_email=updater.get("email"),
        restricted=bool(attributes.get("restricted")),
        archived=bool(attributes.get("archived")),
        value_shown="password" in attributes,
    )


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


# --------------------------------------------------------------------------------- client
class ITGlueClient:
    """IT Glue REST API calls for one API key.

    Args:
        http: the process's long-lived ``httpx.AsyncClient`` (its timeouts apply).
        base_url: from :func:`base_url_for`.
        api_key: the ``ITG.…`` key; sent only in the ``x-api-key`` header.
        limiter: the key's shared :class:`RateLimiter`, if any.
        max_retries: how many times a 429 is retried before :class:`ITGlueRateLimited`.
        sleep: how to wait between retries (tests inject one that does not wait).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str,
        limiter: RateLimiter | None = None,
        max_retries: int = 3,
        *,
        sleep: Sleep = asyncio.sleep,
        max_backoff_seconds: float = 300.0,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._limiter = limiter
        self._max_retries = max_retries
        self._sleep = sleep
        self._max_backoff = max_backoff_seconds

    def __repr__(self) -> str:
        return f"ITGlueClient(base_url={self._base_url!r})"

    # ------------------------------------------------------------------------------- calls
    async def verify(self) -> None:
        """Check the key with the cheapest call there is; raise an ITGlueError if it fails."""
        await self._request("GET", "/organizations", params={"page[size]": "1"})

    async def list_organizations(self, page_size: int = MAX_PAGE_SIZE) -> list[Organization]:
        """Every organization the key can see, following all pages."""
        return [
            _parse_organization(r) for r in await self._all_pages("/organizations", {}, page_size)
        ]

    async def get_organization(self, organization_id: str | int) -> Organization:
        """One organization by id."""
        body = await self._request("GET", f"/organizations/{organization_id}")
        return _parse_organization(body["data"])

    async def get_password(
        self,
        password_id: str | int,
        org_id: str | int | None = None,
        include_updater: bool = True,
        show_password: bool = True,
    ) -> Password:
        """One password with its value (``password`` is None if the key lacks Password Access),
        or without it when ``show_password`` is false (all that is wanted is its name).

        With ``org_id`` the nested route is used, so a password of another organization is a
        404 rather than a surprise.
        """
        # IT Glue shows the value by default when one password is read: say no explicitly.
        params = {"show_password": "true" if show_password else "false"}
        if include_updater:
            params["include"] = "updater"
        body = await self._request("GET", self._password_path(password_id, org_id), params=params)
        return _parse_password(body["data"], body.get("included") or [])

    async def list_passwords(
        self, org_id: str | int, page_size: int = MAX_PAGE_SIZE
    ) -> list[Password]:
        """Every password of an organization, following all pages (values are never listed)."""
        resources = await self._all_pages(
            "/passwords", {"filter[organization_id]": str(org_id)}, page_size
        )
        return [_parse_password(r) for r in resources]

    async def list_passwords_page(
        self, *, sort: str, page_number: int = 1, page_size: int = MAX_PAGE_SIZE
    ) -> tuple[list[Password], int | None]:
        """One page of every password the key can see, in ``sort`` order (``-updated_at``:
        newest change first). Returns the page and the next page's number (None: last)."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        body = await self._request("GET", "/passwords", params={
            "sort": sort, "page[number]": str(page_number), "page[size]": str(page_size)})
        next_page = (body.get("meta") or {}).get("next-page")
        resources = body.get("data") or []
        advancing = isinstance(next_page, int) and next_page > page_number
        return [_parse_password(r) for r in resources], next_page if advancing else None

    async def update_password(
        self,
        password_id: str | int,
        attributes: dict[str, Any],
        org_id: str | int | None = None,
    ) -> Password:
        """Partially update a password: only ``attributes`` are sent (kebab-case; snake_case
        names are converted). The returned Password has no value (IT Glue's default)."""
        sent = {name.replace("_", "-"): value for name, value in attributes.items()}
        body = {"data": {"type": "passwords", "attributes": sent}}
        secrets = [v for k, v in sent.items() if k == "password" and isinstance(v, str)]
        try:
            answer = await self._request(
                "PATCH", self._password_path(password_id, org_id), json_body=body, secrets=secrets
            )
        except ITGlueAuthError as error:
            if "password" not in sent or error.status != 403:
                raise
            raise ITGluePasswordAccessDenied(error.status, error.title, error.detail) from None

        return _parse_password(answer["data"])

    # ----------------------------------------------------------------------------- plumbing
    @staticmethod
    def _password_path(password_id: str | int, org_id: str | int | None) -> str:
        if org_id is None:
            return f"/passwords/{password_id}"
        return f"/organizations/{org_id}/relationships/passwords/{password_id}"

    async def _all_pages(
        self, path: str, params: dict[str, str], page_size: int
    ) -> list[dict[str, Any]]:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        resources: list[dict[str, Any]] = []
        number = 1
        while True:
            page_params = {**params, "page[size]": str(page_size), "page[number]": str(number)}
            body = await self._request("GET", path, params=page_params)
            resources.extend(body.get("data") or [])
            next_page = (body.get("meta") or {}).get("next-page")
            # Stop on a missing or non-advancing next-page rather than looping forever.
            if not isinstance(next_page, int) or next_page <= number:
                return resources
            number = next_page

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        secrets: Iterable[str] = (),
    ) -> dict[str, Any]:
        headers = {"x-api-key": self._api_key, "Accept": JSONAPI_MEDIA_TYPE}
        content: bytes | None = None
        if json_body is not None:
            headers["Content-Type"] = JSONAPI_MEDIA_TYPE
            content = json.dumps(json_body).encode()
        redact = [self._api_key, *secrets]
        attempt = 0
        while True:
            if self._limiter is not None:
                await self._limiter.acquire()
            try:
                response = await self._http.request(
                    method, self._base_url + path, params=params, headers=headers, content=content
                )
            except httpx.TransportError as exc:  # timeouts too: no answer from IT Glue at all
                failure = describe_transport_error(exc, _host_of(self._base_url))
                raise ITGlueUnreachable(
                    transport=TransportFailure(failure.kind, _redact(failure.message, redact))
                ) from exc
            if response.status_code == 429:
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                if attempt >= self._max_retries:
                    title, detail, _ = _error_details(response, redact)
                    raise ITGlueRateLimited(429, title, detail, retry_after=retry_after)
                delay = retry_after if retry_after is not None else float(2**attempt)
                delay = min(delay, self._max_backoff)
                logger.info(
                    "IT Glue rate limit hit on %s %s; retrying in %.0f s (%d/%d)",
                    method,
                    path,
                    delay,
                    attempt + 1,
                    self._max_retries,
                )
                attempt += 1
                await self._sleep(delay)
                continue
            return _decode(response, redact, self._base_url)


def _host_of(base_url: str) -> str:
    """``host[:port]`` of a base URL: all a transport failure names (never a path or key)."""
    return urlsplit(base_url).netloc.rpartition("@")[2] or base_url


def _redact(text: str, secrets: Iterable[str]) -> str:
    """IT Glue's words with the key, any value sent, and anything secret-shaped masked."""
    return redact(text, secrets)


def _error_details(response: httpx.Response, secrets: Iterable[str]) -> tuple[str, str, str | None]:
    """IT Glue's title, detail and source pointer from a JSON:API error body (tolerantly)."""
    secrets = list(secrets)
    try:
        body = response.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        first = errors[0] if isinstance(errors, list) and errors else {}
    except ValueError:
        first = {}
    if not isinstance(first, dict):
        first = {}
    title = str(first.get("title") or response.reason_phrase or "")
    detail = str(first.get("detail") or "")
    source = first.get("source")
    if not isinstance(source, dict):
        source = {}
    pointer = source.get("pointer") or source.get("parameter")
    return _redact(title, secrets), _redact(detail, secrets), pointer


def _decode(response: httpx.Response, secrets: list[str], base_url: str) -> dict[str, Any]:
    status = response.status_code
    if 200 <= status < 300:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ITGlueUnreachable(
                status, "Unexpected answer", f"{base_url} did not answer with IT Glue's JSON."
            )
        return body
    title, detail, pointer = _error_details(response, secrets)
    if status in (401, 403):
        raise ITGlueAuthError(status, title, detail)
    if status == 404:
        raise ITGlueNotFound(status, title, detail)
    if status >= 500:
        raise ITGlueUnreachable(status, title, detail)
    if 400 <= status < 500:
        raise ITGlueValidationError(status, title, detail, pointer=pointer)
    raise ITGlueUnreachable(status, title, detail or "Unexpected HTTP status.")
