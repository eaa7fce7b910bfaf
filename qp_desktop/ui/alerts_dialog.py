"""Alert settings: who the tenant mails (failures, expiring workflow URL) and how many days
before the workflow URL expires it warns. Admins edit; everyone else reads.

The tenant validates (each address, at most 10, days 0..365 without repeats); its 422
sentence is shown next to the field it names.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services.tasks import TaskSet
from qp_desktop.services.tenant_client import (
    AlertSettings,
    SessionExpired,
    TenantClient,
    TenantError,
)
from qp_desktop.ui import roles
from qp_desktop.ui.widgets import Banner

RECIPIENT_CODES = ("invalid_recipient", "too_many_recipients")
DAYS_CODES = ("invalid_expiry_warning_days",)


def parse_days(text: str) -> list[int]:
    """``30, 7, 1`` → ``[30, 7, 1]``; ValueError with a sentence for anything else."""
    days = []
    for part in text.replace(";", ",").replace(" ", ",").split(","):
        if not part.strip():
            continue
        if not part.strip().isdigit():
            raise ValueError(f"\u201c{part.strip()}\u201d is not a number of days: write whole "
                             "numbers separated by commas, e.g. 30, 7, 1.")
        days.append(int(part))
    return days


def parse_recipients(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


class AlertsDialog(QDialog):
    """Loads the tenant's alert settings; Save (admins) sends both fields."""

    def __init__(self, client: TenantClient, role: str | None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("alerts_dialog")
        self.setWindowTitle("Alert settings")
        self.setMinimumWidth(600)
        self.client = client
        self.role = role
        self.tasks = TaskSet()
        self.settings: AlertSettings | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 16)
        layout.setSpacing(10)
        heading = QLabel("Alert settings")
        heading.setProperty("role", "heading")
        layout.addWidget(heading)
        intro = QLabel("The tenant mails these people when resets fail and before the "
                       "workflow URL expires. This app\u2019s own tray warnings follow the "
                       "same days.")
        intro.setWordWrap(True)
        intro.setProperty("role", "muted")
        layout.addWidget(intro)
        self.message = Banner("alerts_message")
        layout.addWidget(self.message)
        form = QFormLayout()
        form.setHorizontalSpacing(18)
        self.recipients_edit = QPlainTextEdit()
        self.recipients_edit.setObjectName("alert_recipients")
        self.recipients_edit.setPlaceholderText("one address per line, e.g. "
                                                "alerts@msp.example")
        self.recipients_edit.setTabChangesFocus(True)
        self.recipients_edit.setFixedHeight(150)
        self.recipients_error = self._error_label("alert_recipients_error")
        recipients = QVBoxLayout()
        recipients.setSpacing(4)
        recipients.addWidget(self.recipients_edit)
        self.recipients_hint = QLabel("Up to 10 addresses, one per line.")
        self.recipients_hint.setProperty("role", "muted")
        recipients.addWidget(self.recipients_hint)
        recipients.addWidget(self.recipients_error)
        form.addRow("Recipients", recipients)
        self.days_edit = QLineEdit()
        self.days_edit.setObjectName("alert_days")
        self.days_edit.setPlaceholderText("e.g. 30, 7, 1")
        self.days_error = self._error_label("alert_days_error")
        days = QVBoxLayout()
        days.setSpacing(4)
        days.addWidget(self.days_edit)
        hint = QLabel("Days before the workflow URL expires, separated by commas.")
        hint.setProperty("role", "muted")
        hint.setWordWrap(True)
        days.addWidget(hint)
        days.addWidget(self.days_error)
        form.addRow("Warn before expiry", days)
        layout.addLayout(form)
        self.smtp_label = QLabel()
        self.smtp_label.setObjectName("alert_smtp")
        self.smtp_label.setWordWrap(True)
        self.smtp_label.setProperty("role", "muted")
        layout.addWidget(self.smtp_label)
        buttons = QDialogButtonBox()
        self.save_button = buttons.addButton("Save", QDialogButtonBox.ButtonRole.ActionRole)
        self.save_button.setObjectName("alerts_save_button")
        self.save_button.setProperty("role", "primary")
        self.save_button.clicked.connect(lambda: self.tasks.start(self.save()))
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.setObjectName("alerts_close_button")
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._set_editable(False)

    @staticmethod
    def _error_label(name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setProperty("role", "field-error")
        label.setVisible(False)
        return label

    def _set_editable(self, loaded: bool) -> None:
        admin = roles.allows(self.role, roles.ADMIN)
        self.recipients_edit.setReadOnly(not (loaded and admin))
        self.days_edit.setReadOnly(not (loaded and admin))
        self.save_button.setEnabled(loaded)
        roles.gate(self.save_button, self.role, roles.ADMIN, "change the alert settings")

    def show_settings(self, settings: AlertSettings) -> None:
        self.settings = settings
        self.recipients_edit.setPlainText("\n".join(settings.recipients))
        self.days_edit.setText(", ".join(str(d) for d in settings.expiry_warning_days))
        self.recipients_hint.setText(f"Up to {settings.max_recipients} addresses, one per "
                                     "line.")
        self.smtp_label.setText(
            "" if settings.smtp_configured else
            "The tenant has no mail server configured (QP_SMTP_HOST): nothing is mailed "
            "until its administrator sets one.")
        self.smtp_label.setVisible(not settings.smtp_configured)
        self._set_editable(True)

    async def load(self) -> bool:
        try:
            self.show_settings(await self.client.get_alerts())
            return True
        except SessionExpired:
            return False
        except TenantError as exc:
            self.message.show_message("error", exc.message)
            return False

    def _show_error(self, field: str | None, text: str) -> None:
        for label, name in ((self.recipients_error, "recipients"),
                            (self.days_error, "expiry_warning_days")):
            label.setText(text if field == name else "")
            label.setVisible(field == name)
        if field is None:
            self.message.show_message("error", text)
        else:
            self.message.clear()

    async def save(self) -> bool:
        recipients = parse_recipients(self.recipients_edit.toPlainText())
        try:
            days = parse_days(self.days_edit.text())
        except ValueError as exc:
            self._show_error("expiry_warning_days", str(exc))
            return False
        self.save_button.setEnabled(False)
        try:
            saved = await self.client.put_alerts(recipients, days)
        except SessionExpired:
            return False
        except TenantError as exc:
            self._show_error(_field_of(exc), exc.message)
            return False
        finally:
            self.save_button.setEnabled(True)
            self._set_editable(True)
        self._show_error(None, "")
        self.show_settings(saved)
        self.message.show_message("success", "Saved. The tenant uses these settings now.")
        return True


def _field_of(exc: TenantError) -> str | None:
    """The field a 422 names: by its code, or the first of ``details.problems``."""
    if exc.code in RECIPIENT_CODES:
        return "recipients"
    if exc.code in DAYS_CODES:
        return "expiry_warning_days"
    problems = (exc.details or {}).get("problems") or []
    for problem in problems:
        field = str(problem.get("field", "")) if isinstance(problem, dict) else ""
        if "recipients" in field:
            return "recipients"
        if "expiry_warning_days" in field:
            return "expiry_warning_days"
    return None
