"""Every page and dialog at the sizes people use: rendered, saved, and audited.

Part of ``qp-desktop --screenshot DIR``: after the documentation pictures, each window is
shown at its default size and at 1024\u00d7700 and saved as ``<name>@<size>.png``; with
``--check-layout`` it is also audited (:mod:`qp_desktop.ui.layout_audit`) and the problems are
written to ``DIR/layout-report.json`` (``{picture: [sentence, ...]}``). Under a real display
(Xvfb and a window manager in the tests) the pictures are what the screen shows, window
frame and open popups included.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

from qp_desktop.ui.layout_audit import audit_window

log = logging.getLogger(__name__)

SMALL = QSize(1024, 700)
SIZES: tuple[tuple[str, QSize | None], ...] = (("default", None), ("1024x700", SMALL))


@dataclass
class LayoutReport:
    """Problems by picture name, and the pictures written."""

    problems: dict[str, list[str]] = field(default_factory=dict)
    pictures: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not any(self.problems.values())

    def write(self, path: Path) -> None:
        path.write_text(json.dumps({"problems": self.problems, "pictures": self.pictures},
                                   indent=2) + "\n", encoding="utf-8")


async def settle(seconds: float = 0.25) -> None:
    """Let Qt lay out, the window manager map and the style paint (on the qasync loop)."""
    await asyncio.sleep(seconds)


async def _until_idle(page: QWidget, seconds: float = 15.0) -> None:
    tasks = getattr(page, "tasks", None)
    for _ in range(int(seconds / 0.05)):
        if tasks is None or not tasks.busy:
            return
        await asyncio.sleep(0.05)


def _save(window: QWidget, path: Path) -> None:
    """What the screen shows of the window, frame included (offscreen: the widget)."""
    if QGuiApplication.platformName() == "offscreen":
        pixmap = window.grab()
    else:
        frame = window.frameGeometry()
        screen = window.screen()
        origin = frame.topLeft() - screen.geometry().topLeft()
        pixmap = screen.grabWindow(0, origin.x(), origin.y(), frame.width(), frame.height())
    if not pixmap.save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path}", flush=True)


class SizePass:
    """Shows windows at one size, saves each picture and (optionally) audits it."""

    def __init__(self, out_dir: Path, report: LayoutReport, check: bool) -> None:
        self.out_dir = out_dir
        self.report = report
        self.check = check
        self._popups_checked: set[str] = set()

    async def record(self, name: str, window: QWidget, size_name: str, *,
                     popups: bool = True) -> None:
        await settle()
        picture = f"{name}@{size_name}"
        _save(window, self.out_dir / f"{picture}.png")
        self.report.pictures.append(f"{picture}.png")
        if self.check:
            # Popups look the same at every size: open them once per window.
            popups = popups and name not in self._popups_checked
            self._popups_checked.add(name)
            problems = await audit_window(window, popups=popups)
            self.report.problems[picture] = problems
            for problem in problems:
                log.warning("layout %s: %s", picture, problem)


def _place(window: QWidget, size: QSize | None) -> None:
    """At ``size`` (then centred and kept on screen); None leaves the app's own placement."""
    from qp_desktop.ui.screen import fit_on_screen

    if size is not None:
        window.resize(size)
        fit_on_screen(window, move=True)


