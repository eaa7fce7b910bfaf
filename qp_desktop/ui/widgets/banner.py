"""An in-page message: info, warning, error or success, with optional details."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget


class Banner(QFrame):
    """A coloured message strip that hides itself when it has nothing to say."""

    def __init__(self, object_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setProperty("role", "banner")
        self.setProperty("kind", "info")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 9, 12, 9)
        layout.setSpacing(6)
        self.label = QLabel()
        self.label.setObjectName(f"{object_name}_text")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label)
        self.details_button = QPushButton("Show details")
        self.details_button.setObjectName(f"{object_name}_details_button")
        self.details_button.setFlat(True)
        self.details_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.details_button.clicked.connect(self._toggle_details)
        layout.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.details = QPlainTextEdit()
        self.details.setObjectName(f"{object_name}_details")
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(160)
        layout.addWidget(self.details)
        self.clear()

    @property
    def kind(self) -> str:
        return str(self.property("kind"))

    def text(self) -> str:
        return self.label.text() if self.isVisibleTo(self.parentWidget()) else ""

    def show_message(self, kind: str, text: str, details: str = "") -> None:
        self.setProperty("kind", kind)
        self.label.setText(text)
        self.details.setPlainText(details)
        self.details_button.setVisible(bool(details))
        self.details_button.setText("Show details")
        self.details.setVisible(False)
        # Re-polish so the style sheet picks up the new ``kind``.
        for widget in (self, self.label):
            widget.style().unpolish(widget)
            widget.style().polish(widget)
        self.setVisible(True)

    def clear(self) -> None:
        self.label.setText("")
        self.details.setPlainText("")
        self.details.setVisible(False)
        self.details_button.setVisible(False)
        self.setVisible(False)

    def _toggle_details(self) -> None:
        shown = not self.details.isVisible()
        self.details.setVisible(shown)
        self.details_button.setText("Hide details" if shown else "Show details")
