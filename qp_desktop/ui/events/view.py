"""The Events page's filters and its scrolling (newest first or last, following new
events, Jump to latest). A mixin of :class:`~qp_desktop.ui.events.page.MonitorWindow`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
)
from PySide6.QtWidgets import (
    QWidget,
)

from qp_desktop.ui.events.filter import EventFilter
from qp_desktop.ui.events.records import EventRecord


class FilterScrollMixin:
    """Filter changes and counts; following the newest end while it is in view."""

    def current_filter(self) -> EventFilter:
        """The filter the toolbar describes right now."""
        category = self.category_filter.currentData()
        event_type = self.type_filter.currentData()
        severities = frozenset(s for s, b in self.severity_buttons.items() if b.isChecked())
        since = until = None
        seconds = self.time_filter.currentData()
        if seconds == -1:
            since = self.time_from.dateTime().toSecsSinceEpoch()
            until = self.time_to.dateTime().toSecsSinceEpoch() + 59  # minutes are inclusive
        elif seconds is not None:
            since = time.time() - seconds
        return EventFilter(
            categories=frozenset([category]) if category else None,
            severities=None if len(severities) == len(self.severity_buttons) else severities,
            types=frozenset([event_type]) if event_type else None,
            since=since,
            until=until,
            text=self.filter_text.text(),
        )

    def _apply_filters(self, *_: Any) -> None:
        selected = self._selected_id
        self.view_model.set_filter(self.current_filter())
        if selected is not None:
            self._select_event(selected)
        if self._follow:
            self._scroll_to_latest()

    def _on_time_range_changed(self, *_: Any) -> None:
        custom = self.time_filter.currentData() == -1
        self.time_from.setVisible(custom)
        self.time_to.setVisible(custom)
        self.time_range_row.setVisible(custom)
        self._apply_filters()

    def reset_filters(self) -> None:
        """Every category, type and severity, any time, no text."""
        widgets: Sequence[QWidget] = (self.filter_text, self.category_filter, self.type_filter,
                                      self.time_filter, *self.severity_buttons.values())
        for widget in widgets:
            widget.blockSignals(True)
        self.filter_text.clear()
        self.category_filter.setCurrentIndex(0)
        self.type_filter.setCurrentIndex(0)
        self.time_filter.setCurrentIndex(0)
        self.time_from.setVisible(False)
        self.time_to.setVisible(False)
        self.time_range_row.setVisible(False)
        for button in self.severity_buttons.values():
            button.setChecked(True)
        for widget in widgets:
            widget.blockSignals(False)
        self._apply_filters()

    def _note_types(self, records: list[EventRecord]) -> None:
        for record in records:
            if record.type not in self._known_types:
                self._known_types.add(record.type)
                self.type_filter.addItem(record.type, record.type)

    def _update_counts(self, *_: Any) -> None:
        shown = self.view_model.shown_count
        hidden = self.view_model.filtered_out_count
        text = f"{shown:,} shown"
        if hidden:
            text += f" · {hidden:,} filtered out"
        self.counts_label.setText(text)

    def set_newest_first(self, newest_first: bool) -> None:
        """Newest event on the top row (True) or at the bottom (False)."""
        if self.newest_first_button.isChecked() != newest_first:
            self.newest_first_button.setChecked(newest_first)
            return
        if newest_first == self.view_model.newest_first:
            return
        selected = self._selected_id
        self.view_model.set_newest_first(newest_first)
        self._label_order_button()
        if selected is not None:
            self._select_event(selected)
        self.jump_to_latest()
        self.newest_first_changed.emit(newest_first)

    def _label_order_button(self) -> None:
        newest_first = self.newest_first_button.isChecked()
        self.newest_first_button.setText("Newest on top" if newest_first else "Newest at bottom")
        self.newest_first_button.setToolTip("Click to put the newest events "
                                            + ("at the bottom" if newest_first else "on top"))

    def _at_latest_end(self) -> bool:
        bar = self.table.verticalScrollBar()
        if self.view_model.newest_first:
            return bar.value() <= bar.minimum()
        return bar.value() >= bar.maximum()

    def _at_old_end(self) -> bool:
        bar = self.table.verticalScrollBar()
        if bar.maximum() <= bar.minimum():
            return False
        if self.view_model.newest_first:
            return bar.value() >= bar.maximum()
        return bar.value() <= bar.minimum()

    def _on_scrolled(self, _value: int) -> None:
        if self._adjusting_scroll:
            return
        self._follow = self._at_latest_end()
        if self._follow:
            self._new_since_scrolled = 0
        self._update_jump_button()
        if self._at_old_end():
            self.load_older()

    def _update_jump_button(self) -> None:
        self.jump_button.setEnabled(not self._follow)
        if self._follow or not self._new_since_scrolled:
            self.jump_button.setText("Jump to latest")
        else:
            self.jump_button.setText(f"Jump to latest ({self._new_since_scrolled:,} new)")

    def _on_rows_inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        count = last - first + 1
        newest_first = self.view_model.newest_first
        inserted_at_top = first == 0
        live = inserted_at_top == newest_first  # new events, not an older history page
        if live and self._follow:
            self._scroll_to_latest()
            return
        if live:
            self._new_since_scrolled += count
            self._update_jump_button()
        if inserted_at_top and self.view_model.rowCount() > count:
            # Rows arrived above what the technician reads: keep those rows in place.
            self.table.flush_layout()
            bar = self.table.verticalScrollBar()
            self._adjusting_scroll = True
            try:
                bar.setValue(bar.value() + count)
            finally:
                self._adjusting_scroll = False

    def _scroll_to_latest(self) -> None:
        self._adjusting_scroll = True
        try:
            if self.view_model.newest_first:
                self.table.scrollToTop()
            else:
                self.table.scrollToBottom()
        finally:
            self._adjusting_scroll = False

    def jump_to_latest(self) -> None:
        """Scroll to the newest event and follow new ones again."""
        self._follow = True
        self._new_since_scrolled = 0
        self._scroll_to_latest()
        self._update_jump_button()

    @property
    def following(self) -> bool:
        """True while new events scroll into view by themselves."""
        return self._follow

