"""The HTTP contract's vocabulary, shared by the tenant (which writes it) and the desktop app
and the agent (which read it): event types and their categories, severities, workflow token
statuses, the error envelope, RFC 3339 times, and the ``listening on`` line a server prints
once it accepts connections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# -- events ----------------------------------------------------------------------------------

SEVERITIES = ("info", "warning", "error")

EVENT_TYPES = (
    "workflow_trigger.received", "workflow_trigger.test", "workflow_trigger.rejected",
    "workflow_trigger.replayed", "workflow_trigger.webhook_missing",
    "password_reset.queued", "password_reset.waiting", "password_reset.succeeded",
    "password_reset.skipped", "password_reset.failed", "password_reset.requested",
    "token.generated", "token.revealed", "token.revoked", "token.expiring", "token.expired",
    "integration.connected", "integration.disconnected", "integration.error",
    "agent.enrollment_code_created", "agent.enrolled", "agent.online", "agent.offline",
    "agent.revoked", "agent.updated", "agent.synced", "account.created", "account.updated",
    "account.deleted",
    "alert.sent", "alert.failed",
)

# Categories: the UI's label, and the dotted prefixes it groups ("Workflow Trigger" is the
# trigger and the reset it started).
CATEGORY_WORKFLOW = "Workflow Trigger"
CATEGORY_TOKEN = "Token"  # noqa: S105 - a label, not a secret
CATEGORY_INTEGRATION = "Integration"
CATEGORY_ALERT = "Alert"
CATEGORY_AGENT = "Agent"
CATEGORY_ACCOUNT = "Account"
CATEGORY_OTHER = "Other"
CATEGORIES = (CATEGORY_WORKFLOW, CATEGORY_TOKEN, CATEGORY_INTEGRATION, CATEGORY_ALERT,
              CATEGORY_AGENT, CATEGORY_ACCOUNT, CATEGORY_OTHER)

# The key a category goes by on the wire (``?category=``) and the type prefixes it covers.
CATEGORY_PREFIXES: dict[str, tuple[str, ...]] = {
    "workflow_trigger": ("workflow_trigger.", "password_reset."),
    "token": ("token.",),
    "integration": ("integration.",),
    "alert": ("alert.",),
    "agent": ("agent.",),
    "account": ("account.",),
}
CATEGORY_LABELS: dict[str, str] = {
    "workflow_trigger": CATEGORY_WORKFLOW,
    "token": CATEGORY_TOKEN,
    "integration": CATEGORY_INTEGRATION,
    "alert": CATEGORY_ALERT,
    "agent": CATEGORY_AGENT,
    "account": CATEGORY_ACCOUNT,
}
_LABEL_BY_PREFIX = {prefix.rstrip("."): CATEGORY_LABELS[key]
                    for key, prefixes in CATEGORY_PREFIXES.items() for prefix in prefixes}


def category_of(event_type: str) -> str:
    """The UI category of a dotted event type ("password_reset.failed" → "Workflow Trigger")."""
    return _LABEL_BY_PREFIX.get(event_type.partition(".")[0], CATEGORY_OTHER)


# Every ``password_reset.failed`` event carries one of these in ``details.code`` (and
# ``password_reset.waiting`` carries ``agent_revoked``): the code → what fixes it, so an app
# can offer the action. "match": match the account to its IT Glue password (or another
# account); "retry": reset again once the cause is gone; "agent": open the agent;
# "itglue": reconnect or fix IT Glue; "microsoft365": fix the customer's Microsoft 365 link;
# "directory": fix the account or its directory; "none": nothing the app can do.
RESET_FAILURE_CODES: dict[str, str] = {
    "no_matched_account": "match",
    "account_gone": "match",
    "no_agent": "agent",
    "agent_revoked": "agent",
    "agent_unavailable": "agent",
    "lease_expired": "agent",
    "directory_refused": "directory",
    "itglue_not_connected": "itglue",
    "itglue_key_rejected": "itglue",
    "itglue_no_password_access": "itglue",
    "itglue_password_unreachable": "itglue",
    "itglue_password_empty": "itglue",
    "itglue_unreachable": "retry",
    "itglue_error": "retry",
    "m365_not_linked": "microsoft365",
    "m365_credentials_rejected": "microsoft365",
    "m365_insufficient_privileges": "microsoft365",
    "m365_user_not_found": "match",
    "m365_on_premises_synced": "agent",
    "m365_password_policy": "directory",
    "m365_throttled": "retry",
    "m365_unreachable": "retry",
    "m365_graph_error": "retry",
    "m365_unavailable": "retry",
    "internal_error": "retry",
}
# ``password_reset.skipped`` events carry one of these: the value is already applied, or a
# reset with the same value is already queued for or being applied by the agent.
RESET_SKIP_CODES = ("already_applied", "in_progress")


# -- workflow tokens ---------------------------------------------------------------------------

TOKEN_ACTIVE = "active"  # noqa: S105 - a status, not a secret
TOKEN_EXPIRING = "expiring"  # noqa: S105
TOKEN_EXPIRED = "expired"  # noqa: S105
TOKEN_REVOKED = "revoked"  # noqa: S105
TOKEN_STATUSES = (TOKEN_ACTIVE, TOKEN_EXPIRING, TOKEN_EXPIRED, TOKEN_REVOKED)
# A URL whose token is in one of these works when IT Glue calls it: worth copying and using.
USABLE_TOKEN_STATUSES = frozenset({TOKEN_ACTIVE, TOKEN_EXPIRING})


def token_url_usable(status: str | None) -> bool:
    """Whether a workflow URL whose token has ``status`` still works (may be copied/used)."""
    return status in USABLE_TOKEN_STATUSES


# -- the error envelope ----------------------------------------------------------------------


@dataclass(frozen=True)
class WireError:
    """``{"error": {"code", "message", "details"}}``: what every refusal looks like."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    # False when the answer carried no envelope (a proxy's page, another server): then code
    # and message were made up from the HTTP status.
    enveloped: bool = True

    def body(self) -> dict[str, Any]:
        """The JSON body of the envelope."""
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str,
               details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The error envelope as a JSON-ready dict."""
    return {"error": {"code": code, "message": message, "details": dict(details or {})}}


def parse_error(body: Any, status: int, reason: str = "") -> WireError:
    """Read an error envelope out of a decoded JSON body (anything at all: a proxy's HTML page
    decodes to nothing useful). What is missing is filled with ``http_<status>`` and a
    sentence naming the status, so the caller always has something to show."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        error = {}
    code = error.get("code")
    message = error.get("message")
    details = error.get("details")
    text = f"{status} {reason}".strip()
    return WireError(
        code=str(code) if code else f"http_{status}",
        message=str(message) if message else f"The tenant answered with an error (HTTP {text}).",
        details=dict(details) if isinstance(details, Mapping) else {},
        enveloped=bool(code or message),
    )


# -- times -----------------------------------------------------------------------------------


def format_rfc3339(moment: datetime | None) -> str | None:
    """``2026-03-12T14:05:00.123Z`` (UTC, milliseconds); a naive time is taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str | None) -> datetime | None:
    """An aware datetime from RFC 3339 text (``Z`` or an offset; no offset is taken as UTC);
    ``None`` for ``None``, empty or unparsable text."""
    if not text or not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- the "listening on" line -----------------------------------------------------------------

LISTENING_PREFIX = "listening on "


def listening_line(host: str, port: int, scheme: str = "http") -> str:
    """What a server prints on stdout, as one line, once it accepts connections."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{LISTENING_PREFIX}{scheme}://{host}:{port}"


def parse_listening_line(line: str) -> str | None:
    """The base URL from a ``listening on URL`` line; ``None`` for any other line."""
    line = line.strip()
    if not line.startswith(LISTENING_PREFIX):
        return None
    url = line[len(LISTENING_PREFIX):].strip()
    return url or None
