"""Retry and the fixing actions on the Events page: the failure box under a failed reset's
details and the table's context menu. A mixin of
:class:`~qp_desktop.ui.events.page.MonitorWindow`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu

from qp_desktop.services.tenant_client import SessionExpired, TenantError
from qp_desktop.ui import roles
from qp_desktop.ui.events.failures import RETRY, FailureAdvice, advice_for
from qp_desktop.ui.events.records import EventRecord

# (trigger event id) -> the new job's id; the tenant client's ``replay_event``.
Replay = Callable[[int], Awaitable[Any]]


class RetryMixin:
    """``replay`` (set by the app; None: no Retry, e.g. screenshots) and ``role`` gate Retry.

    ``fix_requested(FailureAdvice)`` is the window's signal for the other actions: the app
    opens the Accounts page there.
    """

    replay: Replay | None
    role: str | None
    failure_box: Any
    table: Any
    tasks: Any
    fix_requested: Any

    def selected_record(self) -> EventRecord | None: ...  # the page provides

    def _connect_retry(self) -> None:
        self.failure_box.retry_requested.connect(self.retry)
        self.failure_box.fix_requested.connect(self.fix_requested.emit)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._event_menu)

    def can_retry(self) -> bool:
        return self.replay is not None and roles.allows(self.role, roles.TECHNICIAN)

    def set_role(self, role: str | None) -> None:
        """Retry is a technician's (the tenant answers 403 below that)."""
        self.role = role
        self._show_failure(self.selected_record())

    def _show_failure(self, record: EventRecord | None) -> None:
        advice = advice_for(record.type, record.details) if record is not None else None
        self.failure_box.show_advice(advice, self.can_retry())
        if advice is not None:
            roles.gate(self.failure_box.retry_button, self.role, roles.TECHNICIAN,
                       "retry a reset")

    def retry(self, advice: FailureAdvice | None) -> None:
        if advice is not None and advice.retry_event_id is not None and self.can_retry():
            self.tasks.start(self._replay(advice.retry_event_id))

    async def _replay(self, trigger_event_id: int) -> bool:
        assert self.replay is not None
        self.failure_box.retry_button.setEnabled(False)
        try:
            await self.replay(trigger_event_id)
        except SessionExpired:
            return False
        except TenantError as exc:
            self.failure_box.show_result(exc.message)
            return False
        finally:
            self.failure_box.retry_button.setEnabled(True)
        self.failure_box.show_result("Retrying with the current value in IT Glue: the new "
                                     "attempt appears in the list.")
        return True

    def _event_menu(self, pos: Any) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        self.table.selectRow(index.row())
        record = self.selected_record()
        advice = advice_for(record.type, record.details) if record is not None else None
        if advice is None:
            return
        menu = QMenu(self.table)
        menu.setObjectName("eventMenu")
        retry = menu.addAction("Retry")
        retry.setEnabled(self.can_retry() and advice.retry_event_id is not None)
        retry.triggered.connect(lambda: self.retry(advice))
        if advice.action != RETRY:
            fix = menu.addAction(self.failure_box.fix_button.text())
            fix.triggered.connect(lambda: self.fix_requested.emit(advice))
        menu.popup(self.table.viewport().mapToGlobal(pos))
