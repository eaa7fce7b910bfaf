"""Sign-in against a real tenant process: messages, remember me, sign-out, keyring modes."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import keyring
from PySide6.QtCore import Qt

from qp_desktop.services.secret_store import NO_KEYRING_WARNING, REFRESH_TOKEN, service_name
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.desktop.helpers import WAIT, fill_sign_in, start, submit_and_wait


def _signed_in(app) -> bool:
    return app.main_window is not None and app.main_window.isVisible()


def test_sign_in_opens_the_main_window_with_the_itglue_page(qtbot, make_app, tenant_proc,
                                                            memory_keyring):
    app = make_app(tenant_url=tenant_proc.url)
    start(qtbot, app)
    window = app.sign_in
    assert window.isVisible() and window.mode_url.isChecked()
    fill_sign_in(qtbot, window, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    submit_and_wait(qtbot, window)
    qtbot.waitUntil(lambda: _signed_in(app), timeout=WAIT)
    assert not window.isVisible()
    assert app.main_window.user_label.text() == ADMIN_EMAIL
    assert "Acme MSP" in app.main_window.tenant_label.text()
    assert app.main_window.current_page_key() == "itglue"
    assert window.password.text() == ""  # the password does not linger in the widget


def test_wrong_password_shows_the_tenants_message_and_keeps_the_form(
        qtbot, make_app, tenant_proc, memory_keyring):
    app = make_app(tenant_url=tenant_proc.url)
    start(qtbot, app)
    window = app.sign_in
    fill_sign_in(qtbot, window, email=ADMIN_EMAIL, password="not the password")
    submit_and_wait(qtbot, window)
    assert window.message.isVisible() and window.message.kind == "error"
    text = window.message.label.text().lower()
    assert "password" in text or "credentials" in text
    assert window.email.text() == ADMIN_EMAIL
    assert window.tenant_url.text() == tenant_proc.url
    assert app.main_window is None


def test_repeated_failures_show_the_throttle_wait_time(qtbot, make_app, tenant_proc,
                                                      memory_keyring):
    app = make_app(tenant_url=tenant_proc.url)
    start(qtbot, app)
    window = app.sign_in
    fill_sign_in(qtbot, window, email=ADMIN_EMAIL, password="wrong guess")
    for _ in range(8):
        submit_and_wait(qtbot, window)
        if "Too many" in window.message.label.text():
            break
    text = window.message.label.text()
    assert "Too many sign-in attempts" in text
    assert "second" in text or "minute" in text  # the wait time is stated
    assert window.submit_button.isEnabled()  # the technician can try again later


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_tenant_says_so(qtbot, make_app, memory_keyring):
    url = f"http://127.0.0.1:{_closed_port()}"
    app = make_app(tenant_url=url)
    start(qtbot, app)
    window = app.sign_in
    fill_sign_in(qtbot, window, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    submit_and_wait(qtbot, window)
    assert "Cannot reach the tenant" in window.message.label.text()


def test_plain_http_to_a_remote_host_is_refused_before_sending(qtbot, make_app,
                                                               memory_keyring):
    app = make_app(tenant_url="https://placeholder.example.com")
    window = app.sign_in
    window.show()
    fill_sign_in(qtbot, window, email=ADMIN_EMAIL, password="x" * 12,
                 url="http://tenant.example.com")
    qtbot.mouseClick(window.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.message.isVisible(), timeout=WAIT)
    assert "https://" in window.message.label.text()


def test_a_name_that_merely_starts_with_127_is_not_this_computer(qtbot, make_app,
                                                                 memory_keyring):
    # 127.attacker.example is a public name anyone can point anywhere: signing in to it over
    # plain http would send the password in the clear.
    app = make_app(tenant_url="https://placeholder.example.com")
    window = app.sign_in
    window.show()
    fill_sign_in(qtbot, window, email=ADMIN_EMAIL, password="x" * 12,
                 url="http://127.attacker.example:8080")
    qtbot.mouseClick(window.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.message.isVisible(), timeout=WAIT)
    assert "must use https://" in window.message.label.text()
    assert not window.busy.isVisible() and app.main_window is None


def test_expired_session_returns_to_sign_in_without_losing_what_was_typed(
        qtbot, make_app, tenant_proc, memory_keyring):
    app = make_app(tenant_url=tenant_proc.url)
    start(qtbot, app)
    window = app.sign_in
    fill_sign_in(qtbot, window, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    submit_and_wait(qtbot, window)
    qtbot.waitUntil(lambda: _signed_in(app), timeout=WAIT)
    page = app.main_window.page("itglue")
    qtbot.waitUntil(lambda: not page.tasks.busy, timeout=WAIT)
    # Both tokens stop being valid (as after a long sleep or a revocation elsewhere).
    app.session._access = "expired-access"
    app.session._refresh = "revoked-refresh"
    qtbot.mouseClick(page.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.isVisible(), timeout=WAIT)
    assert app.main_window is None
    assert "expired" in window.message.label.text()
    assert window.email.text() == ADMIN_EMAIL
    assert window.tenant_url.text() == tenant_proc.url


def test_access_token_is_refreshed_by_itself(qtbot, make_app, tenant_proc, memory_keyring):
    app = make_app(tenant_url=tenant_proc.url)
    start(qtbot, app)
    fill_sign_in(qtbot, app.sign_in, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    submit_and_wait(qtbot, app.sign_in)
    qtbot.waitUntil(lambda: _signed_in(app), timeout=WAIT)
    page = app.main_window.page("itglue")
    qtbot.waitUntil(lambda: not page.tasks.busy, timeout=WAIT)
    app.session._access = "expired-access"  # the refresh token is still good
    qtbot.mouseClick(page.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.tasks.busy and page.integration is not None,
                    timeout=WAIT)
    assert app.session.access_token != "expired-access"
    assert _signed_in(app)


def test_remember_me_signs_in_silently_next_start_and_sign_out_forgets(
        qtbot, make_app, tenant_proc, memory_keyring):
    first = make_app(tenant_url=tenant_proc.url)
    start(qtbot, first)
    fill_sign_in(qtbot, first.sign_in, email=ADMIN_EMAIL, password=ADMIN_PASSWORD,
                 remember=True)
    submit_and_wait(qtbot, first.sign_in)
    qtbot.waitUntil(lambda: _signed_in(first), timeout=WAIT)
    service = service_name(tenant_proc.url)
    assert memory_keyring.get_password(service, REFRESH_TOKEN)
    # Nothing secret reached the settings file.
    first.prefs.sync()
    settings_text = Path(first.prefs.qsettings.fileName()).read_text()
    assert ADMIN_PASSWORD not in settings_text
    assert memory_keyring.get_password(service, REFRESH_TOKEN) not in settings_text
    first.shutdown()

    # Next start: same settings and keyring, nothing typed.
    second = make_app()
    start(qtbot, second)
    qtbot.waitUntil(lambda: _signed_in(second), timeout=WAIT)
    assert second.session.user.email == ADMIN_EMAIL
    remembered = memory_keyring.get_password(service, REFRESH_TOKEN)
    assert remembered  # rotated and stored again

    qtbot.mouseClick(second.main_window.sign_out_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: second.sign_in.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: not second.tasks.busy, timeout=WAIT)
    # The form is usable again at once: no busy bar left over from the silent sign-in.
    window = second.sign_in
    assert window.message.label.text() == "You are signed out."
    assert not window.busy.isVisible()
    assert window.email.isEnabled() and window.password.isEnabled()
    assert window.submit_button.isEnabled() and window.mode_url.isEnabled()
    assert memory_keyring.get_password(service, REFRESH_TOKEN) is None
    # The refresh token was revoked at the tenant too.
    refused = httpx.post(f"{tenant_proc.url}/api/v1/auth/refresh",
                         json={"refresh_token": remembered}, timeout=10)
    assert refused.status_code == 401


def test_without_a_keyring_the_app_warns_and_keeps_the_session_in_memory(
        qtbot, make_app, tenant_proc, no_keyring):
    app = make_app(tenant_url=tenant_proc.url)
    start(qtbot, app)
    window = app.sign_in
    assert window.keyring_banner.isVisible()
    assert window.keyring_banner.label.text() == NO_KEYRING_WARNING
    assert not window.remember_me.isEnabled() and not window.remember_me.isChecked()
    fill_sign_in(qtbot, window, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    submit_and_wait(qtbot, window)
    qtbot.waitUntil(lambda: _signed_in(app), timeout=WAIT)
    assert app.main_window.banner.isVisible()
    assert "No system keyring" in app.main_window.banner.label.text()
    assert app.session.signed_in
    assert keyring.get_keyring().priority == 0  # still the fail backend: nothing stored


def _offline_sign_in(make_app, prefs):
    """The sign-in window pointed at a tenant server, before anything is sent."""
    from qp_desktop.services import settings as S

    prefs.set(S.TENANT_MODE, "url")
    prefs.set(S.TENANT_URL, "https://qp.example.com")
    app = make_app()
    return app.sign_in


def test_typing_at_start_goes_into_the_first_empty_field(qtbot, make_app, prefs,
                                                        memory_keyring):
    window = _offline_sign_in(make_app, prefs)
    window.show()
    qtbot.waitUntil(lambda: window.focusWidget() is window.email, timeout=WAIT)
    qtbot.keyClicks(window.focusWidget(), ADMIN_EMAIL)
    assert window.email.text() == ADMIN_EMAIL


def test_enter_on_the_remember_me_box_submits(qtbot, make_app, prefs, memory_keyring):
    window = _offline_sign_in(make_app, prefs)
    window.show()
    window.remember_me.setFocus()
    qtbot.keyClick(window.remember_me, Qt.Key.Key_Return)
    # The form was submitted: its check ran and says what is missing.
    qtbot.waitUntil(lambda: window.message.label.text() == "Enter your email address.",
                    timeout=WAIT)


def test_a_form_problem_goes_away_once_it_is_fixed(qtbot, make_app, prefs, memory_keyring):
    window = _offline_sign_in(make_app, prefs)
    # The first-run form of the local tenant (not started: the check runs before sending).
    window.mode_local.blockSignals(True)
    window.mode_local.setChecked(True)
    window.mode_local.blockSignals(False)
    window.first_run = True
    window._update_mode()
    window.show()
    # The password rule is shown before the first attempt.
    assert window.password_rule.isVisible() and "10 characters" in window.password_rule.text()
    window.email.setText(ADMIN_EMAIL)
    window.password.setText("long enough password")
    window.confirm_password.setText("long enough passwort")
    task = window.tasks.start(window._submit())
    qtbot.waitUntil(task.done, timeout=WAIT)
    assert window.message.label.text() == "The two passwords do not match."
    qtbot.keyClick(window.confirm_password.edit, Qt.Key.Key_Backspace)
    assert window.message.isVisible()  # still wrong
    qtbot.keyClicks(window.confirm_password.edit, "d")
    assert not window.message.isVisible()
