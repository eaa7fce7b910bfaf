"""The in-page message strip: what a technician sees and can do with a message."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QVBoxLayout, QWidget

from qp_desktop.ui.widgets import Banner


def _shown_banner(qtbot) -> tuple[QWidget, Banner]:
    page = QWidget()
    layout = QVBoxLayout(page)
    banner = Banner("test_banner")
    layout.addWidget(banner)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitExposed(page)
    return page, banner


def test_banner_is_hidden_until_it_has_something_to_say(qtbot):
    _page, banner = _shown_banner(qtbot)
    assert not banner.isVisible() and banner.text() == ""
    banner.show_message("error", "The tenant could not be started.")
    assert banner.isVisible() and banner.text() == "The tenant could not be started."
    banner.clear()
    assert not banner.isVisible() and banner.text() == ""


def test_banner_message_text_can_be_selected_to_copy_it(qtbot):
    _page, banner = _shown_banner(qtbot)
    banner.show_message("error", "Port 8765 is in use by another program.")
    flags = banner.label.textInteractionFlags()
    assert flags & Qt.TextInteractionFlag.TextSelectableByMouse


def test_banner_details_are_offered_behind_show_details_and_only_when_there_are_some(qtbot):
    _page, banner = _shown_banner(qtbot)
    banner.show_message("info", "Signing in\u2026")
    assert not banner.details_button.isVisible() and not banner.details.isVisible()

    banner.show_message("error", "The tenant could not be started.", "Traceback: port taken")
    assert banner.details_button.isVisible() and banner.details_button.text() == "Show details"
    assert not banner.details.isVisible()
    qtbot.mouseClick(banner.details_button, Qt.MouseButton.LeftButton)
    assert banner.details.isVisible()
    assert banner.details.toPlainText() == "Traceback: port taken"
    assert banner.details_button.text() == "Hide details"

    # The next message has no details: none of the old ones stay behind.
    banner.show_message("warning", "No system keyring is available.")
    assert not banner.details_button.isVisible() and not banner.details.isVisible()
    assert banner.details.toPlainText() == ""
    banner.clear()
    assert not banner.isVisible()


def test_tab_reaches_show_details_between_the_fields_around_the_banner(qtbot):
    page = QWidget()
    layout = QVBoxLayout(page)
    before, after = QLineEdit(), QLineEdit()
    before.setObjectName("before")
    after.setObjectName("after")
    banner = Banner("test_banner")
    for widget in (before, banner, after):
        layout.addWidget(widget)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitExposed(page)
    banner.show_message("error", "The tenant could not be started.", "Traceback: port taken")
    qtbot.mouseClick(banner.details_button, Qt.MouseButton.LeftButton)

    before.setFocus()
    order = []
    for _ in range(3):
        page.focusNextChild()
        order.append(page.focusWidget())
    assert order == [banner.details_button, banner.details, after]
