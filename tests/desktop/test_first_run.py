"""The embedded local tenant: first-run administrator, stale child clean-up, clean stop."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt

from qp_desktop.services.local_tenant import LocalTenant, _is_our_tenant
from qp_desktop.services.tenant_client import TenantClient
from tests.desktop.helpers import WAIT, start, submit_and_wait, type_into

EMAIL = "tech@this-computer.test"
PASSWORD = "a long local password"


def test_first_run_creates_the_local_administrator_and_signs_in(
        qtbot, make_app, memory_keyring, tmp_path):
    data_dir = tmp_path / "tenant-data"
    app = make_app(local_data_dir=data_dir)
    start(qtbot, app)
    window = app.sign_in
    assert window.mode_local.isChecked()
    assert window.first_run and window.confirm_password.isVisible()
    assert window.submit_button.text() == "Create administrator"
    assert (data_dir / "desktop-child.pid").read_text() == str(app.local_tenant.child.pid)

    type_into(qtbot, window.email, EMAIL)
    type_into(qtbot, window.password.edit, PASSWORD)
    type_into(qtbot, window.confirm_password.edit, PASSWORD + " typo")
    submit_and_wait(qtbot, window)
    assert "do not match" in window.message.label.text()

    # A guessable password is refused by the tenant, with its advice.
    type_into(qtbot, window.password.edit, "1234567890")
    type_into(qtbot, window.confirm_password.edit, "1234567890")
    submit_and_wait(qtbot, window)
    assert "not a common word or sequence" in window.message.label.text()

    type_into(qtbot, window.password.edit, PASSWORD)
    type_into(qtbot, window.confirm_password.edit, PASSWORD)
    submit_and_wait(qtbot, window)
    qtbot.waitUntil(lambda: app.main_window is not None and app.main_window.isVisible(),
                    timeout=WAIT)
    assert app.session.user.email == EMAIL
    assert app.session.tenant.slug == "local"
    assert app.main_window.tenant_label.text() == "Tenant on this computer"

    # Signing out and in again uses the normal form: the administrator exists now.
    qtbot.mouseClick(app.main_window.sign_out_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(window.isVisible, timeout=WAIT)
    assert not window.first_run and not window.confirm_password.isVisible()
    type_into(qtbot, window.password.edit, PASSWORD)
    submit_and_wait(qtbot, window)
    qtbot.waitUntil(lambda: app.main_window is not None and app.main_window.isVisible(),
                    timeout=WAIT)

    # Quitting stops the child and removes the pid file.
    pid = app.local_tenant.child.pid
    app.shutdown()
    assert not (data_dir / "desktop-child.pid").exists()
    assert not _is_our_tenant(pid, data_dir)


def test_a_tenant_left_by_a_crash_is_stopped_on_the_next_start(qtbot, qloop, http, tmp_path):
    data_dir = tmp_path / "tenant-data"
    crashed = LocalTenant(TenantClient(http), data_dir)
    first = qloop.create_task(crashed.ensure_started())
    qtbot.waitUntil(first.done, timeout=60_000)
    stale_pid = crashed.child.pid
    assert _is_our_tenant(stale_pid, data_dir)
    # The app "crashes": nothing stops the child, the pid file stays.

    fresh = LocalTenant(TenantClient(http), data_dir)
    second = qloop.create_task(fresh.ensure_started())
    qtbot.waitUntil(second.done, timeout=60_000)
    try:
        second.result()
        qtbot.waitUntil(lambda: not _is_our_tenant(stale_pid, data_dir), timeout=WAIT)
        assert Path(data_dir / "desktop-child.pid").read_text() == str(fresh.child.pid)
    finally:
        fresh.stop()
        crashed.stop()


def test_a_pid_file_naming_another_process_is_left_alone(qtbot, qloop, http, tmp_path):
    data_dir = tmp_path / "tenant-data"
    data_dir.mkdir()
    (data_dir / "desktop-child.pid").write_text(str(os.getpid()))  # the test runner itself
    tenant = LocalTenant(TenantClient(http), data_dir)
    task = qloop.create_task(tenant.clean_up_stale_child())
    qtbot.waitUntil(task.done, timeout=WAIT)
    assert task.result() is False
    assert not (data_dir / "desktop-child.pid").exists()


def test_a_tenant_that_cannot_start_is_explained_with_its_log(qtbot, make_app, memory_keyring,
                                                             tmp_path):
    app = make_app(local_data_dir=tmp_path / "tenant-data",
                   local_env={"QP_DATABASE_URL": "nosuchdb://nowhere"})
    start(qtbot, app)
    window = app.sign_in
    assert window.local_banner.isVisible()
    assert "could not be started" in window.local_banner.label.text()
    assert window.local_banner.details.toPlainText()  # the child's last stderr lines
    assert window.retry_local_button.isVisible()
    assert not window.submit_button.isEnabled()
