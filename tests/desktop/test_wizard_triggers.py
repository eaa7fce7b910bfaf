"""What an event means for the setup checklist: plain functions, tested as tables."""

from __future__ import annotations

import pytest

from qp_desktop.ui import wizard_steps as W
from qp_desktop.ui.wizard import triggers as T

AT = "2026-03-12T14:05:03Z"


@pytest.mark.parametrize(("event_type", "role"), [
    ("password_reset.succeeded", T.RESET),
    ("password_reset.queued", T.RESET),
    ("agent.enrolled", T.FACTS),
    ("account.updated", T.FACTS),
    ("token.generated", T.CONFIG),
    ("integration.connected", T.CONFIG),
    ("workflow_trigger.received", T.TRIGGER),
    ("workflow_trigger.rejected", T.TRIGGER),
    ("alert.sent", T.OTHER),
])
def test_each_event_type_has_one_role_for_the_checklist(event_type, role):
    assert T.event_role(event_type) == role


@pytest.mark.parametrize(("event_type", "event", "text"), [
    ("workflow_trigger.test", {"resource_name": "Test Action"},
     "a test trigger for \u201cTest Action\u201d."),
    ("workflow_trigger.received",
     {"resource_name": "Domain admin", "details": {"keys": ["resourceUrl", "resourceName"]}},
     "a password change in IT Glue for \u201cDomain admin\u201d (keys: resourceUrl, "
     "resourceName)."),
    ("workflow_trigger.received", {"details": {"keys": ["resourceName"]}},
     "a password change in IT Glue for \u201ca password\u201d (keys: resourceName). The body "
     "had no resourceUrl: check the Key/Value rows (step 8)."),
])
def test_a_trigger_is_described_with_a_hint_for_missing_payload_rows(event_type, event, text):
    assert T.describe_trigger(event_type, event) == text


@pytest.mark.parametrize(("details", "starts", "step"), [
    ({"code": "token_revoked", "token_hint": "qpwt_\u2026ab12"},
     "The tenant refused a trigger at ", W.URL),
    ({"code": "token_expired"}, "The tenant refused a trigger at ", W.TOKEN),
    ({"code": "missing_resource_url"}, "The tenant refused a trigger at ", W.PAYLOAD),
    ({"code": "something_new"}, "Refused for a new reason (", None),
])
def test_a_refused_trigger_says_what_to_fix_and_where(details, starts, step):
    text, fix = T.explain_refusal({"details": details, "occurred_at": AT,
                                   "summary": "Refused for a new reason"})
    assert text.startswith(starts)
    assert fix == step
    if details.get("token_hint"):
        assert "(qpwt_\u2026ab12)" in text


@pytest.mark.parametrize(("event", "trigger", "ok"), [
    ({"type": "password_reset.succeeded", "details": {"trigger_event_id": 41}}, 41, True),
    ({"type": "password_reset.skipped", "details": {"trigger_event_id": "41"}}, 41, True),
    ({"type": "password_reset.failed", "details": {"trigger_event_id": 41}}, 41, False),
    ({"type": "password_reset.queued", "details": {"trigger_event_id": 41}}, None, False),
    ({"type": "password_reset.succeeded", "details": {"trigger_event_id": "x"}}, None, True),
    ({"type": "password_reset.succeeded", "details": {}}, None, True),
])
def test_only_a_resets_outcome_decides_the_real_test(event, trigger, ok):
    assert T.reset_trigger_id(event) == trigger
    assert T.reset_succeeded(event) is ok


def test_the_real_test_notes_name_the_account_or_the_failure():
    assert T.real_test_note("Seen.", {"account": "CN=svc,DC=x"}) == \
        "Seen. The new password reached CN=svc,DC=x."
    assert T.real_test_note("Seen.", {}) == "Seen."
    assert T.real_test_failure({"summary": "Agent offline."}).startswith(
        "IT Glue's trigger arrived, but the password was not changed: Agent offline. Fix that")
