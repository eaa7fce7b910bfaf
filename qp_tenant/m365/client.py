"""Microsoft Graph with an app-only token: list a tenant's users, reset a user's password.

The token comes from MSAL (Microsoft's library: client-credentials grant, cached and renewed
by MSAL itself); MSAL is synchronous, so it runs in a worker thread. Graph calls go through
an ``httpx.AsyncClient``. Both use the base URLs of :class:`M365Endpoints`
(``QP_M365_LOGIN_URL``, ``QP_M365_GRAPH_URL``) and trust ``QP_M365_CA_FILE`` in addition to
the usual CAs, which is how tests point them at the TLS emulator (qp_tenant/m365/emulator.py).

Refusals become :class:`M365Error` subclasses that carry Microsoft's own text; nothing here
ever puts a client secret, an access token or a password in an exception or a log line.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import hashlib
import json
import logging
import os
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import certifi
import httpx
import msal
import requests

log = logging.getLogger(__name__)

DEFAULT_LOGIN_URL = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com"
GRAPH_PERMISSION = "User.ReadWrite.All"
USER_FIELDS = "id,userPrincipalName,displayName,onPremisesSyncEnabled"
# Directory role template ids (the same in every tenant); app-only tokens list the roles of
# the app's service principal in their ``wids`` claim.
DIRECTORY_ROLE_IDS = {
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
}
USER_ADMIN = "User Administrator"
PRIVILEGED_ADMIN = "Privileged Authentication Administrator"
HTTP_TIMEOUT_SECONDS = 15.0


class M365Error(Exception):
    """A refusal or failure, with the sentence to show (Microsoft's text where it gave one)."""

    code = "m365_error"

    def __init__(self, message: str, *, status: int | None = None,
                 graph_code: str | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.graph_code = graph_code
        self.retry_after = retry_after


class M365CredentialsRejected(M365Error):
    """The login endpoint refused the tenant id, the application or its secret (AADSTS…)."""

    code = "m365_credentials_rejected"


class M365Unreachable(M365Error):
    """Microsoft's login endpoint or Graph could not be reached (network, TLS, 5xx)."""

    code = "m365_unreachable"


class GraphError(M365Error):
    """Graph answered with an error body ``{"error": {"code", "message"}}``."""

    code = "m365_graph_error"


class GraphThrottled(GraphError):
    """Graph kept answering 429 longer than the caller was willing to wait."""

    code = "m365_throttled"


@dataclass(frozen=True)
class M365Credentials:
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class GraphUser:
    id: str
    user_principal_name: str
    display_name: str
    on_premises_sync_enabled: bool


# ------------------------------------------------------------------------- endpoints
class _TimeoutSession(requests.Session):
    """MSAL's HTTP client: requests has no default timeout, so a stalled login never ends."""

    def request(self, method: str, url: str,  # type: ignore[override]
                *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT_SECONDS)
        return super().request(method, url, *args, **kwargs)


_bundles: dict[str, str] = {}
_bundles_lock = threading.Lock()


def _ca_bundle(ca_file: str) -> str:
    """The usual CAs plus ``ca_file`` in one PEM file (requests' ``verify`` takes one path)."""
    with _bundles_lock:
        if ca_file not in _bundles:
            handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - outlives this function
                "wb", prefix="qp-m365-ca-", suffix=".pem", delete=False)
            with handle, open(certifi.where(), "rb") as base, open(ca_file, "rb") as extra:
                handle.write(base.read() + b"\n" + extra.read())
            _bundles[ca_file] = handle.name
            atexit.register(_remove, handle.name)
        return _bundles[ca_file]


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@dataclass(frozen=True)
class M365Endpoints:
    """Where the login endpoint and Graph are, and an extra CA to trust for both."""

    login_url: str = DEFAULT_LOGIN_URL
    graph_url: str = DEFAULT_GRAPH_URL
    ca_file: str = ""

    def __post_init__(self) -> None:
        for name in ("login_url", "graph_url"):
            value = getattr(self, name).rstrip("/")
            if not value.startswith("https://"):
                # MSAL refuses any other authority, and a token must never travel in clear.
                raise ValueError(f"QP_M365_{name.upper()} must be an https:// URL, not {value!r}")
            object.__setattr__(self, name, value)

    @property
    def scope(self) -> str:
        return f"{self.graph_url}/.default"

    def requests_session(self) -> requests.Session:
        session = _TimeoutSession()
        if self.ca_file:
            # WORKAROUND: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a
            # session's verify (and MSAL's own verify= argument) unless trust_env is off.
            session.trust_env = False
            session.verify = _ca_bundle(self.ca_file)
        return session

    def http_client(self) -> httpx.AsyncClient:
        verify: ssl.SSLContext | bool = True
        if self.ca_file:
            context = ssl.create_default_context(cafile=certifi.where())
            context.load_verify_locations(cafile=self.ca_file)
            verify = context
        return httpx.AsyncClient(verify=verify,
                                 timeout=httpx.Timeout(HTTP_TIMEOUT_SECONDS, connect=5.0),
                                 limits=httpx.Limits(max_connections=32))


# ---------------------------------------------------------------------------- tokens
def token_claims(access_token: str) -> dict[str, Any]:
    """The claims of a JWT access token, read without verifying it (only to explain refusals:
    ``roles`` are the consented application permissions, ``wids`` the directory roles)."""
    try:
        payload = access_token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def directory_roles(claims: dict[str, Any]) -> list[str] | None:
    """Names of the token's directory roles we know, or None when the token does not say."""
    wids = claims.get("wids")
    if not isinstance(wids, list):
        return None
    return [name for name, role_id in DIRECTORY_ROLE_IDS.items() if role_id in wids]


def missing_role(roles: list[str] | None, administrator: bool) -> str:
    """The directory role a password reset was refused for lack of."""
    if administrator:
        return PRIVILEGED_ADMIN
    if roles is not None and (USER_ADMIN in roles or PRIVILEGED_ADMIN in roles):
        # It already may reset ordinary users: the target must hold an admin role.
        return PRIVILEGED_ADMIN
    return USER_ADMIN


@dataclass
class _App:
    app: msal.ConfidentialClientApplication
    lock: threading.Lock


class TokenProvider:
    """App-only Graph tokens per (tenant, application, secret), through MSAL's cache."""

    def __init__(self, endpoints: M365Endpoints):
        self.endpoints = endpoints
        self._apps: dict[str, _App] = {}
        self._lock = threading.Lock()
        self.requests = 0  # token endpoint calls (MSAL cache misses); for tests and benchmarks

    @staticmethod
    def _key(credentials: M365Credentials) -> str:
        raw = "\0".join((credentials.tenant_id, credentials.client_id,
                         credentials.client_secret))
        return hashlib.sha256(raw.encode()).hexdigest()

    async def token(self, credentials: M365Credentials) -> str:
        return await asyncio.to_thread(self._token, credentials)

    def forget(self, credentials: M365Credentials) -> None:
        """Drop a cached token (Graph refused it) so that the next call gets a new one."""
        with self._lock:
            entry = self._apps.pop(self._key(credentials), None)
        if entry is not None:
            with entry.lock:
                entry.app.remove_tokens_for_client()

    def _app(self, credentials: M365Credentials) -> _App:
        key = self._key(credentials)
        with self._lock:
            entry = self._apps.get(key)
            if entry is None:
                app = msal.ConfidentialClientApplication(
                    credentials.client_id, client_credential=credentials.client_secret,
                    authority=f"{self.endpoints.login_url}/{quote(credentials.tenant_id)}",
                    # No instance discovery: it asks login.microsoftonline.com about the
                    # authority, which an emulator or a proxy in front of it is not.
                    instance_discovery=False,
                    http_client=self.endpoints.requests_session())
                entry = self._apps[key] = _App(app, threading.Lock())
            return entry

    def _token(self, credentials: M365Credentials) -> str:
        try:
            entry = self._app(credentials)
            with entry.lock:  # one token request per application at a time, then the cache
                before = time.monotonic()
                result = entry.app.acquire_token_for_client(scopes=[self.endpoints.scope])
                if result.get("token_source") == "identity_provider":
                    self.requests += 1
                    log.info("Microsoft 365: new Graph token for application %s in %.2f s",
                             credentials.client_id, time.monotonic() - before)
        except requests.RequestException as exc:
            raise M365Unreachable(
                f"Microsoft's sign-in service at {self.endpoints.login_url} could not be "
                f"reached ({type(exc).__name__}).") from None
        except ValueError:
            # MSAL could not read the authority's configuration: usually an unknown tenant.
            raise self._authority_refusal(credentials) from None
        if "access_token" in result:
            return str(result["access_token"])
        description = str(result.get("error_description") or result.get("error") or
                          "no reason given")
        with self._lock:
            self._apps.pop(self._key(credentials), None)
        raise M365CredentialsRejected(_first_line(description))

    def _authority_refusal(self, credentials: M365Credentials) -> M365Error:
        url = (f"{self.endpoints.login_url}/{quote(credentials.tenant_id)}"
               "/v2.0/.well-known/openid-configuration")
        try:
            response = self.endpoints.requests_session().get(url)
        except requests.RequestException as exc:
            return M365Unreachable(
                f"Microsoft's sign-in service at {self.endpoints.login_url} could not be "
                f"reached ({type(exc).__name__}).")
        with contextlib.suppress(ValueError):
            body = response.json()
            if isinstance(body, dict) and body.get("error_description"):
                return M365CredentialsRejected(_first_line(str(body["error_description"])))
        if response.status_code >= 500:
            return M365Unreachable(f"Microsoft's sign-in service answered HTTP "
                                   f"{response.status_code}.", status=response.status_code)
        return M365CredentialsRejected(
            f"Microsoft's sign-in service does not know the tenant {credentials.tenant_id!r} "
            f"(HTTP {response.status_code}).")


def _first_line(description: str) -> str:
    """Microsoft's sentence without the Trace ID / Correlation ID / Timestamp tail."""
    text = description.replace("\r", "").split("\n")[0].strip()
    return text.split(" Trace ID:")[0].strip()


# ----------------------------------------------------------------------------- Graph
class GraphThrottle:
    """Shared by every call for one application: after a 429 nobody calls before it lapses."""

    def __init__(self) -> None:
        self._until = 0.0

    def block(self, seconds: float) -> None:
        self._until = max(self._until, time.monotonic() + seconds)

    async def wait(self) -> float:
        delay = self._until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
            return delay
        return 0.0


class GraphClient:
    """Graph calls for one linked application, retrying 429s after ``Retry-After``."""

    def __init__(self, http: httpx.AsyncClient, endpoints: M365Endpoints,
                 tokens: TokenProvider, credentials: M365Credentials, *,
                 throttle: GraphThrottle | None = None, max_throttle_seconds: float = 60.0):
        self.http = http
        self.endpoints = endpoints
        self.tokens = tokens
        self.credentials = credentials
        self.throttle = throttle or GraphThrottle()
        self.max_throttle_seconds = max_throttle_seconds
        self.throttled = 0  # 429s met by this client

    async def token(self) -> str:
        return await self.tokens.token(self.credentials)

    async def _request(self, method: str, url: str, body: Any = None) -> httpx.Response:
        waited = 0.0
        renewed = False
        while True:
            waited += await self.throttle.wait()
            token = await self.token()
            try:
                response = await self.http.request(
                    method, url, json=body,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
            except httpx.HTTPError as exc:
                raise M365Unreachable(
                    f"Microsoft Graph at {self.endpoints.graph_url} could not be reached "
                    f"({type(exc).__name__}).") from None
            if response.status_code == 401 and not renewed:
                renewed = True  # a token revoked or expired early: get a new one, once
                self.tokens.forget(self.credentials)
                continue
            if response.status_code == 429:
                self.throttled += 1
                retry_after = _retry_after(response)
                self.throttle.block(retry_after)
                if waited + retry_after > self.max_throttle_seconds:
                    code, message = _graph_error(response)
                    raise GraphThrottled(
                        f"Microsoft Graph kept throttling the requests (HTTP 429, {message}) "
                        f"for {waited + retry_after:.0f} s; the tenant stopped retrying.",
                        status=429, graph_code=code, retry_after=retry_after)
                log.info("Microsoft Graph throttled a request; retrying after %.1f s",
                         retry_after)
                continue
            if response.status_code >= 400:
                code, message = _graph_error(response)
                kind = M365Unreachable if response.status_code >= 500 else GraphError
                raise kind(message, status=response.status_code, graph_code=code)
            return response

    async def users(self, page_size: int = 999) -> AsyncIterator[list[GraphUser]]:
        """Every user of the tenant, a page at a time (``@odata.nextLink``)."""
        url: str | None = (f"{self.endpoints.graph_url}/v1.0/users?$select={USER_FIELDS}"
                           f"&$top={page_size}")
        while url:
            data = (await self._request("GET", url)).json()
            yield [_user(item) for item in data.get("value", []) if isinstance(item, dict)]
            url = data.get("@odata.nextLink")
            if url and not url.startswith(f"{self.endpoints.graph_url}/"):
                # Never send the token anywhere but Graph, whatever a response says.
                raise GraphError(f"Microsoft Graph sent a next page link outside "
                                 f"{self.endpoints.graph_url}; the listing was stopped.")

    async def reset_password(self, user: str, password: str) -> None:
        """``PATCH /users/{id | userPrincipalName}`` with a new password (204)."""
        await self._request(
            "PATCH", f"{self.endpoints.graph_url}/v1.0/users/{quote(user, safe='@')}",
            {"passwordProfile": {"password": password,
                                 "forceChangePasswordNextSignIn": False}})


def _user(item: dict[str, Any]) -> GraphUser:
    return GraphUser(id=str(item.get("id") or ""),
                     user_principal_name=str(item.get("userPrincipalName") or ""),
                     display_name=str(item.get("displayName") or ""),
                     on_premises_sync_enabled=bool(item.get("onPremisesSyncEnabled")))


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "2")), 0.5), 300.0)
    except ValueError:
        return 2.0


def _graph_error(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code") or f"HTTP {response.status_code}")
    message = str(error.get("message") or f"HTTP {response.status_code}")
    return code, message
