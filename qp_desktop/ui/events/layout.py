"""The events page's widgets and their layout (filters, status row, table, detail pane)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import (
    QDateTime,
    Qt,
)
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateTimeEdit,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services.event_stream import (
    STATE_CONNECTING,
    STATE_LIVE,
    STATE_OFFLINE,
    STATE_RECONNECTING,
)
from qp_desktop.services.tenant_client import EventPage
from qp_desktop.ui.events.detail import FailureBox
from qp_desktop.ui.events.records import (
    CATEGORIES,
    COL_ACCOUNT,
    COL_CATEGORY,
    COL_RESOURCE,
    COL_SEVERITY,
    COL_SUMMARY,
    COL_TIME,
    COL_TYPE,
    KNOWN_TYPES,
    severity_icon,
)
from qp_desktop.ui.widgets import FittedTable

log = logging.getLogger(__name__)

HistoryFetcher = Callable[[int | None, int], Awaitable[EventPage]]
SavePathChooser = Callable[[str, str], str | None]

# (label, seconds back; None = any time; -1 = custom range)
TIME_RANGES: tuple[tuple[str, int | None], ...] = (
    ("Any time", None),
    ("Last 15 minutes", 15 * 60),
    ("Last hour", 3600),
    ("Last 24 hours", 24 * 3600),
    ("Last 7 days", 7 * 24 * 3600),
    ("Custom range…", -1),
)
STATE_COLORS = {
    STATE_LIVE: QColor("#22a06b"),
    STATE_CONNECTING: QColor("#8a8f98"),
    STATE_RECONNECTING: QColor("#e39a0b"),
    STATE_OFFLINE: QColor("#e5484d"),
}
PROGRESS_THRESHOLD = 5000  # exports larger than this run in steps behind a progress dialog
# Live events are shown at most this often. Every insert shifts the rows on screen and so
# repaints the whole table (~10 ms of GUI thread here), whatever the batch size; at 1,000
# events/s the stream's 50 ms batches would repaint 20 times a second. A quiet stream's first
# event is still shown on the next turn of the event loop.
LIVE_COALESCE_MS = 150


def _dot(color: QColor, size: int = 12) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return pixmap


class _EventTable(FittedTable):
    """A table tuned for 100,000+ rows: fixed row height, no word wrap, no row header."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("eventTable")
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setWordWrap(False)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        vertical = self.verticalHeader()
        vertical.setVisible(False)
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 10)
        self.setIconSize(self.iconSize().scaled(14, 14, Qt.AspectRatioMode.KeepAspectRatio))

    def flush_layout(self) -> None:
        """Apply pending row inserts to the scroll bar range now (Qt defers it)."""
        self.executeDelayedItemsLayout()
        self.updateGeometries()



