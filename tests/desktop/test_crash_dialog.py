"""The uncaught-exception dialog and the "Show logs" action, offscreen."""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication

from qp_common.redact import RedactingFilter
from qp_desktop.ui.crash_dialog import CrashDialog, CrashHandler, crash_report

TOKEN = "qpwt_Zx9yW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7zY6x"
PASSWORD = "Winter2026!sekret"


def _exc_info():
    def sign_in(body: dict) -> None:
        raise ValueError(f"tenant refused {body}; webhook /hooks/itglue/{TOKEN} "
                         f"Authorization: Bearer qpat_abcdefgh12345678")

    try:
        try:
            sign_in({"email": "a@b.test", "password": PASSWORD})
        except ValueError as exc:
            raise RuntimeError(f"password={PASSWORD} did not work") from exc
    except RuntimeError:
        return sys.exc_info()
    raise AssertionError("unreachable")


def _assert_clean(text: str) -> None:
    assert PASSWORD not in text
    assert TOKEN not in text and TOKEN[5:20] not in text
    assert "qpat_abcdefgh" not in text


class UrlCatcher(QObject):
    def __init__(self):
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


@pytest.fixture
def opened_urls():
    """Catch QDesktopServices.openUrl for file: URLs instead of starting a file manager."""
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    yield catcher.urls
    QDesktopServices.unsetUrlHandler("file")


def test_report_redacts_tokens_and_passwords_but_keeps_the_traceback():
    report = crash_report(*_exc_info())
    _assert_clean(report)
    assert "qpwt_\u2026" + TOKEN[-4:] in report  # still says which token, by its tail
    assert "ValueError" in report and "RuntimeError" in report
    assert "in sign_in" in report  # the frames are there
    assert "com.qpdesktop.QPDesktop" in report


def test_dialog_copies_the_redacted_report(qtbot):
    report = crash_report(*_exc_info())
    dialog = CrashDialog(report)
    qtbot.addWidget(dialog)
    dialog.show()
    assert "did not expect" in dialog.message.text()
    assert not dialog.details.isVisible()
    qtbot.mouseClick(dialog.details_button, Qt.MouseButton.LeftButton)
    assert dialog.details.isVisible()
    assert dialog.details.toPlainText() == report

    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    assert copied == report
    _assert_clean(copied)
    assert dialog.copy_button.text() == "Copied"


def test_handler_shows_one_dialog_and_counts_later_problems(qtbot, caplog):
    handler = CrashHandler()  # called directly: never installed as sys.excepthook in tests
    with caplog.at_level(logging.CRITICAL):
        handler(*_exc_info())
    dialog = handler.dialog
    assert dialog is not None
    qtbot.addWidget(dialog)
    assert dialog.isVisible() and dialog.isModal()
    assert "uncaught exception" in caplog.text

    handler(*_exc_info())
    assert handler.dialog is dialog
    assert dialog.more == 1 and "1 more problem" in dialog.more_label.text()
    assert dialog.report.count("QP Desktop crash report") == 2
    _assert_clean(dialog.report)

    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    handler(*_exc_info())  # after closing, a new problem gets a fresh dialog
    assert handler.dialog is not dialog
    qtbot.addWidget(handler.dialog)


def test_keyboard_interrupt_goes_to_the_previous_hook(qtbot):
    seen = []
    handler = CrashHandler()
    handler._previous = lambda *exc: seen.append(exc[0])
    handler(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert seen == [KeyboardInterrupt] and handler.dialog is None


def test_install_and_uninstall_restore_the_hooks():
    before, before_thread = sys.excepthook, threading.excepthook
    handler = CrashHandler()
    handler.install()
    try:
        assert sys.excepthook is handler
        assert threading.excepthook == handler._thread_hook
    finally:
        handler.uninstall()
    assert sys.excepthook is before and threading.excepthook is before_thread


def test_log_records_with_tracebacks_are_redacted():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_crash_dialog.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.critical("uncaught exception", exc_info=_exc_info())
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback" in text and "RuntimeError" in text
    _assert_clean(text)


def test_show_logs_in_the_crash_dialog_shows_the_path_and_opens_the_folder(qtbot, tmp_path,
                                                                          opened_urls):
    dialog = CrashDialog("report", log_dir=tmp_path / "logs")
    qtbot.addWidget(dialog)
    qtbot.mouseClick(dialog.logs_button, Qt.MouseButton.LeftButton)
    logs = dialog.logs_dialog
    assert logs is not None and logs.isVisible()
    assert logs.path_field.text() == str(tmp_path / "logs")
    qtbot.mouseClick(logs.open_button, Qt.MouseButton.LeftButton)
    assert [Path(u.toLocalFile()) for u in opened_urls] == [tmp_path / "logs"]
    assert (tmp_path / "logs").is_dir()


def test_show_logs_in_the_main_window_shows_the_path_with_a_copy_button(
        qtbot, make_app, tmp_path, memory_keyring, monkeypatch):
    from PySide6.QtGui import QDesktopServices, QGuiApplication

    from qp_desktop.ui.main_window import MainWindow

    # No file manager on this desktop: opening a folder does nothing.
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda _url: False))
    app = make_app()
    window = MainWindow(app.session, app.clipboard, log_dir=tmp_path / "log")
    qtbot.addWidget(window)
    window.show()
    qtbot.mouseClick(window.show_logs_button, Qt.MouseButton.LeftButton)
    logs = window.logs_dialog
    assert logs is not None and logs.isVisible()
    assert logs.path_field.text() == str(tmp_path / "log")
    qtbot.mouseClick(logs.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == str(tmp_path / "log")
    qtbot.mouseClick(logs.open_button, Qt.MouseButton.LeftButton)
    assert "No file manager could open the folder" in logs.message.text()


def test_in_a_linux_bundle_the_file_manager_gets_the_system_library_path(
        qtbot, tmp_path, opened_urls, monkeypatch):
    from qp_desktop.ui import logs_dialog

    seen = []
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/bundle/_internal")
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/usr/local/lib")
    monkeypatch.setattr(logs_dialog.QDesktopServices, "openUrl",
                        lambda url: seen.append(os.environ.get("LD_LIBRARY_PATH")) or True)
    assert logs_dialog.open_log_folder(tmp_path)
    assert seen == ["/usr/local/lib"]
    assert os.environ["LD_LIBRARY_PATH"] == "/opt/bundle/_internal"
