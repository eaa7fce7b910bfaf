"""The live event monitor: every tenant event as it happens, filterable, exportable.

Usable as a standalone window or as a page of the main window. It is handed an
``EventStream`` (live events and connection state) and a history page fetcher; it owns no
HTTP of its own.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import (
    QElapsedTimer,
    QItemSelectionModel,
    QModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QWidget,
)

from qp_desktop.services.event_stream import (
    STATE_CONNECTING,
    STATE_LIVE,
    STATE_OFFLINE,
    STATE_RECONNECTING,
    EventStream,
)
from qp_desktop.services.tasks import TaskSet
from qp_desktop.ui.events.detail import render_detail_html
from qp_desktop.ui.events.export import ExportMixin
from qp_desktop.ui.events.filter import EventFilterModel
from qp_desktop.ui.events.layout import (
    LIVE_COALESCE_MS,
    STATE_COLORS,
    HistoryFetcher,
    MonitorLayout,
    SavePathChooser,
    _dot,
)
from qp_desktop.ui.events.model import EventTableModel
from qp_desktop.ui.events.records import KNOWN_TYPES, EventRecord, event_rows
from qp_desktop.ui.events.retry import Replay, RetryMixin
from qp_desktop.ui.events.view import FilterScrollMixin

log = logging.getLogger(__name__)


class MonitorWindow(MonitorLayout, FilterScrollMixin, ExportMixin, RetryMixin, QWidget):
    """The event monitor page/window.

    Args:
        stream: the live ``EventStream`` (may be shared with other listeners); None renders
            a static monitor (screenshots).
        fetch_history: ``async (before_id, limit) -> EventPage``, e.g. the tenant client's
            ``event_page``; None shows live events only (no history, no "Load older").
        newest_first: newest event on the top row (else at the bottom).
        page_size: events per history page.

    Signals:
        newest_first_changed(bool): the technician flipped the order (persist it).
        export_finished(str, int): an export wrote (path, count).
        history_loaded(int): a history page added this many events.
    """

    newest_first_changed = Signal(bool)
    fix_requested = Signal(object)  # FailureAdvice: Match account…, Open agent, Open IT Glue
    export_finished = Signal(str, int)
    history_loaded = Signal(int)

    def __init__(self, stream: EventStream | None = None,
                 fetch_history: HistoryFetcher | None = None, *, newest_first: bool = True,
                 page_size: int = 200, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("monitorWindow")
        self.setWindowTitle("Event monitor")
        self._stream = stream
        self._fetch_history = fetch_history
        self._page_size = page_size
        self.model = EventTableModel(self)
        self.view_model = EventFilterModel(self.model, newest_first=newest_first, parent=self)
        self.tasks = TaskSet()
        self._initial_loaded = False
        self._early_events: list[dict[str, Any]] = []  # stream events before history arrived
        # Live events as stored rows (built on arrival, see event_rows): held while paused,
        # and received but not shown yet (at most LIVE_COALESCE_MS).
        self._paused_rows: list[tuple[Any, ...]] = []
        self._pending_rows: list[tuple[Any, ...]] = []
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._flush_timer.timeout.connect(self.flush_pending)
        self._last_flush = QElapsedTimer()
        self._next_before_id: int | None = None
        self._history_done = False
        self._loading_older = False
        self._follow = True
        self._adjusting_scroll = False
        self._new_since_scrolled = 0
        self._known_types: set[str] = set(KNOWN_TYPES)
        self._selected_id: int | None = None
        self._started_stream = False
        # Seam for tests and embedding: (format, suggested name) -> path or None.
        self.choose_export_path: SavePathChooser = self._ask_export_path

        self.replay: Replay | None = None  # Retry (the tenant client's replay_event)
        self.role: str | None = None
        self._build()
        self._connect()
        self._connect_retry()
        self._update_counts()
        if stream is not None:
            self.show_connection_state(stream.state, stream.detail)
        else:
            self.show_connection_state(STATE_OFFLINE, "")

    # --- construction ---------------------------------------------------------------------
    def _connect(self) -> None:
        self.filter_text.textChanged.connect(self._apply_filters)
        self.category_filter.currentIndexChanged.connect(self._apply_filters)
        self.type_filter.currentIndexChanged.connect(self._apply_filters)
        for button in self.severity_buttons.values():
            button.toggled.connect(self._apply_filters)
        self.time_filter.currentIndexChanged.connect(self._on_time_range_changed)
        self.time_from.dateTimeChanged.connect(self._apply_filters)
        self.time_to.dateTimeChanged.connect(self._apply_filters)
        self.reset_filters_button.clicked.connect(self.reset_filters)

        self.pause_button.toggled.connect(self.set_paused)
        self.newest_first_button.toggled.connect(self.set_newest_first)
        self.jump_button.clicked.connect(self.jump_to_latest)
        self.load_older_button.clicked.connect(self.load_older)
        self.export_csv_action.triggered.connect(lambda: self.export_shown("csv"))
        self.export_json_action.triggered.connect(lambda: self.export_shown("json"))
        self.copy_json_button.clicked.connect(self.copy_selected_json)

        self.view_model.counts_changed.connect(self._update_counts)
        self.view_model.rowsInserted.connect(self._on_rows_inserted)
        self.model.events_appended.connect(self._note_types)
        self.model.events_prepended.connect(self._note_types)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        bar = self.table.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)

        if self._stream is not None:
            self._stream.events_received.connect(self._on_stream_events)
            self._stream.state_changed.connect(self.show_connection_state)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Load the newest history page, then follow the live stream from there."""
        self.tasks.start(self._load_initial())

    def stop(self) -> None:
        """Cancel this window's work; stops the stream only if this window started it."""
        self._flush_timer.stop()
        self.tasks.cancel_all()
        if self._stream is not None and self._started_stream:
            self._stream.stop()
            self._started_stream = False

    # The main window's page protocol (qp_desktop.ui.page.PageProtocol).
    def activate(self) -> None:
        """Shown: nothing to fetch, the live stream keeps the table current."""

    def shutdown(self) -> None:
        """Signed out or quitting: stop this window's work."""
        self.stop()

    def forget_secrets(self) -> None:
        """Events hold no secrets (the tenant redacts them before storing)."""

    def closeEvent(self, event: Any) -> None:  # noqa: N802
        if self.parent() is None:
            self.stop()
        super().closeEvent(event)

    async def _load_initial(self) -> None:
        if self._fetch_history is not None:
            self._loading_older = True
            self.load_older_button.setEnabled(False)
            try:
                page = await self._fetch_history(None, self._page_size)
            except Exception as exc:  # noqa: BLE001 — shown to the technician, then go live
                log.warning("loading event history failed: %s", exc)
                self.show_connection_state(STATE_OFFLINE, f"Could not load history: {exc}")
                page = None
            finally:
                self._loading_older = False
            if page is not None:
                added = self.model.prepend_older(page.events)
                self._set_history_cursor(page.next_before_id)
                self.history_loaded.emit(len(added))
        self._initial_loaded = True
        early, self._early_events = self._early_events, []
        if early:
            self._deliver(early)
        if self._stream is not None and not self._stream.is_running:
            # Resume right after the newest event shown (0 = replay all when there is none),
            # so nothing committed between the history read and the stream opening is lost.
            self._stream.start(self.model.newest_id or 0)
            self._started_stream = True

    def _set_history_cursor(self, next_before_id: int | None) -> None:
        self._next_before_id = next_before_id
        self._history_done = next_before_id is None
        self.load_older_button.setEnabled(not self._history_done
                                          and self._fetch_history is not None)
        self.load_older_button.setText("All history loaded" if self._history_done
                                       else "Load older")

    def load_older(self) -> None:
        """Fetch the next older history page (no-op while one loads or when none is left)."""
        if self._loading_older or self._history_done or self._fetch_history is None:
            return
        if not self._initial_loaded:
            return
        self._loading_older = True
        self.load_older_button.setEnabled(False)
        self.load_older_button.setText("Loading…")
        self.tasks.start(self._load_older())

    async def _load_older(self) -> None:
        assert self._fetch_history is not None
        before = self._next_before_id if self._next_before_id is not None else self.model.oldest_id
        try:
            page = await self._fetch_history(before, self._page_size)
        except Exception as exc:  # noqa: BLE001 — shown to the technician
            self._loading_older = False
            self.load_older_button.setEnabled(True)
            self.load_older_button.setText("Load older")
            self.load_older_button.setToolTip(f"Loading older events failed: {exc}")
            return
        self._loading_older = False
        added = self.model.prepend_older(page.events)
        self._set_history_cursor(page.next_before_id)
        self.history_loaded.emit(len(added))

    # --- live events ----------------------------------------------------------------------
    def _on_stream_events(self, events: list[dict[str, Any]]) -> None:
        if not self._initial_loaded and self._fetch_history is not None:
            self._early_events.extend(events)
            return
        self._deliver(events)

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        rows = event_rows(events)
        if self.pause_button.isChecked():
            self._paused_rows.extend(rows)
            self._update_paused_label()
            return
        self._pending_rows.extend(rows)
        if self._flush_timer.isActive():
            return
        # Leading edge: after a quiet spell show at once; under a steady feed at most one
        # insert (and one repaint) per LIVE_COALESCE_MS.
        since = self._last_flush.elapsed() if self._last_flush.isValid() else LIVE_COALESCE_MS
        self._flush_timer.start(max(0, LIVE_COALESCE_MS - since))

    def flush_pending(self) -> None:
        """Show the live events received since the last flush now (one insert)."""
        self._flush_timer.stop()
        self._last_flush.start()
        if self._pending_rows:
            pending, self._pending_rows = self._pending_rows, []
            self.model.append_rows(pending)

    @property
    def pending_count(self) -> int:
        """Live events received but not shown yet (at most LIVE_COALESCE_MS old)."""
        return len(self._pending_rows)

    def add_events(self, events: list[dict[str, Any]]) -> None:
        """Feed live events by hand (tests, screenshots); honours Pause like the stream.

        Shown within ``LIVE_COALESCE_MS`` like stream events; ``flush_pending`` shows them now.
        """
        self._deliver(events)

    def set_paused(self, paused: bool) -> None:
        """Pause: hold new events back; resume: show them all at once."""
        if self.pause_button.isChecked() != paused:
            self.pause_button.setChecked(paused)  # re-enters through toggled
            return
        self.pause_button.setText("Resume" if paused else "Pause")
        self.show_connection_state(self._state, getattr(self, "_state_detail", ""))
        # What arrived before the click is shown; only what arrives after it is held.
        self.flush_pending()
        if not paused and self._paused_rows:
            held, self._paused_rows = self._paused_rows, []
            self.model.append_rows(held)
        self._update_paused_label()

    @property
    def paused_count(self) -> int:
        return len(self._paused_rows)

    def _update_paused_label(self) -> None:
        count = len(self._paused_rows)
        paused = self.pause_button.isChecked()
        self.paused_label.setVisible(paused)
        if paused:
            self.paused_label.setText(f"{count:,} new while paused" if count
                                      else "Paused — new events are held")

    def show_connection_state(self, state: str, detail: str = "") -> None:
        """Show the stream's state: "Live", "Reconnecting…", "Offline since 14:05"; while
        paused a connected stream shows "Paused" (events arrive but are held)."""
        self._state_detail = detail
        paused = self.pause_button.isChecked()
        if state == STATE_LIVE and paused:
            text = "Paused"
            detail = detail or "Connected; new events are held until you resume."
        elif state == STATE_LIVE:
            text = "Live"
        elif state == STATE_CONNECTING:
            text = "Connecting…"
        elif state == STATE_RECONNECTING:
            text = "Reconnecting…"
        else:
            since = self._stream.down_since if self._stream is not None else None
            text = (f"Offline since {since.astimezone().strftime('%H:%M')}" if since
                    else "Offline")
        self.state_label.setText(text)
        self.state_label.setToolTip(detail)
        colour = (STATE_COLORS[STATE_CONNECTING] if state == STATE_LIVE and paused
                  else STATE_COLORS.get(state, STATE_COLORS[STATE_OFFLINE]))
        self.state_dot.setPixmap(_dot(colour))
        self.state_dot.setToolTip(detail)
        self._state = state

    @property
    def connection_text(self) -> str:
        return self.state_label.text()

    # --- selection and detail -------------------------------------------------------------
    def _select_event(self, event_id: int) -> None:
        row = self.view_model.row_of(event_id)
        if row is None:
            self.table.selectionModel().clearSelection()
            return
        index = self.view_model.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)

    def select_event(self, event_id: int) -> bool:
        """Select and show ``event_id`` if it is shown; True when it is."""
        self._select_event(event_id)
        row = self.view_model.row_of(event_id)
        if row is not None:
            self.table.scrollTo(self.view_model.index(row, 0))
        return row is not None

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self._selected_id = None
            self.detail.clear()
            self.copy_json_button.setEnabled(False)
            self.detail_title.setText("Event details")
            self._show_failure(None)
            return
        record = self.view_model.record_at(current.row())
        self._selected_id = record.id
        self.copy_json_button.setEnabled(True)
        self.detail_title.setText(f"Event #{record.id} — {record.type}")
        self.detail.setHtml(render_detail_html(record, self.palette()))
        self._show_failure(record)

    def selected_record(self) -> EventRecord | None:
        index = self.table.currentIndex()
        return self.view_model.record_at(index.row()) if index.isValid() else None

    def copy_selected_json(self) -> None:
        """Put the selected event, as pretty JSON, on the clipboard."""
        record = self.selected_record()
        if record is not None:
            QGuiApplication.clipboard().setText(record.to_json())

    # --- export ---------------------------------------------------------------------------
