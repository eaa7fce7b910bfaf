"""The dialog for an exception nobody caught: one calm sentence, the log folder, and a
"Copy report" button whose report has every token, key and password redacted.

:func:`install_excepthook` installs it as ``sys.excepthook`` (the app does this at start;
tests never do, so pytest-qt still fails a test on an uncaught exception). It runs before the
first window, so what only a crash needs (the logs dialog) is imported when one happens.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6 import __version__ as pyside_version
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from qp_common.redact import redact
from qp_desktop.services.logs import default_log_dir
from qp_desktop.ui.theme import monospace_font

log = logging.getLogger(__name__)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

SENTENCE = ("QP Desktop ran into a problem it did not expect. You can keep working, or "
            "restart the app if something looks wrong.")


def crash_report(exc_type: type[BaseException], exc: BaseException,
                 tb: TracebackType | None) -> str:
    """A plain-text report: versions, platform and the traceback, with secrets redacted."""
    import platform

    from qp_desktop import APP_ID

    frozen = " (bundle)" if getattr(sys, "frozen", False) else ""
    lines = [
        "QP Desktop crash report",
        f"app: {APP_ID} 0.1.0{frozen}",
        f"python: {platform.python_version()}  PySide6: {pyside_version}",
        f"platform: {platform.platform()}",
        "",
        "".join(traceback.format_exception(exc_type, exc, tb)).rstrip(),
    ]
    return redact("\n".join(lines)) + "\n"


class CrashDialog(QDialog):
    """Shows one unexpected problem; further ones while it is open are counted on it."""

    def __init__(self, report: str, log_dir: Path | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("crash_dialog")
        self.setWindowTitle("QP Desktop: unexpected problem")
        self.report = report
        self.log_dir = log_dir
        self.more = 0
        self.logs_dialog: QDialog | None = None

        layout = QVBoxLayout(self)
        heading = QLabel("Something went wrong")
        heading.setProperty("role", "heading")
        layout.addWidget(heading)
        self.message = QLabel(SENTENCE)
        self.message.setObjectName("crash_message")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.more_label = QLabel()
        self.more_label.setObjectName("crash_more")
        self.more_label.setProperty("role", "muted")
        self.more_label.hide()
        layout.addWidget(self.more_label)

        self.details = QPlainTextEdit(report)
        self.details.setObjectName("crash_details")
        self.details.setReadOnly(True)
        self.details.setFont(monospace_font())
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details.setMinimumHeight(160)
        self.details.setVisible(False)
        layout.addWidget(self.details, 1)

        buttons = QHBoxLayout()
        self.details_button = QPushButton("Show details")
        self.details_button.setObjectName("crash_details_button")
        self.details_button.setCheckable(True)
        self.details_button.toggled.connect(self._toggle_details)
        buttons.addWidget(self.details_button)
        self.logs_button = QPushButton("Show logs")
        self.logs_button.setObjectName("crash_logs_button")
        self.logs_button.clicked.connect(self.show_logs)
        buttons.addWidget(self.logs_button)
        buttons.addStretch(1)
        self.copy_button = QPushButton("Copy report")
        self.copy_button.setObjectName("copy_report_button")
        self.copy_button.setProperty("role", "primary")
        self.copy_button.setToolTip("Copy a report for support; tokens, keys and passwords "
                                    "are left out.")
        self.copy_button.clicked.connect(self.copy_report)
        buttons.addWidget(self.copy_button)
        self.close_button = QPushButton("Close")
        self.close_button.setObjectName("crash_close_button")
        self.close_button.clicked.connect(self.accept)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        self.resize(560, 200)

    def show_logs(self) -> None:
        """The log folder's path, to copy or open (a file manager may not be there)."""
        if self.logs_dialog is None:
            from qp_desktop.ui.logs_dialog import LogsDialog

            self.logs_dialog = LogsDialog(self.log_dir or default_log_dir(), self)
        self.logs_dialog.open()

    def _toggle_details(self, shown: bool) -> None:
        self.details.setVisible(shown)
        self.details_button.setText("Hide details" if shown else "Show details")
        self.adjustSize()

    def copy_report(self) -> None:
        QGuiApplication.clipboard().setText(self.report)
        self.copy_button.setText("Copied")

    def add_another(self, report: str) -> None:
        """Another problem happened while this dialog is open: keep the first report and
        append the new one, and say how many there were."""
        self.more += 1
        self.report += "\n---\n" + report
        self.details.setPlainText(self.report)
        self.copy_button.setText("Copy report")
        self.more_label.setText(f"{self.more} more problem{'s' if self.more > 1 else ''} "
                                "happened since; the report holds them all.")
        self.more_label.show()


class CrashHandler:
    """The ``sys.excepthook``: logs every uncaught exception (redacted by the log filter)
    and shows it in one :class:`CrashDialog` on the GUI thread."""

    def __init__(self, log_dir: Path | None = None):
        self.log_dir = log_dir
        self.dialog: CrashDialog | None = None
        self._previous: Callable[..., object] = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        self._handling = False

    def __call__(self, exc_type: type[BaseException], exc: BaseException,
                 tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt | SystemExit):
            self._previous(exc_type, exc, tb)
            return
        log.critical("uncaught exception", exc_info=(exc_type, exc, tb))
        app = QApplication.instance()
        if (app is None or self._handling
                or threading.current_thread() is not threading.main_thread()):
            return
        self._handling = True  # a failure while showing the dialog must not recurse
        try:
            self.show(crash_report(exc_type, exc, tb))
        except Exception:  # noqa: BLE001 - the hook of last resort must never raise
            log.exception("could not show the crash dialog")
        finally:
            self._handling = False

    def show(self, report: str) -> CrashDialog:
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.add_another(report)
            return self.dialog
        if self.dialog is not None:
            self.dialog.deleteLater()
        # Not exec(): a nested event loop inside the excepthook would re-enter qasync.
        self.dialog = CrashDialog(report, self.log_dir)
        self.dialog.setModal(True)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def install(self) -> None:
        """Become ``sys.excepthook``; uncaught exceptions in other threads are logged."""
        self._previous = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        sys.excepthook = self
        threading.excepthook = self._thread_hook

    def uninstall(self) -> None:
        """Put back the hooks :meth:`install` replaced."""
        if sys.excepthook is self:
            sys.excepthook = self._previous
        if threading.excepthook == self._thread_hook:
            threading.excepthook = self._previous_thread_hook

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            log.critical("uncaught exception in thread %s",
                         args.thread.name if args.thread else "?",
                         exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def install_excepthook(log_dir: Path | None = None) -> CrashHandler:
    """Show uncaught exceptions in a :class:`CrashDialog` (and log them, redacted). The app
    calls this at start; returns the handler, whose ``uninstall()`` undoes it."""
    handler = CrashHandler(log_dir)
    handler.install()
    return handler
