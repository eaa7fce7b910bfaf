"""Desktop notifications as an adapter chain (qutebrowser's design).

:class:`Notifier` tries its adapters in order: freedesktop notifications over D-Bus
(:class:`DbusNotifier`, jeepney), else the tray icon's message (:class:`TrayNotifier`), else
an in-app banner (:class:`BannerNotifier`). An adapter that cannot start is skipped with a
debug log; one that fails while showing hands the notification to the next.

Nothing secret ever reaches a notification: every text passes :func:`scrub`.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from jeepney import DBusAddress, HeaderFields, MatchRule, MessageType, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.asyncio import DBusConnection, DBusRouter, Proxy, open_dbus_connection
from jeepney.io.common import RouterClosed
from jeepney.wrappers import DBusErrorResponse, unwrap_msg
from PySide6.QtCore import QObject, Signal

from qp_desktop import APP_ID

log = logging.getLogger(__name__)

ACTION_OPEN = "open"
ACTION_SNOOZE = "snooze"

SEVERITIES = ("info", "warning", "error")

_TOKEN_RE = re.compile(r"qpwt_[A-Za-z0-9_\-]+")
_HOOK_RE = re.compile(r"(/hooks/itglue/)[^\s/?#\"'<>]+")


def scrub(text: str) -> str:
    """Remove anything that looks like a workflow token (or a URL carrying one)."""
    return _TOKEN_RE.sub("qpwt_\u2026", _HOOK_RE.sub("\\1\u2026", text))


@dataclass(frozen=True)
class Notification:
    """One thing to tell the technician.

    ``key`` says what it is about ("expiry", "failures", ...): a newer notification with the
    same key replaces the older one. ``actions`` are (action key, label) pairs.
    """

    key: str
    title: str
    body: str
    severity: str = "info"
    actions: tuple[tuple[str, str], ...] = ()

    def scrubbed(self) -> Notification:
        return replace(self, title=scrub(self.title), body=scrub(self.body))


ActionHandler = Callable[[Notification, str], None]


class NotifierError(Exception):
    """An adapter cannot start, or could not show a notification."""


class NotificationAdapter:
    """One way of showing notifications. ``on_action`` is set by :class:`Notifier`."""

    name = "adapter"
    description = ""
    supports_actions = False

    def __init__(self) -> None:
        self.on_action: ActionHandler | None = None

    async def start(self) -> None:
        """Raise :class:`NotifierError` (or any error) if this adapter cannot work here."""

    async def show(self, notification: Notification) -> None:
        raise NotImplementedError

    async def withdraw(self, key: str) -> None:
        """Take back the notification with ``key`` if it is still showing."""

    async def close(self) -> None:
        """Release what :meth:`start` opened."""

    def _invoke(self, notification: Notification, action: str) -> None:
        if self.on_action is not None:
            self.on_action(notification, action)


# --- freedesktop notifications over D-Bus --------------------------------------------------

NOTIFICATIONS = DBusAddress("/org/freedesktop/Notifications",
                            bus_name="org.freedesktop.Notifications",
                            interface="org.freedesktop.Notifications")
URGENCY = {"info": 1, "warning": 1, "error": 2}  # low=0, normal=1, critical=2


class DbusNotifier(NotificationAdapter):
    """``org.freedesktop.Notifications`` through jeepney on the asyncio (qasync) loop.

    WORKAROUND: PySide6 QtDBus marshals ``Notify``'s ``susssasa{sv}i`` arguments wrongly
    (seen with PySide6 6.11), so the message is built with jeepney.

    Actions are offered only when the server announces the ``actions`` capability; the
    ``ActionInvoked`` signal calls back (the "default" action, a click on the bubble, counts
    as "open").
    """

    name = "dbus"
    description = "desktop notifications"

    def __init__(self, bus: str = "SESSION", app_name: str = "QP Desktop",
                 app_icon: str = APP_ID, desktop_entry: str = APP_ID,
                 timeout: float = 3.0):
        super().__init__()
        self.bus = bus
        self.app_name = app_name
        self.app_icon = app_icon
        self.desktop_entry = desktop_entry
        self.timeout = timeout
        self.capabilities: frozenset[str] = frozenset()
        self.server: tuple[str, ...] = ()
        self._conn: DBusConnection | None = None
        self._router: DBusRouter | None = None
        self._listener: asyncio.Task[None] | None = None
        self._signals: asyncio.Queue[Any] = asyncio.Queue()
        self._by_id: dict[int, Notification] = {}
        self._id_by_key: dict[str, int] = {}
        # An action can be read before Notify's reply has been handled (the reply passes
        # through more tasks than the signal): keep it until the id is known.
        self._early_actions: dict[int, str] = {}

    @property
    def supports_actions(self) -> bool:  # type: ignore[override]
        return "actions" in self.capabilities

    async def _call(self, method: str, signature: str | None = None,
                    body: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        if self._router is None:
            raise NotifierError("D-Bus is not connected")
        message = new_method_call(NOTIFICATIONS, method, signature, body)
        try:
            reply = await asyncio.wait_for(self._router.send_and_get_reply(message),
                                           self.timeout)
            result: tuple[Any, ...] = unwrap_msg(reply)
            return result
        except (DBusErrorResponse, RouterClosed, OSError, EOFError, TimeoutError) as exc:
            raise NotifierError(f"{method} failed: {exc!r}") from exc

    async def start(self) -> None:
        try:
            self._conn = await asyncio.wait_for(open_dbus_connection(self.bus), self.timeout)
        except (OSError, EOFError, KeyError, ValueError, TimeoutError, StopIteration) as exc:
            raise NotifierError(f"no D-Bus session bus: {exc!r}") from exc
        self._router = DBusRouter(self._conn)
        try:
            self.server = tuple(await self._call("GetServerInformation"))
            (caps,) = await self._call("GetCapabilities")
            self.capabilities = frozenset(caps)
            for member in ("ActionInvoked", "NotificationClosed"):
                rule = MatchRule(type="signal", interface=NOTIFICATIONS.interface,
                                 path=NOTIFICATIONS.object_path, member=member)
                self._router.filter(rule, queue=self._signals)
                await asyncio.wait_for(
                    Proxy(message_bus, self._router).AddMatch(rule), self.timeout)
        except BaseException:
            await self.close()
            raise
        self._listener = asyncio.get_running_loop().create_task(self._listen())
        log.debug("D-Bus notifications by %s; capabilities %s", self.server[:1],
                  sorted(self.capabilities))

    async def _listen(self) -> None:
        while True:
            message = await self._signals.get()
            member = message.header.fields.get(HeaderFields.member)
            if message.header.message_type != MessageType.signal:
                continue
            if member == "ActionInvoked":
                notification_id, action = message.body
                notification = self._by_id.get(int(notification_id))
                action = ACTION_OPEN if action == "default" else str(action)
                if notification is not None:
                    self._invoke(notification, action)
                elif len(self._early_actions) < 16:
                    self._early_actions[int(notification_id)] = action
            elif member == "NotificationClosed":
                notification_id = int(message.body[0])
                closed = self._by_id.pop(notification_id, None)
                if closed is not None and self._id_by_key.get(closed.key) == notification_id:
                    del self._id_by_key[closed.key]

    async def show(self, notification: Notification) -> None:
        actions: list[str] = []
        if self.supports_actions:
            for key, label in notification.actions:
                actions += [key, label]
            if any(key == ACTION_OPEN for key, _ in notification.actions):
                actions += ["default", "Open"]
        body = notification.body
        if "body-markup" in self.capabilities:
            body = html.escape(body, quote=False)
        hints = {"urgency": ("y", URGENCY.get(notification.severity, 1)),
                 "desktop-entry": ("s", self.desktop_entry)}
        replaces = self._id_by_key.get(notification.key, 0)
        (notification_id,) = await self._call(
            "Notify", "susssasa{sv}i",
            (self.app_name, replaces, self.app_icon, notification.title, body, actions,
             hints, -1))
        notification_id = int(notification_id)
        if replaces and replaces != notification_id:
            self._by_id.pop(replaces, None)
        self._by_id[notification_id] = notification
        self._id_by_key[notification.key] = notification_id
        early = self._early_actions.pop(notification_id, None)
        if early is not None:
            self._invoke(notification, early)

    async def withdraw(self, key: str) -> None:
        notification_id = self._id_by_key.pop(key, None)
        if notification_id is not None:
            self._by_id.pop(notification_id, None)
            await self._call("CloseNotification", "u", (notification_id,))

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        router, self._router = self._router, None
        if router is not None:
            try:
                await router.__aexit__(None, None, None)
            except (OSError, EOFError, RouterClosed) as exc:  # the bus had gone already
                log.debug("D-Bus connection ended: %r", exc)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                await conn.close()


# --- the tray icon's message ---------------------------------------------------------------


class TrayPort(Protocol):
    """What :class:`TrayNotifier` needs of the tray icon (``ui.tray.Tray`` provides it)."""

    def is_available(self) -> bool: ...

    def show_message(self, title: str, body: str, severity: str) -> None: ...

    def set_message_clicked_handler(self, handler: Callable[[], None]) -> None: ...


class TrayNotifier(NotificationAdapter):
    """``QSystemTrayIcon.showMessage`` through the tray. No buttons: a click means "open".

    ``showMessage`` silently does nothing without a tray, so this adapter refuses to start
    (and steps aside) when the system has none.
    """

    name = "tray"
    description = "tray messages"

    def __init__(self, tray: TrayPort | None):
        super().__init__()
        self.tray = tray
        self._last: Notification | None = None

    async def start(self) -> None:
        if self.tray is None or not self.tray.is_available():
            raise NotifierError("no system tray")
        self.tray.set_message_clicked_handler(self._clicked)

    def _clicked(self) -> None:
        last = self._last
        if last is not None and any(key == ACTION_OPEN for key, _ in last.actions):
            self._invoke(last, ACTION_OPEN)

    async def show(self, notification: Notification) -> None:
        if self.tray is None or not self.tray.is_available():
            raise NotifierError("the system tray went away")
        self._last = notification
        self.tray.show_message(notification.title, notification.body, notification.severity)


# --- the in-app banner ---------------------------------------------------------------------


class BannerSink(Protocol):
    """Where banners appear (the main window's alert area provides it)."""

    def show_notification(self, notification: Notification,
                          invoke: Callable[[str], None]) -> None: ...

    def withdraw_notification(self, key: str) -> None: ...


class BannerNotifier(NotificationAdapter):
    """Shows notifications inside the app's main window, with buttons for the actions.

    Always available; notifications that arrive while no window is attached are kept (one per
    key) and shown when one is.
    """

    name = "banner"
    description = "a banner in the window"
    supports_actions = True

    def __init__(self) -> None:
        super().__init__()
        self.sink: BannerSink | None = None
        self.current: dict[str, Notification] = {}

    def attach(self, sink: BannerSink | None) -> None:
        self.sink = sink
        if sink is not None:
            for notification in self.current.values():
                self._show_in(sink, notification)

    def _show_in(self, sink: BannerSink, notification: Notification) -> None:
        def invoke(action: str) -> None:
            self.current.pop(notification.key, None)
            self._invoke(notification, action)
        sink.show_notification(notification, invoke)

    async def show(self, notification: Notification) -> None:
        self.current[notification.key] = notification
        if self.sink is not None:
            self._show_in(self.sink, notification)

    async def withdraw(self, key: str) -> None:
        self.current.pop(key, None)
        if self.sink is not None:
            self.sink.withdraw_notification(key)


# --- the chain -----------------------------------------------------------------------------


class Notifier(QObject):
    """Shows each notification through the first adapter that works.

    Signals:
        action_invoked(object, str): the technician chose an action (``Notification``,
            action key such as "open" or "snooze") in whichever adapter showed it.
    """

    action_invoked = Signal(object, str)

    def __init__(self, adapters: Sequence[NotificationAdapter], parent: QObject | None = None):
        super().__init__(parent)
        self.adapters = list(adapters)
        self.active: list[NotificationAdapter] = []
        self._started: asyncio.Future[None] | None = None
        for adapter in self.adapters:
            adapter.on_action = self._on_action

    def _on_action(self, notification: Notification, action: str) -> None:
        log.debug("notification %s: action %s", notification.key, action)
        self.action_invoked.emit(notification, action)

    async def start(self) -> None:
        """Start the adapters (once); those that cannot start are skipped."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        for adapter in self.adapters:
            try:
                await adapter.start()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an adapter that cannot start is skipped
                log.debug("notification adapter %s skipped: %s", adapter.name, exc)
                continue
            self.active.append(adapter)
        log.info("notifications through: %s",
                 ", ".join(a.name for a in self.active) or "nothing")

    @property
    def backend(self) -> NotificationAdapter | None:
        """The adapter notifications go to first (after :meth:`start`)."""
        return self.active[0] if self.active else None

    async def notify(self, notification: Notification) -> str | None:
        """Show ``notification``; returns the name of the adapter that showed it."""
        await self.start()
        notification = notification.scrubbed()
        if notification.severity not in SEVERITIES:
            notification = replace(notification, severity="info")
        for adapter in list(self.active):
            try:
                await adapter.show(notification)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("notification adapter %s failed, trying the next: %r",
                          adapter.name, exc)
                continue
            return adapter.name
        log.warning("no notification adapter could show %r", notification.key)
        return None

    async def withdraw(self, key: str) -> None:
        for adapter in list(self.active):
            try:
                await adapter.withdraw(key)
            except Exception as exc:
                log.debug("withdrawing %s from %s failed: %r", key, adapter.name, exc)

    async def close(self) -> None:
        for adapter in self.active:
            try:
                await adapter.close()
            except Exception as exc:
                log.debug("closing notification adapter %s failed: %r", adapter.name, exc)
        self.active = []
        self._started = None
