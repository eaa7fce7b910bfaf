"""The Events page's fixing actions, carried out on the other pages of the main window."""

from __future__ import annotations

from typing import Any

from qp_desktop.ui.events.failures import OPEN_ACCOUNTS, OPEN_ITGLUE, FailureAdvice


def connect_fixes(monitor: Any, replay: Any, role: str | None) -> None:
    """Retry through ``replay`` (the tenant client's ``replay_event``); Match account… and
    Open agent on the Accounts page, Open IT Glue on the IT Glue page."""
    monitor.replay = replay
    monitor.set_role(role)

    def fix(advice: FailureAdvice) -> None:
        from qp_desktop.ui.main_window import MainWindow

        window = monitor.window()
        if not isinstance(window, MainWindow):
            return
        if advice.action == OPEN_ITGLUE:
            window.show_page("itglue")
            return
        window.show_page("accounts")
        page = window.page("accounts")
        if advice.action != OPEN_ACCOUNTS and hasattr(page, "fix_failure"):
            page.tasks.start(page.fix_failure(advice))
    monitor.fix_requested.connect(fix)
