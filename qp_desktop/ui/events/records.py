"""The events page's stored rows: one event as a plain tuple (built from a tenant ``Event``
or a stream dict by one function), the column and field indexes, the category and severity
icons. The models that hold and filter these rows are ``events/model.py`` and
``events/filter.py``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from PySide6.QtCore import (
    QPointF,
    QRectF,
    Qt,
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
from qp_desktop.services.tenant_client import Event

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


def wire_event(event: Event | Mapping[str, Any]) -> Mapping[str, Any]:
    """An event in its wire shape: the tenant client's ``Event`` (history pages) or the
    live stream's dict, which already is."""
    return event.to_json() if isinstance(event, Event) else event


def _row_from_event(event: Event | Mapping[str, Any]) -> tuple[Any, ...]:
    event = wire_event(event)
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


def event_rows(events: Iterable[Event | Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Events (``Event`` or wire dicts) as the models store them (for
    ``EventTableModel.append_rows``).

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
    def from_event(cls, event: Event | Mapping[str, Any]) -> EventRecord:
        """Build a record from an ``Event`` or an event dict in the wire shape."""
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
