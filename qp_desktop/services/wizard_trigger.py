""""Send test trigger": post an IT Glue-shaped test body to the workflow URL from this computer.

The body has the same flat shape as IT Glue's Webhook action (``resourceUrl``,
``resourceName``), but its ``resourceUrl`` is not an IT Glue password URL, so the tenant
records it as ``workflow_trigger.test`` and never starts a password reset. The name carries
the time and a nonce: the tenant answers an identical body within its duplicate window with
``duplicate`` and logs nothing new, which would leave the wizard waiting.

The URL holds the token: it is never logged, and failures name the host only.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from qp_common.transport import describe_transport_error
from qp_common.wire import parse_error

log = logging.getLogger(__name__)

TEST_RESOURCE_URL = "https://qp-desktop.invalid/test-trigger"
TIMEOUT = httpx.Timeout(15.0, connect=8.0)


def test_body(now: datetime | None = None, nonce: str | None = None) -> dict[str, str]:
    """A test body in the shape IT Glue sends; unique per call."""
    when = (now or datetime.now()).astimezone()
    nonce = nonce or secrets.token_hex(3)
    return {
        "resourceUrl": TEST_RESOURCE_URL,
        "resourceName": f"QP Desktop test trigger {when:%H:%M:%S} ({nonce})",
    }


@dataclass(frozen=True)
class TestTriggerResult:
    """What happened. ``message`` is a sentence for the technician.

    ``reachable`` is False when no HTTP answer came back at all (network, DNS, TLS, timeout).
    """

    ok: bool
    message: str
    status: str | None = None  # the tenant's word: test | accepted | duplicate
    event_id: int | None = None
    code: str | None = None
    reachable: bool = True

    __test__ = False  # not a pytest test class, despite the name


def _unreachable(host: str, why: str) -> TestTriggerResult:
    return TestTriggerResult(
        ok=False, reachable=False, code="unreachable",
        message=f"This computer cannot reach {host}. {why} Check the address, this computer's "
                "network, a firewall or a proxy. (IT Glue calls from the internet, so it may "
                "see the tenant differently.)")


async def send_test_trigger(http: httpx.AsyncClient, url: str,
                            body: dict[str, Any] | None = None) -> TestTriggerResult:
    """POST ``body`` (default :func:`test_body`) to the workflow ``url``."""
    host = urlsplit(url).netloc or "the tenant"
    payload = body if body is not None else test_body()
    try:
        response = await http.post(url, json=payload, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        return _unreachable(host, describe_transport_error(exc, host).message)
    data: dict[str, Any] = {}
    try:
        parsed = response.json()
        if isinstance(parsed, dict):
            data = parsed
    except ValueError:
        pass
    if response.status_code == 202:
        status = str(data.get("status") or "")
        event_id = data.get("event_id")
        event = int(event_id) if isinstance(event_id, int) else None
        if status == "duplicate":
            message = ("The tenant took this as a repeat of an earlier trigger and logged "
                       "nothing new. Send the test again.")
        else:
            message = "The tenant accepted the test trigger" + (
                f" (event {event})." if event is not None else ".")
        return TestTriggerResult(ok=status != "duplicate", message=message, status=status,
                                 event_id=event)
    error = parse_error(data, response.status_code, response.reason_phrase)
    code = error.code
    tenant_message = error.message if error.enveloped else ""
    log.info("test trigger refused: %s (HTTP %s)", code, response.status_code)
    if response.status_code == 404:
        message = ("The tenant at " + host + " does not know this workflow URL. Refresh this "
                   "page; if it persists, generate a new URL on the IT Glue page.")
        if not error.enveloped:
            message = (f"{host} answered 404: it does not look like a QP tenant, or a proxy in "
                       "between does not pass /hooks/ through.")
    elif tenant_message:
        message = tenant_message
    else:
        message = (f"The tenant refused the test (HTTP {response.status_code}). "
                   "See Events for details.")
    return TestTriggerResult(ok=False, message=message, code=code)
