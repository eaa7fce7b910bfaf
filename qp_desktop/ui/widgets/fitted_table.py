"""A table whose columns always fit its width: nothing is ever out of reach sideways."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QHeaderView, QTableView, QWidget


class FittedTable(QTableView):
    """Columns get their preferred widths while there is room; when the table is narrower
    than their sum, the ``flexible`` columns give up room in proportion (their text is
    elided) and a ``Stretch`` column takes what is left. No horizontal scroll bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._widths: dict[int, int] = {}
        self._flexible: tuple[int, ...] = ()
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.horizontalHeader().setMinimumSectionSize(48)

    def set_column_widths(self, widths: Mapping[int, int], flexible: Sequence[int]) -> None:
        self._widths = dict(widths)
        self._flexible = tuple(flexible)
        for column in self._widths:
            if self.horizontalHeader().sectionResizeMode(column) \
                    != QHeaderView.ResizeMode.Stretch:
                self.horizontalHeader().setSectionResizeMode(
                    column, QHeaderView.ResizeMode.Interactive)
        self.fit_columns()

    def fit_columns(self) -> None:
        if not self._widths:
            return
        header = self.horizontalHeader()
        available = self.viewport().width()
        fixed = sum(w for c, w in self._widths.items() if c not in self._flexible)
        wanted = sum(w for c, w in self._widths.items() if c in self._flexible)
        scale = min(1.0, max(available - fixed, 0) / wanted) if wanted else 1.0
        floor = header.minimumSectionSize()
        for column, width in self._widths.items():
            if header.sectionResizeMode(column) == QHeaderView.ResizeMode.Stretch:
                continue
            if column in self._flexible:
                width = max(floor, int(width * scale))
            header.resizeSection(column, width)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        self.fit_columns()
