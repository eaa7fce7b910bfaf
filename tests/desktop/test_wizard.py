"""The IT Glue workflow wizard against a real tenant process and the IT Glue emulator.

Triggers are posted over HTTP to the workflow URL, as IT Glue would; the wizard sees them
through the app's one shared event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from qp_desktop.services.wizard_trigger import send_test_trigger
from qp_desktop.ui import wizard_steps as W
from qp_desktop.ui.wizard import SetupWizardPage
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ITGLUE_KEY
from tests.desktop.helpers import (
    WAIT,
    click_and_settle,
    sign_in_app,
)

TEST_BODY = {"resourceUrl": "https://example.test/it-glue-test-action",
             "resourceName": "IT Glue Test Action"}
REAL_BODY = {"resourceUrl": "https://acme.itglue.com/2001/passwords/3001",
             "resourceName": "Domain Admin (acme)"}


# -- helpers ---------------------------------------------------------------------------------

@contextlib.contextmanager
def tenant_api(tenant_proc) -> Iterator[httpx.Client]:
    """The tenant's API as another technician would use it (not through the app)."""
    with httpx.Client(base_url=tenant_proc.url, timeout=20) as client:
        grant = client.post("/api/v1/auth/login",
                            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        client.headers["Authorization"] = f"Bearer {grant.json()['access_token']}"
        yield client


def connect_and_generate(tenant_proc) -> str:
    """IT Glue connected and a workflow token made; returns the workflow URL."""
    with tenant_api(tenant_proc) as api:
        assert api.put("/api/v1/integrations/itglue",
                       json={"region": "us", "api_key": ITGLUE_KEY}).status_code == 200
        made = api.post("/api/v1/integrations/itglue/workflow-token", json={})
        assert made.status_code == 201
        return made.json()["url"]


def add_agent_and_matched_account(tenant_proc, agent_http: httpx.Client) -> str:
    """An enrolled agent and the Northwind domain admin matched to IT Glue password 5001;
    returns the agent's token."""
    from tests.support.pipeline import enroll_agent

    with tenant_api(tenant_proc) as api:
        assert api.post("/api/v1/customers/import-itglue").status_code == 200
        customers = {c["name"]: c["id"] for c in api.get("/api/v1/customers").json()["customers"]}
        agent_id, agent_token = enroll_agent(api, agent_http)
        made = api.post("/api/v1/accounts", json={
            "customer_id": customers["Northwind Traders"], "kind": "administrator",
            "display_name": "Northwind domain admin", "itglue_password_id": 5001,
            "source": {"type": "openldap", "agent_id": agent_id, "directory": "corp-ldap",
                       "identity": "uid=administrator,ou=people,dc=example,dc=test"}})
        assert made.status_code == 201, made.text
    return agent_token


def open_wizard(qtbot, app) -> SetupWizardPage:
    window = app.main_window
    window.show_page("setup")
    page = window.page("setup")
    assert isinstance(page, SetupWizardPage)
    qtbot.waitUntil(lambda: page._loaded and not page.tasks.busy, timeout=WAIT)
    qtbot.waitUntil(lambda: app.event_stream.state == "live", timeout=WAIT)
    return page


def sign_in(qtbot, make_app, tenant_proc):
    app = make_app(tenant_url=tenant_proc.url)
    sign_in_app(qtbot, app)
    return app


def click_step(qtbot, page: SetupWizardPage, key: str) -> None:
    """Click a step in the checklist on the left."""
    item = page.steps_list.item(W.STEP_KEYS.index(key))
    rect = page.steps_list.visualItemRect(item)
    qtbot.mouseClick(page.steps_list.viewport(), Qt.MouseButton.LeftButton,
                     pos=rect.center())
    assert page.current_step() == key


def click(qtbot, button) -> None:
    assert button.isVisible() and button.isEnabled(), button.objectName()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def press_when_ready(qtbot, button, page) -> None:
    """Wait until the button is enabled (a refresh may be in flight), press it, let it run."""
    qtbot.waitUntil(lambda: button.isEnabled(), timeout=WAIT)
    click_and_settle(qtbot, button, page)


def post(url: str, body: dict) -> httpx.Response:
    return httpx.post(url, json=body, timeout=20)


@pytest.fixture
def ready(qtbot, make_app, tenant_proc, memory_keyring):
    """Connected, a token made, signed in, the wizard shown and listening."""
    url = connect_and_generate(tenant_proc)
    app = sign_in(qtbot, make_app, tenant_proc)
    page = open_wizard(qtbot, app)
    return app, page, url


# -- prerequisites ---------------------------------------------------------------------------

def test_prerequisites_reflect_the_tenant_with_a_fix_link(qtbot, make_app, tenant_proc,
                                                          memory_keyring):
    app = sign_in(qtbot, make_app, tenant_proc)
    page = open_wizard(qtbot, app)
    assert page.current_step() == W.PREREQUISITES
    # Not connected: unchecked, with a way to fix it.
    assert not page.step_done(W.PREREQUISITES)
    assert "not connected" in page.connection_text.text()
    assert page.fix_connection_button.isVisible()
    assert "no workflow URL yet" in page.token_text.text()
    click(qtbot, page.fix_connection_button)
    assert app.main_window.current_page_key() == "itglue"

    # Connected elsewhere; coming back to the wizard re-checks.
    with tenant_api(tenant_proc) as api:
        api.put("/api/v1/integrations/itglue", json={"region": "us", "api_key": ITGLUE_KEY})
    app.main_window.show_page("setup")
    qtbot.waitUntil(lambda: page.integration is not None and page.integration.connected,
                    timeout=WAIT)
    assert "IT Glue is connected" in page.connection_text.text()
    assert not page.fix_connection_button.isVisible()
    # The rest is confirmed by the technician, but what the tenant can count it checks:
    # ticking "agent" and "matched" with none of either is not done.
    assert not page.step_done(W.PREREQUISITES)
    for box in page.confirm_boxes.values():
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert not page.step_done(W.PREREQUISITES)
    assert page.tenant_facts.kind == "warning"
    assert "no agent has enrolled yet" in page.tenant_facts.label.text()
    assert "checked with the tenant" not in page.views[W.PREREQUISITES].status.text()
    with httpx.Client(base_url=tenant_proc.url, timeout=20) as agent_http:
        add_agent_and_matched_account(tenant_proc, agent_http)
    qtbot.waitUntil(lambda: page.step_done(W.PREREQUISITES), timeout=WAIT)
    assert "1 agent and 1 matched account" in page.tenant_facts.label.text()
    assert "as you confirmed it" in page.views[W.PREREQUISITES].status.text()

    # Step 2 makes the URL.
    click(qtbot, page.next_button)
    assert page.current_step() == W.TOKEN
    assert not page.step_done(W.TOKEN)
    press_when_ready(qtbot, page.generate_button, page)
    assert page.step_done(W.TOKEN)
    assert page.token_badge.status == "active"
    assert "works" in page.token_text.text()
    assert page.current_step() == W.OPEN_WORKFLOWS  # on to the first open step


# -- live verification -----------------------------------------------------------------------

def test_a_test_trigger_posted_over_http_ticks_test_action_with_the_time(qtbot, ready):
    app, page, url = ready
    assert not page.progress.is_done(W.TEST_ACTION)
    assert "Listening for a test" in page.test_result.label.text()

    answer = post(url, TEST_BODY)
    assert answer.status_code == 202 and answer.json()["status"] == "test"
    qtbot.waitUntil(lambda: page.progress.is_done(W.TEST_ACTION), timeout=WAIT)

    record = page.progress.step(W.TEST_ACTION)
    status = page.views[W.TEST_ACTION].status.text()
    assert re.search(r"Verified at \d\d:\d\d:\d\d on ", status), status
    assert "IT Glue Test Action" in page.test_result.label.text()
    assert "resourceName, resourceUrl" in record.note
    assert page.test_result.kind == "success"
    assert not page.progress.is_done(W.REAL_TEST)  # a test is not a real change


def test_a_real_trigger_whose_reset_fails_does_not_finish_the_wizard(qtbot, ready):
    app, page, url = ready
    answer = post(url, REAL_BODY)  # no account is matched to this IT Glue password
    assert answer.status_code == 202 and answer.json()["status"] == "accepted"
    qtbot.waitUntil(lambda: page.real_result.kind == "error", timeout=WAIT)
    assert "No matched account" in page.real_result.label.text()
    assert not page.progress.is_done(W.REAL_TEST)
    assert page._icon_kind(W.STEPS[-1]) == "problem"
    assert "All set" not in page.notice_banner.label.text()
    assert page.progress.is_done(W.TEST_ACTION)  # IT Glue did reach the tenant


def test_a_real_trigger_ticks_the_final_step_once_the_password_is_applied(qtbot, ready,
                                                                          tenant_proc):
    from tests.support.pipeline import agent_headers

    app, page, url = ready
    with httpx.Client(base_url=tenant_proc.url, timeout=20) as agent_http:
        agent_token = add_agent_and_matched_account(tenant_proc, agent_http)
        body = {"resourceUrl": "https://acme.itglue.com/101/passwords/5001",
                "resourceName": "Domain Admin"}
        assert post(url, body).json()["status"] == "accepted"
        # The trigger alone does not finish the wizard: the reset is still on its way.
        qtbot.waitUntil(lambda: "Waiting for the password reset" in
                        page.real_result.label.text(), timeout=WAIT)
        assert not page.progress.is_done(W.REAL_TEST)
        job = None
        for _ in range(10):
            got = agent_http.get("/api/v1/agent/jobs", params={"wait": 5},
                                 headers=agent_headers(agent_token), timeout=20)
            if got.status_code == 200:
                job = got.json()["job"]
                break
        assert job is not None, "the tenant never handed the reset to the agent"
        done = agent_http.post(f"/api/v1/agent/jobs/{job['id']}/result", json={"ok": True},
                               headers=agent_headers(agent_token))
        assert done.status_code in (200, 204), done.text
    qtbot.waitUntil(lambda: page.progress.is_done(W.REAL_TEST), timeout=WAIT)
    assert page.real_result.kind == "success"
    assert "Domain Admin" in page.real_result.label.text()
    assert "Northwind domain admin" in page.real_result.label.text()


def test_regeneration_reopens_url_steps_and_the_old_url_shows_what_to_fix(qtbot, ready):
    app, page, old_url = ready
    # The technician pasted the URL and IT Glue's Test Action got through.
    click_step(qtbot, page, W.URL)
    click(qtbot, page.done_button)
    assert page.progress.is_done(W.URL)
    post(old_url, TEST_BODY)
    qtbot.waitUntil(lambda: page.progress.is_done(W.TEST_ACTION), timeout=WAIT)

    # Generate New on the IT Glue page (no grace period).
    window = app.main_window
    window.show_page("itglue")
    itglue = window.page("itglue")
    qtbot.waitUntil(lambda: not itglue.tasks.busy and itglue.integration is not None,
                    timeout=WAIT)
    qtbot.mouseClick(itglue.generate_button, Qt.MouseButton.LeftButton)
    dialog = itglue.generate_dialog
    qtbot.mouseClick(dialog.grace, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)

    # The wizard hears token.generated and reopens the steps that use the URL.
    qtbot.waitUntil(lambda: bool(page.progress.step(W.URL).reopened), timeout=WAIT)
    assert not page.progress.is_done(W.URL)
    assert not page.progress.is_done(W.TEST_ACTION)
    assert "update the webhook URL in IT Glue" in page.progress.step(W.URL).reopened
    assert page.progress.is_done(W.OPEN_WORKFLOWS) is False  # never done, still to do
    window.show_page("setup")
    assert "update the webhook URL in IT Glue" in page.notice_banner.label.text()
    reopened = page.views[W.URL].reopened
    assert not reopened.isHidden() and reopened.kind == "warning"
    assert "update the webhook URL" in reopened.label.text()

    # IT Glue still posts to the old URL: refused, and the wizard says what to do.
    assert post(old_url, TEST_BODY | {"resourceName": "again"}).status_code == 410
    qtbot.waitUntil(lambda: page.rejection_banner.kind == "error"
                    and page.rejection_banner.isVisibleTo(page), timeout=WAIT)
    text = page.rejection_banner.label.text()
    assert "IT Glue is still using an old workflow URL" in text
    assert "Paste the current URL" in text
    assert re.search(r"qpwt_…[A-Za-z0-9_-]{4}\)", text)  # base64url: "-" too
    click(qtbot, page.rejection_fix_button)
    assert page.current_step() == W.URL

    # Copy the new URL (as into IT Glue) and its Test Action gets through again.
    press_when_ready(qtbot, page.copy_url_button, page)
    new_url = QGuiApplication.clipboard().text()
    assert new_url != old_url and "/hooks/itglue/qpwt_" in new_url
    assert post(new_url, TEST_BODY).json()["status"] == "test"
    qtbot.waitUntil(lambda: page.progress.is_done(W.TEST_ACTION), timeout=WAIT)
    assert not page.rejection_banner.isVisibleTo(page)


def test_send_test_trigger_ticks_the_step_end_to_end(qtbot, ready):
    app, page, url = ready
    click_step(qtbot, page, W.TEST_ACTION)
    press_when_ready(qtbot, page.send_test_button, page)
    qtbot.waitUntil(lambda: page.progress.is_done(W.TEST_ACTION), timeout=WAIT)
    assert page.send_test_message.kind == "success"
    assert "accepted the test trigger" in page.send_test_message.label.text()
    assert "QP Desktop test trigger" in page.test_result.label.text()
    # Twice in a row is two events, not a "duplicate" the tenant would swallow.
    press_when_ready(qtbot, page.send_test_button, page)
    assert page.send_test_message.kind == "success"


def test_send_test_trigger_says_when_the_url_cannot_be_reached():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def attempt():
        async with httpx.AsyncClient() as http:
            return await send_test_trigger(http, f"http://127.0.0.1:{port}/hooks/itglue/"
                                                 "qpwt_abcdefgh")

    result = asyncio.run(attempt())
    assert not result.ok and not result.reachable
    assert result.message.startswith(f"This computer cannot reach 127.0.0.1:{port}")
    assert "qpwt_" not in result.message


# -- progress --------------------------------------------------------------------------------

def test_progress_survives_a_new_app_and_start_over_resets(qtbot, make_app, tenant_proc,
                                                           memory_keyring, tmp_path):
    connect_and_generate(tenant_proc)
    with httpx.Client(base_url=tenant_proc.url, timeout=20) as agent_http:
        add_agent_and_matched_account(tenant_proc, agent_http)  # what the boxes claim
    app = sign_in(qtbot, make_app, tenant_proc)
    page = open_wizard(qtbot, app)
    for box in page.confirm_boxes.values():
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    click_step(qtbot, page, W.OPEN_WORKFLOWS)
    click(qtbot, page.done_button)
    assert page.current_step() == W.TRIGGER_PASSWORD  # moved on
    click(qtbot, page.done_button)
    assert page.current_step() == W.TRIGGER_NAME
    page.failure_email.edit.clear()
    qtbot.keyClicks(page.failure_email.edit, "alerts@acme.test")
    qtbot.keyClick(page.failure_email.edit, Qt.Key.Key_Tab)  # finishes the edit
    app.shutdown()

    # A new app instance (a restart) on the same settings.
    again = sign_in(qtbot, make_app, tenant_proc)
    page2 = open_wizard(qtbot, again)
    assert page2 is not page
    assert page2.step_done(W.PREREQUISITES)
    assert page2.progress.is_done(W.OPEN_WORKFLOWS)
    assert page2.progress.is_done(W.TRIGGER_PASSWORD)
    assert page2.current_step() == W.TRIGGER_NAME  # where the technician left off
    assert page2.failure_email.text() == "alerts@acme.test"
    assert "4 of 12" in page2.progress_label.text()
    # Nothing secret was written to the settings.
    settings = (tmp_path / "settings.ini").read_text()
    assert "wizard_progress" in settings
    assert "qpwt_" not in settings and "/hooks/" not in settings

    # Start over (it asks first).
    click(qtbot, page2.start_over_button)
    dialog = page2.start_over_dialog
    assert dialog is not None
    confirm = dialog.findChild(type(page2.start_over_button), "confirm_start_over_button")
    qtbot.mouseClick(confirm, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page2.start_over_dialog is None, timeout=WAIT)
    assert not page2.progress.is_done(W.OPEN_WORKFLOWS)
    assert not page2.step_done(W.PREREQUISITES)
    assert not any(box.isChecked() for box in page2.confirm_boxes.values())
    assert page2.current_step() == W.PREREQUISITES
    assert "1 of 12" in page2.progress_label.text()  # only the URL, checked live


def test_a_trigger_logged_while_the_app_was_closed_is_caught_up(qtbot, make_app, tenant_proc,
                                                                memory_keyring):
    url = connect_and_generate(tenant_proc)
    assert post(url, TEST_BODY).json()["status"] == "test"  # before the app even starts
    app = sign_in(qtbot, make_app, tenant_proc)
    page = open_wizard(qtbot, app)
    qtbot.waitUntil(lambda: page.progress.is_done(W.TEST_ACTION), timeout=WAIT)
    assert "IT Glue Test Action" in page.progress.step(W.TEST_ACTION).note


# -- keyboard --------------------------------------------------------------------------------

def test_keyboard_only_walks_the_steps_and_copies_values(qtbot, ready):
    app, page, url = ready
    window = app.main_window
    page.steps_list.setFocus()
    page.steps_list.setCurrentRow(0)
    for _ in range(W.STEP_KEYS.index(W.TRIGGER_NAME)):
        qtbot.keyClick(page.steps_list, Qt.Key.Key_Down)
    assert page.current_step() == W.TRIGGER_NAME

    # Tab leads into the step: the name box, then its Copy button.
    qtbot.keyClick(page.steps_list, Qt.Key.Key_Tab)
    assert window.focusWidget() is page.trigger_name.edit
    qtbot.keyClick(page.trigger_name.edit, Qt.Key.Key_Tab)
    copy = page.trigger_name.button
    assert window.focusWidget() is copy
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(copy, Qt.Key.Key_Return)
    assert QGuiApplication.clipboard().text() == "Quickpass password sync"
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(copy, Qt.Key.Key_Space)
    assert QGuiApplication.clipboard().text() == "Quickpass password sync"

    # The footer's buttons take Enter too.
    page.done_button.setFocus()
    qtbot.keyClick(page.done_button, Qt.Key.Key_Return)
    assert page.progress.is_done(W.TRIGGER_NAME)
    assert page.current_step() == W.ACTION_WEBHOOK
    for button in (page.back_button, page.next_button, page.done_button,
                   page.start_over_button, page.send_test_button, page.copy_url_button):
        assert button.focusPolicy() & Qt.FocusPolicy.TabFocus
    # Every button on the footer has a mnemonic.
    assert all("&" in b.text() for b in (page.back_button, page.next_button,
                                          page.done_button, page.start_over_button))


# -- sizes -----------------------------------------------------------------------------------

def test_a_step_scrolls_by_what_it_needs_not_by_the_tallest_step(qtbot, ready):
    """A short step has no scroll bar and its card ends in view; a long one scrolls by its
    own overflow, not by the tallest step's (the steps are one stack of panels)."""
    app, page, _url = ready
    window = app.main_window
    window.resize(1024, 700)
    scroll = page.detail_scroll
    viewport = scroll.viewport()

    def show(key):
        click_step(qtbot, page, key)
        return page.stack.currentWidget().heightForWidth(viewport.width())

    heights = {key: show(key) for key in W.STEP_KEYS}
    # A window as short as between the shortest and the tallest step: some steps fit, some
    # scroll (fonts differ between machines, so the height is found, not fixed).
    target = (min(heights.values()) + max(heights.values())) // 2
    window.resize(1024, window.height() + target - viewport.height())
    qtbot.waitUntil(lambda: abs(viewport.height() - target) <= 2, timeout=WAIT)
    short = [key for key, height in heights.items() if height <= viewport.height()]
    assert short and len(short) < len(heights), heights
    for key in W.STEP_KEYS:
        need = max(0, show(key) - viewport.height())
        bar = scroll.verticalScrollBar()
        qtbot.waitUntil(lambda bar=bar, need=need: abs(bar.maximum() - need) <= 2,
                        timeout=WAIT)
        if key in short:
            assert not bar.isVisible(), key
