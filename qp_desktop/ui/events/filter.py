"""The events page's filters and the model the view shows through them.

``EventTableModel`` (events/model.py) holds every loaded event in id order (no I/O, append with
``beginInsertRows``). ``EventFilterModel`` is what the view shows: the events that pass the
combined filters (category, severity, type, time range, free text), newest on top or at the
bottom. It is a custom filtering model rather than a ``QSortFilterProxyModel`` because a
Python ``filterAcceptsRow`` costs a C++→Python call per row; over 100,000 rows that is several
times the 100 ms budget, while one list comprehension over precomputed lowercase haystacks
is well under it (``benchmarks/bench_monitor.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    Qt,
    Signal,
)

from qp_desktop.ui.events.model import (
    EventTableModel,
    _CellSource,
    _Parent,
)
from qp_desktop.ui.events.records import (
    COLUMN_COUNT,
    COLUMN_TITLES,
    F_CATEGORY,
    F_HAYSTACK,
    F_ID,
    F_SEVERITY,
    F_TS,
    F_TYPE,
    EventRecord,
)


@dataclass
class EventFilter:
    """The monitor's combined filters; an empty/None criterion lets everything through.

    ``text`` is split into words; every word must occur (case-insensitive) in the event's
    haystack.
    """

    categories: frozenset[str] | None = None
    severities: frozenset[str] | None = None
    types: frozenset[str] | None = None
    since: float | None = None  # POSIX seconds, inclusive
    until: float | None = None  # POSIX seconds, inclusive
    text: str = ""
    _terms: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._terms = tuple(self.text.lower().split())

    @property
    def is_empty(self) -> bool:
        return (self.categories is None and self.severities is None and self.types is None
                and self.since is None and self.until is None and not self._terms)

    def predicate(self) -> Callable[[tuple[Any, ...]], bool] | None:
        """A fast test for one stored row, or None when every row passes."""
        if self.is_empty:
            return None
        categories, severities, types = self.categories, self.severities, self.types
        since, until, terms = self.since, self.until, self._terms

        def accept(row: tuple[Any, ...]) -> bool:
            if categories is not None and row[F_CATEGORY] not in categories:
                return False
            if severities is not None and row[F_SEVERITY] not in severities:
                return False
            if types is not None and row[F_TYPE] not in types:
                return False
            if since is not None and row[F_TS] < since:
                return False
            if until is not None and row[F_TS] > until:
                return False
            hay = row[F_HAYSTACK]
            return all(term in hay for term in terms)

        return accept

    def accepts(self, record: EventRecord) -> bool:
        """Whether one event passes."""
        accept = self.predicate()
        return accept is None or accept(record)

    def apply(self, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The stored rows that pass, in the same order."""
        if self.is_empty:
            return list(rows)
        terms = self._terms
        # The common case — only free text — as one comprehension without a call per row.
        if (len(terms) == 1 and self.categories is None and self.severities is None
                and self.types is None and self.since is None and self.until is None):
            needle = terms[0]
            return [r for r in rows if needle in r[F_HAYSTACK]]
        accept = self.predicate()
        assert accept is not None
        return [r for r in rows if accept(r)]


