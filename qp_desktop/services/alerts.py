"""Alerts on the desktop: token expiry and failures, from the token state and the event stream.

:class:`AlertCenter` fetches the workflow token at sign-in and every few minutes, listens to
the shared event stream (``token.expiring``, ``token.expired``, ``password_reset.failed``,
``workflow_trigger.rejected``), asks :mod:`alert_policy` what is due, and sends it through
the :class:`~qp_desktop.services.notifier.Notifier` chain. It also keeps the status the tray
icon and the window banner show.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from qp_desktop.services import alert_policy as policy
from qp_desktop.services import settings as S
from qp_desktop.services.event_stream import EventStream
from qp_desktop.services.notifier import (
    ACTION_OPEN,
    ACTION_SNOOZE,
    Notification,
    Notifier,
)
from qp_desktop.services.settings import Preferences
from qp_desktop.services.tasks import TaskSet
from qp_desktop.services.tenant_client import TenantClient, TenantError, WorkflowToken

log = logging.getLogger(__name__)

EXPIRY_KEY = "expiry"
FAILURES_KEY = "failures"
REFRESH_INTERVAL_MS = 10 * 60 * 1000
TOKEN_EVENTS = frozenset({"token.expiring", "token.expired", "token.generated",
                          "token.revoked"})

Clock = Callable[[], datetime]


def expiry_notification(alert: policy.ExpiryAlert,
                        expires_at: datetime | None = None) -> Notification:
    title, body = policy.expiry_text(alert.expired, alert.days_left, expires_at)
    return Notification(EXPIRY_KEY, title, body,
                        severity="error" if alert.expired else "warning",
                        actions=((ACTION_OPEN, "Open"), (ACTION_SNOOZE, "Snooze 1 day")))


def failure_notification(notice: policy.FailureNotice) -> Notification:
    title, body = policy.failure_text(notice)
    return Notification(FAILURES_KEY, title, body, severity="error",
                        actions=((ACTION_OPEN, "Open"),))


class AlertCenter(QObject):
    """Decides and sends the desktop's alerts for one signed-in tenant.

    Args:
        scope: returns what identifies the tenant (so token ids of different tenants never
            mix in the remembered state).
        clock: returns the time now (aware, UTC); tests pass their own.

    Signals:
        status_changed(object): an ``alert_policy.AlertStatus`` (tray icon and tooltip).
        token_changed(object): the workflow token after a refresh (``WorkflowToken`` or None).
        open_requested(str): a notification's "Open" was chosen; the page key to show.
    """

    status_changed = Signal(object)
    token_changed = Signal(object)
    open_requested = Signal(str)

    def __init__(self, client: TenantClient, prefs: Preferences, notifier: Notifier, *,
                 scope: Callable[[], str], clock: Clock | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.client = client
        self.prefs = prefs
        self.notifier = notifier
        self.scope = scope
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.token: WorkflowToken | None = None
        # The tenant's expiry warning days (GET /alerts); its defaults until it answers.
        self.thresholds: tuple[int, ...] = policy.DEFAULT_THRESHOLDS
        self.failures = policy.FailureWindow()
        self.gather = policy.GATHER
        self.min_gap = policy.MIN_GAP
        self.signed_in = False
        self._stream: EventStream | None = None
        self.tasks = TaskSet()
        self._expiry_token_key: str | None = None
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(REFRESH_INTERVAL_MS)
        self._refresh_timer.timeout.connect(self.request_refresh)
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self._flush_failures)
        notifier.action_invoked.connect(self._on_action)
        self.status = self._compute_status()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, stream: EventStream | None) -> None:
        """Signed in: follow ``stream`` and check the token now and periodically."""
        self.stop()
        self.signed_in = True
        self._stream = stream
        if stream is not None:
            stream.events_received.connect(self.on_events)
        self._refresh_timer.start()
        self.request_refresh()
        self._emit_status()

    def stop(self) -> None:
        """Signed out: stop listening; forget the token and failures (not the memory)."""
        if self._stream is not None:
            with contextlib.suppress(RuntimeError, TypeError):
                self._stream.events_received.disconnect(self.on_events)
            self._stream = None
        self._refresh_timer.stop()
        self._flush_timer.stop()
        self.tasks.cancel_all()
        was_signed_in = self.signed_in
        self.signed_in = False
        self.token = None
        self.failures = policy.FailureWindow()
        if was_signed_in:
            self._emit_status()

    @property
    def busy(self) -> bool:
        return self.tasks.busy

    # -- memory -------------------------------------------------------------------------------

    def _memory(self) -> policy.AlertMemory:
        return policy.AlertMemory.from_json(self.prefs.get(S.ALERT_MEMORY))

    def _save(self, memory: policy.AlertMemory) -> None:
        self.prefs.set(S.ALERT_MEMORY, memory.to_json())
        self.prefs.sync()

    def _key(self, token_id: object) -> str:
        return policy.token_key(self.scope(), token_id)

    # -- token state --------------------------------------------------------------------------

    def request_refresh(self) -> None:
        if self.signed_in:
            self.tasks.start(self.refresh())

    async def refresh(self) -> WorkflowToken | None:
        """Fetch the token (and the tenant's warning days), then notify what is due."""
        await self.refresh_thresholds()
        try:
            integration = await self.client.get_itglue()
        except TenantError as exc:
            log.info("could not check the workflow token: %s", exc.code)
            return self.token
        if not self.signed_in:
            return None
        await self.apply_token(integration.workflow_token)
        return self.token

    async def refresh_thresholds(self) -> tuple[int, ...]:
        """Follow the tenant's expiry warning days; keep the last known ones when it cannot
        answer."""
        try:
            settings = await self.client.get_alerts()
        except TenantError as exc:
            log.info("could not read the alert settings: %s", exc.code)
            return self.thresholds
        days = tuple(d for d in settings.expiry_warning_days if d >= 0)
        if days:
            self.thresholds = days
        return self.thresholds

    async def apply_token(self, token: WorkflowToken | None) -> None:
        """Take a token state (from a refresh, or given directly) and notify what is due."""
        previous, self.token = self.token, token
        warned = ("expiring", "expired")
        if (previous is not None and previous.status in warned
                and (token is None or token.status not in warned)):
            await self.notifier.withdraw(EXPIRY_KEY)  # a new URL: the warning is over
        self.token_changed.emit(token)
        self._emit_status()
        if token is not None and token.status != "revoked":
            await self._decide_expiry(token.id, token.days_left, token.status == "expired",
                                      token.expires_at)

    async def _decide_expiry(self, token_id: object, days_left: int | None, expired: bool,
                             expires_at: datetime | None,
                             extra_thresholds: tuple[int, ...] = ()) -> None:
        if not self.prefs.get(S.NOTIFY_EXPIRY):
            return
        key = self._key(token_id)
        thresholds = tuple(sorted(set(self.thresholds) | set(extra_thresholds)))
        alert, memory = policy.decide_expiry(self._memory(), key, days_left=days_left,
                                             expired=expired, now=self.clock(),
                                             thresholds=thresholds)
        if alert is None:
            return
        self._save(memory)  # remembered before showing: never twice, even after a crash
        self._expiry_token_key = key
        log.info("expiry notification for threshold %s", alert.threshold)
        await self.notifier.notify(expiry_notification(alert, expires_at))

    # -- events -------------------------------------------------------------------------------

    def on_events(self, events: list[dict[str, Any]]) -> None:
        """A batch from the event stream (new events only)."""
        if not self.signed_in:
            return
        token_events = [e for e in events if e.get("type") in TOKEN_EVENTS]
        if token_events:
            self.tasks.start(self._on_token_events(token_events))
        window = policy.add_failures(self.failures, events, self.clock())
        if window is not self.failures:
            self.failures = window
            self._schedule_flush()
            self._emit_status()

    async def _on_token_events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            kind, token_id = event.get("type"), event.get("token_id")
            details = event.get("details") or {}
            if token_id is None or kind not in ("token.expiring", "token.expired"):
                continue
            threshold = details.get("threshold")
            days_left = details.get("days_left")
            await self._decide_expiry(
                token_id, int(days_left) if isinstance(days_left, int | float) else None,
                kind == "token.expired", None,
                (int(threshold),) if isinstance(threshold, int) else ())
        await self.refresh()  # the token's status changed: the tray and banner follow

    def _schedule_flush(self) -> None:
        due = policy.flush_at(self.failures, self.gather, self.min_gap)
        if due is None:
            self._flush_timer.stop()
            return
        delay_ms = max(0, int((due - self.clock()).total_seconds() * 1000))
        self._flush_timer.start(delay_ms)

    def _flush_failures(self) -> None:
        due = policy.flush_at(self.failures, self.gather, self.min_gap)
        if due is None:
            return
        if due > self.clock():  # the clock and the timer disagree a little: wait the rest
            self._schedule_flush()
            return
        notice, self.failures = policy.take_notice(
            self.failures, self.clock(),
            resets_enabled=self.prefs.get(S.NOTIFY_RESET_FAILED),
            rejected_enabled=self.prefs.get(S.NOTIFY_TRIGGER_REJECTED))
        if notice is not None:
            self.tasks.start(self.notifier.notify(failure_notification(notice)))

    def acknowledge_failures(self) -> None:
        """The technician is looking at the event monitor."""
        if self.failures.total or self.failures.pending:
            self.failures = policy.acknowledge(self.failures)
            self._flush_timer.stop()
            self.tasks.start(self.notifier.withdraw(FAILURES_KEY))
            self._emit_status()

    # -- actions and status -------------------------------------------------------------------

    def _on_action(self, notification: Notification, action: str) -> None:
        if notification.key == EXPIRY_KEY:
            if action == ACTION_SNOOZE and self._expiry_token_key is not None:
                self._save(policy.snooze(self._memory(), self._expiry_token_key, self.clock()))
                log.info("expiry notification snoozed for a day")
            elif action == ACTION_OPEN:
                self.open_requested.emit("itglue")
        elif notification.key == FAILURES_KEY and action == ACTION_OPEN:
            self.open_requested.emit("events")
            self.acknowledge_failures()

    def _compute_status(self) -> policy.AlertStatus:
        token = self.token
        return policy.tray_status(token.status if token else None,
                                  token.days_left if token else None,
                                  self.failures, signed_in=self.signed_in)

    def _emit_status(self) -> None:
        self.status = self._compute_status()
        self.status_changed.emit(self.status)

    async def notify(self, notification: Notification) -> str | None:
        """Send a one-off notification (e.g. "still running in the tray")."""
        return await self.notifier.notify(notification)
