"""What to do about a failed reset: one table from the event's ``details.code`` to a sentence
and the action that fixes it.

The detail pane shows the sentence and offers the action (Match account…, Open agent, Open
IT Glue) next to Retry. A code this table does not know gets a generic sentence and Retry.
The codes and the kind of fix each needs are the tenant's (docs/api.md, "Why a reset failed
or was skipped").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FAILED = "password_reset.failed"

MATCH = "match"  # Match account…: the Match dialog (or the unmatched accounts to choose from)
RETRY = "retry"  # Retry: run the pipeline again with IT Glue's current value
OPEN_AGENT = "open_agent"  # Open agent: the Accounts page filtered to the event's agent
OPEN_ITGLUE = "open_itglue"  # the IT Glue page (connection, key)
OPEN_ACCOUNTS = "open_accounts"  # the Accounts page (Microsoft 365 link of the customer)

ACTION_LABELS = {MATCH: "Match account\u2026", RETRY: "Retry", OPEN_AGENT: "Open agent",
                 OPEN_ITGLUE: "Open IT Glue", OPEN_ACCOUNTS: "Open accounts"}

# code -> (what to do, in one sentence; the action that fixes it)
FIXES: dict[str, tuple[str, str]] = {
    "no_matched_account": ("No account follows this IT Glue password: match one to it, then "
                           "Retry.", MATCH),
    "account_gone": ("The matched account is gone from its directory: match the password to "
                     "the account that replaced it, then Retry.", MATCH),
    "no_agent": ("The account has no agent to apply the change: give it an agent and a "
                 "directory, then Retry.", OPEN_AGENT),
    "agent_revoked": ("The account\u2019s agent was revoked: enroll a new agent for this "
                      "customer, then Retry.", OPEN_AGENT),
    "agent_unavailable": ("The agent did not take the change in time: check that it is "
                          "running and online, then Retry.", OPEN_AGENT),
    "lease_expired": ("The agent took the change but never reported back: check its log and "
                      "its connection, then Retry.", OPEN_AGENT),
    "directory_refused": ("The directory refused the new password (its reason is above): fix "
                          "the account or the password in IT Glue, then Retry.", RETRY),
    "itglue_not_connected": ("IT Glue is not connected: connect it, then Retry.",
                             OPEN_ITGLUE),
    "itglue_key_rejected": ("IT Glue refused the API key: enter a valid key, then Retry.",
                            OPEN_ITGLUE),
    "itglue_no_password_access": ("The IT Glue API key lacks Password Access: create a key "
                                  "with it, then Retry.", OPEN_ITGLUE),
    "itglue_password_unreachable": ("The API cannot read this IT Glue password (deleted, in "
                                    "a Vault or \u201cOnly Me\u201d): share it with the API "
                                    "key, then Retry.", OPEN_ITGLUE),
    "itglue_password_empty": ("The password in IT Glue is empty: enter a value there; the "
                              "change then arrives by itself.", OPEN_ITGLUE),
    "itglue_unreachable": ("IT Glue could not be reached: Retry when it answers again.",
                           RETRY),
    "itglue_error": ("IT Glue answered with an error: Retry in a moment.", RETRY),
    "m365_not_linked": ("The customer is not linked to Microsoft 365: link it on the "
                        "Accounts page, then Retry.", OPEN_ACCOUNTS),
    "m365_credentials_rejected": ("Microsoft refused the customer\u2019s app credentials: "
                                  "link it again with a new secret, then Retry.",
                                  OPEN_ACCOUNTS),
    "m365_insufficient_privileges": ("The app may not reset this user\u2019s password: give "
                                     "it the role it needs, then Retry.", OPEN_ACCOUNTS),
    "m365_user_not_found": ("Microsoft 365 has no such user: match the password to the right "
                            "account, then Retry.", MATCH),
    "m365_on_premises_synced": ("The user is synced from on-premises Active Directory: the "
                                "agent must reset it there.", OPEN_AGENT),
    "m365_password_policy": ("Microsoft 365 refused the value under its password policy: "
                             "change it in IT Glue to one the policy accepts.", RETRY),
    "m365_throttled": ("Microsoft Graph kept throttling: Retry in a few minutes.", RETRY),
    "m365_unreachable": ("Microsoft 365 could not be reached: Retry when it answers again.",
                         RETRY),
    "m365_graph_error": ("Microsoft Graph answered with an error: Retry in a moment.", RETRY),
    "m365_unavailable": ("This tenant cannot apply Microsoft 365 resets right now: Retry "
                         "later.", RETRY),
    "internal_error": ("The tenant failed unexpectedly (its log has the cause): Retry.",
                       RETRY),
}
GENERIC = ("The reset failed. Fix what the summary says, then Retry.", RETRY)


@dataclass(frozen=True)
class FailureAdvice:
    """What the detail pane offers for one failed event."""

    code: str | None
    sentence: str
    action: str  # the fixing action (may be RETRY itself)
    retry_event_id: int | None  # the trigger to replay; None when there is none to replay
    account_id: int | None
    agent_id: int | None
    password_id: str | None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def advice_for(event_type: str, details: Mapping[str, Any]) -> FailureAdvice | None:
    """The advice for an event, or None when it is no failed reset."""
    if event_type != FAILED:
        return None
    code = details.get("code")
    code = code if isinstance(code, str) else None
    sentence, action = FIXES.get(code or "", GENERIC)
    password = details.get("itglue_password_id") or details.get("password_id")
    return FailureAdvice(code=code, sentence=sentence, action=action,
                         retry_event_id=_int(details.get("trigger_event_id")),
                         account_id=_int(details.get("account_id")),
                         agent_id=_int(details.get("agent_id")),
                         password_id=None if password is None else str(password))
