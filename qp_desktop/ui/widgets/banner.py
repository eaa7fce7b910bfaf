"""An in-page message: info, warning, error or success, with optional details."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFrame, QLabel, QPushButton, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from PySide6.QtWidgets import QPlainTextEdit


class Banner(QFrame):
    """A coloured message strip that hides itself when it has nothing to say.

    Most banners stay hidden (the sign-in window, painted before anything else, has three),
    so what only a message needs is made with the first one (:meth:`show_message`, or a
    look at :attr:`details`): the label's selectable text, which needs PySide's ``Qt``
    namespace (dozens of enums, built on first use), and the "Show details" button with its
    text box.
    """

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
        layout.addWidget(self.label)
        self._layout = layout
        self._details_button: QPushButton | None = None
        self._details: QPlainTextEdit | None = None
        self.setVisible(False)

    @property
    def details_button(self) -> QPushButton:
        """"Show details", shown when the message has details."""
        if self._details_button is None:
            self._complete()
        assert self._details_button is not None
        return self._details_button

    @property
    def details(self) -> QPlainTextEdit:
        """The message's details, hidden until "Show details"."""
        if self._details is None:
            self._complete()
        assert self._details is not None
        return self._details

    def _complete(self) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QPlainTextEdit

        # Selectable text also lets the label take focus by a click, which setTabOrder()
        # below needs (it ignores widgets that take no focus).
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        name = self.objectName()
        button = QPushButton("Show details")
        button.setObjectName(f"{name}_details_button")
        button.setFlat(True)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.clicked.connect(self._toggle_details)
        button.setVisible(False)
        self._layout.addWidget(button, 0, Qt.AlignmentFlag.AlignLeft)
        details = QPlainTextEdit()
        details.setObjectName(f"{name}_details")
        details.setReadOnly(True)
        details.setMaximumHeight(160)
        details.setVisible(False)
        self._layout.addWidget(details)
        # Widgets added to a window come last in its tab order; these belong right after
        # the message, where they would be had they been made with it.
        QWidget.setTabOrder(self.label, button)
        QWidget.setTabOrder(button, details)
        self._details_button, self._details = button, details

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
        if self._details is not None:
            self.details.setPlainText("")
            self.details.setVisible(False)
            self.details_button.setVisible(False)
        self.setVisible(False)

    def _toggle_details(self) -> None:
        shown = not self.details.isVisible()
        self.details.setVisible(shown)
        self.details_button.setText("Hide details" if shown else "Show details")
