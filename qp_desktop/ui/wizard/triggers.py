"""What an event from the tenant means for the setup checklist (plain functions, no widgets).

The live part of the wizard (:mod:`.live`) asks these: which kind of event it is, how to
describe a trigger that arrived, what to say about a trigger the tenant refused and which step
fixes it, and what a reset's outcome says about the real test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qp_desktop.ui import wizard_steps as W
from qp_desktop.ui.wizard.formatting import (
    REJECTED,
    RESET_FAILED,
    RESET_OK,
    TRIGGER_TYPES,
    when_text,
)

Event = Mapping[str, Any]

# What an event is to the checklist (see event_role).
RESET = "reset"  # a reset's outcome: may decide the real test
FACTS = "facts"  # agents or accounts changed: the prerequisites' counts may have
CONFIG = "config"  # token or integration changed: reload
TRIGGER = "trigger"  # a workflow trigger, accepted or refused
OTHER = "other"


def event_role(event_type: str) -> str:
    """What an event of ``event_type`` is to the checklist."""
    if event_type.startswith("password_reset."):
        return RESET
    if event_type.startswith(("agent.", "account.")):
        return FACTS
    if event_type.startswith(("token.", "integration.")):
        return CONFIG
    if event_type.startswith("workflow_trigger."):
        return TRIGGER
    return OTHER


def is_accepted_trigger(event_type: str) -> bool:
    return event_type in TRIGGER_TYPES


def is_refused_trigger(event_type: str) -> bool:
    return event_type == REJECTED


def describe_trigger(event_type: str, event: Event) -> str:
    """``a test trigger for "Name" (keys: …).``, with a hint when payload keys are missing."""
    name = event.get("resource_name") or "a password"
    details = event.get("details") or {}
    keys = [str(k) for k in details.get("keys") or []]
    if event_type == "workflow_trigger.test":
        text = f"a test trigger for \u201c{name}\u201d"
    else:
        text = f"a password change in IT Glue for \u201c{name}\u201d"
    if keys:
        text += f" (keys: {', '.join(keys)})"
    missing = [k for k, _ in W.DEFAULT_PAYLOAD if keys and k not in keys]
    text += "."
    if missing:
        step = W.STEP_KEYS.index(W.PAYLOAD) + 1
        text += (f" The body had no {', '.join(missing)}: check the Key/Value rows "
                 f"(step {step}).")
    return text


def explain_refusal(event: Event) -> tuple[str, str | None]:
    """What to tell the technician about a refused trigger, and the step that fixes it."""
    details = event.get("details") or {}
    code = str(details.get("code") or "")
    hint = str(details.get("token_hint") or "")
    advice = W.REJECTION_ADVICE.get(code)
    when = when_text(event.get("occurred_at"))
    if advice is None:
        summary = str(event.get("summary") or "The tenant refused a workflow trigger.")
        return f"{summary} ({when})", None
    template, step = advice
    return (f"The tenant refused a trigger at {when}. "
            + template.format(hint=f" ({hint})" if hint else "")), step


def reset_trigger_id(event: Event) -> int | None:
    """The trigger event a reset outcome belongs to (None: not an outcome, or unknown)."""
    if str(event.get("type", "")) not in (*RESET_OK, RESET_FAILED):
        return None  # queued, retrying: not an outcome yet
    details = event.get("details") or {}
    try:
        return int(details.get("trigger_event_id") or 0) or None
    except (TypeError, ValueError):
        return None


def reset_succeeded(event: Event) -> bool:
    return str(event.get("type", "")) in RESET_OK


def real_test_note(note: str, event: Event) -> str:
    """The real test's note once its reset succeeded."""
    return note + (f" The new password reached {event['account']}."
                   if event.get("account") else "")


def real_test_failure(event: Event) -> str:
    """Why the real test is not done: the reset its trigger started failed."""
    summary = str(event.get("summary") or "the reset failed").rstrip(".")
    return (f"IT Glue's trigger arrived, but the password was not changed: {summary}. "
            "Fix that (the Accounts page shows each account's match and agent), then change "
            "the password in IT Glue again.")
