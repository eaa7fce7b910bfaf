"""Alerts: who gets mail, when a token is warned about, what the mails say, the mail outbox.

The expiry policy is pure (:func:`expiry_decision`): the scheduler asks it what to log and
then makes it stick with a unique row per ``(token, threshold)`` in ``token_warnings``. Mail
is never sent inline: it is written to ``alert_outbox`` in the same transaction as its event
and delivered by the scheduler's background loop (see :mod:`qp_tenant.domain.scheduler`).

No recipients configured means no mail and no ``alert.*`` event: the ``token.*`` and failure
events are still logged and visible in the desktop app.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.errors import ApiError
from qp_tenant.models import AlertOutbox, AlertSettings, Event, WorkflowToken, utcnow

MAX_RECIPIENTS = 10
MAX_WARNING_DAY = 365
MAX_THRESHOLDS = 10
EXPIRED_MARK = -1  # the token_warnings threshold that stands for "expired"
FAILURE_TYPES = ("workflow_trigger.rejected", "password_reset.failed")
MAX_LISTED_FAILURES = 50


def alertable() -> ColumnElement[bool]:
    """Failure events that go into alert mail: all but those marked ``details.alert: false``
    (a repeat of a failure whose cause was already alerted, e.g. a Microsoft 365 link whose
    client secret expired fails every reset until it is renewed)."""
    flag = Event.details["alert"].as_boolean()
    return or_(flag.is_(None), flag == true())

REPLACE_STEPS = (
    "What to do:\n"
    "1. In QP Desktop, open the IT Glue integration page and choose \"Generate New\" under\n"
    "   Workflow Trigger Token. Ask for a grace period if the current URL should keep\n"
    "   working while you update IT Glue.\n"
    "2. Copy the new workflow URL.\n"
    "3. In IT Glue: Account > Workflows > your Quickpass workflow > Webhook action: paste\n"
    "   the new URL into the URL field and save.\n"
    "4. Change a test password in IT Glue and check that a \"Workflow Trigger\" event\n"
    "   appears in the event monitor.\n"
)


# --- Expiry policy (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryDecision:
    """What the scheduler should log for one token now.

    ``event`` is ``token.expiring``, ``token.expired`` or None; ``threshold`` is the
    threshold the event is for (:data:`EXPIRED_MARK` for expiry); ``mark`` is every
    threshold to record as handled together with it.
    """

    event: str | None
    threshold: int | None
    mark: frozenset[int]


NOTHING = ExpiryDecision(None, None, frozenset())


def due_threshold(days_left: int, thresholds: Iterable[int], warned: Iterable[int]
                  ) -> tuple[int | None, frozenset[int]]:
    """The ONE threshold to warn for now, and the thresholds to mark done with it.

    A threshold is reached when ``days_left <= threshold``. Of the reached, unwarned ones the
    smallest is warned for; every larger unwarned threshold is marked too, so a token created
    with 10 days left warns once (for 30), then at 7, then at 1.
    """
    done = set(warned)
    reached = sorted(t for t in set(thresholds) if days_left <= t and t not in done)
    if not reached:
        return None, frozenset()
    smallest = reached[0]
    return smallest, frozenset(reached)


def expiry_decision(days_left: int, expired: bool, thresholds: Iterable[int],
                    warned: Iterable[int]) -> ExpiryDecision:
    """Expiry wins over any warning: an expired token logs ``token.expired`` once, and every
    threshold not yet warned for is marked so it is never warned for afterwards."""
    warned = frozenset(warned)
    if expired:
        if EXPIRED_MARK in warned:
            return NOTHING
        rest = frozenset(t for t in thresholds if t not in warned)
        return ExpiryDecision("token.expired", EXPIRED_MARK, rest | {EXPIRED_MARK})
    threshold, mark = due_threshold(days_left, thresholds, warned)
    if threshold is None:
        return NOTHING
    return ExpiryDecision("token.expiring", threshold, mark)


# --- Alert settings -----------------------------------------------------------------------


@dataclass(frozen=True)
class AlertConfig:
    recipients: list[str]
    expiry_warning_days: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {"recipients": list(self.recipients),
                "expiry_warning_days": list(self.expiry_warning_days)}


def validate_recipients(values: Sequence[str]) -> list[str]:
    """Syntax-checked, normalised, de-duplicated addresses (no DNS look-up)."""
    result: list[str] = []
    seen: set[str] = set()
    for raw in values:
        text = raw.strip()
        if not text:
            continue
        try:
            # test_environment: also accept the reserved ``.test`` domain (test and demo
            # tenants use it); deliverability is the SMTP server's business, not ours.
            address = validate_email(text, check_deliverability=False,
                                     test_environment=True).normalized
        except EmailNotValidError as exc:
            raise ApiError(422, "invalid_recipient",
                           f"\"{text}\" is not a valid email address: {exc}",
                           {"recipient": text}) from None
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        result.append(address)
    if len(result) > MAX_RECIPIENTS:
        raise ApiError(422, "too_many_recipients",
                       f"At most {MAX_RECIPIENTS} alert recipients are allowed; "
                       f"{len(result)} were given.", {"max": MAX_RECIPIENTS})
    return result


def validate_warning_days(values: Iterable[int]) -> list[int]:
    """Distinct whole days between 0 and 365, largest first; each problem is refused with a
    sentence naming the entry (the app shows it beside the field)."""
    given = list(values)
    for day in given:
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= MAX_WARNING_DAY:
            raise ApiError(422, "invalid_expiry_warning_days",
                           f"Expiry warning days must be whole days between 0 and "
                           f"{MAX_WARNING_DAY}; {day} is not.", {"value": day})
    repeated = next((day for n, day in enumerate(given) if day in given[:n]), None)
    if repeated is not None:
        raise ApiError(422, "invalid_expiry_warning_days",
                       f"Expiry warning day {repeated} is listed twice; list each day once.",
                       {"value": repeated})
    if len(given) > MAX_THRESHOLDS:
        raise ApiError(422, "invalid_expiry_warning_days",
                       f"At most {MAX_THRESHOLDS} expiry warning days are allowed; "
                       f"{len(given)} were given.", {"max": MAX_THRESHOLDS})
    return sorted(given, reverse=True)


def limits() -> dict[str, int]:
    """The bounds the settings are checked against, so the app can check them as it edits."""
    return {"max_recipients": MAX_RECIPIENTS, "max_expiry_warning_days": MAX_THRESHOLDS,
            "max_warning_day": MAX_WARNING_DAY}


async def get_alert_config(session: AsyncSession, tenant_id: int,
                           default_days: Sequence[int]) -> AlertConfig:
    row = await _settings_row(session, tenant_id)
    if row is None:
        return AlertConfig([], sorted(set(default_days), reverse=True))
    days = row.expiry_warning_days
    return AlertConfig(list(row.recipients or []),
                       list(days) if days is not None else sorted(set(default_days),
                                                                  reverse=True))


async def put_alert_config(session: AsyncSession, tenant_id: int, default_days: Sequence[int],
                           *, recipients: Sequence[str] | None = None,
                           expiry_warning_days: Iterable[int] | None = None) -> AlertConfig:
    """Change what is given (None leaves a field as it is), and commit."""
    clean_recipients = validate_recipients(recipients) if recipients is not None else None
    clean_days = validate_warning_days(expiry_warning_days) \
        if expiry_warning_days is not None else None
    row = await _settings_row(session, tenant_id)
    if row is None:
        row = AlertSettings(tenant_id=tenant_id, recipients=[], expiry_warning_days=None)
        session.add(row)
    if clean_recipients is not None:
        row.recipients = clean_recipients
    if clean_days is not None:
        row.expiry_warning_days = clean_days
    row.updated_at = utcnow()
    await session.commit()
    return await get_alert_config(session, tenant_id, default_days)


async def recipients(session: AsyncSession, tenant_id: int) -> list[str]:
    """The tenant's alert recipients (empty: nobody gets alert mail)."""
    row = await _settings_row(session, tenant_id)
    return list(row.recipients or []) if row is not None else []


