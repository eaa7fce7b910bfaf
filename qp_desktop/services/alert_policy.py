"""Which alerts the desktop raises, as pure functions over plain values.

* Token expiry: one notification per threshold per token (default 30, 7 and 1 days before
  expiry, plus expiry itself), remembered across restarts (:class:`AlertMemory` serialises
  to a settings string). Like the tenant's scheduler, the smallest reached threshold is
  notified and every larger one is marked done with it, so a token first seen with 5 days
  left notifies once ("7 days"), then at 1 day, then at expiry. "Snooze 1 day" brings the
  last notification back a day later; new thresholds wait for the snooze, expiry does not.
* Failures (``password_reset.failed``, ``workflow_trigger.rejected``): a burst becomes one
  notification (:class:`FailureWindow`): failures are gathered for a few seconds, at most one
  notification goes out per minute, and it counts everything not yet looked at ("5 password
  resets failed") until the technician opens the event monitor.
* :func:`tray_status`: ok / warning / error for the tray icon, its tooltip and the banner.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

EXPIRED = -1  # the "threshold" that stands for expiry itself
# Until the tenant's own days are known (GET /api/v1/alerts; AlertCenter follows them).
DEFAULT_THRESHOLDS: tuple[int, ...] = (30, 7, 1)
SNOOZE = timedelta(days=1)
MAX_REMEMBERED_TOKENS = 50

RESET_FAILED = "password_reset.failed"
TRIGGER_REJECTED = "workflow_trigger.rejected"
FAILURE_TYPES = frozenset({RESET_FAILED, TRIGGER_REJECTED})
GATHER = timedelta(seconds=3)  # wait this long after the first failure for the rest of a burst
MIN_GAP = timedelta(seconds=60)  # at most one failure notification per this window
LATEST_KEPT = 5

STATE_OK = "ok"
STATE_WARNING = "warning"
STATE_ERROR = "error"


# --- expiry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenMemory:
    """What was notified for one token: thresholds done and a pending snooze."""

    done: frozenset[int] = frozenset()
    snoozed_until: datetime | None = None


@dataclass(frozen=True)
class AlertMemory:
    """Per-token memory, keyed by :func:`token_key`; oldest entries are dropped past a cap."""

    tokens: Mapping[str, TokenMemory] = field(default_factory=dict)

    def get(self, key: str) -> TokenMemory:
        return self.tokens.get(key, TokenMemory())

    def with_token(self, key: str, memory: TokenMemory) -> AlertMemory:
        tokens = {k: v for k, v in self.tokens.items() if k != key}
        tokens[key] = memory  # most recently touched last
        while len(tokens) > MAX_REMEMBERED_TOKENS:
            del tokens[next(iter(tokens))]
        return AlertMemory(tokens)

    def to_json(self) -> str:
        return json.dumps({key: {"done": sorted(m.done),
                                 "snoozed_until": (m.snoozed_until.isoformat()
                                                   if m.snoozed_until else None)}
                           for key, m in self.tokens.items()}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AlertMemory:
        """Tolerant: a damaged or foreign value gives an empty memory, never an error."""
        try:
            raw = json.loads(text) if text else {}
        except ValueError:
            return cls()
        if not isinstance(raw, dict):
            return cls()
        tokens: dict[str, TokenMemory] = {}
        for key, value in raw.items():
            if not isinstance(value, dict):
                continue
            try:
                done = frozenset(int(t) for t in value.get("done") or ())
                until = value.get("snoozed_until")
                tokens[str(key)] = TokenMemory(
                    done, datetime.fromisoformat(until) if isinstance(until, str) else None)
            except (TypeError, ValueError):
                continue
        return cls(tokens)


@dataclass(frozen=True)
class ExpiryAlert:
    """Notify now: ``threshold`` is the one reached (:data:`EXPIRED` for expiry)."""

    token_key: str
    threshold: int
    days_left: int | None
    reminder: bool = False  # a snoozed alert coming back

    @property
    def expired(self) -> bool:
        return self.threshold == EXPIRED


def token_key(scope: str, token_id: object) -> str:
    """The memory key of a token: unique per tenant (``scope``) and token id."""
    return f"{scope}#{token_id}"


def decide_expiry(memory: AlertMemory, key: str, *, days_left: int | None, expired: bool,
                  now: datetime, thresholds: Iterable[int] = DEFAULT_THRESHOLDS,
                  ) -> tuple[ExpiryAlert | None, AlertMemory]:
    """The expiry notification due for one token now, and the memory after it.

    Args:
        days_left: whole days until expiry as the tenant counts them (None if unknown).
        expired: the tenant says the token has expired.
        thresholds: days before expiry to warn at.
    """
    mem = memory.get(key)
    snoozed = mem.snoozed_until is not None and now < mem.snoozed_until
    marks = {t for t in thresholds if t >= 0}
    if expired:
        if EXPIRED not in mem.done:
            # Expiry breaks through a snooze: from now on IT Glue's calls are refused.
            new = TokenMemory(mem.done | marks | {EXPIRED}, None)
            return ExpiryAlert(key, EXPIRED, days_left), memory.with_token(key, new)
    elif days_left is not None:
        reached = sorted(t for t in marks if days_left <= t and t not in mem.done)
        if reached and not snoozed:
            new = TokenMemory(mem.done | set(reached), None)
            return ExpiryAlert(key, reached[0], days_left), memory.with_token(key, new)
    if mem.snoozed_until is not None and not snoozed and mem.done:
        new = TokenMemory(mem.done, None)
        alert = ExpiryAlert(key, min(mem.done), days_left, reminder=True)
        return alert, memory.with_token(key, new)
    return None, memory


def snooze(memory: AlertMemory, key: str, now: datetime) -> AlertMemory:
    """"Snooze 1 day": the token's last notification comes back after :data:`SNOOZE`."""
    return memory.with_token(key, replace(memory.get(key), snoozed_until=now + SNOOZE))


