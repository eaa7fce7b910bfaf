"""The secret store against a real Secret Service (gnome-keyring under dbus-run-session)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import keyring
    from keyring.backends import SecretService
    from qp_desktop.services.secret_store import SecretStore, service_name, REFRESH_TOKEN

    assert isinstance(keyring.get_keyring(), SecretService.Keyring), keyring.get_keyring()
    store = SecretStore()
    assert store.available, store.warning
    key = "https://qp.example.test"
    assert store.get_refresh_token(key) is None
    assert store.set_refresh_token(key, "refresh-secret-123")
    assert store.get_refresh_token(key) == "refresh-secret-123"
    assert keyring.get_password(service_name(key), REFRESH_TOKEN) == "refresh-secret-123"
    store.delete_refresh_token(key)
    assert store.get_refresh_token(key) is None
    store.delete_refresh_token(key)  # deleting twice is fine
    assert store.available
    print("secret-service-ok")
""")


@pytest.mark.keyring_real
def test_refresh_token_round_trips_through_a_real_secret_service(tmp_path):
    missing = [tool for tool in ("dbus-run-session", "gnome-keyring-daemon")
               if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not installed: apt-get install -y gnome-keyring "
                    "dbus dbus-x11 (CI must install them; this test is never skipped)")
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in {"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"}}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local/share"),
               XDG_CONFIG_HOME=str(home / ".config"),
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    command = ("echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; "
               f"exec {sys.executable} {script}")
    result = subprocess.run(["dbus-run-session", "--", "sh", "-c", command], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "secret-service-ok" in result.stdout
