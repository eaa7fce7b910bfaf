"""The IT Glue page against a real tenant and the IT Glue emulator."""

from __future__ import annotations

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from qp_desktop.services.clipboard import PASSWORD_HINT_MIME
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ITGLUE_KEY
from tests.desktop.helpers import (
    WAIT,
    click_and_settle,
    sign_in_app,
)


@pytest.fixture
def signed_in(qtbot, make_app, tenant_proc, memory_keyring):
    """A DesktopApp signed in to ``tenant_proc``, showing the IT Glue page (loaded)."""
    app = make_app(tenant_url=tenant_proc.url, clear_after_ms=400)
    sign_in_app(qtbot, app)
    page = app.main_window.page("itglue")
    qtbot.waitUntil(lambda: not page.tasks.busy and page.integration is not None,
                    timeout=WAIT)
    return app, page


def _connect(qtbot, page, key: str, region: str = "us") -> None:
    page.region_combo.setCurrentIndex(page.region_combo.findData(region))
    page.api_key.edit.clear()
    qtbot.keyClicks(page.api_key.edit, key)
    click_and_settle(qtbot, page.connect_button, page)


def test_a_refused_key_shows_the_tenants_message_verbatim(qtbot, signed_in, tenant_proc):
    app, page = signed_in
    assert page.connection_badge.status == "disconnected"
    bad_key = "ITG.this-key-is-not-valid"
    # What the tenant says about this key, asked directly.
    with httpx.Client(base_url=tenant_proc.url, timeout=20) as client:
        token = client.post("/api/v1/auth/login",
                            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
                            ).json()["access_token"]
        answer = client.put("/api/v1/integrations/itglue",
                            json={"region": "us", "api_key": bad_key},
                            headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 422
    expected = answer.json()["error"]["message"]

    _connect(qtbot, page, bad_key)
    assert page.connection_message.kind == "error"
    assert page.connection_message.label.text() == expected
    assert page.connection_badge.status == "disconnected"
    assert bad_key not in tenant_proc.log_text()


def test_connect_generate_reveal_copy_and_generate_again(qtbot, signed_in, tenant_proc):
    app, page = signed_in
    clipboard = QGuiApplication.clipboard()

    _connect(qtbot, page, ITGLUE_KEY)
    assert page.connection_badge.status == "connected"
    assert page.region_label.text() == "United States"
    assert ITGLUE_KEY not in page.key_hint_label.text()
    assert page.api_key.text() == ""  # the key does not stay in the form
    assert page.disconnect_button.isVisible()

    # Generate: no token yet, so no confirmation is needed.
    assert page.token_badge.status == "none"
    click_and_settle(qtbot, page.generate_button, page)
    assert page.token_badge.status == "active"
    assert page.days_left_label.text() == "365"
    first_url = page._full_url
    assert first_url and "/hooks/itglue/qpwt_" in first_url
    assert page.url_field.text() != first_url  # masked until revealed
    assert first_url.split("/")[-1] not in page.url_field.text()
    assert page.public_url_warning.isVisible()  # a loopback URL: IT Glue cannot reach it

    # Reveal asks the tenant (and shows the URL); hiding masks it again.
    page._full_url = None
    click_and_settle(qtbot, page.reveal_button, page)
    assert page.url_field.text() == first_url
    click_and_settle(qtbot, page.reveal_button, page)
    assert page.url_field.text() != first_url

    # Copy: the hint is there, and the automatic clear removes our URL.
    with qtbot.waitSignal(app.clipboard.cleared, timeout=WAIT) as cleared:
        click_and_settle(qtbot, page.copy_url_button, page)
        mime = clipboard.mimeData()
        assert mime.text() == first_url
        assert bytes(mime.data(PASSWORD_HINT_MIME).data()) == b"secret"
        assert "clears in" in page.clipboard_note.text()
    assert cleared.args == [True]
    assert clipboard.text() == ""

    # Something else copied meanwhile is left alone.
    with qtbot.waitSignal(app.clipboard.cleared, timeout=WAIT) as cleared:
        click_and_settle(qtbot, page.copy_url_button, page)
        clipboard.setText("the technician's own text")
    assert cleared.args == [False]
    assert clipboard.text() == "the technician's own text"

    # Generate again: the confirmation explains the old URL stops working.
    qtbot.mouseClick(page.generate_button, Qt.MouseButton.LeftButton)
    dialog = page.generate_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.mouseClick(dialog.grace, Qt.MouseButton.LeftButton)  # no grace period
    assert dialog.grace_hours_value == 0
    qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.tasks.busy and page._full_url not in (None, first_url),
                    timeout=WAIT)
    second_url = page._full_url
    assert page.token_badge.status == "active"

    refused = httpx.post(first_url, json={"resourceUrl": "x", "resourceName": "y"}, timeout=10)
    assert refused.status_code == 410
    accepted = httpx.post(second_url, json={"resourceUrl": "https://example.test/hello",
                                             "resourceName": "Test Action"}, timeout=10)
    assert accepted.status_code == 202

    # Nothing secret reached the tenant's log through the desktop's calls.
    assert second_url.split("/")[-1] not in tenant_proc.log_text()


def test_payload_rows_each_have_copy_buttons(qtbot, signed_in):
    app, page = signed_in
    keys = [page.findChild(type(page.url_field), f"payload_key_{i}").text() for i in (0, 1)]
    values = [page.findChild(type(page.url_field), f"payload_value_{i}").text() for i in (0, 1)]
    assert keys == ["resourceUrl", "resourceName"]
    assert values == ["[resource_url]", "[resource_name]"]
    button = page.findChild(type(page.refresh_button), "copy_payload_value_0")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "[resource_url]"
    assert not app.clipboard.pending_clear  # not a secret: no hint, no clear


def test_disconnect_asks_first_then_disconnects(qtbot, signed_in):
    app, page = signed_in
    _connect(qtbot, page, ITGLUE_KEY)
    assert page.connection_badge.status == "connected"
    qtbot.mouseClick(page.disconnect_button, Qt.MouseButton.LeftButton)
    dialog = page.disconnect_dialog
    assert dialog is not None
    confirm = dialog.findChild(type(page.refresh_button), "confirm_disconnect_button")
    qtbot.mouseClick(confirm, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.tasks.busy and
                    page.connection_badge.status == "disconnected", timeout=WAIT)
    assert not page.disconnect_button.isVisible()
