"""A launch with no D-Bus session (so no Secret Service): the app must know it has no
keyring, say so, and not offer to remember anything.

Run in a child process: keyring chooses its backend once per process, from the backends
defined when it first looks, and this test is about that choice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import json, sys
    import httpx
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    import keyring
    from qp_desktop.app import DesktopApp
    from qp_desktop.services import settings as S
    from qp_desktop.services.secret_store import SecretStore
    from qp_desktop.services.settings import Preferences

    qapp = QApplication([])
    prefs = Preferences(QSettings(sys.argv[1], QSettings.Format.IniFormat))
    prefs.set(S.REMEMBER_ME, True)  # ticked at the last run
    app = DesktopApp(prefs, SecretStore(), httpx.AsyncClient(), dbus_bus=None,
                     tenant_url="https://qp.example.com", tray_available=False)
    app.sign_in.show()
    qapp.processEvents()
    window = app.sign_in
    # keyring's choice among equal priorities follows set order (memory addresses), so
    # also list every backend that could have been chosen instead of "fail".
    from keyring.backend import get_all_keyring
    from keyring.backends import fail
    rivals = [type(k).__name__ for k in get_all_keyring()
              if not isinstance(k, fail.Keyring) and k.priority >= fail.Keyring.priority]
    print(json.dumps({
        "rivals": rivals,
        "backend": type(keyring.get_keyring()).__module__ + "."
                   + type(keyring.get_keyring()).__name__,
        "store_available": app.store.available,
        "warning_shown": window.keyring_banner.isVisible(),
        "warning": window.keyring_banner.label.text(),
        "remember_checked": window.remember_me.isChecked(),
        "remember_enabled": window.remember_me.isEnabled(),
    }))
""")


def test_without_a_dbus_session_the_app_warns_and_remembers_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DBUS_", "PYTHON_KEYRING"))}
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env.update(XDG_RUNTIME_DIR=str(runtime), HOME=str(tmp_path), QT_QPA_PLATFORM="offscreen",
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "settings.ini")],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["backend"] == "keyring.backends.fail.Keyring"
    assert seen["rivals"] == []
    assert seen["store_available"] is False
    assert seen["warning_shown"] and "No system keyring" in seen["warning"]
    assert seen["remember_checked"] is False and seen["remember_enabled"] is False
