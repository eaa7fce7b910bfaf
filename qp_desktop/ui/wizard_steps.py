"""The steps of the IT Glue workflow setup, in the order the technician does them.

Texts are ours, written from IT Glue's public documentation of workflows. ``check`` says who
ticks a step: ``live`` (the tenant's state), ``event`` (a trigger arriving on the event
stream) or ``manual`` (the technician, after doing it in IT Glue).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepSpec:
    key: str
    title: str
    check: str  # live | event | manual
    text: str  # rich text
    uses_url: bool = False  # reopened when the workflow URL changes


PREREQUISITES = "prereqs"
TOKEN = "token"  # noqa: S105 - a step key
OPEN_WORKFLOWS = "open_workflows"
TRIGGER_PASSWORD = "trigger_password"  # noqa: S105 - a step key
TRIGGER_NAME = "trigger_name"
ACTION_WEBHOOK = "action_webhook"
URL = "url"
PAYLOAD = "payload"
TEST_ACTION = "test_action"
FINISH = "finish"
SWITCH_ON = "switch_on"
REAL_TEST = "real_test"

STEPS: tuple[StepSpec, ...] = (
    StepSpec(PREREQUISITES, "Check what you need", "live",
             "Before you start, the tenant checks what it can by itself. Tick the rest "
             "once you know it is in place."),
    StepSpec(TOKEN, "Get the workflow URL", "live",
             "IT Glue calls a secret URL on this tenant each time a password changes. The "
             "tenant makes that URL for you; it works for about a year."),
    StepSpec(OPEN_WORKFLOWS, "Open Workflows in IT Glue", "manual",
             "In your browser, sign in to IT Glue with an administrator account that may use "
             "Workflows. Go to <b>Account</b> \u2192 <b>Workflows</b> and click <b>New</b>."
             "<br><br><span>Workflows need IT Glue's Select or Enterprise plan, and a Manager "
             "or Administrator role.</span>"),
    StepSpec(TRIGGER_PASSWORD, "Choose the Password trigger", "manual",
             "Pick <b>Password</b> as the trigger. It fires every time someone changes a "
             "password in IT Glue."),
    StepSpec(TRIGGER_NAME, "Name the trigger", "manual",
             "Give the trigger a name you will recognise later, and an address in your "
             "organisation that IT Glue emails when the workflow fails. Then click "
             "<b>Next</b>."),
    StepSpec(ACTION_WEBHOOK, "Add a Webhook action", "manual",
             "Choose <b>Webhook</b> as the action and give it a name."),
    StepSpec(URL, "Paste the workflow URL", "manual",
             "Copy the URL below and paste it into the <b>URL</b> box of the Webhook "
             "action. It is a secret: it stays masked here, and the clipboard is cleared "
             "shortly after you copy it.", uses_url=True),
    StepSpec(PAYLOAD, "Add the Key/Value rows", "manual",
             "Under <b>JSON payload</b>, fill in one Key/Value row for each line below "
             "(the plus sign beside a row adds the next one). Then click <b>Next</b>."),
    StepSpec(TEST_ACTION, "Run Test Action", "event",
             "Click <b>Test Action</b> in IT Glue. This step ticks itself as soon as the "
             "tenant receives the test on the current URL.", uses_url=True),
    StepSpec(FINISH, "Click Finish", "manual",
             "Click <b>Finish</b>. IT Glue saves the workflow and lists your workflow "
             "triggers."),
    StepSpec(SWITCH_ON, "Switch the workflow on", "manual",
             "In that list, turn the toggle of the new workflow <b>ON</b>. Until then IT Glue "
             "never calls the URL."),
    StepSpec(REAL_TEST, "Change a password to test", "event",
             "In IT Glue, change the password of an account that is matched in this tenant. "
             "This step ticks itself when the real trigger arrives; the change then shows "
             "under <b>Events</b> as a Workflow Trigger.", uses_url=True),
)

STEP_KEYS = tuple(step.key for step in STEPS)
# The steps done in IT Glue's workflow editor (and its real test). Optional on a tenant IT
# Glue cannot call whose watcher picks up password changes instead.
WORKFLOW_STEPS = (OPEN_WORKFLOWS, TRIGGER_PASSWORD, TRIGGER_NAME, ACTION_WEBHOOK, URL,
                  PAYLOAD, TEST_ACTION, FINISH, SWITCH_ON, REAL_TEST)
OPTIONAL_NOTE = ("Optional here: IT Glue cannot reach this tenant, and the tenant's watcher "
                 "picks up password changes without a workflow.")
URL_STEPS = tuple(step.key for step in STEPS if step.uses_url)

# Prerequisites the tenant cannot know: the technician confirms them.
CONFIRMATIONS: tuple[tuple[str, str], ...] = (
    ("agent", "The agent runs on the servers whose accounts change"),
    ("matched", "Accounts are matched to their IT Glue passwords"),
    ("itglue_admin", "You have an IT Glue admin login that may use Workflows"),
)

REOPEN_REASON = ("The workflow URL changed: update the webhook URL in IT Glue. Open the "
                 "workflow, edit its Webhook action, paste the new URL and save.")

ADDRESS_REASON = ("The tenant's address changed (a new port or public address), so the "
                  "workflow URL changed with it: paste the current URL into the Webhook "
                  "action in IT Glue and save the workflow.")

DEFAULT_PAYLOAD = (("resourceUrl", "[resource_url]"), ("resourceName", "[resource_name]"))

# What to tell the technician when the tenant refused a trigger (``details.code``):
# (what went wrong and what to do, the step that fixes it).
REJECTION_ADVICE: dict[str, tuple[str, str]] = {
    "token_revoked": ("IT Glue is still using an old workflow URL{hint}, which was replaced. "
                      "Paste the current URL into the Webhook action and save the workflow.",
                      URL),
    "token_expired": ("IT Glue called a workflow URL{hint} that has expired. Generate a new "
                      "URL, then paste it into the Webhook action.", TOKEN),
    "invalid_json": ("IT Glue sent a body that is not JSON. Check the Key/Value rows of the "
                     "Webhook action.", PAYLOAD),
    "missing_resource_url": ("IT Glue's request had no resourceUrl. Add the Key/Value row "
                             "resourceUrl = [resource_url] to the Webhook action.", PAYLOAD),
    "payload_too_large": ("IT Glue sent a body over 64 KiB. Keep only the Key/Value rows "
                          "listed here.", PAYLOAD),
    "too_many_requests": ("The tenant refused a flood of triggers on this URL{hint}. Make sure "
                          "only the IT Glue workflow posts to it.", URL),
}
