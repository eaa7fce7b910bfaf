"""A real X display for the desktop's real-window tests: Xvfb on a free display number and
the openbox window manager (frames, placement, focus as on a real desktop)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass

SCREEN = "1280x800x24"  # a common laptop screen: the default window must fit it too
START_WITHIN = 20.0  # seconds


class XDisplayError(RuntimeError):
    pass


@dataclass
class XDisplay:
    """``DISPLAY`` of a running Xvfb + openbox; ``env()`` is what a Qt child needs."""

    display: str
    xvfb: subprocess.Popen[bytes]
    wm: subprocess.Popen[bytes]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.pop("WAYLAND_DISPLAY", None)
        env.update(DISPLAY=self.display, QT_QPA_PLATFORM="xcb")
        return env

    def stop(self) -> None:
        for proc in (self.wm, self.xvfb):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def _need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise XDisplayError(f"{program} is not installed; run scripts/system-deps.sh test "
                            "(the real-window tests need xvfb, openbox and x11-utils)")
    return path


def start_display(screen: str = SCREEN) -> XDisplay:
    """Start Xvfb (it picks a free display number) and openbox, and wait until the window
    manager manages the screen. Raises XDisplayError (never skips) when a part is missing."""
    xvfb_bin, openbox_bin, xprop_bin = _need("Xvfb"), _need("openbox"), _need("xprop")
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen([xvfb_bin, "-displayfd", str(write_fd), "-screen", "0", screen,
                             "-nolisten", "tcp", "-noreset"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()  # Xvfb writes it once it accepts clients
    if not number:
        err = xvfb.stderr.read().decode(errors="replace") if xvfb.stderr else ""
        xvfb.kill()
        raise XDisplayError(f"Xvfb did not start: {err.strip()[-500:]}")
    display = f":{number}"
    env = {**os.environ, "DISPLAY": display}
    wm = subprocess.Popen([openbox_bin, "--sm-disable"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_WITHIN
    while time.monotonic() < deadline:
        probe = subprocess.run([xprop_bin, "-root", "_NET_SUPPORTING_WM_CHECK"], env=env,
                               capture_output=True, text=True, check=False)
        if "window id" in probe.stdout:
            return XDisplay(display, xvfb, wm)
        if wm.poll() is not None:
            break
        time.sleep(0.1)  # polling another process: nothing to wait on in-process
    XDisplay(display, xvfb, wm).stop()
    raise XDisplayError(f"openbox did not start managing {display}")
