"""A button that copies a value through the clipboard service."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QPushButton, QWidget

from qp_desktop.services.clipboard import SecretClipboard


class CopyButton(QPushButton):
    """Copies ``value()`` when clicked; secrets get the hint and the automatic clear."""

    def __init__(self, object_name: str, clipboard: SecretClipboard,
                 value: Callable[[], str], label: str, secret: bool = False,
                 text: str = "Copy", parent: QWidget | None = None):
        super().__init__(text, parent)
        self.setObjectName(object_name)
        self.clipboard = clipboard
        self.value = value
        self.label = label
        self.secret = secret
        self.setToolTip(f"Copy {label}")
        # Enter copies too (Space always does): outside dialogs a QPushButton ignores Enter
        # unless it is an auto-default button.
        self.setAutoDefault(True)
        self.clicked.connect(self.copy)

    def copy(self) -> None:
        text = self.value()
        if not text:
            return
        if self.secret:
            self.clipboard.copy_secret(text, self.label)
        else:
            self.clipboard.copy_text(text, self.label)
