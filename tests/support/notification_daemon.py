"""A small ``org.freedesktop.Notifications`` server (jeepney), for tests.

Run it as the child of ``dbus-run-session`` so that it owns the name on a private session
bus::

    dbus-run-session -- python -m tests.support.notification_daemon [--no-actions]

Once it owns ``org.freedesktop.Notifications`` it prints one JSON line on stdout:
``{"address": "<the bus address>"}``. It implements ``GetCapabilities``,
``GetServerInformation``, ``Notify`` and ``CloseNotification``, and a control interface
``org.qp.NotificationsTest`` on the same object for the test:

* ``Received() -> s``: every ``Notify`` call so far, as a JSON list of
  ``{id, app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout}``;
* ``InvokeAction(u id, s key)``: emits ``ActionInvoked(id, key)`` as a desktop would when
  the user clicks that button;
* ``Quit()``.

It exits when its stdin closes, and ``dbus-run-session`` then takes the bus down.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any

from jeepney import (
    DBusAddress,
    HeaderFields,
    MessageType,
    new_error,
    new_method_return,
    new_signal,
)
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
TEST_INTERFACE = "org.qp.NotificationsTest"
EMITTER = DBusAddress(PATH, interface=NAME)


def _plain(value: Any) -> Any:
    """Hints are variants ``(signature, value)``: keep just the value for JSON."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return value[1]
    return value


def serve(capabilities: list[str]) -> int:
    conn = open_dbus_connection("SESSION")
    reply = conn.send_and_get_reply(message_bus.RequestName(NAME, 4))  # 4 = DO_NOT_QUEUE
    if reply.body[0] != 1:  # 1 = PRIMARY_OWNER
        print(json.dumps({"error": f"could not own {NAME}: {reply.body}"}), flush=True)
        return 1
    received: list[dict[str, Any]] = []
    next_id = 1

    def stdin_watch() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=stdin_watch, daemon=True).start()
    print(json.dumps({"address": os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")}), flush=True)

    while True:
        msg = conn.receive()
        if msg.header.message_type != MessageType.method_call:
            continue
        fields = msg.header.fields
        interface = fields.get(HeaderFields.interface)
        member = fields.get(HeaderFields.member)
        if interface == NAME and member == "GetCapabilities":
            conn.send(new_method_return(msg, "as", (capabilities,)))
        elif interface == NAME and member == "GetServerInformation":
            conn.send(new_method_return(msg, "ssss", ("qp-test-notifications", "QP tests",
                                                      "1.0", "1.2")))
        elif interface == NAME and member == "Notify":
            app_name, replaces_id, app_icon, summary, body, actions, hints, timeout = msg.body
            notification_id = replaces_id or next_id
            if not replaces_id:
                next_id += 1
            received.append({"id": notification_id, "app_name": app_name,
                             "replaces_id": replaces_id, "app_icon": app_icon,
                             "summary": summary, "body": body, "actions": list(actions),
                             "hints": {k: _plain(v) for k, v in hints.items()},
                             "expire_timeout": timeout})
            conn.send(new_method_return(msg, "u", (notification_id,)))
        elif interface == NAME and member == "CloseNotification":
            conn.send(new_signal(EMITTER, "NotificationClosed", "uu", (msg.body[0], 3)))
            conn.send(new_method_return(msg))
        elif interface == TEST_INTERFACE and member == "Received":
            conn.send(new_method_return(msg, "s", (json.dumps(received),)))
        elif interface == TEST_INTERFACE and member == "InvokeAction":
            notification_id, key = msg.body
            conn.send(new_signal(EMITTER, "ActionInvoked", "us", (notification_id, key)))
            conn.send(new_method_return(msg))
        elif interface == TEST_INTERFACE and member == "Quit":
            conn.send(new_method_return(msg))
            return 0
        else:
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s",
                                (f"no method {interface}.{member}",)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--no-actions", action="store_true",
                        help="do not announce the 'actions' capability")
    args = parser.parse_args(argv)
    capabilities = ["body"] if args.no_actions else ["actions", "body", "body-markup"]
    return serve(capabilities)


if __name__ == "__main__":
    sys.exit(main())


class NotificationDaemon:
    """Test helper: this daemon on a private bus under ``dbus-run-session``.

    ``start()`` fails with a clear message when ``dbus-run-session`` is not installed (the
    tests that need it must fail, never skip).
    """

    def __init__(self, no_actions: bool = False, cwd: str | None = None):
        self.args = ["--no-actions"] if no_actions else []
        self.cwd = cwd
        self.proc: Any = None
        self.address = ""

    def start(self, timeout: float = 20.0) -> str:
        import shutil
        import subprocess

        if shutil.which("dbus-run-session") is None:
            raise RuntimeError("dbus-run-session is not installed: apt-get install -y dbus "
                               "dbus-x11 (CI must install it; this test is never skipped)")
        env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
        self.proc = subprocess.Popen(
            ["dbus-run-session", "--", sys.executable, "-m", "tests.support.notification_daemon",
             *self.args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env, cwd=self.cwd, start_new_session=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        first = json.loads(lines[0]) if lines and lines[0].strip() else {}
        if not first.get("address"):
            self.stop()
            raise RuntimeError(f"the notification daemon did not start: {first or 'no output'}"
                               f"\n{self.proc.stderr.read() if self.proc.stderr else ''}")
        self.address = first["address"]
        return self.address

    def _call(self, member: str, signature: str | None = None, body: tuple[Any, ...] = ()
              ) -> tuple[Any, ...]:
        from jeepney import new_method_call
        from jeepney.wrappers import unwrap_msg

        control = DBusAddress(PATH, bus_name=NAME, interface=TEST_INTERFACE)
        with open_dbus_connection(self.address) as conn:
            reply = conn.send_and_get_reply(new_method_call(control, member, signature, body),
                                            timeout=10)
        return tuple(unwrap_msg(reply))

    def received(self) -> list[dict[str, Any]]:
        """Every ``Notify`` call the daemon has answered, oldest first."""
        return list(json.loads(self._call("Received")[0]))

    def invoke_action(self, notification_id: int, key: str) -> None:
        """Click a notification's button (``key``), or the bubble itself ("default")."""
        self._call("InvokeAction", "us", (notification_id, key))

    def stop(self) -> None:
        """Close its stdin: the daemon exits and dbus-run-session takes the bus down."""
        import signal
        import subprocess

        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
