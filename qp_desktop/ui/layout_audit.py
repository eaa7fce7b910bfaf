"""What a person would notice about a window at its real size, found by code.

:func:`audit_window` walks a shown window and reports, as sentences: a horizontal scroll bar,
an interactive widget out of reach, a label or button whose text is cut off, a window that
does not fit its screen, a closed combo or spin box without its arrows, and a drop-down
whose highlighted entry does not show the highlight. ``qp-desktop --screenshot DIR
--check-layout`` runs it on every page and dialog under a real display; the tests do too.

Pixel checks read what the screen shows (``QScreen.grabWindow``), so they see what the
window manager and the style really drew; offscreen they read the widget's own rendering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QStackedWidget,
    QStyle,
    QStyleOptionComboBox,
    QStyleOptionSpinBox,
    QTextEdit,
    QWidget,
)

# Widgets a person clicks or types into.
INTERACTIVE = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QAbstractItemView,
               QTextEdit, QPlainTextEdit)
# A label may opt out of the cut-off check when it elides on purpose (a long URL, a path).
ELIDES_PROPERTY = "elides"
# A control that must be in view without scrolling (a wizard's Back and Next).
KEEP_IN_VIEW = "keep_in_view"
TOLERANCE = 1  # px: rounding between size hints and geometry


def _name(widget: QWidget) -> str:
    name = widget.objectName() or type(widget).__name__
    text = ""
    if isinstance(widget, QLabel | QAbstractButton):
        text = widget.text().replace("\n", " ").strip()
    elif isinstance(widget, QComboBox):
        text = widget.currentText()
    if len(text) > 40:
        text = text[:39] + "\u2026"
    return f"{name} \u201c{text}\u201d" if text else name


def _shown(widget: QWidget, root: QWidget) -> bool:
    return widget.isVisibleTo(root) and widget.isVisible()


def _descendants(root: QWidget) -> Iterator[QWidget]:
    for child in root.findChildren(QWidget):
        if child.isWindow():
            continue  # popups, dialogs and tooltips are windows of their own
        if _shown(child, root):
            yield child


def _inside_scrolled_content(widget: QWidget, root: QWidget) -> QAbstractScrollArea | None:
    """The scroll area whose scrolled content holds ``widget`` (not its own viewport)."""
    parent = widget.parentWidget()
    while parent is not None and parent is not root:
        area = parent.parentWidget()
        if isinstance(area, QAbstractScrollArea) and parent is area.viewport() \
                and not isinstance(area, QAbstractItemView | QTextEdit | QPlainTextEdit):
            return area
        parent = area if isinstance(area, QAbstractScrollArea) else parent.parentWidget()
    return None


def _reach_problem(widget: QWidget, root: QWidget) -> str | None:
    """Why ``widget`` cannot be seen whole (after any vertical scrolling), or None."""
    rect = QRect(widget.mapTo(root, QPoint(0, 0)), widget.size())
    area = _inside_scrolled_content(widget, root)
    if area is not None and widget.property(KEEP_IN_VIEW):
        viewport = area.viewport()
        own = QRect(widget.mapTo(viewport, QPoint(0, 0)), widget.size())
        if not viewport.rect().adjusted(-TOLERANCE, -TOLERANCE, TOLERANCE,
                                        TOLERANCE).contains(own):
            return f"{_name(widget)} is scrolled out of view; it must stay visible"
    if area is not None:
        # Vertical scrolling brings it into view; sideways it must fit the viewport.
        viewport = area.viewport()
        left = widget.mapTo(viewport, QPoint(0, 0)).x()
        if left < -TOLERANCE or left + widget.width() > viewport.width() + TOLERANCE:
            return (f"{_name(widget)} is outside the visible width of its page "
                    f"(x {left}..{left + widget.width()}, page {viewport.width()} px wide)")
        if area.verticalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff:
            top = widget.mapTo(viewport, QPoint(0, 0)).y()
            if top + widget.height() > viewport.height() + TOLERANCE:
                return f"{_name(widget)} is below the visible area and cannot be scrolled to"
        return None
    window = root.rect().adjusted(-TOLERANCE, -TOLERANCE, TOLERANCE, TOLERANCE)
    if not window.contains(rect):
        return (f"{_name(widget)} is outside the window ({rect.x()},{rect.y()} "
                f"{rect.width()}\u00d7{rect.height()}; window {root.width()}\u00d7"
                f"{root.height()})")
    # Clipped by a parent that is smaller than it (a squeezed container).
    parent = widget.parentWidget()
    while parent is not None and parent is not root:
        own = QRect(widget.mapTo(parent, QPoint(0, 0)), widget.size())
        if not parent.rect().adjusted(-TOLERANCE, -TOLERANCE, TOLERANCE, TOLERANCE).contains(own):
            return f"{_name(widget)} is cut off by {_name(parent)}"
        parent = parent.parentWidget()
    return None


def _text_problem(widget: QWidget) -> str | None:
    """Why the text of a label or button does not show whole, or None."""
    if isinstance(widget, QLabel):
        if not widget.text() or widget.property(ELIDES_PROPERTY):
            return None
        if widget.wordWrap():
            need = widget.heightForWidth(widget.width())
            if need > widget.height() + TOLERANCE:
                return (f"{_name(widget)} is cut off: it needs {need} px of height at "
                        f"{widget.width()} px and has {widget.height()}")
            return None
        hint = widget.sizeHint()
    elif isinstance(widget, QAbstractButton):
        if not widget.text():
            return None
        hint = widget.sizeHint()
    else:
        return None
    if hint.width() > widget.width() + TOLERANCE or hint.height() > widget.height() + TOLERANCE:
        return (f"{_name(widget)} is cut off: it needs {hint.width()}\u00d7{hint.height()} px "
                f"and has {widget.width()}\u00d7{widget.height()}")
    return None


def _needless_scroll(area: QScrollArea) -> str | None:
    """A vertical scroll bar over content that fits: it offers to scroll by nothing, and the
    content's bottom edge (a card's border) looks cut off. Content whose height follows its
    width (wrapped text) says how tall it is at the width it has; of a stack of pages, the
    page shown does."""
    bar = area.verticalScrollBar()
    content = area.widget()
    if isinstance(content, QStackedWidget):  # what is shown is one of its pages
        content = content.currentWidget()
    if (content is None or not bar.isVisible() or bar.maximum() <= bar.minimum()
            or not content.hasHeightForWidth()):
        return None
    needed = content.heightForWidth(area.viewport().width())
    if 0 < needed <= area.viewport().height():
        name = _name(area) if area.objectName() else "page"
        return (f"{name} shows a scroll bar ({bar.maximum()} px) although its content fits "
                f"({needed} of {area.viewport().height()} px)")
    return None


def layout_problems(root: QWidget) -> list[str]:
    """Scroll bars, reach and cut-off text in ``root`` as it is laid out now."""
    problems: list[str] = []
    screen = root.screen()
    if screen is not None and QGuiApplication.platformName() != "offscreen":
        available = screen.availableGeometry()
        frame = root.frameGeometry()
        if not available.contains(frame):
            problems.append(
                f"the window ({frame.width()}\u00d7{frame.height()} at {frame.x()},{frame.y()}) "
                f"does not fit the screen's free area ({available.width()}\u00d7"
                f"{available.height()} at {available.x()},{available.y()})")
    for widget in _descendants(root):
        if isinstance(widget, QAbstractScrollArea):
            bar = widget.horizontalScrollBar()
            if bar.isVisible() and bar.maximum() > bar.minimum():
                what = "page" if isinstance(widget, QScrollArea) else _name(widget)
                problems.append(f"{what} scrolls sideways ({bar.maximum()} px hidden)")
            if isinstance(widget, QScrollArea):
                problem = _needless_scroll(widget)
                if problem:
                    problems.append(problem)
        if isinstance(widget, (*INTERACTIVE, QLabel)):
            problem = _reach_problem(widget, root)
            if problem:
                problems.append(problem)
                continue
        problem = _text_problem(widget)
        if problem:
            problems.append(problem)
    return problems


# --- pixels --------------------------------------------------------------------------------

def _grab(widget: QWidget, rect: QRect | None = None) -> QImage:
    """What the screen shows of ``widget`` (or a part of it, in its coordinates)."""
    rect = rect if rect is not None else widget.rect()
    if QGuiApplication.platformName() == "offscreen":
        return widget.grab(rect).toImage()
    screen = widget.screen()
    origin = widget.mapToGlobal(rect.topLeft()) - screen.geometry().topLeft()
    ratio = screen.devicePixelRatio()
    image = screen.grabWindow(0, origin.x(), origin.y(), rect.width(), rect.height()).toImage()
    if ratio != 1:
        image = image.scaled(rect.width(), rect.height())
    return image


def _close_to(a: QColor, b: QColor, within: int = 40) -> bool:
    return (abs(a.red() - b.red()) + abs(a.green() - b.green())
            + abs(a.blue() - b.blue())) <= within


def share_of_colour(image: QImage, colour: QColor) -> float:
    """The share of ``image``'s pixels close to ``colour`` (0..1)."""
    total = hits = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            total += 1
            if _close_to(image.pixelColor(x, y), colour):
                hits += 1
    return hits / total if total else 0.0


