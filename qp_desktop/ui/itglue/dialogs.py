"""The IT Glue page's dialogs."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.ui.itglue.formatting import _label


class GenerateTokenDialog(QDialog):
    """Confirms "Generate New" and offers a grace period for the old URL."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("generate_dialog")
        self.setWindowTitle("Generate a new workflow URL?")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 16)
        layout.setSpacing(12)
        heading = QLabel("Generate a new workflow URL?")
        heading.setProperty("role", "heading")
        layout.addWidget(heading)
        text = _label(
            "The current URL stops working. Until you paste the new URL into the Webhook "
            "action of your IT Glue workflow, password changes in IT Glue will not reach "
            "this tenant.", selectable=False)
        text.setMinimumWidth(420)
        layout.addWidget(text)
        grace_row = QHBoxLayout()
        self.grace = QCheckBox("Keep the current URL working for")
        self.grace.setObjectName("grace_checkbox")
        self.grace.setChecked(True)
        self.grace_hours = QSpinBox()
        self.grace_hours.setObjectName("grace_hours")
        self.grace_hours.setRange(1, 168)
        self.grace_hours.setValue(24)
        self.grace_hours.setSuffix(" hours")
        self.grace.toggled.connect(self.grace_hours.setEnabled)
        grace_row.addWidget(self.grace)
        grace_row.addWidget(self.grace_hours)
        grace_row.addStretch(1)
        layout.addLayout(grace_row)
        hint = _label("A grace period lets the IT Glue workflow keep working while you "
                      "update it.", selectable=False)
        hint.setProperty("role", "muted")
        layout.addWidget(hint)
        buttons = QDialogButtonBox()
        self.confirm_button = buttons.addButton("Generate New URL",
                                                QDialogButtonBox.ButtonRole.AcceptRole)
        self.confirm_button.setObjectName("confirm_generate_button")
        self.confirm_button.setProperty("role", "primary")
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setObjectName("cancel_generate_button")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    @property
    def grace_hours_value(self) -> int:
        return self.grace_hours.value() if self.grace.isChecked() else 0
