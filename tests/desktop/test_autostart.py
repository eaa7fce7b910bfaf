"""Start at login on each platform: the XDG autostart file, the Windows Run key (through an
in-memory stand-in for ``winreg``) and the macOS LaunchAgent."""

from __future__ import annotations

import configparser
import plistlib

import pytest

from qp_desktop import APP_ID
from qp_desktop.services.autostart import (
    DISPLAY_NAME,
    WINDOWS_RUN_KEY,
    Autostart,
    AutostartError,
    default_command,
)


def test_xdg_autostart_file_is_written_and_removed(tmp_path):
    home = tmp_path / "home"
    autostart = Autostart("linux", home=home, env={},
                          command=["/opt/QP Desktop/qp-desktop", "--tenant", "https://x"])
    assert autostart.path == home / ".config" / "autostart" / f"{APP_ID}.desktop"
    assert not autostart.is_enabled()

    autostart.set_enabled(True)
    assert autostart.is_enabled()
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(autostart.path)
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Name"] == "QP Desktop"
    assert section["Exec"] == '"/opt/QP Desktop/qp-desktop" --tenant https://x'
    assert section["Icon"] == APP_ID
    assert section["X-GNOME-Autostart-enabled"] == "true"

    autostart.set_enabled(False)
    assert not autostart.is_enabled() and not autostart.path.exists()
    autostart.set_enabled(False)  # already off: fine


def test_xdg_config_home_is_respected(tmp_path):
    autostart = Autostart("freebsd", home=tmp_path / "home",
                          env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")}, command=["qp"])
    autostart.set_enabled(True)
    assert (tmp_path / "cfg" / "autostart" / f"{APP_ID}.desktop").is_file()


def test_an_unwritable_folder_gives_a_sentence(tmp_path):
    blocker = tmp_path / "cfg"
    blocker.write_text("a file where the folder should be")
    autostart = Autostart("linux", home=tmp_path, env={"XDG_CONFIG_HOME": str(blocker)},
                          command=["qp"])
    with pytest.raises(AutostartError, match="Could not turn on start at login"):
        autostart.set_enabled(True)


def test_macos_launch_agent(tmp_path):
    autostart = Autostart("darwin", home=tmp_path, command=["/Applications/QP.app/qp"])
    autostart.set_enabled(True)
    path = tmp_path / "Library" / "LaunchAgents" / f"{APP_ID}.plist"
    assert autostart.path == path and autostart.is_enabled()
    plist = plistlib.loads(path.read_bytes())
    assert plist == {"Label": APP_ID, "ProgramArguments": ["/Applications/QP.app/qp"],
                     "RunAtLoad": True, "ProcessType": "Interactive"}
    autostart.set_enabled(False)
    assert not path.exists()


class FakeWinreg:
    """An in-memory stand-in for ``winreg`` (HKCU only)."""

    HKEY_CURRENT_USER = "HKCU"
    KEY_READ = 1
    KEY_SET_VALUE = 2
    REG_SZ = 1

    def __init__(self):
        self.keys: dict[str, dict[str, tuple[int, str]]] = {}

    class _Key:
        def __init__(self, values):
            self.values = values

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def OpenKey(self, root, path, reserved=0, access=1):  # noqa: N802 - winreg naming
        if f"{root}\\{path}" not in self.keys:
            raise FileNotFoundError(path)
        return self._Key(self.keys[f"{root}\\{path}"])

    def CreateKeyEx(self, root, path, reserved=0, access=2):  # noqa: N802
        return self._Key(self.keys.setdefault(f"{root}\\{path}", {}))

    def QueryValueEx(self, key, name):  # noqa: N802
        if name not in key.values:
            raise FileNotFoundError(name)
        kind, value = key.values[name]
        return value, kind

    def SetValueEx(self, key, name, reserved, kind, value):  # noqa: N802
        key.values[name] = (kind, value)

    def DeleteValue(self, key, name):  # noqa: N802
        if name not in key.values:
            raise FileNotFoundError(name)
        del key.values[name]


def test_windows_run_key():
    reg = FakeWinreg()
    autostart = Autostart("win32", command=[r"C:\Program Files\QP Desktop\qp-desktop.exe"],
                          registry=reg)
    assert autostart.kind == "windows"
    assert not autostart.is_enabled()
    autostart.set_enabled(True)
    assert autostart.is_enabled()
    assert reg.keys[f"HKCU\\{WINDOWS_RUN_KEY}"][DISPLAY_NAME] == (
        reg.REG_SZ, r'"C:\Program Files\QP Desktop\qp-desktop.exe"')
    assert DISPLAY_NAME in autostart.location
    autostart.set_enabled(False)
    assert not autostart.is_enabled()
    autostart.set_enabled(False)


def test_default_command_starts_this_app():
    command = default_command()
    assert command[-1] in ("qp-desktop", "qp_desktop") or command[-1].endswith("qp-desktop")
