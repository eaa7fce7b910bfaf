"""A small coloured pill naming a state (Active, Expiring, Connected, ...)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

KINDS = {
    "active": ("Active", "ok"),
    "connected": ("Connected", "ok"),
    "expiring": ("Expiring soon", "warning"),
    "expired": ("Expired", "error"),
    "revoked": ("Revoked", "error"),
    "error": ("Error", "error"),
    "none": ("None", "neutral"),
    "disconnected": ("Not connected", "neutral"),
}


class StatusBadge(QLabel):
    def __init__(self, object_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setProperty("role", "badge")
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.status = ""
        self.set_status("none")

    def set_status(self, status: str, text: str | None = None) -> None:
        label, kind = KINDS.get(status, (status.title(), "neutral"))
        self.status = status
        self.setText(text or label)
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