def _days_phrase(days_left: int | None) -> str:
    if days_left is None:
        return "soon"
    if days_left <= 0:
        return "today"
    if days_left == 1:
        return "tomorrow"
    return f"in {days_left} days"


def expiry_text(expired: bool, days_left: int | None,
                expires_at: datetime | None = None) -> tuple[str, str]:
    """(title, body) for an expiry notification or banner. Never holds the URL itself."""
    if expired:
        return ("The workflow URL has expired",
                "IT Glue\u2019s password changes are refused until you generate a new "
                "workflow URL and paste it into the Webhook action of the IT Glue workflow.")
    when = _days_phrase(days_left)
    on = f" (on {expires_at:%d %b %Y})" if expires_at is not None and days_left else ""
    return (f"The workflow URL expires {when}",
            f"It expires {when}{on}. Generate a new workflow URL and paste it into the "
            "Webhook action of the IT Glue workflow before then, or password changes stop "
            "reaching this tenant.")


# --- failures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureRecord:
    type: str
    summary: str
    subject: str  # resource or account name; may be empty


@dataclass(frozen=True)
class FailureWindow:
    """Failures not yet looked at, and which of them still wait for a notification."""

    resets: int = 0
    rejected: int = 0
    latest: tuple[FailureRecord, ...] = ()  # newest last
    pending_resets: int = 0
    pending_rejected: int = 0
    pending_since: datetime | None = None
    last_sent_at: datetime | None = None

    @property
    def total(self) -> int:
        return self.resets + self.rejected

    @property
    def pending(self) -> bool:
        return bool(self.pending_resets or self.pending_rejected)


@dataclass(frozen=True)
class FailureNotice:
    """One coalesced notification: the counts not yet looked at, and the newest failures."""

    resets: int
    rejected: int
    latest: tuple[FailureRecord, ...]


def _subject(event: Mapping[str, Any]) -> str:
    for key in ("resource_name", "account"):
        value = event.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, Mapping):
            name = value.get("display_name") or value.get("name")
            if name:
                return str(name)
    return ""


def add_failures(window: FailureWindow, events: Iterable[Mapping[str, Any]],
                 now: datetime) -> FailureWindow:
    """Count the failure events among ``events`` (others are ignored)."""
    resets = rejected = 0
    latest = list(window.latest)
    for event in events:
        kind = event.get("type")
        if kind not in FAILURE_TYPES:
            continue
        if kind == RESET_FAILED:
            resets += 1
        else:
            # The tenant folds the refusals of one token, code and minute into one event;
            # ``details.count`` says how many it stands for (once they have been folded).
            details = event.get("details")
            count = details.get("count") if isinstance(details, Mapping) else None
            rejected += count if isinstance(count, int) and count > 0 else 1
        latest.append(FailureRecord(str(kind), str(event.get("summary") or ""),
                                    _subject(event)))
    if not (resets or rejected):
        return window
    return replace(window, resets=window.resets + resets, rejected=window.rejected + rejected,
                   latest=tuple(latest[-LATEST_KEPT:]),
                   pending_resets=window.pending_resets + resets,
                   pending_rejected=window.pending_rejected + rejected,
                   pending_since=window.pending_since or now)


