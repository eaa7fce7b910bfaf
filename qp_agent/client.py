"""Typed client for the tenant's agent API (``/api/v1/agent/...``).

One long-lived ``httpx.AsyncClient`` is passed in by the composition root (the CLI), so tests
can hand in one aimed at an in-test tenant. Errors come back as three exceptions a person
can act on: :class:`TenantRejected` (the tenant answered with an error), :class:`TenantTLSError`
and :class:`TenantUnreachable`.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from qp_common.transport import TLS, describe_transport_error
from qp_common.urls import TenantURLError, normalise_tenant_url
from qp_common.wire import parse_error

logger = logging.getLogger(__name__)

DEFAULT_WAIT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 10.0
# The read timeout of a long poll must outlast the tenant's wait, plus some slack for a
# slow proxy; otherwise every quiet poll would look like a network error.
READ_TIMEOUT_SLACK_SECONDS = 15.0


class TenantError(Exception):
    """Base of every failure to talk to the tenant."""


class TenantUnreachable(TenantError):
    """No HTTP answer: DNS, refused connection, timeout, dropped connection."""


class TenantTLSError(TenantUnreachable):
    """The tenant's TLS certificate could not be verified."""


class TenantRejected(TenantError):
    """The tenant answered with an HTTP error; ``message`` is the tenant's own sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.message = message


# A tenant URL the agent refuses (plain http to another machine, not a URL at all).
InsecureTenantURL = TenantURLError


@dataclass(frozen=True)
class ResetJob:
    """A password reset the tenant asks this agent to apply. The password is not in repr."""

    id: str
    directory: str
    kind: str
    identity: str
    password: str = field(repr=False)
    account_id: Any = None
    lease_expires_at: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> ResetJob:
        """Parse the ``job`` object of ``GET /api/v1/agent/jobs``; unknown fields are ignored.

        Raises:
            ValueError: a required field is missing or has the wrong type (the message names
                the field, never its value).
        """
        if not isinstance(data, dict):
            raise ValueError("the job is not a JSON object")
        job_id = data.get("id")
        if isinstance(job_id, bool) or not isinstance(job_id, str | int) or job_id == "":
            raise ValueError("the job has no usable 'id'")
        for key in ("directory", "kind", "identity", "password"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"job {job_id}: field '{key}' is missing or not a string")
        lease = data.get("lease_expires_at")
        return cls(
            id=str(job_id),
            directory=data["directory"],
            kind=data["kind"],
            identity=data["identity"],
            password=data["password"],
            account_id=data.get("account_id"),
            lease_expires_at=lease if isinstance(lease, str) else None,
        )


@dataclass(frozen=True)
class Enrollment:
    """What the tenant answers to a successful enrollment."""

    agent_id: str
    agent_token: str = field(repr=False)


def make_http_client(
    tenant_url: str,
    *,
    wait_seconds: int = DEFAULT_WAIT_SECONDS,
    ca_file: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The agent's one long-lived HTTP client for ``tenant_url``."""
    verify: ssl.SSLContext | bool = True
    if ca_file:
        verify = ssl.create_default_context(cafile=ca_file)
    return httpx.AsyncClient(
        base_url=normalise_tenant_url(tenant_url),
        timeout=httpx.Timeout(
            CONNECT_TIMEOUT_SECONDS,
            read=wait_seconds + READ_TIMEOUT_SLACK_SECONDS,
        ),
        verify=verify,
        transport=transport,
        headers={"User-Agent": "qp-agent"},
        follow_redirects=False,
    )