class EventFilterModel(QAbstractTableModel, _CellSource):
    """What the monitor's table shows: the source's events that pass ``EventFilter``.

    Follows the source's inserts with ``beginInsertRows`` (a live batch is one insert); a new
    filter or order rebuilds the row list once. ``newest_first`` puts the newest on row 0.

    Signals:
        counts_changed(int shown, int filtered_out): after every change of what is shown.
    """

    counts_changed = Signal(int, int)

    def __init__(self, source: EventTableModel, newest_first: bool = True,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self._source = source
        self._newest_first = newest_first
        self._filter = EventFilter()
        self._accept: Callable[[tuple[Any, ...]], bool] | None = None
        self._rows: list[tuple[Any, ...]] = list(source.rows)  # oldest first
        self._texts = {}
        source.events_appended.connect(self._on_appended)
        source.events_prepended.connect(self._on_prepended)
        source.cleared.connect(self._on_cleared)

    # Qt model API
    def rowCount(self, parent: _Parent = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Parent = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else COLUMN_COUNT

    def data(self, index: _Parent, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        return self._cell_data(index, role)

    def multiData(self, index: _Parent, roleDataSpan: Any) -> None:  # noqa: N802, N803
        row = index.row()
        if row >= 0:  # an invalid index has row -1
            rows = self._rows
            stored = rows[len(rows) - 1 - row] if self._newest_first else rows[row]
            self._fill_roles(stored, index.column(), roleDataSpan)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMN_TITLES[section]
        return None

    def _stored(self, row: int) -> tuple[Any, ...]:
        rows = self._rows
        return rows[len(rows) - 1 - row] if self._newest_first else rows[row]

    # Own API
    @property
    def source(self) -> EventTableModel:
        return self._source

    @property
    def event_filter(self) -> EventFilter:
        return self._filter

    @property
    def newest_first(self) -> bool:
        return self._newest_first

    @property
    def shown_count(self) -> int:
        return len(self._rows)

    @property
    def filtered_out_count(self) -> int:
        return len(self._source.rows) - len(self._rows)

    def record_at(self, row: int) -> EventRecord:
        """The event on view row ``row``."""
        rows = self._rows
        return EventRecord.from_row(rows[len(rows) - 1 - row] if self._newest_first
                                    else rows[row])

    def row_of(self, event_id: int) -> int | None:
        """The view row that shows ``event_id``, or None when it is not shown."""
        rows = self._rows
        lo, hi = 0, len(rows)
        while lo < hi:  # ids ascend, so bisect
            mid = (lo + hi) // 2
            if rows[mid][F_ID] < event_id:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(rows) and rows[lo][F_ID] == event_id:
            return len(rows) - 1 - lo if self._newest_first else lo
        return None

    def shown_records(self) -> list[EventRecord]:
        """What is shown, in view order (top row first)."""
        ordered = reversed(self._rows) if self._newest_first else iter(self._rows)
        return [EventRecord.from_row(r) for r in ordered]

    def set_filter(self, event_filter: EventFilter) -> None:
        """Show only what passes ``event_filter`` (rebuilds the rows once)."""
        self._filter = event_filter
        self._accept = event_filter.predicate()
        self.beginResetModel()
        self._rows = event_filter.apply(self._source.rows)
        self.endResetModel()
        self._emit_counts()

    def set_newest_first(self, newest_first: bool) -> None:
        if newest_first == self._newest_first:
            return
        self.beginResetModel()
        self._newest_first = newest_first
        self.endResetModel()

    # Following the source: the new rows are the source's last (or first) len(records).
    def _passing(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        accept = self._accept
        return rows if accept is None else [r for r in rows if accept(r)]

    def _on_appended(self, records: list[EventRecord]) -> None:
        source_rows = self._source.rows
        passing = self._passing(source_rows[len(source_rows) - len(records):])
        if passing:
            n, k = len(self._rows), len(passing)
            first = 0 if self._newest_first else n
            self.beginInsertRows(QModelIndex(), first, first + k - 1)
            self._rows.extend(passing)
            self.endInsertRows()
        self._emit_counts()

    def _on_prepended(self, records: list[EventRecord]) -> None:
        passing = self._passing(self._source.rows[:len(records)])
        if passing:
            n, k = len(self._rows), len(passing)
            first = n if self._newest_first else 0
            self.beginInsertRows(QModelIndex(), first, first + k - 1)
            self._rows[0:0] = passing
            self.endInsertRows()
        self._emit_counts()

    def _on_cleared(self) -> None:
        self.beginResetModel()
        self._rows = []
        self._texts.clear()
        self.endResetModel()
        self._emit_counts()

    def _emit_counts(self) -> None:
        self.counts_changed.emit(self.shown_count, self.filtered_out_count)
