"""What the desktop says about the tenant's IT Glue watcher (plain functions, no widgets).

A tenant IT Glue's workflow cannot call (the tenant on this computer with no public address)
still learns of password changes: its watcher asks IT Glue for changed passwords every
``interval_seconds``. The IT Glue page shows when it last checked and what went wrong; the
page and the setup wizard say that changes arrive through the watcher instead of the
workflow, and the wizard then treats the IT Glue workflow steps as optional.
"""

from __future__ import annotations

from datetime import UTC, datetime

from qp_common.urls import public_url_problem
from qp_desktop.services.tenant_client import ITGlueIntegration, ITGlueWatcher


def _span(seconds: float) -> str:
    """``12 s``, ``3 min``, ``2 h``: a short span for a line that updates every second."""
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


def _within(interval_seconds: int) -> str:
    if interval_seconds <= 60:
        return "within a minute"
    return f"within {_span(interval_seconds)}"


def itglue_cannot_call(integration: ITGlueIntegration | None, tenant_address: str) -> bool:
    """Whether IT Glue's workflow cannot reach this tenant: the tenant's own verdict on the
    workflow URL when there is one, else the address's."""
    token = integration.workflow_token if integration else None
    if token is not None:
        return not token.public_url_ok
    return public_url_problem(tenant_address) is not None


def watcher_covers(integration: ITGlueIntegration | None, tenant_address: str) -> bool:
    """Whether password changes reach the tenant through its watcher instead of the
    workflow: the watcher runs and IT Glue cannot call the tenant."""
    watcher = integration.watcher if integration else None
    return (watcher is not None and watcher.enabled and bool(integration and integration.connected)
            and itglue_cannot_call(integration, tenant_address))


def watcher_instead(watcher: ITGlueWatcher) -> str:
    """The plain sentence for a tenant IT Glue cannot call but whose watcher runs."""
    return ("IT Glue cannot reach this tenant, so its workflow cannot tell it about password "
            "changes. The tenant's watcher asks IT Glue for changed passwords instead: "
            f"changes are picked up {_within(watcher.interval_seconds)}.")


def watcher_status(watcher: ITGlueWatcher | None,
                   now: datetime | None = None) -> tuple[str, str]:
    """``(kind, text)`` for the watcher line: kind is ``info``, ``warning`` or ``error``;
    ``("", "")`` when the tenant has no watcher (nothing is shown)."""
    if watcher is None:
        return "", ""
    if not watcher.enabled:
        return "info", "Off. Password changes reach the tenant through the IT Glue workflow."
    now = now or datetime.now(UTC)
    if watcher.last_checked_at is None:
        text = f"Starting: it checks IT Glue every {_span(watcher.interval_seconds)}."
    else:
        text = f"Checked {_span((now - watcher.last_checked_at).total_seconds())} ago"
        if watcher.next_check_at is not None:
            left = (watcher.next_check_at - now).total_seconds()
            text += f", next in {_span(left)}." if left >= 1 else ", next check due now."
        else:
            text += "."
    if watcher.changes_found:
        found = (f" {watcher.changes_found} changed password"
                 f"{'s' if watcher.changes_found != 1 else ''} picked up")
        if watcher.last_found_at is not None:
            found += f", the last {_span((now - watcher.last_found_at).total_seconds())} ago"
        text += found + "."
    if watcher.last_error:
        error = watcher.last_error.rstrip()
        if not error.endswith((".", "!", "?")):
            error += "."
        return "error", (f"{text} The last check failed: {error} It tries again at each "
                         "check; if this goes on, check the IT Glue connection above.")
    return "info", text
