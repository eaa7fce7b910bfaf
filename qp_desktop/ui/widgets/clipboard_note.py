"""A muted line under a Copy button: "the clipboard clears in N s", then "was cleared"."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QWidget


class ClipboardNote(QLabel):
    """Follows a secret clipboard's ``copied(label, seconds)`` and ``cleared(bool)`` signals.

    Only copies of ``label`` are announced, so two pages sharing one clipboard each speak
    about their own secret.
    """

    def __init__(self, clipboard: Any, label: str, name: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setWordWrap(True)
        self.setProperty("role", "muted")
        self.setVisible(False)
        self._label = label
        clipboard.copied.connect(self._on_copied)
        clipboard.cleared.connect(self._on_cleared)

    def _on_copied(self, label: str, seconds: int) -> None:
        if seconds and label == self._label:
            self.setText(f"Copied. The clipboard clears in {seconds} s, unless you copy "
                         "something else first.")
            self.setVisible(True)

    def _on_cleared(self, cleared: bool) -> None:
        self.setText("The clipboard was cleared." if cleared else "")
        self.setVisible(cleared)
