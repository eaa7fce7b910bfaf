"""The app's look: Fusion, a calm light or dark palette, and a small style sheet.

Widgets declare what they are through dynamic properties (``role``, ``kind``) and this
module decides how those look, so pages never hard-code colours.
"""

from __future__ import annotations

from typing import NamedTuple

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication


# A NamedTuple rather than a frozen dataclass: the theme is applied before the first window
# is painted, and importing ``dataclasses`` and building the class cost more than that.
class Colours(NamedTuple):
    window: str
    base: str
    alt_base: str
    text: str
    muted: str
    border: str
    accent: str
    accent_text: str
    info_bg: str
    info_fg: str
    warn_bg: str
    warn_fg: str
    error_bg: str
    error_fg: str
    ok_bg: str
    ok_fg: str
    neutral_bg: str
    neutral_fg: str
    nav_bg: str


LIGHT = Colours(
    window="#f4f5f7", base="#ffffff", alt_base="#f8f9fb", text="#1f2328", muted="#5d6670",
    border="#d6dae0", accent="#2f6fde", accent_text="#ffffff",
    info_bg="#e8f0fd", info_fg="#1d4f9e", warn_bg="#fff4dc", warn_fg="#7a4d00",
    error_bg="#fde9e9", error_fg="#9b1c1c", ok_bg="#e3f5e9", ok_fg="#17683a",
    neutral_bg="#eceef1", neutral_fg="#4a525c", nav_bg="#eceff3",
)

DARK = Colours(
    window="#1d2025", base="#262a31", alt_base="#2c3038", text="#e4e7eb", muted="#9aa3ad",
    border="#3a3f48", accent="#5b8ff0", accent_text="#ffffff",
    info_bg="#1f3252", info_fg="#b9d1fb", warn_bg="#4a3812", warn_fg="#f7d48b",
    error_bg="#4d1f22", error_fg="#f6b4b4", ok_bg="#1d3f2a", ok_fg="#a6e3b9",
    neutral_bg="#343943", neutral_fg="#c3c9d1", nav_bg="#22262c",
)


def palette_for(c: Colours) -> QPalette:
    pal = QPalette()
    role = QPalette.ColorRole
    pal.setColor(role.Window, QColor(c.window))
    pal.setColor(role.WindowText, QColor(c.text))
    pal.setColor(role.Base, QColor(c.base))
    pal.setColor(role.AlternateBase, QColor(c.alt_base))
    pal.setColor(role.Text, QColor(c.text))
    pal.setColor(role.Button, QColor(c.base))
    pal.setColor(role.ButtonText, QColor(c.text))
    pal.setColor(role.Highlight, QColor(c.accent))
    pal.setColor(role.HighlightedText, QColor(c.accent_text))
    pal.setColor(role.ToolTipBase, QColor(c.base))
    pal.setColor(role.ToolTipText, QColor(c.text))
    pal.setColor(role.PlaceholderText, QColor(c.muted))
    pal.setColor(role.Link, QColor(c.accent))
    pal.setColor(role.Mid, QColor(c.border))
    for group_role in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, group_role, QColor(c.muted))
    return pal