class AgentClient:
    """The agent API of one tenant, authenticated with the agent token (if given)."""

    def __init__(self, http: httpx.AsyncClient, agent_token: str | None = None) -> None:
        self._http = http
        self._auth = {"Authorization": f"Bearer {agent_token}"} if agent_token else {}

    @property
    def base_url(self) -> str:
        """The tenant's base URL."""
        return str(self._http.base_url).rstrip("/")

    async def enroll(self, code: str, name: str, hostname: str) -> Enrollment:
        """Trade a single-use enrollment code for this agent's id and token."""
        response = await self._request(
            "POST",
            "/api/v1/agent/enroll",
            json={"code": code, "name": name, "hostname": hostname},
            authenticated=False,
        )
        data = _json(response)
        agent_id = data.get("agent_id") if isinstance(data, dict) else None
        token = data.get("agent_token") if isinstance(data, dict) else None
        if agent_id is None or not isinstance(token, str) or not token:
            raise TenantRejected(
                response.status_code,
                "bad_response",
                "The tenant accepted the code but sent no agent id and token.",
            )
        return Enrollment(agent_id=str(agent_id), agent_token=token)

    async def next_job(self, wait_seconds: int = DEFAULT_WAIT_SECONDS) -> ResetJob | None:
        """Long-poll for the next reset job; ``None`` when the tenant had none (204)."""
        response = await self._request(
            "GET", "/api/v1/agent/jobs", params={"wait": str(wait_seconds)}
        )
        if response.status_code == 204 or not response.content:
            return None
        data = _json(response)
        job = data.get("job") if isinstance(data, dict) else None
        if job is None:
            return None
        try:
            return ResetJob.from_json(job)
        except ValueError as exc:
            raise TenantRejected(response.status_code, "bad_job", f"Unusable job: {exc}.") from None

    async def post_result(self, job_id: str, ok: bool, error: str | None = None) -> None:
        """Report a job's outcome; ``error`` is the directory's reason when ``ok`` is false."""
        body: dict[str, Any] = {"ok": ok}
        if not ok:
            body["error"] = error or "The agent could not apply the new password."
        await self._request("POST", f"/api/v1/agent/jobs/{job_id}/result", json=body)

    async def heartbeat(self, directories: list[dict[str, str]]) -> None:
        """Tell the tenant this agent is alive and which directories it serves."""
        await self._request("POST", "/api/v1/agent/heartbeat", json={"directories": directories})

    async def report_accounts(
        self,
        *,
        sync_id: str,
        directory: str,
        directory_kind: str,
        accounts: list[dict[str, Any]],
        final: bool,
        error: str | None = None,
    ) -> dict[str, Any]:
        """Send one page of a directory's accounts (at most 1000); ``final`` on the last."""
        body: dict[str, Any] = {"sync_id": sync_id, "directory": directory,
                                "directory_kind": directory_kind, "accounts": accounts,
                                "final": final}
        if error is not None:
            body["error"] = error
        response = await self._request("POST", "/api/v1/agent/accounts", json=body)
        data = _json(response)
        return data if isinstance(data, dict) else {}

    async def next_sync_request(self, wait_seconds: int = DEFAULT_WAIT_SECONDS) -> bool:
        """Long-poll for a "sync now" request; whether one came during the wait."""
        response = await self._request(
            "GET", "/api/v1/agent/sync-request", params={"wait": str(wait_seconds)}
        )
        return response.status_code == 200

    async def _request(
        self, method: str, path: str, *, authenticated: bool = True, **kwargs: Any
    ) -> httpx.Response:
        headers = self._auth if authenticated else {}
        try:
            response = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise _transport_error(self.base_url, exc) from None
        if response.status_code >= 400:
            raise _rejection(response)
        return response


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise TenantRejected(
            response.status_code, "bad_response", "The tenant's answer is not JSON."
        ) from None


def _rejection(response: httpx.Response) -> TenantRejected:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = parse_error(body, response.status_code, response.reason_phrase)
    return TenantRejected(response.status_code, error.code, error.message)


def _transport_error(base_url: str, exc: httpx.HTTPError) -> TenantUnreachable:
    failure = describe_transport_error(exc, urlsplit(base_url).netloc or base_url)
    if failure.certificate:
        return TenantTLSError(
            f"The tenant's TLS certificate at {base_url} could not be verified. {failure} "
            "Pass the issuing CA with --ca-file (tenant_ca_file in the config) if the tenant "
            "uses a private CA."
        )
    if failure.kind == TLS:
        return TenantTLSError(f"TLS with the tenant at {base_url} failed. {failure}")
    return TenantUnreachable(f"Cannot reach the tenant at {base_url}. {failure}")