async def _settings_row(session: AsyncSession, tenant_id: int) -> AlertSettings | None:
    stmt = select(AlertSettings).where(AlertSettings.tenant_id == tenant_id)
    return (await session.scalars(stmt)).first()


# --- Mail text ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    kind: str  # token.expiring | token.expired | failures | account.source_changed
    subject: str
    body: str


def day_text(when: datetime) -> str:
    """``3 Dec 2027``."""
    return f"{when.day} {when:%b %Y}"


def days_text(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def expiring_summary(days_left: int, expires_at: datetime) -> str:
    return f"Workflow token expires in {days_text(days_left)} (on {day_text(expires_at)})"


def expired_summary(expires_at: datetime) -> str:
    return (f"Workflow token expired on {day_text(expires_at)}: IT Glue triggers to its URL "
            "are refused")


def _footer(tenant_name: str, public_url: str) -> str:
    where = f" ({public_url})" if public_url else ""
    return (f"\n-- \nSent by the QP tenant service{where} because you are an alert recipient "
            f"of {tenant_name}.\nAn administrator can change the recipients in QP Desktop.\n")


def expiring_mail(tenant_name: str, token: WorkflowToken, days_left: int,
                  public_url: str = "") -> Mail:
    expires = token.expires_at
    subject = (f"[QP] {tenant_name}: IT Glue workflow token expires in {days_text(days_left)} "
               f"({day_text(expires)})")
    body = (
        f"The IT Glue workflow trigger token of {tenant_name} expires in "
        f"{days_text(days_left)}, on {day_text(expires)} at {expires:%H:%M} UTC.\n\n"
        "When it expires, IT Glue's password-change webhooks are refused: passwords changed "
        "in IT Glue are no longer applied to your accounts until the IT Glue workflow uses "
        "a new URL.\n\n"
        + REPLACE_STEPS
        + f"\nToken: workflow URL ending in …{token.last4}, created "
        f"{day_text(token.created_at)}, expires {day_text(expires)}.\n"
        + _footer(tenant_name, public_url)
    )
    return Mail("token.expiring", subject, body)


def expired_mail(tenant_name: str, token: WorkflowToken, public_url: str = "") -> Mail:
    expires = token.expires_at
    subject = (f"[QP] {tenant_name}: IT Glue workflow token EXPIRED — password changes are "
               "no longer applied")
    body = (
        f"The IT Glue workflow trigger token of {tenant_name} expired on {day_text(expires)} "
        f"at {expires:%H:%M} UTC.\n\n"
        "Since then the tenant refuses IT Glue's password-change webhooks: passwords changed "
        "in IT Glue are NOT applied to your accounts. IT Glue reports each refusal to the "
        "workflow's failure-notification address.\n\n"
        + REPLACE_STEPS
        + "\nPasswords changed in IT Glue while the token was expired were not applied; "
        "change them again in IT Glue (or replay their events) once the new URL is in "
        "place.\n"
        f"\nToken: workflow URL ending in …{token.last4}, created "
        f"{day_text(token.created_at)}.\n"
        + _footer(tenant_name, public_url)
    )
    return Mail("token.expired", subject, body)


def failures_mail(tenant_name: str, failures: Sequence[Event], total: int,
                  public_url: str = "") -> Mail:
    """One mail for a batch of rejected triggers and failed resets."""
    rejected = sum(1 for e in failures if e.type == "workflow_trigger.rejected")
    resets = sum(1 for e in failures if e.type == "password_reset.failed")
    noun = "failure" if total == 1 else "failures"
    subject = f"[QP] {tenant_name}: {total} workflow {noun} in IT Glue password resets"
    lines = []
    for event in failures[:MAX_LISTED_FAILURES]:
        what = event.resource_name or event.account or ""
        code = (event.details or {}).get("code")
        tag = f" [{code}]" if code else ""
        suffix = f" — {what}" if what else ""
        folded = event.duplicates or 0 if event.type == "workflow_trigger.rejected" else 0
        times = f" ({1 + folded:,} times in that minute)" if folded else ""
        lines.append(f"- {event.occurred_at:%Y-%m-%d %H:%M:%S} UTC{tag} "
                     f"{event.summary}{times}{suffix}")
    shown = sum(1 + (e.duplicates or 0 if e.type == "workflow_trigger.rejected" else 0)
                for e in failures[:MAX_LISTED_FAILURES])
    if total > shown:
        lines.append(f"- … and {total - shown:,} more (see the event monitor)")
    advice = []
    if rejected:
        advice.append(
            "Refused workflow triggers mean IT Glue called a URL the tenant would not accept. "
            "If the code is token_expired or token_revoked, generate a new workflow token on "
            "the IT Glue integration page and paste the new URL into the IT Glue workflow. "
            "If it is missing_resource_url, add the Key/Value row resourceUrl = "
            "[resource_url] to the workflow's Webhook action.")
    if any(str((e.details or {}).get("code", "")).startswith("m365_") for e in failures):
        advice.append(
            "Failed Microsoft 365 resets are applied by the tenant itself through Microsoft "
            "Graph; each line above says what Microsoft refused and what to change (the app's "
            "client secret or directory role, the customer's link, or the password itself).")
    if resets:
        advice.append(
            "Failed resets mean a password changed in IT Glue was not written to its account. "
            "Check that the account's agent is online and the account is matched to the right "
            "IT Glue password, then replay the event from the event monitor.")
    body = (
        f"{total} workflow {noun} happened for {tenant_name}:\n\n"
        + "\n".join(lines) + "\n\n"
        + "\n\n".join(advice) + "\n\n"
        "Open the event monitor in QP Desktop for the details of each one.\n"
        + _footer(tenant_name, public_url)
    )
    return Mail("failures", subject, body)


def source_change_mail(tenant_name: str, account_name: str, sentence: str,
                       public_url: str = "") -> Mail:
    """A matched account now points at another real account; ``sentence`` says who changed
    it from what to what."""
    subject = f"[QP] {tenant_name}: the source of account {account_name} was changed"
    body = (
        f"{sentence}\n\n"
        "From now on, a change of that IT Glue password is written to the new source account. "
        "If you did not expect this change, point the account back to its real source in QP "
        "Desktop (Accounts) and check who has administrator access to the tenant.\n"
        + _footer(tenant_name, public_url)
    )
    return Mail("account.source_changed", subject, body)


def webhook_missing_mail(tenant_name: str, names: Sequence[str], grace_minutes: int,
                         public_url: str = "") -> Mail:
    """The IT Glue watcher found password changes whose workflow webhook never arrived."""
    count = len(names)
    noun = "change" if count == 1 else "changes"
    subject = (f"[QP] {tenant_name}: IT Glue's workflow is not calling the tenant "
               f"({count} password {noun} found by the watcher instead)")
    listed = "\n".join(f"- {name}" for name in names[:MAX_LISTED_FAILURES])
    if count > MAX_LISTED_FAILURES:
        listed += f"\n- … and {count - MAX_LISTED_FAILURES:,} more"
    body = (
        f"The tenant's IT Glue watcher found {count} password {noun} in IT Glue for which "
        f"IT Glue's workflow did not call the workflow URL within {grace_minutes} min:\n\n"
        f"{listed}\n\n"
        "The watcher applies these changes anyway, but only once a minute or so, and only "
        "while it can read IT Glue. IT Glue's workflow may be switched off, or it may still "
        "call an old workflow URL.\n\n"
        "What to check:\n"
        "1. In IT Glue: Account > Workflows: the Quickpass workflow is switched on.\n"
        "2. Its Webhook action's URL is the current workflow URL from the IT Glue integration\n"
        "   page in QP Desktop (copy it there and paste it again if unsure).\n"
        "3. Check IT Glue's workflow failure e-mails: they say what IT Glue got back.\n"
        "\nThis alert is sent at most once an hour.\n"
        + _footer(tenant_name, public_url)
    )
    return Mail("itglue.webhook_missing", subject, body)


# --- Outbox -------------------------------------------------------------------------------


def enqueue_mail(session: AsyncSession, tenant_id: int, mail: Mail, recipients: Sequence[str],
                 now: datetime) -> AlertOutbox | None:
    """Queue a mail in the caller's transaction. No recipients: nothing is queued."""
    if not recipients:
        return None
    row = AlertOutbox(tenant_id=tenant_id, kind=mail.kind, subject=mail.subject, body=mail.body,
                      recipients=list(recipients), status="pending", attempts=0,
                      created_at=now, next_attempt_at=now)
    session.add(row)
    return row


def retry_delay(attempts: int, base_seconds: float, cap_seconds: float = 3600.0) -> float:
    """Back-off after the ``attempts``-th failed attempt: base, 2×base, 4×base, … capped."""
    return float(min(cap_seconds, base_seconds * (2 ** max(0, attempts - 1))))