def style_sheet(c: Colours) -> str:
    return f"""
QGroupBox {{
    background: {c.base}; border: 1px solid {c.border}; border-radius: 8px;
    margin-top: 1.6em; padding: 14px 14px 12px 14px; font-weight: 600;
}}
QGroupBox::title {{
    subcontrol-origin: margin; subcontrol-position: top left; left: 6px; padding: 0 4px;
    color: {c.text};
}}
QGroupBox QLabel, QGroupBox QCheckBox, QGroupBox QRadioButton {{ font-weight: normal; }}
QLabel[role="title"] {{ font-size: 17pt; font-weight: 600; }}
QLabel[role="heading"] {{ font-size: 13pt; font-weight: 600; }}
QLabel[role="muted"] {{ color: {c.muted}; }}
QLabel[role="field-label"] {{ color: {c.muted}; }}
QLabel[role="mono"] {{ font-family: monospace; }}
QLabel[role="field-error"] {{ color: {c.error_fg}; }}
QFrame[role="card"] {{
    background: {c.base}; border: 1px solid {c.border}; border-radius: 10px;
}}
QFrame[role="separator"] {{ background: {c.border}; border: none; }}
QFrame[role="banner"] {{ border-radius: 6px; border: 1px solid transparent; }}
QFrame[role="banner"][kind="info"] {{ background: {c.info_bg}; border-color: {c.info_bg}; }}
QFrame[role="banner"][kind="warning"] {{ background: {c.warn_bg}; border-color: {c.warn_bg}; }}
QFrame[role="banner"][kind="error"] {{ background: {c.error_bg}; border-color: {c.error_bg}; }}
QFrame[role="banner"][kind="success"] {{ background: {c.ok_bg}; border-color: {c.ok_bg}; }}
QFrame[role="banner"][kind="info"] QLabel {{ color: {c.info_fg}; }}
QFrame[role="banner"][kind="warning"] QLabel {{ color: {c.warn_fg}; }}
QFrame[role="banner"][kind="error"] QLabel {{ color: {c.error_fg}; }}
QFrame[role="banner"][kind="success"] QLabel {{ color: {c.ok_fg}; }}
QLabel[role="badge"] {{
    border-radius: 9px; padding: 2px 10px; font-weight: 600;
}}
QLabel[role="badge"][kind="ok"] {{ background: {c.ok_bg}; color: {c.ok_fg}; }}
QLabel[role="badge"][kind="warning"] {{ background: {c.warn_bg}; color: {c.warn_fg}; }}
QLabel[role="badge"][kind="error"] {{ background: {c.error_bg}; color: {c.error_fg}; }}
QLabel[role="badge"][kind="neutral"] {{ background: {c.neutral_bg}; color: {c.neutral_fg}; }}
QPushButton {{
    padding: 5px 14px; border: 1px solid {c.border}; border-radius: 6px;
    background: {c.alt_base}; min-height: 1.4em;
}}
QPushButton:hover {{ border-color: {c.accent}; }}
QPushButton:disabled {{ color: {c.muted}; background: {c.window}; }}
QPushButton[role="primary"] {{
    background: {c.accent}; color: {c.accent_text}; border-color: {c.accent}; font-weight: 600;
}}
QPushButton[role="primary"]:disabled {{ background: {c.border}; border-color: {c.border}; }}
QPushButton[role="danger"] {{ color: {c.error_fg}; }}
QLineEdit {{
    padding: 4px 6px; border: 1px solid {c.border}; border-radius: 5px; background: {c.base};
    min-height: 1.4em;
}}
QToolButton {{
    padding: 4px 10px; border: 1px solid {c.border}; border-radius: 6px; background: {c.alt_base};
}}
QToolButton:checked {{ background: {c.neutral_bg}; }}
QLineEdit:focus {{ border-color: {c.accent}; }}
QListWidget#navigation {{
    background: {c.nav_bg}; border: none; border-right: 1px solid {c.border};
    padding-top: 8px; outline: 0;
}}
QListWidget#navigation::item {{ padding: 8px 14px; border-radius: 6px; margin: 1px 8px; }}
QListWidget#navigation::item:selected {{ background: {c.accent}; color: {c.accent_text}; }}
QFrame#header {{ background: {c.base}; border-bottom: 1px solid {c.border}; }}
QProgressBar {{ border: none; background: {c.neutral_bg}; border-radius: 2px; max-height: 4px; }}
QProgressBar::chunk {{ background: {c.accent}; border-radius: 2px; }}
QPlainTextEdit {{ border: 1px solid {c.border}; border-radius: 5px; background: {c.base}; }}
QScrollArea {{ border: none; background: transparent; }}
"""


STYLE = "Fusion"


def qapplication_arguments(argv0: str) -> list[str]:
    """The command line for a new QApplication with :data:`STYLE` chosen there: Qt then
    makes that style as it starts, instead of a default one that ``setStyle()`` replaces
    (which costs the start-up a tenth of a bare window). Pass ``style_set=True`` to
    :func:`apply_theme` for such an application."""
    return [argv0, "-style", STYLE]


def apply_theme(app: QApplication, dark: bool = False, *, style_set: bool = False) -> Colours:
    colours = DARK if dark else LIGHT
    if not style_set:
        app.setStyle(STYLE)
    app.setPalette(palette_for(colours))
    app.setStyleSheet(style_sheet(colours))
    font = app.font()
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
        app.setFont(font)
    return colours


def monospace_font() -> QFont:
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.TypeWriter)
    return font
