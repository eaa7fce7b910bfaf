"""Constants, the step marks and small widget helpers of the setup wizard."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QLabel,
    QPushButton,
    QWidget,
)

from qp_desktop.services.tenant_client import (
    WorkflowToken,
    parse_time,
)
from qp_desktop.ui.widgets import Banner

REFRESH_INTERVAL_MS = 60_000
TRIGGER_TYPES = ("workflow_trigger.test", "workflow_trigger.received")
REJECTED = "workflow_trigger.rejected"
# The outcome of the reset a real trigger started: the real test passes only on success.
RESET_OK = ("password_reset.succeeded", "password_reset.skipped")
RESET_FAILED = "password_reset.failed"

# Focus must be visible when the technician moves with Tab: the app's style sheet gives
# buttons a 1px border that hides Fusion's focus rectangle, so draw a thicker one here.
PAGE_STYLE = """
QPushButton:focus, QToolButton:focus {
    border: 2px solid palette(highlight); padding: 4px 13px;
}
QListWidget#wizard_steps { outline: 0; }
QListWidget#wizard_steps::item { padding: 7px 8px; border-radius: 6px; margin: 1px 4px; }
QListWidget#wizard_steps::item:selected {
    background: palette(highlight); color: palette(highlighted-text);
}
QListWidget#wizard_steps:focus { border: 2px solid palette(highlight); }
QCheckBox:focus { color: palette(link); }
QLineEdit:read-only { background: palette(alternate-base); }
"""


# -- icons -----------------------------------------------------------------------------------

ICON_COLOURS = {"done": "#2e9e5b", "reopened": "#d98e04", "problem": "#d64545",
                "waiting": "#2f6fde", "todo": "#9aa3ad", "optional": "#c9ced4"}


def step_icon(kind: str, size: int = 18) -> QIcon:
    """A round status mark drawn in code (crisp at any scale; no icon theme needed)."""
    ratio = QGuiApplication.instance() and QGuiApplication.primaryScreen()
    dpr = ratio.devicePixelRatio() if ratio else 1.0
    pixmap = QPixmap(round(size * dpr), round(size * dpr))
    pixmap.setDevicePixelRatio(dpr)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor(ICON_COLOURS.get(kind, ICON_COLOURS["todo"]))
    rect = QRectF(1.5, 1.5, size - 3, size - 3)
    if kind in {"todo", "waiting", "optional"}:
        painter.setPen(QPen(colour, 1.6))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(rect)
        if kind == "waiting":
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawEllipse(rect.center(), size * 0.17, size * 0.17)
    else:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawEllipse(rect)
        pen = QPen(QColor("#ffffff"), max(1.6, size * 0.12))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        s = size
        if kind == "done":
            painter.drawPolyline([QPointF(s * 0.29, s * 0.52), QPointF(s * 0.44, s * 0.66),
                                  QPointF(s * 0.71, s * 0.36)])
        elif kind == "reopened":
            painter.drawLine(QPointF(s / 2, s * 0.28), QPointF(s / 2, s * 0.56))
            painter.drawPoint(QPointF(s / 2, s * 0.72))
        else:
            painter.drawLine(QPointF(s * 0.34, s * 0.34), QPointF(s * 0.66, s * 0.66))
            painter.drawLine(QPointF(s * 0.66, s * 0.34), QPointF(s * 0.34, s * 0.66))
    painter.end()
    return QIcon(pixmap)


# -- small helpers ---------------------------------------------------------------------------

def _label(text: str = "", name: str | None = None, role: str | None = None,
           rich: bool = False, wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    if name:
        label.setObjectName(name)
    if role:
        label.setProperty("role", role)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _button(text: str, name: str, role: str | None = None) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setAutoDefault(True)  # Enter presses a focused button, as Space does
    if role:
        button.setProperty("role", role)
    return button


def when_text(iso: str | None) -> str:
    """``14:05:03 on 12 Mar 2026`` in local time."""
    moment = parse_time(iso) if iso else None
    if moment is None:
        return "an unknown time"
    local = moment.astimezone()
    return f"{local:%H:%M:%S} on {local:%d %b %Y}".replace(" on 0", " on ")


def _token_hint(token: WorkflowToken | None) -> str:
    hint = token.url_hint if token else ""
    return "qpwt_\u2026" + hint.rsplit("\u2026", 1)[-1] if "\u2026" in hint else ""



def _newer(token_id: str, current: str) -> bool:
    try:
        return int(token_id) > int(current)
    except ValueError:
        return False


@dataclass
class StepView:
    """The right-hand panel of one step."""

    widget: QWidget
    status: QLabel
    reopened: Banner
