"""Table models for the live event monitor: every event kept once, shown through a fast filter.

``EventTableModel`` holds every loaded event in id order (no I/O, append with
``beginInsertRows``). ``EventFilterModel`` is what the view shows: the events that pass the
combined filters (category, severity, type, time range, free text), newest on top or at the
bottom. It is a custom filtering model rather than a ``QSortFilterProxyModel`` because a
Python ``filterAcceptsRow`` costs a C++→Python call per row; over 100,000 rows that is several
times the 100 ms budget, while one list comprehension over precomputed lowercase haystacks
is well under it (``benchmarks/bench_monitor.py`` measures both).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QModelRoleData,
    QPersistentModelIndex,
    QPointF,
    QRectF,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPixmap, QPolygonF

from qp_common.wire import (  # noqa: F401 - the monitor and its tests import them from here
    CATEGORIES,
    CATEGORY_AGENT,
    CATEGORY_ALERT,
    CATEGORY_INTEGRATION,
    CATEGORY_OTHER,
    CATEGORY_TOKEN,
    CATEGORY_WORKFLOW,
    EVENT_TYPES,
    SEVERITIES,
    category_of,
    parse_rfc3339,
)

# Columns, in display order.
COL_TIME = 0
COL_CATEGORY = 1
COL_TYPE = 2
COL_SEVERITY = 3
COL_SUMMARY = 4
COL_RESOURCE = 5
COL_ACCOUNT = 6
COLUMN_TITLES = ("Time", "Category", "Type", "Severity", "Summary", "Resource", "Account")
COLUMN_COUNT = len(COLUMN_TITLES)

KNOWN_TYPES = EVENT_TYPES

# Roles beyond Qt's own.
EventRecordRole = Qt.ItemDataRole.UserRole + 1
EventIdRole = Qt.ItemDataRole.UserRole + 2

_EVENT_FIELDS = ("id", "occurred_at", "type", "severity", "summary", "resource_name",
                 "resource_url", "account", "token_id", "details")


def parse_time(text: str) -> float:
    """RFC 3339 → POSIX seconds; 0.0 when the text does not parse."""
    moment = parse_rfc3339(text)
    return 0.0 if moment is None else moment.timestamp()


def _scalar_texts(value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping):
        for item in value.values():
            _scalar_texts(item, out)
    elif isinstance(value, list | tuple):
        for item in value:
            _scalar_texts(item, out)
    elif value is not None:
        out.append(str(value))


# Positions in a stored row: a plain tuple (see EventRecord for why).
F_ID, F_OCCURRED_AT, F_TS, F_TYPE, F_SEVERITY, F_CATEGORY, F_SUMMARY = 0, 1, 2, 3, 4, 5, 6
F_RESOURCE_NAME, F_RESOURCE_URL, F_ACCOUNT, F_HAYSTACK = 7, 8, 9, 13


def _row_from_event(event: Mapping[str, Any]) -> tuple[Any, ...]:
    event_id = int(event["id"])
    occurred_at = str(event.get("occurred_at") or "")
    event_type = sys.intern(str(event.get("type") or "unknown"))
    severity = sys.intern(str(event.get("severity") or "info"))
    category = category_of(event_type)
    summary = str(event.get("summary") or "")
    resource_name = event.get("resource_name")
    resource_url = event.get("resource_url")
    account = event.get("account")
    details = event.get("details")
    extra = {k: v for k, v in event.items() if k not in _EVENT_FIELDS}
    parts = [str(event_id), event_type, category, severity, summary]
    for text in (resource_name, resource_url, account):
        if text:
            parts.append(str(text))
    if details:
        _scalar_texts(details, parts)
    token_id = event.get("token_id")
    if not isinstance(token_id, int | str | float | None):
        token_id = str(token_id)
    return (
        event_id, occurred_at, parse_time(occurred_at), event_type, severity, category,
        summary,
        None if resource_name is None else str(resource_name),
        None if resource_url is None else str(resource_url),
        None if account is None else str(account),
        token_id,
        json.dumps(details, ensure_ascii=False, separators=(",", ":")) if details else "",
        json.dumps(extra, ensure_ascii=False, separators=(",", ":")) if extra else "",
        "\x1f".join(parts).lower(),
    )


def event_rows(events: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Wire events as the models store them (for ``EventTableModel.append_rows``).

    Building rows is most of the cost of appending; a caller that shows events later (the
    monitor coalesces live batches) builds them as they arrive, spreading that work.
    """
    return [_row_from_event(event) for event in events]


