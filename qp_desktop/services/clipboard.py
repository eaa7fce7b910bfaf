"""Copying secrets safely: password-manager hint, and an automatic clear that only removes
what this app put there.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QMimeData, QObject, QTimer, Signal
from PySide6.QtGui import QClipboard, QGuiApplication

from qp_desktop.services.settings import CLIPBOARD_CLEAR_SECONDS

log = logging.getLogger(__name__)

# KDE Klipper and several clipboard managers skip entries carrying this hint.
PASSWORD_HINT_MIME = "x-kde-passwordManagerHint"  # noqa: S105 - a MIME type name
DEFAULT_CLEAR_SECONDS = CLIPBOARD_CLEAR_SECONDS.default


class SecretClipboard(QObject):
    """Puts text on the system clipboard; secrets are cleared after ``clear_after_ms``.

    Signals:
        copied(str, int): what was copied (a label, never the value) and the seconds until the
            clipboard is cleared (0 for non-secret text).
        cleared(bool): the timeout passed; True if we cleared the clipboard, False if it
            already held something else (which we then left alone).
    """

    copied = Signal(str, int)
    cleared = Signal(bool)

    def __init__(self, clear_after_ms: int = DEFAULT_CLEAR_SECONDS * 1000,
                 clipboard: QClipboard | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.clear_after_ms = clear_after_ms
        self._clipboard = clipboard or QGuiApplication.clipboard()
        self._placed: str | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timeout)

    @property
    def clear_seconds(self) -> int:
        return max(1, round(self.clear_after_ms / 1000))

    @property
    def pending_clear(self) -> bool:
        return self._timer.isActive()

    def copy_secret(self, text: str, label: str) -> None:
        """Copy ``text`` with the password-manager hint and schedule the clear."""
        mime = QMimeData()
        mime.setText(text)
        mime.setData(PASSWORD_HINT_MIME, b"secret")
        self._clipboard.setMimeData(mime, QClipboard.Mode.Clipboard)
        self._placed = text
        self._timer.start(self.clear_after_ms)
        log.info("copied %s to the clipboard; clearing in %d s", label, self.clear_seconds)
        self.copied.emit(label, self.clear_seconds)

    def copy_text(self, text: str, label: str) -> None:
        """Copy ordinary (non-secret) text; no hint, no clear."""
        self._clipboard.setText(text, QClipboard.Mode.Clipboard)
        self.copied.emit(label, 0)

    def _on_timeout(self) -> None:
        placed, self._placed = self._placed, None
        if placed is None:
            return
        mime = self._clipboard.mimeData(QClipboard.Mode.Clipboard)
        still_ours = mime is not None and mime.hasText() and mime.text() == placed
        if still_ours:
            self._clipboard.clear(QClipboard.Mode.Clipboard)
            log.info("cleared the copied secret from the clipboard")
        else:
            log.info("clipboard changed since the copy; left it alone")
        self.cleared.emit(still_ours)

    def clear_now(self) -> None:
        """At quit: do the pending clear at once."""
        if self._timer.isActive():
            self._timer.stop()
            self._on_timeout()
