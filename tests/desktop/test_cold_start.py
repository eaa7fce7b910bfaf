"""Start-up order: ``python -m qp_desktop`` puts the sign-in window on screen before the
heavy imports (httpx, keyring and its cryptography, qasync) and the services exist, then
hands the services to that same window.

Run in a child process: what a fresh interpreter has imported when the window first shows
is the point, and this test process has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("httpx", "keyring", "cryptography", "qasync", "qp_desktop.app")

PROBE = textwrap.dedent("""
    import json, os, sys
    from qp_desktop.ui.sign_in.window import SignInWindow

    HEAVY = {heavy!r}
    shown_once = []
    original_show_event = SignInWindow.showEvent
    original_attach = getattr(SignInWindow, "attach", None)

    def report(what, window):
        print(json.dumps({{"event": what,
                          "heavy": sorted(m for m in HEAVY if m in sys.modules),
                          "qt_namespace": "Qt" in vars(sys.modules["PySide6.QtCore"]),
                          "submit_enabled": window.submit_button.isEnabled(),
                          "tenant_url": window.tenant_url.text()}}), flush=True)

    def show_event(self, event):
        if not shown_once:
            shown_once.append(True)
            report("shown", self)
            if original_attach is None:  # a window that is never attached: nothing to wait for
                os._exit(0)
        original_show_event(self, event)

    def attach(self, session, local_tenant):
        from PySide6.QtWidgets import QApplication

        original_attach(self, session, local_tenant)
        report("attached", self)
        app = QApplication.instance()
        app.setStyleSheet("")  # the style sheet's style has no name; the one under it has
        print(json.dumps({{"event": "style", "name": app.style().name()}}), flush=True)
        os._exit(0)

    SignInWindow.showEvent = show_event
    SignInWindow.attach = attach
    from qp_desktop.main import main
    main(["--tenant", "http://127.0.0.1:9"])
    """).format(heavy=HEAVY)


@pytest.fixture(scope="module")
def start_up(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
           "XDG_STATE_HOME": str(home / "state"), "DBUS_SESSION_BUS_ADDRESS": "disabled:",
           # A desktop that picks another Qt style for every app (KDE does).
           "QT_STYLE_OVERRIDE": "Windows"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                            text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    events = {}
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            events[event["event"]] = event
    assert "shown" in events, result.stdout + result.stderr
    return events


def test_sign_in_window_is_shown_before_httpx_keyring_and_the_app_are_imported(start_up):
    shown = start_up["shown"]
    assert shown["heavy"] == []
    # Nothing can be sent until the services are attached.
    assert shown["submit_enabled"] is False
    assert shown["tenant_url"] == "http://127.0.0.1:9"


def test_sign_in_window_is_shown_before_pyside_builds_its_qt_namespace(start_up):
    # PySide builds the ``Qt`` namespace's ~90 Python enums on its first use, all at once:
    # a fifth of what a bare PySide6 window costs to start. The sign-in window does without
    # it until it is on screen (see docs/desktop.md, "Start-up").
    assert start_up["shown"]["qt_namespace"] is False


def test_shown_sign_in_window_is_then_attached_to_the_services_and_can_sign_in(start_up):
    assert "attached" in start_up, "the sign-in window was never attached to the services"
    attached = start_up["attached"]
    assert attached["submit_enabled"] is True
    assert attached["tenant_url"] == "http://127.0.0.1:9"


def test_app_keeps_its_own_look_on_a_desktop_that_sets_another_qt_style(start_up):
    assert start_up["style"]["name"] == "fusion"