def has_ink(image: QImage, background: QColor) -> bool:
    """True when something clearly darker or lighter than ``background`` is drawn."""
    bright = background.lightness()
    for y in range(image.height()):
        for x in range(image.width()):
            if abs(image.pixelColor(x, y).lightness() - bright) > 70:
                return True
    return False


def _middle(rect: QRect) -> QRect:
    """The middle of a button's rect, where its arrow is drawn (its frame lines are not)."""
    dx, dy = rect.width() // 4, rect.height() // 4
    return rect.adjusted(dx, dy, -dx, -dy)


def arrow_problems(root: QWidget) -> list[str]:
    """Closed combo and spin boxes that draw no arrow."""
    problems: list[str] = []
    for widget in _descendants(root):
        rects: list[QRect]
        if isinstance(widget, QComboBox):
            option = QStyleOptionComboBox()
            widget.initStyleOption(option)
            rects = [widget.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                                   QStyle.SubControl.SC_ComboBoxArrow, widget)]
            kind = "drop-down"
        elif isinstance(widget, QAbstractSpinBox) and widget.buttonSymbols() \
                != QAbstractSpinBox.ButtonSymbols.NoButtons:
            spin_option = QStyleOptionSpinBox()
            widget.initStyleOption(spin_option)
            rects = [widget.style().subControlRect(QStyle.ComplexControl.CC_SpinBox,
                                                   spin_option, control, widget)
                     for control in (QStyle.SubControl.SC_SpinBoxUp,
                                     QStyle.SubControl.SC_SpinBoxDown)]
            kind = "spin"
        else:
            continue
        background = widget.palette().color(QPalette.ColorRole.Base)
        middles = [_middle(rect.intersected(widget.rect())) for rect in rects]
        if any(middle.isEmpty() for middle in middles):
            problems.append(f"{_name(widget)} has no room for its {kind} arrow")
        # At its minimum or maximum a spin box greys one arrow out: one must show.
        elif not any(has_ink(_grab(widget, middle), background) for middle in middles):
            problems.append(f"{_name(widget)} shows no {kind} arrow")
    return problems


