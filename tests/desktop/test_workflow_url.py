"""The workflow URL's one owner: which URLs may be copied, how one is masked, and the expired
case the same in the IT Glue page, the setup wizard and the tray."""

from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtGui import QGuiApplication

from qp_desktop.services.tenant_client import WorkflowToken
from qp_desktop.services.workflow_url import masked, may_copy, refusal, unreachable_warning
from tests.desktop.helpers import WAIT, click_and_settle, sign_in_app
from tests.desktop.test_tray import prepare_token


def _token(status: str, hint: str = "https://qp.example/hooks/itglue/qpwt_ab",
           public: bool = True) -> WorkflowToken:
    return WorkflowToken.from_json({"id": "7", "status": status, "url_hint": hint,
                                    "public_url_ok": public})


@pytest.mark.parametrize(("status", "copyable", "sentence"), [
    ("active", True, ""),
    ("expiring", True, ""),
    ("expired", False, "This workflow URL has expired"),
    ("revoked", False, "This workflow URL was replaced"),
    (None, False, "There is no workflow URL yet"),
])
def test_only_a_url_that_still_works_may_be_copied(status, copyable, sentence):
    token = None if status is None else _token(status)
    assert may_copy(token) is copyable
    assert refusal(token).startswith(sentence)


@pytest.mark.parametrize(("hint", "shown"), [
    ("https://qp.example/hooks/itglue/qpwt_ab", "https://qp.example/hooks/itglue/qpwt_ab"
                                                 + "\u2022" * 12),
    ("https://qp.example/hooks/itglue/qpwt_ab\u2026yz", "https://qp.example/hooks/itglue/"
                                                       "qpwt_ab\u2026yz"),
    ("", "\u2022" * 12),
])
def test_the_masked_url_is_the_tenants_hint_then_dots(hint, shown):
    assert masked(_token("active", hint)) == shown
    assert masked(None) == ""


def test_the_unreachable_sentence_only_for_a_url_it_glue_cannot_call():
    assert unreachable_warning(_token("active", public=False)).startswith(
        "IT Glue cannot reach this URL")
    assert unreachable_warning(_token("active", public=True)) == ""
    assert unreachable_warning(None) == ""


def _expire_tokens(tenant) -> None:
    with sqlite3.connect(tenant.data_dir / "qp-tenant.db") as db:
        db.execute("UPDATE workflow_tokens SET created_at = '1999-01-01 00:00:00.000000', "
                   "expires_at = '2000-01-01 00:00:00.000000'")


def test_an_expired_url_is_not_copied_from_the_itglue_page_the_wizard_or_the_tray(
        qtbot, make_app, tenant_proc, memory_keyring):
    url = prepare_token(tenant_proc)
    app = make_app(tenant_url=tenant_proc.url, dbus_bus=None, tray_available=False)
    sign_in_app(qtbot, app)
    window = app.main_window
    itglue, wizard = window.page("itglue"), window.page("setup")
    qtbot.waitUntil(lambda: not itglue.tasks.busy and itglue.token is not None, timeout=WAIT)
    # Revealed while it worked: the page holds the full URL in memory.
    click_and_settle(qtbot, itglue.reveal_button, itglue)
    assert itglue.url_field.text() == url

    _expire_tokens(tenant_proc)
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("left alone")
    task = app.tasks.start(itglue.refresh())
    qtbot.waitUntil(task.done, timeout=WAIT)
    assert itglue.token.status == "expired"

    # The IT Glue page: the button is off and says why; asked anyway, it refuses.
    assert not itglue.copy_url_button.isEnabled()
    assert itglue.copy_url_button.toolTip().startswith("This workflow URL has expired")
    task = app.tasks.start(itglue.copy_url())
    qtbot.waitUntil(task.done, timeout=WAIT)
    assert task.result() is False
    assert itglue.banner.label.text().startswith("This workflow URL has expired")

    # The wizard.
    task = app.tasks.start(wizard.refresh())
    qtbot.waitUntil(task.done, timeout=WAIT)
    assert wizard.token.status == "expired"
    assert not wizard.copy_url_button.isEnabled()
    task = app.tasks.start(wizard.copy_url())
    qtbot.waitUntil(task.done, timeout=WAIT)
    assert task.result() is False

    # The tray.
    task = app.tasks.start(app.alerts.refresh())
    qtbot.waitUntil(task.done, timeout=WAIT)
    messages = []
    app.tray.show_message = lambda *args: messages.append(args)
    app.tray.menu.aboutToShow.emit()
    assert not app.tray.action("tray_copy_url").isEnabled()
    task = app.tasks.start(app.tray.copy_workflow_url_now())
    qtbot.waitUntil(task.done, timeout=WAIT)
    assert task.result() is False
    assert messages and messages[0][1].startswith("This workflow URL has expired")

    assert clipboard.text() == "left alone"
    assert not app.clipboard.pending_clear
