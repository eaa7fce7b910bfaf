"""The main window's pages: the protocol checked when a page is added, and what sign-out does
to every page (secrets forgotten, background work stopped)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from tests.conftest import ITGLUE_KEY
from tests.desktop.helpers import (
    WAIT,
    click_and_settle,
    sign_in_app,
)


class _NoForget(QWidget):
    def activate(self) -> None: ...

    def shutdown(self) -> None: ...


def test_a_page_without_forget_secrets_is_refused_when_added(qtbot, make_app,
                                                             memory_keyring):
    from qp_desktop.ui.main_window import MainWindow

    app = make_app()
    window = MainWindow(app.session, app.clipboard)
    qtbot.addWidget(window)
    with pytest.raises(TypeError, match=r"_NoForget .*forget_secrets\(\)"):
        window.add_page("broken", "Broken", _NoForget())
    assert not window.has_page("broken")


def test_every_page_of_the_app_passes_the_page_check(qtbot, make_app, tenant_proc,
                                                     memory_keyring):
    from qp_desktop.ui.page import PageProtocol

    app = make_app(tenant_url=tenant_proc.url)
    sign_in_app(qtbot, app)
    for spec in app.pages:
        assert isinstance(app.main_window.page(spec.key), PageProtocol), spec.key


def test_sign_out_hides_a_revealed_url_and_stops_the_events_page(qtbot, make_app,
                                                                 tenant_proc, memory_keyring):
    app = make_app(tenant_url=tenant_proc.url)
    sign_in_app(qtbot, app)
    window = app.main_window
    page = window.page("itglue")
    qtbot.waitUntil(lambda: not page.tasks.busy and page.integration is not None,
                    timeout=WAIT)
    page.api_key.edit.clear()
    qtbot.keyClicks(page.api_key.edit, ITGLUE_KEY)
    click_and_settle(qtbot, page.connect_button, page)
    click_and_settle(qtbot, page.generate_button, page)
    click_and_settle(qtbot, page.reveal_button, page)
    url = page.url_field.text()
    assert "/hooks/itglue/qpwt_" in url
    secret = url.split("/")[-1]

    events = window.page("events")
    stopped: list[bool] = []
    original_stop = events.stop
    events.stop = lambda: (stopped.append(True), original_stop())[1]
    # Background work in flight on the events page when the technician signs out.
    pending = events.tasks.start(_forever())

    with qtbot.waitSignal(app.session.signed_out, timeout=WAIT):
        qtbot.mouseClick(window.sign_out_button, Qt.MouseButton.LeftButton)

    assert secret not in page.url_field.text()  # the revealed URL left the screen
    assert page._full_url is None
    assert stopped == [True]
    qtbot.waitUntil(pending.done, timeout=WAIT)
    assert pending.cancelled()


async def _forever() -> None:
    import asyncio

    await asyncio.Event().wait()
