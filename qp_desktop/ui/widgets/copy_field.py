"""A value the technician types somewhere else: a text box with a Copy button beside it."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QWidget

from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.ui.theme import monospace_font
from qp_desktop.ui.widgets.copy_button import CopyButton


class _LineEdit(QLineEdit):
    """A line edit that, with ``fit``, is never narrower than its text: a short value shown
    cut (``resource_name]``) reads as a different value."""

    fit = False

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        hint = super().minimumSizeHint()
        if self.fit:
            metrics = self.fontMetrics()
            # What sizeHint() puts around its 17 "x" of text under the current style (frame,
            # padding, margins), put around this text instead.
            chrome = self.sizeHint().width() - metrics.horizontalAdvance("x") * 17
            hint.setWidth(max(hint.width(), metrics.horizontalAdvance(self.text()) + chrome))
        return hint


class CopyField(QWidget):
    """``edit`` (read-only unless ``editable``) and ``button`` (copies what the box holds).

    Object names: the box is ``object_name``, the button ``copy_<object_name>``.
    """

    def __init__(self, object_name: str, clipboard: SecretClipboard, value: str, label: str,
                 editable: bool = False, mono: bool = False, fit: bool = False,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(f"{object_name}_row")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.edit = _LineEdit(value)
        self.edit.setObjectName(object_name)
        self.edit.setReadOnly(not editable)
        self.edit.setAccessibleName(label)
        if mono:
            self.edit.setFont(monospace_font())
        layout.addWidget(self.edit, 1)
        self.button = CopyButton(f"copy_{object_name}", clipboard, self.edit.text, label)
        self.button.setAccessibleName(f"Copy {label}")
        layout.addWidget(self.button)
        self.setFocusProxy(self.edit)
        if fit:
            self.edit.fit = True
            self.edit.textChanged.connect(self.edit.updateGeometry)

    def text(self) -> str:
        return self.edit.text()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        self.edit.setText(text)