async def check_main_window(app: Any, size_pass: SizePass, size_name: str,
                            size: QSize | None) -> None:
    """Each page of the main window, the wizard's every step, and the page dialogs."""
    from qp_desktop.ui import wizard_steps as W
    from qp_desktop.ui.accounts.page import AccountsPage
    from qp_desktop.ui.itglue import GenerateTokenDialog
    from qp_desktop.ui.logs_dialog import LogsDialog
    from qp_desktop.ui.wizard import SetupWizardPage

    window = app._build_main_window()
    try:
        _place(window, size)
        window.show()
        window.raise_()
        for spec in app.pages:
            window.show_page(spec.key)
            page = window.page(spec.key)
            await _until_idle(page)
            refresh = getattr(page, "refresh", None)
            if refresh is not None and asyncio.iscoroutinefunction(refresh):
                await refresh()  # what it shows with its data loaded, not while loading
                await _until_idle(page)
            if isinstance(page, SetupWizardPage):
                for number, step in enumerate(W.STEPS, start=1):
                    page.go_to(step.key)
                    await size_pass.record(f"page-setup-{number:02d}-{step.key}", window,
                                           size_name, popups=number == 1)
                # Every banner at once: Back and Next must still be in view.
                page.notice_banner.show_message(
                    "warning", "You have a new workflow URL: update the webhook URL in IT "
                               "Glue. Steps 7, 9 and 12 are open again.")
                page.rejection_banner.show_message(
                    "error", "IT Glue is still using an old workflow URL (ending 9f3a), "
                             "which was replaced. Paste the current URL into the Webhook "
                             "action and save the workflow.")
                page.rejection_fix_button.setVisible(True)
                page.banner.show_message("error", "The tenant could not be reached. Check "
                                                  "the connection, then try again.")
                await size_pass.record("page-setup-banners", window, size_name, popups=False)
                page.banner.clear()
                page.rejection_banner.clear()
                page.rejection_fix_button.setVisible(False)
                page._render()
                continue
            await size_pass.record(f"page-{spec.key}", window, size_name)
            if isinstance(page, AccountsPage):
                page.add_agent_button.click()
                dialog = page.add_agent_dialog
                assert dialog is not None
                dialog.name_edit.setText("northwind-dc01")
                await page.create_enrollment_code(dialog)
                await size_pass.record("dialog-add-agent", dialog, size_name)
                dialog.reject()
                # Microsoft 365… opens for the chosen customer.
                page.customer_combo.setCurrentIndex(min(1, page.customer_combo.count() - 1))
                page.m365_button.click()
                m365 = page.m365_dialog
                assert m365 is not None
                await _until_idle(m365)
                await size_pass.record("dialog-m365-link", m365, size_name)
                m365.reject()
                from qp_desktop.demo.accounts_loop import record_loop_dialogs
                await record_loop_dialogs(
                    page, lambda name, dialog: size_pass.record(name, dialog, size_name))
        generate = GenerateTokenDialog(window)
        generate.open()
        await size_pass.record("dialog-generate-token", generate, size_name)
        generate.reject()
        generate.deleteLater()
        logs = LogsDialog(Path.home() / ".local/state/qp-desktop/log", window)
        logs.open()
        await size_pass.record("dialog-logs", logs, size_name)
        logs.reject()
        logs.deleteLater()
    finally:
        window.shutdown_pages()
        window.hide()
        window.deleteLater()


async def check_other_windows(app: Any, size_pass: SizePass, size_name: str,
                              size: QSize | None) -> None:
    """The sign-in window (both forms) and the crash dialog."""
    from qp_desktop.ui.crash_dialog import CrashDialog
    from qp_desktop.ui.sign_in import SignInWindow

    window = SignInWindow(app.session, app.local_tenant, app.prefs)
    try:
        if size is not None:
            window.resize(window.size().boundedTo(size))
        window.show()
        await window.prepare_local()
        await size_pass.record("sign-in", window, size_name)
        window.first_run = True
        window._update_mode()
        await size_pass.record("sign-in-first-run", window, size_name, popups=False)
    finally:
        window.hide()
        window.deleteLater()
    crash = CrashDialog("Traceback (most recent call last):\n  File \"app.py\", line 1\n"
                        "RuntimeError: an example")
    crash.show()
    await size_pass.record("dialog-crash", crash, size_name)
    crash.details_button.setChecked(True)
    await size_pass.record("dialog-crash-details", crash, size_name)
    crash.close()
    crash.deleteLater()


async def run_size_passes(app: Any, out_dir: Path, check: bool) -> LayoutReport:
    """Render (and with ``check`` audit) every window at each of :data:`SIZES`."""
    report = LayoutReport()
    for size_name, size in SIZES:
        size_pass = SizePass(out_dir, report, check)
        await check_main_window(app, size_pass, size_name, size)
        await check_other_windows(app, size_pass, size_name, size)
    if check:
        report.write(out_dir / "layout-report.json")
    return report