def flush_at(window: FailureWindow, gather: timedelta = GATHER,
             min_gap: timedelta = MIN_GAP) -> datetime | None:
    """When the pending failures should be notified (None: nothing pending)."""
    if not window.pending or window.pending_since is None:
        return None
    due = window.pending_since + gather
    if window.last_sent_at is not None:
        due = max(due, window.last_sent_at + min_gap)
    return due


def take_notice(window: FailureWindow, now: datetime, *, resets_enabled: bool = True,
                rejected_enabled: bool = True) -> tuple[FailureNotice | None, FailureWindow]:
    """Close the pending batch. A notice only if an enabled kind is pending; it counts every
    failure of the enabled kinds not yet looked at."""
    wanted = ((resets_enabled and window.pending_resets > 0)
              or (rejected_enabled and window.pending_rejected > 0))
    cleared = replace(window, pending_resets=0, pending_rejected=0, pending_since=None)
    if not wanted:
        return None, cleared
    notice = FailureNotice(
        window.resets if resets_enabled else 0, window.rejected if rejected_enabled else 0,
        tuple(r for r in window.latest
              if (r.type == RESET_FAILED and resets_enabled)
              or (r.type == TRIGGER_REJECTED and rejected_enabled)))
    return notice, replace(cleared, last_sent_at=now)


def acknowledge(window: FailureWindow) -> FailureWindow:
    """The technician looked (opened the event monitor): start counting from zero."""
    return FailureWindow(last_sent_at=window.last_sent_at)


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def failure_headline(resets: int, rejected: int) -> str:
    parts = []
    if resets:
        parts.append(_plural(resets, "password reset failed", "password resets failed"))
    if rejected:
        parts.append(_plural(rejected, "workflow trigger was refused",
                             "workflow triggers were refused"))
    return ", ".join(parts)


def failure_text(notice: FailureNotice) -> tuple[str, str]:
    """(title, body) for a coalesced failure notification."""
    title = failure_headline(notice.resets, notice.rejected)
    title = title[:1].upper() + title[1:]
    count = notice.resets + notice.rejected
    newest = notice.latest[-1] if notice.latest else None
    if count == 1 and newest is not None:
        body = newest.summary or "See the event monitor for details."
        if newest.subject and newest.subject not in body:
            body = f"{newest.subject}: {body}"
        return title, body
    subjects = list(dict.fromkeys(r.subject for r in reversed(notice.latest) if r.subject))
    body = ""
    if subjects:
        body = "Latest: " + ", ".join(subjects[:3]) + (" and others" if len(subjects) > 3
                                                         else "") + ". "
    return title, body + "Open the event monitor for the details."


# --- status ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertStatus:
    """What the tray icon and tooltip show: ``state`` is ok, warning or error."""

    state: str
    lines: tuple[str, ...]

    @property
    def tooltip(self) -> str:
        return "\n".join(("QP Desktop", *self.lines))


def tray_status(url_status: str | None, days_left: int | None,
                window: FailureWindow, signed_in: bool = True) -> AlertStatus:
    """The tray's state from the current token and the failures not yet looked at."""
    if not signed_in:
        return AlertStatus(STATE_OK, ("Not signed in",))
    lines: list[str] = []
    state = STATE_OK
    if url_status == "expired":
        state = STATE_ERROR
        lines.append("The workflow URL has expired")
    elif url_status == "expiring":
        state = STATE_WARNING
        lines.append(f"The workflow URL expires {_days_phrase(days_left)}")
    elif url_status == "active":
        lines.append("The workflow URL is valid" + (f" for {days_left} days"
                                                    if days_left is not None else ""))
    else:
        lines.append("No workflow URL yet")
    if window.total:
        state = STATE_ERROR
        headline = failure_headline(window.resets, window.rejected)
        lines.append(headline[:1].upper() + headline[1:])
    return AlertStatus(state, tuple(lines))
