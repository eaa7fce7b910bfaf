"""The tenant on this computer keeps its port, so its URLs survive a restart; when that port
is taken the technician chooses what happens."""

from __future__ import annotations

import socket
import stat

from PySide6.QtCore import Qt

from qp_desktop.services import settings as S
from qp_desktop.services.local_tenant import port_of
from tests.desktop.helpers import WAIT, start


def test_the_local_tenant_keeps_its_port_and_url_across_restarts(qtbot, make_app, prefs,
                                                                 memory_keyring, tmp_path):
    data_dir = tmp_path / "tenant-data"
    first = make_app(local_data_dir=data_dir)
    start(qtbot, first)
    url = first.local_tenant.url
    assert url and prefs.get(S.LOCAL_TENANT_PORT) == port_of(url)
    assert url in first.sign_in.local_status.text()
    first.shutdown()

    # A public address set in Preferences is what the tenant builds its URLs from next time.
    prefs.set(S.LOCAL_PUBLIC_URL, "https://qp-tunnel.example.net")
    second = make_app(local_data_dir=data_dir)
    start(qtbot, second)
    assert second.local_tenant.url == url
    assert second.local_tenant.child.env["QP_PUBLIC_URL"] == "https://qp-tunnel.example.net"


def test_a_taken_port_is_a_choice_not_a_silent_new_url(qtbot, make_app, prefs,
                                                       memory_keyring, tmp_path):
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    prefs.set(S.LOCAL_TENANT_PORT, taken)
    try:
        app = make_app(local_data_dir=tmp_path / "tenant-data")
        start(qtbot, app)
        window = app.sign_in
        assert not app.local_tenant.running
        assert f"Port {taken}" in window.local_banner.label.text()
        assert "in use by another program" in window.local_banner.label.text()
        assert window.retry_local_button.isVisible() and window.new_port_button.isVisible()
        assert not window.submit_button.isEnabled()
        assert prefs.get(S.LOCAL_TENANT_PORT) == taken  # nothing moved by itself

        qtbot.mouseClick(window.new_port_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: app.local_tenant.running and not window.tasks.busy,
                        timeout=WAIT * 3)
        moved = port_of(app.local_tenant.url)
        assert moved and moved != taken
        assert prefs.get(S.LOCAL_TENANT_PORT) == moved
        assert not window.local_banner.isVisible() and not window.new_port_button.isVisible()
    finally:
        squatter.close()


def test_the_local_tenants_database_is_not_readable_by_other_users(qtbot, make_app,
                                                                   memory_keyring, tmp_path):
    """Its files hold the IT Glue key and workflow tokens (encrypted) next to their key."""
    data_dir = tmp_path / "tenant-data"
    app = make_app(local_data_dir=data_dir)
    start(qtbot, app)
    assert app.local_tenant.running
    database = data_dir / "qp-tenant.db"
    assert database.exists()
    for path in (data_dir, *data_dir.iterdir()):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert not mode & (stat.S_IRWXG | stat.S_IRWXO), f"{path.name} is {oct(mode)}"
