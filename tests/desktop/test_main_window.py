"""The main window's frame: no empty status strip under the pages."""

from __future__ import annotations

from tests.desktop.helpers import WAIT


def test_the_status_strip_shows_only_while_it_has_something_to_say(qtbot, make_app,
                                                                   memory_keyring):
    from qp_desktop.ui.main_window import MainWindow
    from qp_desktop.ui.page import Page

    app = make_app()
    window = MainWindow(app.session, app.clipboard)
    qtbot.addWidget(window)
    window.add_page("blank", "Blank", Page("blank_page"))
    window.show()
    qtbot.waitExposed(window)
    assert not window.statusBar().isVisible()
    app.clipboard.copy_secret("qpwt_example", "the workflow URL")
    assert window.statusBar().isVisible()
    assert "clipboard clears in" in window.statusBar().currentMessage()
    window.statusBar().clearMessage()
    qtbot.waitUntil(lambda: not window.statusBar().isVisible(), timeout=WAIT)



def test_a_page_of_wrapped_text_scrolls_only_when_it_does_not_fit(qtbot, make_app,
                                                                   memory_keyring):
    """Groups of wrapped text held at their natural height (as the IT Glue page's are) give
    the page a minimum height taken at a narrow width: a window tall enough for the page at
    the width it has must not offer to scroll it, and a short one must scroll to its end."""
    from PySide6.QtWidgets import QGroupBox, QLabel, QSizePolicy, QVBoxLayout

    from qp_desktop.ui.layout_audit import layout_problems
    from qp_desktop.ui.main_window import MainWindow
    from qp_desktop.ui.page import Page

    app = make_app()
    window = MainWindow(app.session, app.clipboard)
    qtbot.addWidget(window)
    page = Page("wrapped_page")
    column = QVBoxLayout(page)
    for n in range(4):
        group = QGroupBox(f"Group {n}")
        rows = QVBoxLayout(group)
        for line in range(3):
            text = QLabel(f"{n}.{line}: " + "a sentence that wraps when the window is narrow " * 4)
            text.setWordWrap(True)
            rows.addWidget(text)
        group.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        column.addWidget(group)
    last = group
    column.addStretch(1)
    window.add_page("wrapped", "Wrapped", page)
    area = window.stack.currentWidget()
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    viewport = area.viewport()
    needed = page.heightForWidth(viewport.width())
    # The case in question: the page's minimum height is more than it needs at this width.
    assert page.minimumSizeHint().height() > needed + 20, (page.minimumSizeHint(), needed)

    def page_area_height(height):
        window.resize(1400, window.height() + height - viewport.height())
        qtbot.waitUntil(lambda: viewport.height() == height, timeout=WAIT)

    page_area_height(needed + 10)
    qtbot.waitUntil(lambda: not area.verticalScrollBar().isVisible(), timeout=WAIT)
    assert layout_problems(window) == []

    page_area_height(needed // 2)
    bar = area.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.isVisible() and bar.maximum() > 0, timeout=WAIT)
    bar.setValue(bar.maximum())
    bottom = last.mapTo(area.viewport(), last.rect().bottomLeft()).y()
    assert bottom < viewport.height(), (bottom, viewport.height())


def test_the_layout_audit_reports_a_scroll_bar_over_content_that_fits(qtbot):
    """What the audit run on every page in a real window checks: a stack of panels scrolled
    by the tallest one's height while a short one is shown."""
    from PySide6.QtWidgets import QLabel, QScrollArea, QStackedWidget, QVBoxLayout, QWidget

    from qp_desktop.ui.layout_audit import layout_problems
    from qp_desktop.ui.wizard.layout import StepStack

    def window_with(stack: QStackedWidget) -> tuple[QScrollArea, QWidget]:  # area, window
        for lines in (2, 60):
            panel = QWidget()
            column = QVBoxLayout(panel)
            text = QLabel("A line that wraps in a narrow panel. " * lines)
            text.setWordWrap(True)
            column.addWidget(text)
            stack.addWidget(panel)
        stack.setCurrentIndex(0)
        window = QWidget()
        area = QScrollArea()
        area.setObjectName("panels")
        area.setWidgetResizable(True)
        area.setWidget(stack)
        QVBoxLayout(window).addWidget(area)
        window.resize(600, 300)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        return area, window

    area, window = window_with(QStackedWidget())
    qtbot.waitUntil(lambda: area.verticalScrollBar().isVisible(), timeout=WAIT)
    assert any("panels shows a scroll bar" in p for p in layout_problems(window)), \
        layout_problems(window)
    # The wizard's stack answers with the panel shown: nothing to report.
    stack = StepStack()
    area, window = window_with(stack)
    qtbot.waitUntil(lambda: not area.verticalScrollBar().isVisible(), timeout=WAIT)
    assert layout_problems(window) == []
    stack.setCurrentIndex(1)  # the long panel does scroll
    qtbot.waitUntil(lambda: area.verticalScrollBar().isVisible(), timeout=WAIT)
