"""Realistic synthetic events for screenshots, benchmarks and unit tests (no I/O).

``demo_events(n)`` follows what a tenant really logs: a password change in IT Glue arrives as
``workflow_trigger.received``, is queued for reset and then succeeds or fails (with a reason,
and an alert on failure); mixed in are Test Action calls, rejected calls, token and
integration housekeeping and agents coming and going.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from qp_common.wire import format_rfc3339

_CUSTOMERS = [
    ("Contoso Dental", "contoso", 2412, "contoso.local"),
    ("Fabrikam Legal", "fabrikam", 3170, "fabrikam.lan"),
    ("Northwind Logistics", "northwind", 1988, "nwl.internal"),
    ("Tailspin Clinics", "tailspin", 4420, "tailspin.corp"),
    ("Woodgrove Accounting", "woodgrove", 5031, "woodgrove.ad"),
]
_PASSWORDS = [
    ("Domain Admin", "administrator", "administrator"),
    ("Backup Service", "service", "svc-backup"),
    ("SQL Service", "service", "svc-sql"),
    ("Front Desk", "end_user", "frontdesk"),
    ("Veeam Service", "service", "svc-veeam"),
    ("Scanner SMTP", "service", "scan2mail"),
    ("Practice Manager", "end_user", "j.alvarez"),
    ("Local Admin (FS01)", "administrator", "localadmin"),
]
_FAIL_REASONS = [
    ("ldap_constraint_violation", "Password does not meet the domain's complexity rules"),
    ("account_not_matched", "No account is matched to this IT Glue password"),
    ("agent_offline", "The agent for this customer has been offline for 12 minutes"),
    ("itglue_forbidden", "IT Glue refused to show the password (403): the API key lacks "
     "password access"),
    ("ldap_invalid_credentials", "The agent's bind account was refused by the directory"),
]
_REJECT_CODES = [
    ("token_revoked", 410, "A call used a revoked workflow URL"),
    ("invalid_json", 400, "The webhook body was not JSON"),
    ("missing_resource_url", 422, "The webhook body had no resourceUrl"),
]
_AGENTS = ["dc01.contoso.local", "fs01.fabrikam.lan", "nwl-dc2", "ts-dc01", "wg-srv01"]


def _rfc3339(moment: datetime) -> str:
    return format_rfc3339(moment) or ""


def demo_events(n: int, *, start_id: int = 1, end: datetime | None = None,
                span: timedelta = timedelta(hours=6), seed: int = 7) -> list[dict[str, Any]]:
    """``n`` events in the wire shape, ids ascending from ``start_id``, ending near ``end``."""
    return list(iter_demo_events(n, start_id=start_id, end=end, span=span, seed=seed))


def iter_demo_events(n: int, *, start_id: int = 1, end: datetime | None = None,
                     span: timedelta = timedelta(hours=6), seed: int = 7
                     ) -> Iterator[dict[str, Any]]:
    """Like ``demo_events`` but lazily."""
    rng = random.Random(seed)
    end = end or datetime.now(UTC)
    step = span / max(n, 1)
    moment = end - span
    next_id = start_id
    produced = 0
    pending: list[tuple[str, str, str, dict[str, Any]]] = []  # follow-ups of a trigger

    def make(kind: str, severity: str, summary: str, **fields: Any) -> dict[str, Any]:
        nonlocal next_id, moment, produced
        moment += step * rng.uniform(0.2, 1.8)
        if moment > end:
            moment = end
        event = {
            "id": next_id,
            "occurred_at": _rfc3339(moment),
            "type": kind,
            "severity": severity,
            "summary": summary,
            "resource_name": fields.pop("resource_name", None),
            "resource_url": fields.pop("resource_url", None),
            "account": fields.pop("account", None),
            "token_id": fields.pop("token_id", None),
            "details": fields.pop("details", {}),
        }
        next_id += 1
        produced += 1
        return event

    if n > 0:
        yield make("integration.connected", "info", "IT Glue connected (region us)",
                   details={"region": "us", "api_key_hint": "ITG.…cdef"})
    if produced < n:
        yield make("token.generated", "info", "Workflow trigger token generated",
                   token_id=1, details={"expires_at": _rfc3339(end + timedelta(days=27)),
                                        "grace_hours": 0, "by": "admin@acme.test"})
    while produced < n:
        if pending:
            kind, severity, summary, fields = pending.pop(0)
            yield make(kind, severity, summary, **fields)
            continue
        roll = rng.random()
        name, slug, org, domain = rng.choice(_CUSTOMERS)
        pw_name, kind_of_account, user = rng.choice(_PASSWORDS)
        password_id = rng.randint(10000, 999999)
        url = f"https://{slug}.itglue.com/{org}/passwords/{password_id}"
        account = f"{user}@{domain}"
        resource = f"{pw_name} — {name}"
        if roll < 0.62:
            yield make("workflow_trigger.received", "info",
                       f"Password changed in IT Glue: {resource}",
                       resource_name=resource, resource_url=url, token_id=1,
                       details={"organization_id": org, "password_id": password_id,
                                "duplicates": 0})
            common = {"resource_name": resource, "resource_url": url, "account": account}
            pending.append(("password_reset.queued", "info",
                            f"Reset queued for {account}",
                            {**common, "details": {"agent": rng.choice(_AGENTS),
                                                   "account_kind": kind_of_account}}))
            if rng.random() < 0.86:
                pending.append(("password_reset.succeeded", "info",
                                f"Password reset applied to {account}",
                                {**common, "details": {"duration_ms": rng.randint(180, 2400),
                                                       "source": "active_directory"}}))
            else:
                code, reason = rng.choice(_FAIL_REASONS)
                pending.append(("password_reset.failed", "error",
                                f"Reset failed for {account}: {reason}",
                                {**common, "details": {"code": code, "reason": reason,
                                                       "attempt": 1}}))
                pending.append(("alert.sent", "info",
                                f"Alert mailed to 2 recipients: reset failed for {account}",
                                {"account": account,
                                 "details": {"recipients": ["noc@acme.test",
                                                            "oncall@acme.test"],
                                             "reason": "password_reset.failed"}}))
        elif roll < 0.70:
            yield make("workflow_trigger.test", "info",
                       "IT Glue Test Action received (no reset)", token_id=1,
                       resource_url="[resource_url]", resource_name="[resource_name]",
                       details={"status": "test"})
        elif roll < 0.76:
            code, status, text = rng.choice(_REJECT_CODES)
            yield make("workflow_trigger.rejected", "warning", f"{text} ({status})",
                       token_id=1, details={"code": code, "http_status": status,
                                            "remote_addr": f"52.40.{rng.randint(0, 255)}."
                                                           f"{rng.randint(1, 254)}"})
        elif roll < 0.86:
            agent = rng.choice(_AGENTS)
            if rng.random() < 0.5:
                yield make("agent.offline", "warning", f"Agent {agent} stopped checking in",
                           details={"agent": agent, "last_seen_seconds": rng.randint(90, 900)})
            else:
                yield make("agent.online", "info", f"Agent {agent} is online",
                           details={"agent": agent, "directories": [domain]})
        elif roll < 0.90:
            days = rng.choice([30, 7, 1])
            yield make("token.expiring", "warning",
                       f"Workflow trigger token expires in {days} day{'s' if days > 1 else ''}",
                       token_id=1, details={"days_left": days, "threshold": days})
        elif roll < 0.94:
            yield make("token.revealed", "info", "Workflow URL revealed by admin@acme.test",
                       token_id=1, details={"by": "admin@acme.test"})
        elif roll < 0.97:
            yield make("integration.error", "error",
                       "IT Glue API rate limit reached (429); retrying in 60 s",
                       details={"status": 429, "retry_after": 60})
        else:
            yield make("alert.failed", "error",
                       "Alert mail could not be sent: SMTP server refused the login",
                       details={"smtp_code": 535, "recipients": ["noc@acme.test"]})
