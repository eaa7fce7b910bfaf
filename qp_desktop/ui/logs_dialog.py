"""Where the log files are: the "Show logs" dialog (main window and crash dialog) and opening
the folder in the platform's file manager."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services.logs import default_log_dir
from qp_desktop.ui.theme import monospace_font
from qp_desktop.ui.widgets import Banner


@contextlib.contextmanager
def _system_library_path() -> Iterator[None]:
    """WORKAROUND: PyInstaller — in a Linux bundle the bootloader points LD_LIBRARY_PATH at
    the bundle, and a file manager started from here (through xdg-open) would load the
    bundle's Qt/GTK libraries and crash. Give it the original value while it starts."""
    if not (getattr(sys, "frozen", False) and sys.platform.startswith("linux")):
        yield
        return
    saved = os.environ.get("LD_LIBRARY_PATH")
    original = os.environ.get("LD_LIBRARY_PATH_ORIG")
    if original is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = original
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
        else:
            os.environ["LD_LIBRARY_PATH"] = saved


def open_log_folder(folder: Path | None = None) -> bool:
    """Open the log folder in the platform's file manager. Returns False if it could not."""
    folder = folder or default_log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with _system_library_path():
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))



class LogsDialog(QDialog):
    """Where the log files are: the folder's path to copy, and a button to open it."""

    def __init__(self, folder: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("logs_dialog")
        self.setWindowTitle("QP Desktop logs")
        self.folder = folder
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 18, 20, 14)
        layout.setSpacing(10)
        intro = QLabel("QP Desktop writes its log files to this folder. Tokens, keys and "
                       "passwords are left out of them.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        row = QHBoxLayout()
        self.path_field = QLineEdit(str(folder))
        self.path_field.setObjectName("log_path")
        self.path_field.setReadOnly(True)
        self.path_field.setFont(monospace_font())
        self.path_field.setMinimumWidth(
            min(640, self.path_field.fontMetrics().horizontalAdvance(str(folder)) + 24))
        row.addWidget(self.path_field, 1)
        self.copy_button = QPushButton("Copy path")
        self.copy_button.setObjectName("copy_log_path")
        self.copy_button.clicked.connect(self.copy_path)
        row.addWidget(self.copy_button)
        layout.addLayout(row)
        self.message = Banner("logs_message")
        layout.addWidget(self.message)
        buttons = QDialogButtonBox()
        self.open_button = buttons.addButton("Open folder",
                                             QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.setObjectName("open_log_folder")
        self.open_button.clicked.connect(self.open_folder)
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.setObjectName("close_logs")
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def copy_path(self) -> None:
        QGuiApplication.clipboard().setText(str(self.folder))
        self.message.show_message("info", "The path is on the clipboard.")

    def open_folder(self) -> None:
        if open_log_folder(self.folder):
            self.message.show_message("info", "The folder was opened in your file manager.")
        else:
            self.message.show_message(
                "warning", "No file manager could open the folder. Copy the path and open "
                           "it yourself, e.g. in a terminal.")
