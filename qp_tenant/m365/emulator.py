"""A Microsoft 365 (Entra ID login + Microsoft Graph) emulator for tests and demos.

Microsoft's cloud cannot be reached from CI or a laptop demo, so this small ASGI app answers
what the tenant uses, with Microsoft's documented shapes (docs/microsoft365.md):

* the login endpoint: ``/{tenant}/v2.0/.well-known/openid-configuration`` and the
  client-credentials grant at ``/{tenant}/oauth2/v2.0/token``, with the AADSTS refusals
  (7000215 wrong secret, 7000222 expired secret, 700016 unknown application, 90002 unknown
  tenant);
* Graph: ``GET /v1.0/users`` (``$select``, ``$top`` ≤ 999, paged by ``@odata.nextLink``) and
  ``PATCH /v1.0/users/{id | userPrincipalName}`` with ``passwordProfile`` (204), refusing with
  403 ``Authorization_RequestDenied`` (missing permission or directory role), 400 for an
  on-premises synced user or a password the policy refuses, 404 for an unknown user, and 429
  with ``Retry-After`` past a per-application rate limit.

MSAL only talks to an ``https://`` authority, so the emulator serves TLS; :func:`make_test_ca`
writes a throw-away CA and a certificate for 127.0.0.1. Run it by hand with
``python -m qp_tenant.m365.emulator --port 0 --tls-dir /tmp/m365 --seed-demo`` and give the
tenant ``QP_M365_LOGIN_URL`` / ``QP_M365_GRAPH_URL`` = the printed URL and
``QP_M365_CA_FILE=/tmp/m365/ca.pem``.

Everything under ``/_emulator/`` is emulator-only plumbing (no auth): it sets tenants, apps
and users up, injects faults and shows what the tenant sent. A password the tenant sets is
kept only as its SHA-256, which is what tests compare.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import hashlib
import ipaddress
import json
import logging
import math
import secrets
import socket
import ssl
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from qp_tenant.itglue.emulator import take_from_window
from qp_tenant.m365.client import DIRECTORY_ROLE_IDS, GRAPH_PERMISSION

logger = logging.getLogger(__name__)

MAX_TOP = 999
DEFAULT_TOP = 100
TOKEN_SECONDS = 3599

ON_PREMISES_MESSAGE = ("Unable to update the specified properties for on-premises mastered "
                       "Directory Sync objects or objects currently undergoing migration.")
COMPLEXITY_MESSAGE = ("The specified password does not comply with password complexity "
                      "requirements. Please provide a different password.")
PRIVILEGES_MESSAGE = "Insufficient privileges to complete the operation."


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class EntraUser:
    """A directory user. ``administrator``: holds an admin role (needs the privileged role)."""

    id: str
    user_principal_name: str
    display_name: str
    on_premises_sync_enabled: bool | None = None
    administrator: bool = False
    password_sha256: str | None = None

    def graph(self) -> dict[str, Any]:
        return {"id": self.id, "userPrincipalName": self.user_principal_name,
                "displayName": self.display_name,
                "onPremisesSyncEnabled": self.on_premises_sync_enabled,
                "mail": self.user_principal_name, "accountEnabled": True}


@dataclass
class EntraApp:
    """An app registration with a client secret, its consented Graph application permissions
    and the directory roles (by display name) held by its service principal."""

    client_id: str
    secret: str
    secret_expired: bool = False
    permissions: list[str] = field(default_factory=lambda: [GRAPH_PERMISSION])
    directory_roles: list[str] = field(default_factory=lambda: ["User Administrator"])


@dataclass
class EntraTenant:
    id: str
    domain: str
    apps: dict[str, EntraApp] = field(default_factory=dict)
    users: dict[str, EntraUser] = field(default_factory=dict)

    def find_user(self, key: str) -> EntraUser | None:
        if key in self.users:
            return self.users[key]
        folded = key.casefold()
        return next((u for u in self.users.values()
                     if u.user_principal_name.casefold() == folded), None)


@dataclass
class PasswordChange:
    """One accepted ``PATCH /users/{id}`` with a password: its hash, never the value."""

    tenant_id: str
    user_id: str
    user_principal_name: str
    password_sha256: str
    force_change: bool
    at: float


@dataclass
class M365EmulatorState:
    """Everything the emulator knows; tests build one (or drive ``/_emulator``) and inspect it.

    ``rate_limit`` Graph requests per ``rate_window_seconds`` per (tenant, application), 0 for
    none; ``clock`` (monotonic seconds) drives it and the tokens' lifetime.
    """

    tenants: dict[str, EntraTenant] = field(default_factory=dict)
    rate_limit: int = 0
    rate_window_seconds: float = 10.0
    clock: Callable[[], float] = time.monotonic
    password_changes: list[PasswordChange] = field(default_factory=list)
    tokens_issued: int = 0
    graph_requests: int = 0
    throttled: int = 0
    # Emulator-only fault injection: (status, Retry-After) answered by the next Graph calls.
    queued_failures: list[tuple[int, int | None]] = field(default_factory=list)
    _tokens: dict[str, tuple[str, str, float]] = field(default_factory=dict, repr=False)
    _hits: dict[tuple[str, str], collections.deque[float]] = field(default_factory=dict,
                                                                   repr=False)

    # ------------------------------------------------------------------- set-up helpers
    def add_tenant(self, tenant_id: str, domain: str) -> EntraTenant:
        tenant = self.tenants.get(tenant_id) or EntraTenant(id=tenant_id, domain=domain)
        self.tenants[tenant_id] = tenant
        return tenant

    def add_app(self, tenant_id: str, client_id: str, secret: str, **options: Any) -> EntraApp:
        app = EntraApp(client_id=client_id, secret=secret, **options)
        self.tenants[tenant_id].apps[client_id] = app
        return app

    def add_user(self, tenant_id: str, upn: str, display_name: str = "", *,
                 user_id: str | None = None, on_premises_sync_enabled: bool | None = None,
                 administrator: bool = False) -> EntraUser:
        user = EntraUser(id=user_id or str(uuid.uuid4()), user_principal_name=upn,
                         display_name=display_name or upn.split("@")[0],
                         on_premises_sync_enabled=on_premises_sync_enabled,
                         administrator=administrator)
        self.tenants[tenant_id].users[user.id] = user
        return user

    def find_tenant(self, key: str) -> EntraTenant | None:
        folded = key.casefold()
        return self.tenants.get(key) or next(
            (t for t in self.tenants.values() if t.domain.casefold() == folded), None)

    def seed_demo(self) -> None:
        """The demo customers' Microsoft 365 tenants, matching the IT Glue emulator's demo."""
        northwind = self.add_tenant("8a6b1c2d-0000-4000-8000-00000000a001",
                                    "northwindtraders.onmicrosoft.com")
        self.add_app(northwind.id, "5f0c9d1e-0000-4000-8000-00000000b001", "demo-secret~1")
        self.add_user(northwind.id, "admin@northwindtraders.onmicrosoft.com", "Global admin",
                      administrator=True)
        self.add_user(northwind.id, "dana@northwindtraders.com", "Dana Whitfield")
        self.add_user(northwind.id, "reception@northwindtraders.com", "Reception desk")
        self.add_user(northwind.id, "jsmith@northwindtraders.com", "John Smith",
                      on_premises_sync_enabled=True)

    # ------------------------------------------------------------------------- tokens
    def issue_token(self, tenant: EntraTenant, app: EntraApp, base_url: str) -> str:
        """A JWT-shaped access token carrying ``roles`` and ``wids`` like Entra's (unsigned)."""
        now = time.time()
        claims = {
            "aud": "https://graph.microsoft.com", "iss": f"{base_url}/{tenant.id}/v2.0",
            "iat": int(now), "nbf": int(now), "exp": int(now) + TOKEN_SECONDS,
            "tid": tenant.id, "appid": app.client_id, "idtyp": "app",
            "roles": list(app.permissions),
            "wids": [DIRECTORY_ROLE_IDS[name] for name in app.directory_roles
                     if name in DIRECTORY_ROLE_IDS],
            "jti": secrets.token_hex(8),
        }

        def part(obj: dict[str, Any]) -> str:
            raw = json.dumps(obj, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        token = (f"{part({'typ': 'JWT', 'alg': 'none'})}.{part(claims)}."
                 f"{secrets.token_urlsafe(16)}")
        self._tokens[token] = (tenant.id, app.client_id, self.clock() + TOKEN_SECONDS)
        self.tokens_issued += 1
        return token

    def token_owner(self, token: str) -> tuple[EntraTenant, EntraApp] | None:
        found = self._tokens.get(token)
        if found is None or found[2] < self.clock():
            return None
        tenant = self.tenants.get(found[0])
        app = tenant.apps.get(found[1]) if tenant else None
        return (tenant, app) if tenant and app else None

    def revoke_tokens(self, tenant_id: str, client_id: str) -> None:
        self._tokens = {token: owner for token, owner in self._tokens.items()
                        if owner[:2] != (tenant_id, client_id)}

    def take_rate_token(self, key: tuple[str, str]) -> float | None:
        """Count one Graph request; seconds to wait if over the limit, else None."""
        if self.rate_limit <= 0:
            return None
        return take_from_window(self._hits.setdefault(key, collections.deque()), self.clock(),
                                self.rate_limit, self.rate_window_seconds)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view (no secret, no password) for ``GET /_emulator/state``."""
        return {
            "tenants": [{"id": t.id, "domain": t.domain,
                         "apps": [{"client_id": a.client_id, "secret_expired": a.secret_expired,
                                   "permissions": a.permissions,
                                   "directory_roles": a.directory_roles}
                                  for a in t.apps.values()],
                         "users": [u.graph() | {"administrator": u.administrator}
                                   for u in t.users.values()]}
                        for t in self.tenants.values()],
            "tokens_issued": self.tokens_issued, "graph_requests": self.graph_requests,
            "throttled": self.throttled,
            "password_changes": [change_to_dict(c) for c in self.password_changes],
        }


def change_to_dict(change: PasswordChange) -> dict[str, Any]:
    return {"tenant_id": change.tenant_id, "user_id": change.user_id,
            "user_principal_name": change.user_principal_name,
            "password_sha256": change.password_sha256, "force_change": change.force_change}


def password_complies(password: str) -> bool:
    """Entra's documented rule: 8–256 characters and three of the four character kinds."""
    if not 8 <= len(password) <= 256:
        return False
    kinds = [any(c.islower() for c in password), any(c.isupper() for c in password),
             any(c.isdigit() for c in password), any(not c.isalnum() for c in password)]
    return sum(kinds) >= 3


# --------------------------------------------------------------------------- responses
def _trace() -> dict[str, str]:
    return {"timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}


def _login_error(status: int, error: str, code: int, description: str) -> JSONResponse:
    stamp = _trace()
    text = (f"AADSTS{code}: {description} Trace ID: {stamp['trace_id']} Correlation ID: "
            f"{stamp['correlation_id']} Timestamp: {stamp['timestamp']}")
    return JSONResponse({"error": error, "error_description": text, "error_codes": [code],
                         **stamp}, status_code=status)


def _graph_error(status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    inner = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
             "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}
    return JSONResponse({"error": {"code": code, "message": message, "innerError": inner}},
                        status_code=status, headers=headers)


def _base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


# ------------------------------------------------------------------------------ the app
def create_app(state: M365EmulatorState) -> ASGIApp:
    """Build the emulator's ASGI app over ``state`` (shared, mutable, inspectable by tests)."""

    async def openid_configuration(request: Request) -> Response:
        key = request.path_params["tenant"]
        tenant = state.find_tenant(key)
        if tenant is None:
            return _login_error(400, "invalid_tenant", 90002,
                                f"Tenant '{key}' not found. Check to make sure you have the "
                                "correct tenant ID and are signing into the correct cloud.")
        base = f"{_base_url(request)}/{tenant.id}"
        return JSONResponse({
            "issuer": f"{base}/v2.0",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "jwks_uri": f"{_base_url(request)}/{tenant.id}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token"],
            "tenant_region_scope": "EU",
        })

    async def token(request: Request) -> Response:
        key = request.path_params["tenant"]
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            raw = base64.b64decode(auth[6:]).decode()
            client_id, _, secret = raw.partition(":")
        if form.get("grant_type") != "client_credentials":
            return _login_error(400, "unsupported_grant_type", 70003,
                                "The app requested an unsupported grant type.")
        tenant = state.find_tenant(key)
        if tenant is None:
            return _login_error(400, "invalid_tenant", 90002,
                                f"Tenant '{key}' not found. Check to make sure you have the "
                                "correct tenant ID and are signing into the correct cloud.")
        app = tenant.apps.get(client_id)
        if app is None:
            return _login_error(
                400, "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.domain}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant. "
                "You may have sent your authentication request to the wrong tenant.")
        if secret != app.secret:
            return _login_error(
                401, "invalid_client", 7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{client_id}'.")
        if app.secret_expired:
            return _login_error(
                401, "invalid_client", 7000222,
                f"The provided client secret keys for app '{client_id}' are expired. Visit the "
                "Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, "
                "or consider using certificate credentials for added security: "
                "https://aka.ms/certCreds.")
        access = state.issue_token(tenant, app, _base_url(request))
        return JSONResponse({"token_type": "Bearer", "expires_in": TOKEN_SECONDS,
                             "ext_expires_in": TOKEN_SECONDS, "access_token": access})

    def graph_caller(request: Request) -> tuple[EntraTenant, EntraApp] | Response:
        state.graph_requests += 1
        auth = request.headers.get("authorization", "")
        owner = state.token_owner(auth[7:]) if auth.lower().startswith("bearer ") else None
        if owner is None:
            return _graph_error(401, "InvalidAuthenticationToken",
                                "Access token is empty." if not auth else
                                "Access token validation failure. Invalid audience.")
        if state.queued_failures:
            status, retry_after = state.queued_failures.pop(0)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            if status == 429:
                state.throttled += 1
                return _graph_error(429, "TooManyRequests",
                                    "Too many requests. Please retry after some time.", headers)
            return _graph_error(status, "serviceNotAvailable",
                                "The service is temporarily unavailable (emulated).", headers)
        wait = state.take_rate_token((owner[0].id, owner[1].client_id))
        if wait is not None:
            state.throttled += 1
            return _graph_error(429, "TooManyRequests",
                                "Too many requests. Please retry after some time.",
                                {"Retry-After": str(max(math.ceil(wait), 1))})
        return owner

    async def list_users(request: Request) -> Response:
        caller = graph_caller(request)
        if isinstance(caller, Response):
            return caller
        tenant, app = caller
        if not {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All"} & set(
                app.permissions):
            return _graph_error(403, "Authorization_RequestDenied", PRIVILEGES_MESSAGE)
        try:
            top = min(int(request.query_params.get("$top", DEFAULT_TOP)), MAX_TOP)
            skip = int(request.query_params.get("$skiptoken", "0"))
        except ValueError:
            return _graph_error(400, "BadRequest", "Invalid value for $top or $skiptoken.")
        if top < 1:
            return _graph_error(400, "BadRequest", "Invalid page size specified: '0'.")
        select = [s for s in request.query_params.get("$select", "").split(",") if s]
        users = list(tenant.users.values())
        page = [u.graph() for u in users[skip:skip + top]]
        if select:
            page = [{k: v for k, v in u.items() if k in select or k == "id"} for u in page]
        body: dict[str, Any] = {
            "@odata.context": f"{_base_url(request)}/v1.0/$metadata#users", "value": page}
        if skip + top < len(users):
            params = {k: v for k, v in request.query_params.items() if k != "$skiptoken"}
            params["$skiptoken"] = str(skip + top)
            body["@odata.nextLink"] = f"{_base_url(request)}/v1.0/users?{urlencode(params)}"
        return JSONResponse(body)

    async def get_user(request: Request) -> Response:
        caller = graph_caller(request)
        if isinstance(caller, Response):
            return caller
        tenant, _ = caller
        user = tenant.find_user(request.path_params["key"])
        if user is None:
            return _not_found(request.path_params["key"])
        return JSONResponse(user.graph())

    async def patch_user(request: Request) -> Response:
        caller = graph_caller(request)
        if isinstance(caller, Response):
            return caller
        tenant, app = caller
        if GRAPH_PERMISSION not in app.permissions and "Directory.ReadWrite.All" not in (
                app.permissions):
            return _graph_error(403, "Authorization_RequestDenied", PRIVILEGES_MESSAGE)
        user = tenant.find_user(request.path_params["key"])
        if user is None:
            return _not_found(request.path_params["key"])
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _graph_error(400, "BadRequest", "Unable to read JSON request payload.")
        profile = body.get("passwordProfile") if isinstance(body, dict) else None
        if not isinstance(profile, dict) or not isinstance(profile.get("password"), str):
            return _graph_error(400, "Request_BadRequest",
                                "Invalid value specified for property 'passwordProfile'.")
        roles = set(app.directory_roles)
        allowed = {"Privileged Authentication Administrator", "Global Administrator"}
        if not user.administrator:
            allowed |= {"User Administrator"}
        if not roles & allowed:
            return _graph_error(403, "Authorization_RequestDenied", PRIVILEGES_MESSAGE)
        if user.on_premises_sync_enabled:
            return _graph_error(400, "Request_BadRequest", ON_PREMISES_MESSAGE)
        password = profile["password"]
        if not password_complies(password):
            return _graph_error(400, "Request_BadRequest", COMPLEXITY_MESSAGE)
        user.password_sha256 = sha256(password)
        state.password_changes.append(PasswordChange(
            tenant_id=tenant.id, user_id=user.id, user_principal_name=user.user_principal_name,
            password_sha256=user.password_sha256,
            force_change=bool(profile.get("forceChangePasswordNextSignIn", True)),
            at=state.clock()))
        return Response(status_code=204)

    # ----------------------------------------------------------------- emulator plumbing
    async def emulator_state(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def emulator_tenant(request: Request) -> Response:
        """POST {id, domain, apps: [{client_id, secret, ...}], users: [{upn, ...}]}."""
        body = await request.json()
        tenant = state.add_tenant(body["id"], body.get("domain") or f"{body['id']}.test")
        for app in body.get("apps", []):
            options = {k: app[k] for k in ("secret_expired", "permissions", "directory_roles")
                       if k in app}
            state.add_app(tenant.id, app["client_id"], app["secret"], **options)
        for user in body.get("users", []):
            state.add_user(tenant.id, user["upn"], user.get("display_name", ""),
                           user_id=user.get("id"),
                           on_premises_sync_enabled=user.get("on_premises_sync_enabled"),
                           administrator=bool(user.get("administrator")))
        return JSONResponse(state.snapshot())

    async def emulator_app(request: Request) -> Response:
        """POST changes to an app: secret, secret_expired, permissions, directory_roles."""
        tenant = state.tenants[request.path_params["tenant"]]
        app = tenant.apps[request.path_params["client_id"]]
        body = await request.json()
        for name in ("secret", "secret_expired", "permissions", "directory_roles"):
            if name in body:
                setattr(app, name, body[name])
        # Tokens issued before are revoked, so a test sees the change at once instead of
        # when the cached token runs out an hour later (Graph then answers 401).
        state.revoke_tokens(tenant.id, app.client_id)
        return JSONResponse({"ok": True})

    async def emulator_delete_user(request: Request) -> Response:
        tenant = state.tenants[request.path_params["tenant"]]
        user = tenant.find_user(request.path_params["key"])
        if user is not None:
            del tenant.users[user.id]
        return Response(status_code=204)

    async def emulator_limits(request: Request) -> Response:
        """POST {rate_limit, rate_window_seconds, failures: [[status, retry_after], ...]}."""
        body = await request.json()
        if "rate_limit" in body:
            state.rate_limit = int(body["rate_limit"])
        if "rate_window_seconds" in body:
            state.rate_window_seconds = float(body["rate_window_seconds"])
        for status, retry_after in body.get("failures", []):
            state.queued_failures.append((int(status), retry_after))
        return JSONResponse({"ok": True})

    routes = [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration,
              methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        Route("/v1.0/users", list_users, methods=["GET"]),
        Route("/v1.0/users/{key}", get_user, methods=["GET"]),
        Route("/v1.0/users/{key}", patch_user, methods=["PATCH"]),
        Route("/_emulator/state", emulator_state, methods=["GET"]),
        Route("/_emulator/tenants", emulator_tenant, methods=["POST"]),
        Route("/_emulator/tenants/{tenant}/apps/{client_id}", emulator_app, methods=["POST"]),
        Route("/_emulator/tenants/{tenant}/users/{key}", emulator_delete_user,
              methods=["DELETE"]),
        Route("/_emulator/limits", emulator_limits, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _not_found(key: str) -> JSONResponse:
    return _graph_error(404, "Request_ResourceNotFound",
                        f"Resource '{key}' does not exist or one of its queried "
                        "reference-property objects are not present.")


# ------------------------------------------------------------------------- TLS for tests
def make_test_ca(folder: Path, ip: str = "127.0.0.1") -> Path:
    """Write a throw-away CA (``ca.pem``) and a server certificate for ``ip``/localhost
    (``server.pem``, ``server-key.pem``) into ``folder``; return the CA file's path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "QP test CA (throw-away)")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address(ip)), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return folder / "ca.pem"


# ------------------------------------------------------------------------------------ CLI
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m qp_tenant.m365.emulator",
        description="Serve a Microsoft 365 (Entra ID login + Graph) emulator over TLS.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--tls-dir", type=Path, required=True,
                        help="folder for the throw-away CA (ca.pem) and server certificate")
    parser.add_argument("--seed-demo", action="store_true", help="a demo tenant with users")
    parser.add_argument("--rate-limit", type=int, default=0,
                        help="Graph requests per window per application (0: no limit)")
    parser.add_argument("--rate-window", type=float, default=10.0)
    return parser.parse_args(argv)


async def _serve(app: ASGIApp, sock: socket.socket, tls_dir: Path) -> None:
    import uvicorn

    config = uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=1, lifespan="off",
                            ssl_certfile=str(tls_dir / "server.pem"),
                            ssl_keyfile=str(tls_dir / "server-key.pem"),
                            ssl_version=ssl.PROTOCOL_TLS_SERVER)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving
            return
        await asyncio.sleep(0.01)
    host, port = sock.getsockname()[:2]
    print(f"listening on https://{host}:{port}", flush=True)
    await serving


def main(argv: list[str] | None = None) -> int:
    """Run the emulator under uvicorn until SIGINT/SIGTERM."""
    args = _parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    if not (args.tls_dir / "server.pem").exists():
        make_test_ca(args.tls_dir)
    state = M365EmulatorState(rate_limit=args.rate_limit, rate_window_seconds=args.rate_window)
    if args.seed_demo:
        state.seed_demo()
    # IPPROTO_TCP: with protocol 0 asyncio never sets TCP_NODELAY (40 ms stalls per response).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    try:
        asyncio.run(_serve(create_app(state), sock, args.tls_dir))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
