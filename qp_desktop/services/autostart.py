"""Start at login: the XDG autostart ``.desktop`` file on Linux and other free desktops, the
``HKCU\\...\\Run`` registry value on Windows, a LaunchAgent property list on macOS.

The platform, home folder, environment, command and registry module are injected so that
each mechanism is tested on any machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import plistlib
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qp_desktop import APP_ID

log = logging.getLogger(__name__)

COMMAND = "qp-desktop"
DISPLAY_NAME = "QP Desktop"
DESKTOP_FILE = f"{APP_ID}.desktop"
WINDOWS_RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
MACOS_LABEL = APP_ID


class AutostartError(Exception):
    """Start at login could not be changed; ``str()`` is a sentence for the technician."""


def default_command() -> list[str]:
    """How this app is started: the frozen bundle, the installed script, or the module."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    script = shutil.which(COMMAND)
    if script:
        return [script]
    return [sys.executable, "-m", "qp_desktop"]


def _desktop_quote(arg: str) -> str:
    """Quote one argument for a ``.desktop`` ``Exec`` key (Desktop Entry spec)."""
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`%="):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'.replace("%", "%%")


def desktop_entry(command: Sequence[str]) -> str:
    exec_line = " ".join(_desktop_quote(arg) for arg in command)
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        f"Name={DISPLAY_NAME}",
        "Comment=IT Glue password changes, workflow URL and alerts",
        f"Exec={exec_line}",
        f"Icon={APP_ID}",
        "Terminal=false",
        "Categories=Network;Utility;",
        "X-GNOME-Autostart-enabled=true",
        "",
    ])


def _windows_command(command: Sequence[str]) -> str:
    return " ".join(f'"{arg}"' if " " in arg or not arg else arg for arg in command)


class Autostart:
    """Turns start at login on and off for the current user.

    Args:
        platform: ``sys.platform`` value ("linux", "win32", "darwin", ...).
        home: the user's home folder.
        env: environment (``XDG_CONFIG_HOME``).
        command: the command line to start the app (default: :func:`default_command`).
        registry: the ``winreg`` module (Windows only; injected in tests).
    """

    def __init__(self, platform: str | None = None, home: Path | None = None,
                 env: Mapping[str, str] | None = None, command: Sequence[str] | None = None,
                 registry: Any = None):
        self.platform = platform or sys.platform
        self.home = home or Path.home()
        self.env = os.environ if env is None else env
        self.command = list(command) if command else default_command()
        self._registry = registry

    @property
    def kind(self) -> str:
        """"windows", "macos" or "xdg"."""
        if self.platform.startswith("win"):
            return "windows"
        if self.platform == "darwin":
            return "macos"
        return "xdg"

    @property
    def location(self) -> str:
        """Where the setting lives, to show the technician."""
        if self.kind == "windows":
            return f"HKEY_CURRENT_USER\\{WINDOWS_RUN_KEY}\\{DISPLAY_NAME}"
        return str(self.path)

    @property
    def path(self) -> Path:
        """The file written (XDG and macOS)."""
        if self.kind == "macos":
            return self.home / "Library" / "LaunchAgents" / f"{MACOS_LABEL}.plist"
        config = self.env.get("XDG_CONFIG_HOME") or str(self.home / ".config")
        return Path(config) / "autostart" / DESKTOP_FILE

    def _winreg(self) -> Any:
        if self._registry is None:
            import winreg  # Windows only

            self._registry = winreg
        return self._registry

    def is_enabled(self) -> bool:
        if self.kind == "windows":
            reg = self._winreg()
            try:
                with reg.OpenKey(reg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY, 0,
                                 reg.KEY_READ) as key:
                    reg.QueryValueEx(key, DISPLAY_NAME)
                return True
            except OSError:
                return False
        return self.path.is_file()

    def set_enabled(self, enabled: bool) -> None:
        """Raises:
            AutostartError: the file or registry value could not be written or removed.
        """
        try:
            if self.kind == "windows":
                self._set_windows(enabled)
            elif self.kind == "macos":
                self._set_file(enabled, plistlib.dumps({
                    "Label": MACOS_LABEL,
                    "ProgramArguments": self.command,
                    "RunAtLoad": True,
                    "ProcessType": "Interactive",
                }))
            else:
                self._set_file(enabled, desktop_entry(self.command).encode())
        except OSError as exc:
            raise AutostartError(
                f"Could not {'turn on' if enabled else 'turn off'} start at login "
                f"({self.location}): {exc.strerror or exc}") from exc
        log.info("start at login %s (%s)", "on" if enabled else "off", self.kind)

    def _set_file(self, enabled: bool, content: bytes) -> None:
        path = self.path
        if not enabled:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(content)
        tmp.replace(path)

    def _set_windows(self, enabled: bool) -> None:
        reg = self._winreg()
        with reg.CreateKeyEx(reg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY, 0,
                             reg.KEY_SET_VALUE) as key:
            if enabled:
                reg.SetValueEx(key, DISPLAY_NAME, 0, reg.REG_SZ,
                               _windows_command(self.command))
            else:
                with contextlib.suppress(FileNotFoundError):
                    reg.DeleteValue(key, DISPLAY_NAME)
