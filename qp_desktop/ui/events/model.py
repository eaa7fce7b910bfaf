"""The events page's table model: every loaded event kept once, in id order, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QModelRoleData,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush

from qp_desktop.services.tenant_client import Event
from qp_desktop.ui.events.records import (
    COL_ACCOUNT,
    COL_RESOURCE,
    COL_SEVERITY,
    COL_SUMMARY,
    COL_TIME,
    COLUMN_COUNT,
    COLUMN_TITLES,
    F_ACCOUNT,
    F_CATEGORY,
    F_ID,
    F_OCCURRED_AT,
    F_RESOURCE_NAME,
    F_RESOURCE_URL,
    F_SEVERITY,
    F_SUMMARY,
    F_TYPE,
    SEVERITY_COLORS,
    EventIdRole,
    EventRecord,
    EventRecordRole,
    _local_time_text,
    _row_from_event,
    event_rows,
    severity_icon,
    wire_event,
)


def _display_texts(row: tuple[Any, ...]) -> tuple[str, ...]:
    """The DisplayRole text of every column of one stored row."""
    return (
        _local_time_text(row),
        row[F_CATEGORY],
        row[F_TYPE],
        row[F_SEVERITY].capitalize(),
        row[F_SUMMARY],
        row[F_RESOURCE_NAME] or "",
        row[F_ACCOUNT] or "",
    )


# Brushes are built once: the view asks for ForegroundRole on every painted cell.
_SEVERITY_FOREGROUND = {severity: QBrush(SEVERITY_COLORS[severity])
                        for severity in ("warning", "error")}


def _row_data(row: tuple[Any, ...], texts: tuple[str, ...], column: int, role: int) -> Any:
    if role == _DISPLAY:
        return texts[column]
    if role == _TOOLTIP:
        if column == COL_TIME:
            return row[F_OCCURRED_AT]
        if column == COL_RESOURCE:
            return row[F_RESOURCE_URL] or row[F_RESOURCE_NAME]
        if column in (COL_SUMMARY, COL_ACCOUNT):
            return texts[column] or None
        return None
    if role == _DECORATION:
        return severity_icon(row[F_SEVERITY]) if column == COL_SEVERITY else None
    if role == _FOREGROUND:
        return _SEVERITY_FOREGROUND.get(row[F_SEVERITY]) if column == COL_SEVERITY else None
    if role == _RECORD:
        return EventRecord.from_row(row)
    if role == _EVENT_ID:
        return row[F_ID]
    return None


_Parent = QModelIndex | QPersistentModelIndex
_row_id = itemgetter(F_ID)
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_DECORATION = int(Qt.ItemDataRole.DecorationRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_RECORD = int(EventRecordRole)
_EVENT_ID = int(EventIdRole)
# The roles _row_data answers; everything else is None without looking at the row.
_ROLES = frozenset({_DISPLAY, _TOOLTIP, _DECORATION, _FOREGROUND, _RECORD, _EVENT_ID})
# Display texts are cached for the rows the view paints: every live batch shifts the rows
# and repaints the whole viewport, and formatting the local time costs more than the rest
# of a cell. A plain dict, dropped whole when it grows past this (a screenful is ~40 rows).
_TEXT_CACHE_LIMIT = 4096


class _CellSource:
    """Answers ``data``/``multiData`` for a model whose view rows map to stored rows.

    ``multiData`` is what Qt's item delegate calls: one C++→Python call per painted cell
    for its seven roles instead of seven ``data`` calls, which dominated the repaint of a
    live table (about 130 cells per batch).
    """

    _texts: dict[int, tuple[str, ...]]  # event id → display texts; set by the model

    def _stored(self, row: int) -> tuple[Any, ...]:
        raise NotImplementedError

    def _texts_of(self, stored: tuple[Any, ...]) -> tuple[str, ...]:
        cache = self._texts
        texts = cache.get(stored[F_ID])
        if texts is None:
            if len(cache) >= _TEXT_CACHE_LIMIT:
                cache.clear()
            texts = cache[stored[F_ID]] = _display_texts(stored)
        return texts

    def _cell_data(self, index: _Parent, role: int) -> Any:
        role = int(role)
        if role not in _ROLES or not index.isValid():
            return None
        stored = self._stored(index.row())
        return _row_data(stored, self._texts_of(stored), index.column(), role)

    def _fill_roles(self, stored: tuple[Any, ...], column: int, role_data: Any) -> None:
        texts = self._texts.get(stored[F_ID]) or self._texts_of(stored)
        if isinstance(role_data, QModelRoleData):  # a single role, called from Python
            role_data = (role_data,)
        # Every role must be set or cleared: the view reuses the span between cells, so a
        # role left alone would show the previous cell's icon or colour.
        for item in role_data:
            role = item.role()
            if role == _DISPLAY:
                item.setData(texts[column])
                continue
            value = _row_data(stored, texts, column, role) if role in _ROLES else None
            if value is None:
                item.clearData()
            else:
                item.setData(value)


class _RecordsView(Sequence[EventRecord]):
    """A read-only ``EventRecord`` view over a list of stored rows."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [EventRecord.from_row(r) for r in self._rows[index]]
        return EventRecord.from_row(self._rows[index])