class MonitorLayout:
    """Builds the page's widgets; :class:`~qp_desktop.ui.events.page.MonitorWindow` wires them."""

    def _build(self) -> None:
        self.filter_text = QLineEdit(objectName="filterText")
        self.filter_text.setPlaceholderText("Filter: summary, account, resource, details…")
        self.filter_text.setClearButtonEnabled(True)
        self.filter_text.setMinimumWidth(160)

        self.category_filter = QComboBox(objectName="categoryFilter")
        self.category_filter.addItem("All categories", None)
        for category in CATEGORIES:
            self.category_filter.addItem(category, category)
        self.category_filter.setToolTip("Category")

        self.type_filter = QComboBox(objectName="typeFilter")
        self.type_filter.addItem("All types", None)
        for event_type in KNOWN_TYPES:
            self.type_filter.addItem(event_type, event_type)
        self.type_filter.setToolTip("Event type")
        # Wide enough for most types; the open list shows the long ones whole.
        self.type_filter.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.type_filter.setMinimumContentsLength(16)
        self.type_filter.view().setMinimumWidth(
            self.type_filter.fontMetrics().horizontalAdvance("agent.enrollment_code_created")
            + 40)

        self.severity_buttons: dict[str, QToolButton] = {}
        for severity in ("info", "warning", "error"):
            button = QToolButton(objectName=f"severity{severity.capitalize()}")
            button.setText(severity.capitalize())
            button.setIcon(severity_icon(severity))
            button.setCheckable(True)
            button.setChecked(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setToolTip(f"Show {severity} events")
            self.severity_buttons[severity] = button

        self.time_filter = QComboBox(objectName="timeFilter")
        for label, seconds in TIME_RANGES:
            self.time_filter.addItem(label, seconds)
        now = QDateTime.currentDateTime()
        self.time_from = QDateTimeEdit(now.addSecs(-3600), objectName="timeFrom")
        self.time_to = QDateTimeEdit(now, objectName="timeTo")
        for edit in (self.time_from, self.time_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            edit.setVisible(False)

        self.reset_filters_button = QPushButton("Reset filters", objectName="resetFilters")

        # Three short rows rather than one long one: the page must fit 1024 px wide windows.
        filters = QHBoxLayout()
        filters.setSpacing(6)
        filters.addWidget(self.filter_text, 3)
        filters.addWidget(self.category_filter)
        filters.addWidget(self.type_filter)
        filters.addWidget(self.time_filter)

        # The custom range gets a row of its own, shown only while it is chosen.
        self.time_range_row = QWidget(objectName="timeRangeRow")
        range_layout = QHBoxLayout(self.time_range_row)
        range_layout.setContentsMargins(0, 0, 0, 0)
        range_layout.setSpacing(6)
        range_layout.addStretch(1)
        range_layout.addWidget(QLabel("From"))
        range_layout.addWidget(self.time_from)
        range_layout.addWidget(QLabel("to"))
        range_layout.addWidget(self.time_to)
        self.time_range_row.setVisible(False)

        # Status + actions row.
        self.state_dot = QLabel(objectName="connectionDot")
        self.state_label = QLabel(objectName="connectionState")
        self.counts_label = QLabel(objectName="eventCounts")
        self.counts_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.paused_label = QLabel(objectName="pausedInfo")
        self.paused_label.setVisible(False)

        self.pause_button = QToolButton(objectName="pauseButton")
        self.pause_button.setText("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Hold new events back (nothing is lost) while you read")

        self.newest_first_button = QToolButton(objectName="newestFirstButton")
        self.newest_first_button.setCheckable(True)
        self.newest_first_button.setChecked(self.view_model.newest_first)
        self._label_order_button()

        self.jump_button = QToolButton(objectName="jumpToLatest")
        self.jump_button.setText("Jump to latest")
        self.jump_button.setEnabled(False)

        self.load_older_button = QToolButton(objectName="loadOlderButton")
        self.load_older_button.setText("Load older")
        self.load_older_button.setEnabled(self._fetch_history is not None)

        self.export_button = QToolButton(objectName="exportButton")
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        export_menu = QMenu(self.export_button)
        export_menu.setObjectName("exportMenu")
        self.export_csv_action = export_menu.addAction("Shown events as CSV…")
        self.export_csv_action.setObjectName("exportCsv")
        self.export_json_action = export_menu.addAction("Shown events as JSON…")
        self.export_json_action.setObjectName("exportJson")
        self.export_button.setMenu(export_menu)

        view_row = QHBoxLayout()
        view_row.setSpacing(6)
        for button in self.severity_buttons.values():
            view_row.addWidget(button)
        view_row.addSpacing(12)
        view_row.addWidget(self.counts_label)
        view_row.addStretch(1)
        view_row.addWidget(self.newest_first_button)
        view_row.addWidget(self.reset_filters_button)

        status = QHBoxLayout()
        status.setSpacing(8)
        status.addWidget(self.state_dot)
        status.addWidget(self.state_label)
        status.addStretch(1)
        status.addWidget(self.paused_label)
        status.addWidget(self.pause_button)
        status.addWidget(self.jump_button)
        status.addWidget(self.load_older_button)
        status.addWidget(self.export_button)

        self.table = _EventTable()
        self.table.setModel(self.view_model)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_SUMMARY, QHeaderView.ResizeMode.Stretch)
        metrics = self.table.fontMetrics()
        widths = {
            COL_TIME: metrics.horizontalAdvance("2025-12-31 23:59:59") + 24,
            COL_CATEGORY: metrics.horizontalAdvance("Workflow Trigger") + 24,
            COL_TYPE: metrics.horizontalAdvance("password_reset.succeeded") + 24,
            COL_SEVERITY: metrics.horizontalAdvance("Warning") + 44,
            COL_RESOURCE: metrics.horizontalAdvance("Domain Admin — Contoso") + 16,
            COL_ACCOUNT: metrics.horizontalAdvance("administrator@contoso.lo") + 16,
        }
        widths[COL_SUMMARY] = metrics.horizontalAdvance("Password reset applied to frontdesk")
        self.table.set_column_widths(
            widths, flexible=(COL_CATEGORY, COL_TYPE, COL_RESOURCE, COL_ACCOUNT, COL_SUMMARY))

        self.detail = QTextBrowser(objectName="eventDetail")
        self.detail.setOpenExternalLinks(True)
        self.detail.setPlaceholderText("Select an event to see every field.")
        self.copy_json_button = QPushButton("Copy as JSON", objectName="copyEventJson")
        self.copy_json_button.setEnabled(False)
        detail_box = QWidget(objectName="eventDetailPane")
        detail_layout = QVBoxLayout(detail_box)
        detail_layout.setContentsMargins(0, 4, 0, 0)
        detail_header = QHBoxLayout()
        self.detail_title = QLabel("Event details", objectName="eventDetailTitle")
        font = self.detail_title.font()
        font.setBold(True)
        self.detail_title.setFont(font)
        detail_header.addWidget(self.detail_title)
        detail_header.addStretch(1)
        detail_header.addWidget(self.copy_json_button)
        detail_layout.addLayout(detail_header)
        self.failure_box = FailureBox()
        detail_layout.addWidget(self.failure_box)
        detail_layout.addWidget(self.detail)

        self.splitter = QSplitter(Qt.Orientation.Vertical, objectName="monitorSplitter")
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(detail_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(8)
        layout.addLayout(filters)
        layout.addWidget(self.time_range_row)
        layout.addLayout(view_row)
        layout.addLayout(status)
        layout.addWidget(self.splitter, 1)
        self.resize(1280, 780)
        self.splitter.setSizes([480, 250])