async def _until(condition: object, seconds: float = 3.0) -> bool:
    assert callable(condition)
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return bool(condition())


async def popup_problems(root: QWidget) -> list[str]:
    """Open each drop-down, highlight an entry, and check the highlight is painted."""
    problems: list[str] = []
    for combo in [w for w in _descendants(root) if isinstance(w, QComboBox)]:
        if not combo.isEnabled() or combo.count() == 0:
            continue
        combo.showPopup()
        view = combo.view()
        try:
            if not await _until(lambda v=view: v.isVisible() and v.window().isVisible()):
                problems.append(f"the drop-down of {_name(combo)} did not open")
                continue
            row = 1 if combo.count() > 1 else 0
            index = view.model().index(row, combo.modelColumn(), view.rootIndex())
            view.setCurrentIndex(index)
            view.viewport().update()
            rect = view.visualRect(index).intersected(view.viewport().rect())
            highlight = view.palette().color(QPalette.ColorRole.Highlight)

            def painted(v: QAbstractItemView = view, r: QRect = rect,
                        h: QColor = highlight) -> bool:
                return share_of_colour(_grab(v.viewport(), r), h) >= 0.3

            if rect.isEmpty() or not await _until(painted, 1.5):
                problems.append(f"the highlighted entry of {_name(combo)}'s drop-down does "
                                "not show the highlight colour")
        finally:
            combo.hidePopup()
            await _until(lambda v=view: not v.isVisible())
    return problems


async def audit_window(root: QWidget, *, popups: bool = True) -> list[str]:
    """Every problem a person would see in ``root`` now (empty when it looks right)."""
    app = QApplication.instance()
    assert app is not None
    problems = layout_problems(root)
    problems += arrow_problems(root)
    if popups:
        problems += await popup_problems(root)
    return problems