class EventTableModel(QAbstractTableModel, _CellSource):
    """Every loaded event, oldest first; appends live events, prepends history pages.

    Never resets per event: ``append_events`` and ``prepend_older`` use
    ``beginInsertRows`` once per batch. Ids are a guard: an appended event must be newer
    than the newest held, a prepended one older than the oldest; anything else is dropped.

    Signals:
        events_appended(list): the ``EventRecord`` objects just appended (oldest first).
        events_prepended(list): the ``EventRecord`` objects just prepended (oldest first).
        cleared(): every event was removed.
    """

    events_appended = Signal(list)
    events_prepended = Signal(list)
    cleared = Signal()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[Any, ...]] = []
        self._texts = {}

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
            self._fill_roles(self._rows[row], index.column(), roleDataSpan)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMN_TITLES[section]
        return None

    def _stored(self, row: int) -> tuple[Any, ...]:
        return self._rows[row]

    # Own API
    @property
    def records(self) -> Sequence[EventRecord]:
        """Every held event, oldest first."""
        return _RecordsView(self._rows)

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        """The stored rows themselves (plain tuples in ``EventRecord`` order; do not mutate)."""
        return self._rows

    @property
    def newest_id(self) -> int | None:
        return self._rows[-1][F_ID] if self._rows else None

    @property
    def oldest_id(self) -> int | None:
        return self._rows[0][F_ID] if self._rows else None

    def append_events(self, events: Iterable[Event | Mapping[str, Any]]) -> list[EventRecord]:
        """Append live events (any order); drops ids not newer than the newest held."""
        return self.append_rows(event_rows(events))

    def append_rows(self, rows: Iterable[tuple[Any, ...]]) -> list[EventRecord]:
        """``append_events`` for rows built ahead with ``event_rows``."""
        newest = self._rows[-1][F_ID] if self._rows else -1
        fresh: list[tuple[Any, ...]] = []
        for row in sorted(rows, key=_row_id):
            if row[F_ID] > newest:  # ascending: also drops duplicates within the batch
                newest = row[F_ID]
                fresh.append(row)
        if not fresh:
            return []
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
        self._rows.extend(fresh)
        self.endInsertRows()
        records = [EventRecord.from_row(r) for r in fresh]
        self.events_appended.emit(records)
        return records

    def prepend_older(self, events: Iterable[Event | Mapping[str, Any]]) -> list[EventRecord]:
        """Add a history page (newest first, as the API sends); keeps only older ids."""
        oldest = self._rows[0][F_ID] if self._rows else None
        older: list[tuple[Any, ...]] = []
        seen: set[int] = set()
        for event in sorted(map(wire_event, events), key=lambda e: int(e["id"])):
            event_id = int(event["id"])
            if (oldest is not None and event_id >= oldest) or event_id in seen:
                continue
            seen.add(event_id)
            older.append(_row_from_event(event))
        if not older:
            return []
        records = [EventRecord.from_row(r) for r in older]
        if not self._rows:
            # An empty model: the first page is simply appended.
            self.beginInsertRows(QModelIndex(), 0, len(older) - 1)
            self._rows.extend(older)
            self.endInsertRows()
            self.events_appended.emit(records)
            return records
        self.beginInsertRows(QModelIndex(), 0, len(older) - 1)
        self._rows[0:0] = older
        self.endInsertRows()
        self.events_prepended.emit(records)
        return records

    def clear(self) -> None:
        """Remove every event (a sign-out or a switch of tenant, not a refresh)."""
        self.beginResetModel()
        self._rows = []
        self._texts.clear()
        self.endResetModel()
        self.cleared.emit()


