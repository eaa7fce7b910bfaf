"""Placing a top-level window on its screen.

Its own module, free of the app's services, because the sign-in window uses it before
anything else is imported (see ``docs/desktop.md``, "Start-up").
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

# Room the window manager's frame (title bar, borders) takes before the window is mapped and
# its real frame is known.
FRAME_ALLOWANCE = QSize(16, 48)


def fit_on_screen(window: QWidget, *, move: bool = False) -> None:
    """Shrink ``window`` to the free area of its screen, and with ``move`` (or when any of
    it would be off screen) centre it there, so that no part opens beyond a screen edge."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None or QGuiApplication.platformName() == "offscreen":
        return  # offscreen "screens" are a nominal 800x600: nothing a person sees
    available = screen.availableGeometry()
    frame = window.frameGeometry()
    extra = (QSize(frame.width() - window.width(), frame.height() - window.height())
             if window.isVisible() else FRAME_ALLOWANCE)
    room = QSize(available.width() - extra.width(), available.height() - extra.height())
    size = window.size().boundedTo(room).expandedTo(window.minimumSize())
    if size != window.size():
        window.resize(size)
    outer = QRect(window.pos(), size + extra)
    if move or not available.contains(outer):
        x = available.x() + max(0, (available.width() - outer.width()) // 2)
        y = available.y() + max(0, (available.height() - outer.height()) // 2)
        window.move(QPoint(x, y))
