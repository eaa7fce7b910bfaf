"""A masked line edit with a Show/Hide toggle (passwords, API keys)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QToolButton, QWidget


class SecretField(QWidget):
    """Signals:
        returnPressed: Enter was pressed in the field.
    """

    returnPressed = Signal()

    def __init__(self, object_name: str, placeholder: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(f"{object_name}_field")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.edit = QLineEdit()
        self.edit.setObjectName(object_name)
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setPlaceholderText(placeholder)
        self.edit.returnPressed.connect(self.returnPressed)
        layout.addWidget(self.edit, 1)
        self.toggle = QToolButton()
        self.toggle.setObjectName(f"{object_name}_show")
        self.toggle.setText("Show")
        self.toggle.setCheckable(True)
        self.toggle.setToolTip("Show or hide what you typed")
        self.toggle.toggled.connect(self._on_toggled)
        layout.addWidget(self.toggle)
        self.setFocusProxy(self.edit)

    def _on_toggled(self, shown: bool) -> None:
        self.edit.setEchoMode(QLineEdit.EchoMode.Normal if shown
                              else QLineEdit.EchoMode.Password)
        self.toggle.setText("Hide" if shown else "Show")

    def text(self) -> str:
        return self.edit.text()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        self.edit.setText(text)

    def clear(self) -> None:
        self.edit.clear()
        self.toggle.setChecked(False)
