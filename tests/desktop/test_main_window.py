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