class EventRecord(NamedTuple):
    """One event as the monitor keeps it: the wire fields plus what filtering needs.

    The models store each event as a *plain* tuple of strings and numbers in this field
    order (``details`` kept as compact JSON text) and hand out ``EventRecord`` views of it.
    Python's cycle collector untracks such tuples (not tuple subclasses, not objects with
    ``__slots__``), so 100,000 held events add nothing to a full garbage collection, which
    otherwise took ~100 ms here and stalled the GUI.
    ``haystack`` is the lowercase text the free-text filter searches (id, type, category,
    severity, summary, resource, URL, account and the scalar values of ``details``).
    """

    id: int
    occurred_at: str
    ts: float
    type: str
    severity: str
    category: str
    summary: str
    resource_name: str | None
    resource_url: str | None
    account: str | None
    token_id: Any
    details_json: str  # "" when empty
    extra_json: str  # unknown top-level fields, "" when none
    haystack: str

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> EventRecord:
        """Build a record from an Event dict in the wire shape."""
        return cls._make(_row_from_event(event))

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> EventRecord:
        """Wrap a stored row (a plain tuple in field order)."""
        return tuple.__new__(cls, row)

    @property
    def details(self) -> dict[str, Any]:
        """The event's ``details`` object (parsed on demand)."""
        return json.loads(self.details_json) if self.details_json else {}

    @property
    def extra(self) -> dict[str, Any]:
        """Top-level fields this version of the app does not know (parsed on demand)."""
        return json.loads(self.extra_json) if self.extra_json else {}

    def to_dict(self) -> dict[str, Any]:
        """The event in its wire shape (what the API sent)."""
        out: dict[str, Any] = {
            "id": self.id,
            "occurred_at": self.occurred_at,
            "type": self.type,
            "severity": self.severity,
            "summary": self.summary,
            "resource_name": self.resource_name,
            "resource_url": self.resource_url,
            "account": self.account,
            "token_id": self.token_id,
            "details": self.details,
        }
        if self.extra_json:
            out.update(self.extra)
        return out

    def local_time_text(self) -> str:
        """Occurrence time in the local zone, ``YYYY-MM-DD HH:MM:SS``."""
        return _local_time_text(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


# --- severity look -------------------------------------------------------------------------

# Mid-tone colours chosen to keep contrast on both light and dark window backgrounds.
SEVERITY_COLORS = {
    "info": QColor("#3b82f6"),
    "warning": QColor("#e39a0b"),
    "error": QColor("#e5484d"),
}
_icon_cache: dict[str, QIcon] = {}


def severity_icon(severity: str) -> QIcon:
    """A small shape per severity (circle, triangle, octagon), so colour is not the only cue."""
    icon = _icon_cache.get(severity)
    if icon is not None:
        return icon
    size = 32
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    color = SEVERITY_COLORS.get(severity, QColor("#8a8f98"))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QBrush(color))
    if severity == "warning":
        painter.drawPolygon(QPolygonF([QPointF(16, 3), QPointF(30, 28), QPointF(2, 28)]))
        mark = "!"
        mark_rect = QRectF(0, 9, size, 20)
    elif severity == "error":
        points = [QPointF(16 + 14 * math.cos(math.radians(22.5 + 45 * i)),
                          16 + 14 * math.sin(math.radians(22.5 + 45 * i))) for i in range(8)]
        painter.drawPolygon(QPolygonF(points))
        mark = "×"
        mark_rect = QRectF(0, 0, size, size)
    else:
        painter.drawEllipse(QRectF(3, 3, 26, 26))
        mark = "i"
        mark_rect = QRectF(0, 0, size, size)
    painter.setPen(QColor("white"))
    font = painter.font()
    font.setBold(True)
    font.setPixelSize(19)
    painter.setFont(font)
    painter.drawText(mark_rect, Qt.AlignmentFlag.AlignCenter, mark)
    painter.end()
    icon = QIcon(pixmap)
    _icon_cache[severity] = icon
    return icon


def _local_time_text(row: tuple[Any, ...]) -> str:
    ts = row[F_TS]
    if not ts:
        return row[F_OCCURRED_AT]
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


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

    def append_events(self, events: Iterable[Mapping[str, Any]]) -> list[EventRecord]:
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

    def prepend_older(self, events: Iterable[Mapping[str, Any]]) -> list[EventRecord]:
        """Add a history page (newest first, as the API sends); keeps only older ids."""
        oldest = self._rows[0][F_ID] if self._rows else None
        older: list[tuple[Any, ...]] = []
        seen: set[int] = set()
        for event in sorted(events, key=lambda e: int(e["id"])):
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
