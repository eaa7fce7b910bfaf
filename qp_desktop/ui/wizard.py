"""Setup → IT Glue workflow: a checklist that walks the technician through the IT Glue side
and ticks what it can verify by itself.

The steps are on the left, the current step's instructions and the values to type on the
right. Prerequisites and the workflow URL are checked against the tenant; "Test Action" and
the final real password change tick themselves from the shared event stream when a trigger
on the current workflow token arrives; a trigger the tenant refused says what to fix.
Progress is kept per tenant and per token (:mod:`qp_desktop.services.wizard_progress`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services import settings as S
from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.event_stream import STATE_LIVE, EventStream, EventStreamError
from qp_desktop.services.itglue_watcher import watcher_covers, watcher_instead
from qp_desktop.services.session import Session
from qp_desktop.services.settings import Preferences
from qp_desktop.services.tenant_client import (
    CloudPrerequisite,
    ITGlueIntegration,
    SessionExpired,
    TenantClient,
    TenantError,
    WorkflowToken,
    parse_time,
)
from qp_desktop.services.wizard_progress import WizardProgress, scope_for
from qp_desktop.services.wizard_trigger import send_test_trigger, test_body
from qp_desktop.services.workflow_url import (
    LABEL,
    WorkflowUrl,
    masked,
    may_copy,
    unreachable_warning,
)
from qp_desktop.ui import wizard_steps as W
from qp_desktop.ui.layout_audit import KEEP_IN_VIEW
from qp_desktop.ui.m365_dialog import cloud_prerequisite_text
from qp_desktop.ui.page import Page
from qp_desktop.ui.roles import ADMIN, TECHNICIAN, gate
from qp_desktop.ui.theme import monospace_font
from qp_desktop.ui.timefmt import friendly
from qp_desktop.ui.widgets import Banner, ClipboardNote, CopyField, StatusBadge

log = logging.getLogger(__name__)

REFRESH_INTERVAL_MS = 60_000
TRIGGER_TYPES = ("workflow_trigger.test", "workflow_trigger.received")
REJECTED = "workflow_trigger.rejected"
# The outcome of the reset a real trigger started: the real test passes only on success.
RESET_OK = ("password_reset.succeeded", "password_reset.skipped")
RESET_FAILED = "password_reset.failed"

# Focus must be visible when the technician moves with Tab: the app's style sheet gives
# buttons a 1px border that hides Fusion's focus rectangle, so draw a thicker one here.
PAGE_STYLE = """
QPushButton:focus, QToolButton:focus {
    border: 2px solid palette(highlight); padding: 4px 13px;
}
QListWidget#wizard_steps { outline: 0; }
QListWidget#wizard_steps::item { padding: 7px 8px; border-radius: 6px; margin: 1px 4px; }
QListWidget#wizard_steps::item:selected {
    background: palette(highlight); color: palette(highlighted-text);
}
QListWidget#wizard_steps:focus { border: 2px solid palette(highlight); }
QCheckBox:focus { color: palette(link); }
QLineEdit:read-only { background: palette(alternate-base); }
"""


# -- icons -----------------------------------------------------------------------------------

ICON_COLOURS = {"done": "#2e9e5b", "reopened": "#d98e04", "problem": "#d64545",
                "waiting": "#2f6fde", "todo": "#9aa3ad", "optional": "#c9ced4"}


def step_icon(kind: str, size: int = 18) -> QIcon:
    """A round status mark drawn in code (crisp at any scale; no icon theme needed)."""
    ratio = QGuiApplication.instance() and QGuiApplication.primaryScreen()
    dpr = ratio.devicePixelRatio() if ratio else 1.0
    pixmap = QPixmap(round(size * dpr), round(size * dpr))
    pixmap.setDevicePixelRatio(dpr)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor(ICON_COLOURS.get(kind, ICON_COLOURS["todo"]))
    rect = QRectF(1.5, 1.5, size - 3, size - 3)
    if kind in {"todo", "waiting", "optional"}:
        painter.setPen(QPen(colour, 1.6))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(rect)
        if kind == "waiting":
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawEllipse(rect.center(), size * 0.17, size * 0.17)
    else:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawEllipse(rect)
        pen = QPen(QColor("#ffffff"), max(1.6, size * 0.12))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        s = size
        if kind == "done":
            painter.drawPolyline([QPointF(s * 0.29, s * 0.52), QPointF(s * 0.44, s * 0.66),
                                  QPointF(s * 0.71, s * 0.36)])
        elif kind == "reopened":
            painter.drawLine(QPointF(s / 2, s * 0.28), QPointF(s / 2, s * 0.56))
            painter.drawPoint(QPointF(s / 2, s * 0.72))
        else:
            painter.drawLine(QPointF(s * 0.34, s * 0.34), QPointF(s * 0.66, s * 0.66))
            painter.drawLine(QPointF(s * 0.66, s * 0.34), QPointF(s * 0.34, s * 0.66))
    painter.end()
    return QIcon(pixmap)


# -- small helpers ---------------------------------------------------------------------------

def _label(text: str = "", name: str | None = None, role: str | None = None,
           rich: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    if name:
        label.setObjectName(name)
    if role:
        label.setProperty("role", role)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _button(text: str, name: str, role: str | None = None) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setAutoDefault(True)  # Enter presses a focused button, as Space does
    if role:
        button.setProperty("role", role)
    return button


def when_text(iso: str | None) -> str:
    """``14:05:03 on 12 Mar 2026`` in local time."""
    moment = parse_time(iso) if iso else None
    if moment is None:
        return "an unknown time"
    local = moment.astimezone()
    return f"{local:%H:%M:%S} on {local:%d %b %Y}".replace(" on 0", " on ")


def _token_hint(token: WorkflowToken | None) -> str:
    hint = token.url_hint if token else ""
    return "qpwt_\u2026" + hint.rsplit("\u2026", 1)[-1] if "\u2026" in hint else ""


@dataclass
class StepView:
    """The right-hand panel of one step."""

    widget: QWidget
    status: QLabel
    reopened: Banner


class SetupWizardPage(Page):
    """The IT Glue workflow checklist (page key ``setup``).

    Signals:
        open_page_requested(str): the technician followed a "Fix it" link to another page.
    """

    open_page_requested = Signal(str)

    def __init__(self, client: TenantClient, clipboard: SecretClipboard, prefs: Preferences,
                 session: Session, http: httpx.AsyncClient,
                 event_stream: EventStream | None = None, parent: QWidget | None = None,
                 workflow_url: WorkflowUrl | None = None):
        super().__init__("setup_wizard", parent)
        self.setStyleSheet(PAGE_STYLE)
        self.client = client
        self.clipboard = clipboard
        self.prefs = prefs
        self.session = session
        self.http = http
        self.event_stream = event_stream
        self.workflow_url = workflow_url or WorkflowUrl(client, clipboard)
        tenant_id = session.tenant.id if session.tenant else ""
        self.progress = WizardProgress(prefs.qsettings, scope_for(session.tenant_key, tenant_id))
        self.integration: ITGlueIntegration | None = None
        self.cloud_prerequisites: list[CloudPrerequisite] | None = None
        self._loaded = False
        self._seen: set[int] = set()
        self._deferred: list[dict[str, Any]] = []
        self._refreshing = False
        self._refresh_again = False
        self._catching_up = False
        self._rejection_step: str | None = None
        # Real triggers waiting for their reset's outcome: trigger event id -> proof text.
        self._real_pending: dict[int, str] = {}
        self._real_failure = ""  # why the last real test's reset failed
        # What the tenant itself knows about two of the prerequisites (None: not loaded).
        self.agent_count: int | None = None
        self.matched_count: int | None = None
        self.start_over_dialog: QMessageBox | None = None
        self.views: dict[str, StepView] = {}
        self._build()
        self._render()
        self.go_to(self.first_open_step())
        self.refresh_periodically(REFRESH_INTERVAL_MS)
        if event_stream is not None:
            event_stream.events_received.connect(self._on_events)
            event_stream.state_changed.connect(self._on_stream_state)
        self._show_stream_state()

    # == layout =================================================================================

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(28, 22, 28, 22)
        root.setSpacing(12)

        subtitle = _label("Keep IT Glue open in your browser and follow the steps. Steps "
                          "with a live check tick themselves.", role="muted")
        side = QVBoxLayout()
        side.setSpacing(4)
        self.start_over_button = _button("Start &over\u2026", "start_over_button")
        self.start_over_button.setToolTip("Forget which steps are done, for this tenant")
        self.start_over_button.clicked.connect(self._start_over_clicked)
        side.addWidget(self.start_over_button, 0, Qt.AlignmentFlag.AlignRight)
        self.progress_label = _label(name="progress_label", role="muted")
        self.progress_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        side.addWidget(self.progress_label)
        self.stream_label = _label(name="stream_state", role="muted")
        self.stream_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        side.addWidget(self.stream_label)
        # The banner shows failures of the page's own calls.
        self.build_header(root, "IT Glue workflow", subtitle, side=side, busy="wizard_busy",
                          banner="wizard_banner")
        rejection_row = QHBoxLayout()
        rejection_row.setSpacing(8)
        self.rejection_banner = Banner("rejection_banner")
        rejection_row.addWidget(self.rejection_banner, 1)
        self.rejection_fix_button = _button("Show me", "rejection_fix_button")
        self.rejection_fix_button.setVisible(False)
        self.rejection_fix_button.clicked.connect(self._rejection_fix_clicked)
        rejection_row.addWidget(self.rejection_fix_button, 0, Qt.AlignmentFlag.AlignTop)
        root.addLayout(rejection_row)
        self.notice_banner = Banner("notice_banner")  # reopened steps, or all done
        root.addWidget(self.notice_banner)

        body = QHBoxLayout()
        body.setSpacing(18)
        left = QVBoxLayout()
        left.setSpacing(6)
        steps_caption = QLabel("&Steps")
        steps_caption.setProperty("role", "field-label")
        left.addWidget(steps_caption)
        self.steps_list = QListWidget()
        self.steps_list.setObjectName("wizard_steps")
        self.steps_list.setAccessibleName("Setup steps")
        steps_caption.setBuddy(self.steps_list)
        metrics = self.fontMetrics()
        # Room for the longest title and, on a short window, a vertical scroll bar.
        scroll_bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        self.steps_list.setMinimumWidth(metrics.horizontalAdvance("12. Change a password to "
                                                                  "test") + 70 + scroll_bar)
        self.steps_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.steps_list.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        for number, spec in enumerate(W.STEPS, start=1):
            item = QListWidgetItem(f"{number}. {spec.title}")
            item.setData(Qt.ItemDataRole.UserRole, spec.key)
            self.steps_list.addItem(item)
        # It scrolls when the window is short; the footer below must stay in view.
        self.steps_list.setMinimumHeight(self.steps_list.sizeHintForRow(0) * 5 + 12)
        left.addWidget(self.steps_list, 1)
        body.addLayout(left)

        right = QVBoxLayout()
        right.setSpacing(12)
        self.stack = QStackedWidget()
        self.stack.setObjectName("wizard_detail")
        builders: dict[str, Callable[[QVBoxLayout], None]] = {
            W.PREREQUISITES: self._build_prereqs, W.TOKEN: self._build_token,
            W.TRIGGER_NAME: self._build_trigger_name, W.ACTION_WEBHOOK: self._build_action,
            W.URL: self._build_url, W.PAYLOAD: self._build_payload,
            W.TEST_ACTION: self._build_test_action, W.REAL_TEST: self._build_real_test,
        }
        for number, spec in enumerate(W.STEPS, start=1):
            view = self._build_step(number, spec, builders.get(spec.key))
            self.views[spec.key] = view
            self.stack.addWidget(view.widget)
        # A long step scrolls inside; Back, Mark done and Next never leave the window.
        self.detail_scroll = QScrollArea()
        self.detail_scroll.setObjectName("wizard_detail_scroll")
        self.detail_scroll.setWidgetResizable(True)
        self.detail_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.detail_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.detail_scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes to the step's fields
        self.detail_scroll.setWidget(self.stack)
        right.addWidget(self.detail_scroll, 1)

        footer = QHBoxLayout()
        footer.setSpacing(8)
        self.back_button = _button("&Back", "back_button")
        self.back_button.clicked.connect(lambda: self.go_to_index(self.stack.currentIndex() - 1))
        self.done_button = _button("Mark &done and continue", "done_button", "primary")
        self.done_button.clicked.connect(self._done_clicked)
        self.next_button = _button("&Next", "next_button")
        self.next_button.clicked.connect(lambda: self.go_to_index(self.stack.currentIndex() + 1))
        for button in (self.back_button, self.done_button, self.next_button):
            button.setProperty(KEEP_IN_VIEW, True)
        footer.addWidget(self.back_button)
        footer.addStretch(1)
        footer.addWidget(self.done_button)
        footer.addWidget(self.next_button)
        right.addLayout(footer)
        body.addLayout(right, 1)
        root.addLayout(body, 1)
        self.steps_list.currentRowChanged.connect(self._on_row_changed)

    def _build_step(self, number: int, spec: W.StepSpec,
                    build_body: Callable[[QVBoxLayout], None] | None) -> StepView:
        card = QFrame()
        card.setObjectName(f"step_{spec.key}")
        card.setProperty("role", "card")
        layout = QVBoxLayout(card)
        layout.setContentsMargins(22, 18, 22, 18)
        layout.setSpacing(12)
        counter = _label(f"Step {number} of {len(W.STEPS)}", role="muted")
        layout.addWidget(counter)
        heading = _label(spec.title, role="heading")
        layout.addWidget(heading)
        status = _label(name=f"status_{spec.key}")
        layout.addWidget(status)
        reopened = Banner(f"reopened_{spec.key}")
        layout.addWidget(reopened)
        text = _label(spec.text, name=f"text_{spec.key}", rich=True)
        layout.addWidget(text)
        if build_body is not None:
            build_body(layout)
        layout.addStretch(1)
        return StepView(card, status, reopened)

    def _build_prereqs(self, layout: QVBoxLayout) -> None:
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(8)
        self.connection_mark = QLabel()
        self.connection_text = _label(name="prereq_connection")
        self.fix_connection_button = _button("Fix it: open the IT Glue page", "fix_connection")
        self.fix_connection_button.clicked.connect(
            lambda: self.open_page_requested.emit("itglue"))
        self.token_mark = QLabel()
        self.token_text = _label(name="prereq_token")
        self.fix_token_button = _button("Fix it: go to step 2", "fix_token")
        self.fix_token_button.clicked.connect(lambda: self.go_to(W.TOKEN))
        self.cloud_mark = QLabel()
        self.cloud_text = _label(name="prereq_m365")
        self.fix_cloud_button = _button("Fix it: open Accounts", "fix_m365")
        self.fix_cloud_button.clicked.connect(lambda: self.open_page_requested.emit("accounts"))
        for row, (mark, text, button) in enumerate((
                (self.connection_mark, self.connection_text, self.fix_connection_button),
                (self.token_mark, self.token_text, self.fix_token_button),
                (self.cloud_mark, self.cloud_text, self.fix_cloud_button))):
            grid.addWidget(mark, row, 0, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(text, row, 1)
            grid.addWidget(button, row, 2, Qt.AlignmentFlag.AlignTop)
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        caption = _label("Confirm these yourself:", role="field-label")
        caption.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(caption)
        self.confirm_boxes: dict[str, QCheckBox] = {}
        for key, text in W.CONFIRMATIONS:
            box = QCheckBox(text)
            box.setObjectName(f"confirm_{key}")
            box.setChecked(self.progress.is_confirmed(key))
            box.toggled.connect(lambda checked, k=key: self._confirm_toggled(k, checked))
            layout.addWidget(box)
            self.confirm_boxes[key] = box
        self.tenant_facts = Banner("prereq_tenant_facts")
        layout.addWidget(self.tenant_facts)
        hint = _label("The agent goes on domain controllers and on member or standalone "
                      "servers. A password change in IT Glue reaches only accounts that are "
                      "matched.", role="muted")
        layout.addWidget(hint)

    def _build_token(self, layout: QVBoxLayout) -> None:
        form = QFormLayout()
        form.setHorizontalSpacing(18)
        self.token_badge = StatusBadge("wizard_token_status")
        self.token_expires = _label(name="wizard_token_expires")
        form.addRow("Status", self.token_badge)
        form.addRow("Expires", self.token_expires)
        layout.addLayout(form)
        self.token_public_warning = Banner("wizard_token_public_warning")
        layout.addWidget(self.token_public_warning)
        row = QHBoxLayout()
        self.generate_button = _button("&Generate the URL", "generate_token_button", "primary")
        self.generate_button.clicked.connect(lambda: self.tasks.start(self.generate()))
        self.open_itglue_button = _button("Open the IT Glue page", "open_itglue_button")
        self.open_itglue_button.clicked.connect(lambda: self.open_page_requested.emit("itglue"))
        row.addWidget(self.generate_button)
        row.addWidget(self.open_itglue_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.token_note = _label(name="wizard_token_note", role="muted")
        layout.addWidget(self.token_note)

    def _value_form(self) -> QFormLayout:
        form = QFormLayout()
        form.setHorizontalSpacing(18)
        form.setVerticalSpacing(10)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        return form

    def _build_trigger_name(self, layout: QVBoxLayout) -> None:
        form = self._value_form()
        self.trigger_name = CopyField("trigger_name", self.clipboard,
                                      self.prefs.get(S.WIZARD_TRIGGER_NAME), "the trigger name",
                                      editable=True)
        self._keep_name(S.WIZARD_TRIGGER_NAME, self.trigger_name)
        email = self.progress.state.failure_email or (
            self.session.user.email if self.session.user else "")
        self.failure_email = CopyField("failure_email", self.clipboard, email,
                                       "the failure email", editable=True)
        self.failure_email.edit.setPlaceholderText("alerts@your-msp.example")
        self.failure_email.edit.textEdited.connect(
            lambda text: self.progress.set_failure_email(text.strip()))
        trigger_caption = QLabel("&Trigger name")
        trigger_caption.setBuddy(self.trigger_name.edit)
        email_caption = QLabel("Failure &email")
        email_caption.setBuddy(self.failure_email.edit)
        form.addRow(trigger_caption, self.trigger_name)
        form.addRow(email_caption, self.failure_email)
        layout.addLayout(form)
        hint = _label("You can change the suggestions; what you type here is what gets "
                      "copied.", role="muted")
        layout.addWidget(hint)

    def _build_action(self, layout: QVBoxLayout) -> None:
        form = self._value_form()
        self.action_name = CopyField("action_name", self.clipboard,
                                     self.prefs.get(S.WIZARD_ACTION_NAME), "the action name",
                                     editable=True)
        self._keep_name(S.WIZARD_ACTION_NAME, self.action_name)
        caption = QLabel("&Action name")
        caption.setBuddy(self.action_name.edit)
        form.addRow(caption, self.action_name)
        layout.addLayout(form)

    def _build_url(self, layout: QVBoxLayout) -> None:
        caption = QLabel("Workflow &URL")
        caption.setProperty("role", "field-label")
        layout.addWidget(caption)
        row = QHBoxLayout()
        row.setSpacing(8)
        self.url_field = QLineEdit()
        self.url_field.setObjectName("wizard_url")
        self.url_field.setReadOnly(True)
        self.url_field.setFont(monospace_font())
        self.url_field.setAccessibleName("Workflow URL (masked until revealed)")
        caption.setBuddy(self.url_field)
        row.addWidget(self.url_field, 1)
        self.reveal_button = _button("Re&veal", "wizard_reveal_button")
        self.reveal_button.setCheckable(True)
        self.reveal_button.setToolTip("Show the full URL (the tenant records that you did)")
        self.reveal_button.toggled.connect(self._reveal_toggled)
        row.addWidget(self.reveal_button)
        self.copy_url_button = _button("&Copy URL", "wizard_copy_url_button", "primary")
        self.copy_url_button.clicked.connect(lambda: self.tasks.start(self.copy_url()))
        row.addWidget(self.copy_url_button)
        layout.addLayout(row)
        self.clipboard_note = ClipboardNote(self.clipboard, LABEL, "wizard_clipboard_note")
        layout.addWidget(self.clipboard_note)
        self.url_public_warning = Banner("wizard_public_url_warning")
        layout.addWidget(self.url_public_warning)

    def _build_payload(self, layout: QVBoxLayout) -> None:
        self.payload_grid = QGridLayout()
        self.payload_grid.setHorizontalSpacing(14)
        self.payload_grid.setVerticalSpacing(8)
        for col, text in enumerate(("Key", "Value")):
            header = QLabel(text)
            header.setProperty("role", "field-label")
            self.payload_grid.addWidget(header, 0, col)
        self.payload_grid.setColumnStretch(0, 1)
        self.payload_grid.setColumnStretch(1, 1)
        layout.addLayout(self.payload_grid)
        self._payload_rows: list[tuple[str, str]] = []
        self._payload_widgets: list[QWidget] = []
        self._render_payload()

    def _build_event_step(self, layout: QVBoxLayout, key: str) -> Banner:
        result = Banner(f"{key}_result")
        layout.addWidget(result)
        return result

    def _build_test_action(self, layout: QVBoxLayout) -> None:
        self.test_result = self._build_event_step(layout, W.TEST_ACTION)
        self.test_public_warning = Banner("wizard_test_public_warning")
        layout.addWidget(self.test_public_warning)
        row = QHBoxLayout()
        self.send_test_button = _button("Send &test trigger", "send_test_button")
        self.send_test_button.setToolTip("Post a test body to the workflow URL from this "
                                         "computer, as IT Glue's Test Action does")
        self.send_test_button.clicked.connect(lambda: self.tasks.start(self.send_test()))
        row.addWidget(self.send_test_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.send_test_message = Banner("send_test_message")
        layout.addWidget(self.send_test_message)
        help_text = _label(
            "IT Glue not at hand? Send test trigger posts the same kind of test from this "
            "computer. Nothing arrives after Test Action? Check that the URL in IT Glue is "
            "exactly the current one: a URL the tenant does not know (a typo, a missing "
            "character) is refused without a trace, so nothing can show here. IT Glue's "
            "failure email then tells you it could not deliver.",
            name="test_action_help", role="muted")
        layout.addWidget(help_text)

    def _build_real_test(self, layout: QVBoxLayout) -> None:
        self.real_result = self._build_event_step(layout, W.REAL_TEST)

    # == state =================================================================================

    @property
    def token(self) -> WorkflowToken | None:
        return self.integration.workflow_token if self.integration else None

    def current_token_id(self) -> str | None:
        token = self.token
        return token.id if token else None

    def step_done(self, key: str) -> bool:
        """Done as the checklist shows it (live steps are computed, others remembered)."""
        if key == W.PREREQUISITES:
            connected = bool(self.integration and self.integration.connected)
            # Microsoft 365 links are checked live and shown with their own mark, so they have
            # no box to tick; an unlinked customer does not hold up the rest of the setup
            # (its cloud passwords are simply not reset until it is linked).
            return (connected and not self._contradicted()
                    and all(self.progress.is_confirmed(k) for k, _ in W.CONFIRMATIONS))
        if key == W.TOKEN:
            token = self.token
            return may_copy(token)
        return self.progress.is_done(key)

    def watcher_covers(self) -> bool:
        """Whether password changes reach the tenant through its watcher (IT Glue cannot
        call this tenant): the IT Glue workflow steps are then optional."""
        return watcher_covers(self.integration, self.workflow_address())

    def step_required(self, key: str) -> bool:
        return not (key in W.WORKFLOW_STEPS and self.watcher_covers())

    def step_settled(self, key: str) -> bool:
        """Nothing left to do: done, or optional here."""
        return self.step_done(key) or not self.step_required(key)

    def _contradicted(self) -> list[str]:
        """Ticked prerequisites the tenant can see are not true (as sentences)."""
        found = []
        if self.progress.is_confirmed("agent") and self.agent_count == 0:
            found.append("no agent has enrolled yet")
        if self.progress.is_confirmed("matched") and self.matched_count == 0:
            found.append("no account is matched to an IT Glue password")
        return found

    def workflow_address(self) -> str:
        """The address the workflow URL starts with: for the tenant on this computer its
        public address when one is set, else the address this app reaches the tenant at."""
        if self.session.tenant_key == "local" and self.prefs.get(S.LOCAL_PUBLIC_URL):
            return self.prefs.get(S.LOCAL_PUBLIC_URL)
        return self.client.base_url

    def first_open_step(self) -> str:
        for spec in W.STEPS:
            if not self.step_settled(spec.key):
                return spec.key
        return W.STEPS[-1].key

    def current_step(self) -> str:
        return W.STEPS[max(0, self.stack.currentIndex())].key

    def go_to(self, key: str) -> None:
        self.go_to_index(W.STEP_KEYS.index(key))

    def go_to_index(self, index: int) -> None:
        index = max(0, min(len(W.STEPS) - 1, index))
        self.steps_list.setCurrentRow(index)
        self._show_step(index)

    def _on_row_changed(self, row: int) -> None:
        if row >= 0:
            self._show_step(row)

    def _show_step(self, index: int) -> None:
        # The scrolled area is as tall as the step shown, not as the tallest step.
        for i in range(self.stack.count()):
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            self.stack.widget(i).setSizePolicy(policy, policy)
        self.stack.setCurrentIndex(index)
        self.stack.adjustSize()
        self.detail_scroll.verticalScrollBar().setValue(0)
        self._update_footer()

    # == rendering =============================================================================

    def _icon_kind(self, spec: W.StepSpec) -> str:
        record = self.progress.step(spec.key)
        if spec.check != "live" and record.reopened:
            return "reopened"
        if self.step_done(spec.key):
            return "done"
        if not self.step_required(spec.key):
            return "optional"
        if spec.key == W.PREREQUISITES and self._loaded and not (
                self.integration and self.integration.connected):
            return "problem"
        if spec.key == W.TOKEN and self.token is not None and not may_copy(self.token):
            return "problem"
        if spec.key == W.PREREQUISITES and self._contradicted():
            return "problem"
        if spec.key == W.REAL_TEST and self._real_failure:
            return "problem"
        if spec.check == "event":
            return "waiting"
        return "todo"

    def _render(self) -> None:
        if self._closed:
            return
        done = 0
        for row, spec in enumerate(W.STEPS):
            kind = self._icon_kind(spec)
            done += kind == "done"
            item = self.steps_list.item(row)
            item.setIcon(step_icon(kind))
            state = {"done": "done", "reopened": "open again", "problem": "needs a fix",
                     "waiting": "waiting for a trigger", "todo": "to do",
                     "optional": "optional here"}[kind]
            item.setToolTip(f"{spec.title}: {state}")
            item.setData(Qt.ItemDataRole.AccessibleTextRole,
                         f"Step {row + 1}, {spec.title}, {state}")
            view = self.views[spec.key]
            record = self.progress.step(spec.key)
            if record.reopened:
                view.reopened.show_message("warning", record.reopened)
            else:
                view.reopened.clear()
            status = self._status_text(spec)
            view.status.setText(status)
            view.status.setVisible(bool(status))
        required = [spec.key for spec in W.STEPS if self.step_required(spec.key)]
        done = sum(self.step_done(key) for key in required)
        self.progress_label.setText(f"{done} of {len(required)} steps done")
        self._render_prereqs()
        self._render_token()
        self._render_url()
        self._render_event_results()
        self._render_notice()
        self._update_footer()
        self._update_enabled()

    def _status_text(self, spec: W.StepSpec) -> str:
        record = self.progress.step(spec.key)
        if spec.check == "live":
            if not self._loaded:
                return "Checking with the tenant\u2026"
            if not self.step_done(spec.key):
                return ""
            if spec.key == W.PREREQUISITES:
                return ("\u2714 Done: the tenant checked IT Glue and the workflow URL; the "
                        "rest is as you confirmed it.")
            return "\u2714 Done: checked with the tenant."
        if record.done:
            if spec.check == "event":
                return f"\u2714 Verified at {when_text(record.at)}."
            return f"\u2714 Marked done {friendly(parse_time(record.at))}."
        if not self.step_required(spec.key):
            return W.OPTIONAL_NOTE
        return ""

    def _render_prereqs(self) -> None:
        integration = self.integration
        if integration is None:
            self.connection_text.setText("Checking whether IT Glue is connected\u2026")
            self.connection_mark.setPixmap(step_icon("todo").pixmap(18, 18))
            self.fix_connection_button.setVisible(False)
        elif integration.connected:
            region = (integration.region or "").upper()
            self.connection_text.setText(f"IT Glue is connected ({region} region)."
                                         if region else "IT Glue is connected.")
            self.connection_mark.setPixmap(step_icon("done").pixmap(18, 18))
            self.fix_connection_button.setVisible(False)
        else:
            self.connection_text.setText("IT Glue is not connected to this tenant, so it "
                                         "cannot read the new passwords.")
            self.connection_mark.setPixmap(step_icon("problem").pixmap(18, 18))
            self.fix_connection_button.setVisible(True)
        token = self.token
        ok = may_copy(token)
        if integration is None:
            text, kind = "Checking the workflow URL\u2026", "todo"
        elif token is None:
            text, kind = "There is no workflow URL yet: step 2 makes one.", "todo"
        elif ok:
            days = f", {token.days_left} days left" if token.days_left is not None else ""
            text, kind = f"The workflow URL works ({token.status}{days}).", "done"
        else:
            text, kind = (f"The workflow URL is {token.status}: IT Glue's calls are refused. "
                          "Generate a new one in step 2."), "problem"
        self.token_text.setText(text)
        self.token_mark.setPixmap(step_icon(kind).pixmap(18, 18))
        self.fix_token_button.setVisible(integration is not None and not ok)
        cloud_text, cloud_kind = cloud_prerequisite_text(self.cloud_prerequisites)
        self.cloud_text.setText(cloud_text)
        self.cloud_mark.setPixmap(step_icon(cloud_kind).pixmap(18, 18))
        self.fix_cloud_button.setVisible(cloud_kind == "problem")
        for key, box in self.confirm_boxes.items():
            box.blockSignals(True)
            box.setChecked(self.progress.is_confirmed(key))
            box.blockSignals(False)
        contradicted = self._contradicted()
        if contradicted:
            self.tenant_facts.show_message(
                "warning", "The tenant disagrees: " + " and ".join(contradicted)
                + ". Untick what is not done yet, or do it on the Accounts page.")
        elif self.agent_count is not None and self.matched_count is not None:
            agents = f"{self.agent_count} agent{'s' if self.agent_count != 1 else ''}"
            matched = (f"{self.matched_count} matched account"
                       f"{'s' if self.matched_count != 1 else ''}")
            self.tenant_facts.show_message("info", f"The tenant has {agents} and {matched}.")
        else:
            self.tenant_facts.clear()

    def _render_token(self) -> None:
        token = self.token
        usable = may_copy(token)
        if token is None:
            self.token_badge.set_status("none", "No URL yet")
            self.token_expires.setText("\u2014")
        else:
            self.token_badge.set_status(token.status)
            self.token_expires.setText(friendly(token.expires_at))
        self.generate_button.setVisible(self._loaded and not usable)
        self.generate_button.setText("&Generate the URL" if token is None
                                     else "&Generate a new URL")
        if usable:
            self.token_note.setText("Ready. To replace it (if it leaked, say), use Generate "
                                    "New on the IT Glue page: this checklist then reopens the "
                                    "steps that use the URL.")
        elif token is not None:
            self.token_note.setText("This URL no longer works. Generate a new one; you paste "
                                    "it into IT Glue in step 7.")
        else:
            self.token_note.setText("")
        self.token_note.setVisible(bool(self.token_note.text()))
        warning = ("warning", unreachable_warning(token))
        watcher = self.integration.watcher if self.integration else None
        if watcher is not None and self.watcher_covers():
            warning = ("info", watcher_instead(watcher))
        for banner in (self.token_public_warning, self.url_public_warning):
            if warning[1]:
                banner.show_message(*warning)
            else:
                banner.clear()
        if token is not None and not token.public_url_ok:
            self.test_public_warning.show_message(
                "warning", "IT Glue's Test Action cannot reach this URL from the internet, so "
                "it will fail there. Send test trigger checks the tenant from this computer.")
        else:
            self.test_public_warning.clear()

    def _render_url(self) -> None:
        if self.token is None:
            self.url_field.setText("")
            self.url_field.setPlaceholderText("No workflow URL yet: generate one in step 2.")
        elif self.reveal_button.isChecked() and self.workflow_url.known(self.token):
            self.url_field.setText(self.workflow_url.known(self.token) or "")
        else:
            self.url_field.setText(masked(self.token))
        self.url_field.setCursorPosition(0)

    def _render_payload(self) -> None:
        rows = [(r.key, r.value) for r in self.integration.webhook_payload] \
            if self.integration and self.integration.webhook_payload else list(W.DEFAULT_PAYLOAD)
        if rows == self._payload_rows:
            return
        self._payload_rows = rows
        for widget in self._payload_widgets:
            self.payload_grid.removeWidget(widget)
            widget.hide()
            widget.deleteLater()
        self._payload_widgets = []
        for i, (key, value) in enumerate(rows, start=1):
            key_field = CopyField(f"wizard_payload_key_{i - 1}", self.clipboard, key,
                                  f"\u201c{key}\u201d", mono=True)
            value_field = CopyField(f"wizard_payload_value_{i - 1}", self.clipboard, value,
                                    f"\u201c{value}\u201d", mono=True)
            self.payload_grid.addWidget(key_field, i, 0)
            self.payload_grid.addWidget(value_field, i, 1)
            self._payload_widgets += [key_field, value_field]

    def _render_event_results(self) -> None:
        hint = _token_hint(self.token)
        on = f" ({hint})" if hint else ""
        for key, banner, what in ((W.TEST_ACTION, self.test_result, "a test"),
                                  (W.REAL_TEST, self.real_result, "a real password change")):
            record = self.progress.step(key)
            if record.done:
                banner.show_message("success", f"Received at {when_text(record.at)}: "
                                               f"{record.note}")
            elif key == W.REAL_TEST and self._real_failure:
                banner.show_message("error", self._real_failure)
            elif key == W.REAL_TEST and self._real_pending:
                banner.show_message("info", "The trigger arrived: "
                                    + next(iter(self._real_pending.values()))
                                    + " Waiting for the password reset's result\u2026")
            elif self.token is None:
                banner.show_message("info", "Waiting for a workflow URL (step 2).")
            else:
                banner.show_message("info", f"Listening for {what} on the current URL{on}\u2026")

    def _render_notice(self) -> None:
        reopened = [n for n, spec in enumerate(W.STEPS, start=1)
                    if self.progress.step(spec.key).reopened]
        if reopened:
            steps = ", ".join(str(n) for n in reopened[:-1])
            steps = f"{steps} and {reopened[-1]}" if steps else str(reopened[-1])
            self.notice_banner.show_message(
                "warning", "You have a new workflow URL: update the webhook URL in IT Glue. "
                f"Step{'s' if len(reopened) > 1 else ''} {steps} "
                f"{'are' if len(reopened) > 1 else 'is'} open again.")
        elif self.watcher_covers() and all(self.step_settled(spec.key) for spec in W.STEPS):
            watcher = self.integration.watcher if self.integration else None
            assert watcher is not None
            self.notice_banner.show_message("success", "All set. " + watcher_instead(watcher))
        elif all(self.step_done(spec.key) for spec in W.STEPS):
            token = self.token
            expires = (f" The workflow URL expires {friendly(token.expires_at)}; you are "
                       "warned before it does." if token and token.expires_at else "")
            self.notice_banner.show_message(
                "success", "All set: IT Glue now tells the tenant about every password "
                f"change.{expires}")
        else:
            self.notice_banner.clear()

    def _update_footer(self) -> None:
        index = self.stack.currentIndex()
        spec = W.STEPS[max(0, index)]
        self.back_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < len(W.STEPS) - 1)
        manual = spec.check == "manual"
        self.done_button.setVisible(manual)
        if manual:
            done = self.progress.is_done(spec.key)
            self.done_button.setText("Mark as &not done" if done
                                     else "Mark &done and continue")
            self.done_button.setProperty("role", None if done else "primary")
            self.done_button.style().unpolish(self.done_button)
            self.done_button.style().polish(self.done_button)

    def _update_enabled(self) -> None:
        if self._closed:
            return
        busy = self._busy > 0
        self.busy_bar.setVisible(busy)
        usable = may_copy(self.token)
        self.generate_button.setEnabled(not busy)
        self.reveal_button.setEnabled(not busy and usable)
        self.copy_url_button.setEnabled(not busy and usable)
        self.send_test_button.setEnabled(not busy and usable)
        role = self.session.user.role if self.session.user else None
        gate(self.generate_button, role, ADMIN, "generate a new workflow URL")
        gate(self.reveal_button, role, TECHNICIAN, "reveal the workflow URL")
        gate(self.copy_url_button, role, TECHNICIAN, "copy the workflow URL")
        gate(self.send_test_button, role, TECHNICIAN, "send a test trigger")

    def _show_stream_state(self) -> None:
        stream = self.event_stream
        if stream is None:
            self.stream_label.setText("Live updates: off")
            return
        state, detail = stream.state, stream.detail
        text = {"live": "Live updates: on", "connecting": "Live updates: connecting\u2026",
                "reconnecting": "Live updates: reconnecting\u2026",
                "offline": "Live updates: off"}.get(state, state)
        self.stream_label.setText(text)
        self.stream_label.setToolTip(detail or "")

    # == actions ===============================================================================


    def activate(self) -> None:
        """Refresh from the tenant (called when the page is shown)."""
        self._refresh_soon()

    def _refresh_soon(self) -> None:
        if self._refreshing:
            self._refresh_again = True
            return
        self.tasks.start(self.refresh())

    def _periodic_refresh(self) -> None:
        if self._busy == 0 and self.isVisible():
            self._refresh_soon()

    async def refresh(self) -> bool:
        """Load the integration, follow a new token, then catch up on missed triggers."""
        self._refreshing = True
        try:
            while True:
                self._refresh_again = False

                async def load() -> None:
                    integration = await self.client.get_itglue()
                    facts = await self._tenant_facts()
                    cloud = await self._cloud_prerequisites(integration)
                    # All at once: the checklist reads them together (step 1 is done only
                    # when the tenant's facts agree with what was ticked).
                    self.integration, self.cloud_prerequisites = integration, cloud
                    self.agent_count, self.matched_count = facts
                ok = await self._run(load)
                if ok and not self._closed:
                    self.banner.clear()
                    self._apply_integration()
                if not self._refresh_again:
                    break
        finally:
            self._refreshing = False
        if ok and not self._closed:
            await self.catch_up()
        return ok

    async def _tenant_facts(self) -> tuple[int | None, int | None]:
        """(agents, matched accounts): two prerequisites the tenant can check itself, or
        (None, None) when it could not be asked."""
        try:
            agents = await self.client.list_agents()
            accounts = await self.client.list_accounts()
        except SessionExpired:
            raise
        except TenantError as exc:
            log.info("wizard could not count agents and accounts: %s", exc.code)
            return None, None
        return len(agents), sum(1 for a in accounts if a.itglue_password_id)

    async def _cloud_prerequisites(self, integration: ITGlueIntegration
                                   ) -> list[CloudPrerequisite] | None:
        """Customers with cloud passwords in IT Glue and their Microsoft 365 links, or None
        while that cannot be known (IT Glue not connected or unreachable)."""
        if not integration.connected:
            return None
        try:
            return await self.client.m365_prerequisites()
        except SessionExpired:
            raise
        except TenantError:
            return None

    def _apply_integration(self) -> None:
        first_load, self._loaded = not self._loaded, True
        token_id = self.current_token_id()
        if self.workflow_url.known(self.token) is None:
            self._set_revealed(False)  # a new token: revealed again only on request
        reopened = self.progress.follow_token(token_id, W.URL_STEPS, W.REOPEN_REASON)
        reopened += self.progress.follow_address(self.workflow_address(), W.URL_STEPS,
                                                 W.ADDRESS_REASON)
        if reopened:
            log.info("workflow token changed; reopened %s", ", ".join(reopened))
        self._render_payload()
        deferred, self._deferred = self._deferred, []
        self._handle(deferred, live=True, refresh_on_unknown=False)
        self._render()
        if first_load:  # now that live checks are known: where the technician left off
            self.go_to(self.first_open_step())

    async def catch_up(self) -> None:
        """Triggers logged while this page was not listening (app closed, stream down)."""
        stream = self.event_stream
        if stream is None or self._catching_up or self._closed:
            return
        self._catching_up = True
        try:
            page = await stream.fetch_history(after_id=self.progress.state.last_event_id,
                                              limit=200, type="workflow_trigger.*")
        except EventStreamError as exc:
            log.info("wizard could not catch up on triggers: %s", exc)
            return
        finally:
            self._catching_up = False
        if not self._closed:
            self._handle(list(reversed(page.events)), live=False)
        if self._real_pending and not self._closed:
            try:
                results = await stream.fetch_history(after_id=min(self._real_pending) - 1,
                                                     limit=200, type="password_reset.*")
            except EventStreamError as exc:
                log.info("wizard could not catch up on resets: %s", exc)
                return
            if not self._closed:
                self._handle(list(reversed(results.events)), live=False)

    def _confirm_toggled(self, key: str, checked: bool) -> None:
        self.progress.set_confirmed(key, checked)
        self._render()

    def _keep_name(self, setting: S.Setting[str], field: CopyField) -> None:
        """Remember what the technician types; an emptied box gets the suggestion back."""
        def edited(text: str) -> None:
            if text.strip():
                self.prefs.set(setting, text.strip())

        def finished() -> None:
            if not field.text().strip():
                field.setText(setting.default)
                self.prefs.set(setting, setting.default)
        field.edit.textEdited.connect(edited)
        field.edit.editingFinished.connect(finished)

    def _done_clicked(self) -> None:
        key = self.current_step()
        if self.progress.is_done(key):
            self.progress.mark_undone(key)
            self._render()
            return
        self.progress.mark_done(key)
        self._render()
        index = W.STEP_KEYS.index(key)
        later = [k for k in W.STEP_KEYS[index + 1:] if not self.step_settled(k)]
        self.go_to(later[0] if later else W.STEP_KEYS[min(index + 1, len(W.STEPS) - 1)])

    def _start_over_clicked(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, "Start over?", "Start over?", parent=self)
        box.setObjectName("start_over_dialog")
        box.setInformativeText("Every step goes back to \u201cto do\u201d for this tenant. "
                               "Nothing changes in IT Glue or on the tenant.")
        confirm = box.addButton("Start over", QMessageBox.ButtonRole.DestructiveRole)
        confirm.setObjectName("confirm_start_over_button")
        box.addButton(QMessageBox.StandardButton.Cancel)
        self.start_over_dialog = box

        def finished() -> None:
            if box.clickedButton() is confirm:
                self.start_over()
            self.start_over_dialog = None
            box.deleteLater()
        box.finished.connect(finished)
        box.open()

    def start_over(self) -> None:
        self.progress.reset()
        self.rejection_banner.clear()
        self.rejection_fix_button.setVisible(False)
        self.send_test_message.clear()
        self._render()
        self.go_to(self.first_open_step())

    async def generate(self) -> bool:
        async def post() -> None:
            generated = await self.client.generate_workflow_token(0)
            self.workflow_url.remember(generated.token, generated.url)
            self.integration = await self.client.get_itglue()
            self._apply_integration()
        ok = await self._run(post)
        if ok:
            self.go_to(self.first_open_step())
        return ok

    def _set_revealed(self, revealed: bool) -> None:
        self.reveal_button.blockSignals(True)
        self.reveal_button.setChecked(revealed)
        self.reveal_button.setText("&Hide" if revealed else "Re&veal")
        self.reveal_button.blockSignals(False)

    def _reveal_toggled(self, checked: bool) -> None:
        self._set_revealed(checked)
        if checked:
            self.tasks.start(self.reveal())
        else:
            self._render_url()

    async def _ensure_url(self) -> str | None:
        async def fetch() -> None:
            await self.workflow_url.fetch(self.token)
        return self.workflow_url.known(self.token) if await self._run(fetch) else None

    async def reveal(self) -> bool:
        ok = await self._ensure_url() is not None
        if not ok:
            self._set_revealed(False)
        self._render_url()
        return ok

    async def copy_url(self) -> bool:
        """Copy the URL (the clipboard clears after its delay); never one that has stopped
        working."""
        async def copy() -> None:
            await self.workflow_url.copy(self.token)
        return await self._run(copy)

    async def send_test(self) -> bool:
        """Post a test body to the workflow URL from here and report what happened."""
        self.send_test_message.show_message("info", "Sending a test trigger from this "
                                                    "computer\u2026")
        url = await self._ensure_url()
        if url is None:
            self.send_test_message.clear()
            return False
        self._busy += 1
        self._update_enabled()
        try:
            result = await send_test_trigger(self.http, url, test_body())
        finally:
            self._busy -= 1
            self._update_enabled()
        if self._closed:
            return result.ok
        if result.ok:
            await self.catch_up()  # in case the live stream is down
            message = result.message
            if not self.progress.is_done(W.TEST_ACTION):
                message += " This step ticks as soon as the tenant reports it."
            if self.token is not None and not self.token.public_url_ok:
                message += (" It reached the tenant from this computer; IT Glue still cannot "
                            "reach this address from the internet.")
            self.send_test_message.show_message("success", message)
        else:
            self.send_test_message.show_message("error", result.message)
        return result.ok

    def _rejection_fix_clicked(self) -> None:
        if self._rejection_step:
            self.go_to(self._rejection_step)

    # == live verification =====================================================================

    def _on_events(self, events: list[dict[str, Any]]) -> None:
        if not self._closed:
            self._handle(events, live=True)

    def _on_stream_state(self, state: str, _detail: str) -> None:
        self._show_stream_state()
        if state == STATE_LIVE and self._loaded and not self._closed:
            # The stream starts "from now"; anything logged before it went live is fetched.
            self.tasks.start(self.catch_up())

    def _handle(self, events: list[dict[str, Any]], live: bool,
                refresh_on_unknown: bool = True) -> None:
        changed = False
        for event in events:
            try:
                event_id = int(event.get("id", 0))
            except (TypeError, ValueError):
                continue
            if event_id in self._seen:
                continue
            kind = str(event.get("type", ""))
            if kind.startswith("password_reset."):
                changed |= self._apply_reset_result(kind, event)
                continue
            if kind.startswith(("agent.", "account.")) and live:
                self._refresh_soon()  # the prerequisites' counts may have changed
                continue
            if kind.startswith(("token.", "integration.")):
                if live:
                    self._refresh_soon()
                continue
            if not kind.startswith("workflow_trigger."):
                continue  # only triggers are remembered: the set stays small under bursts
            current = self.current_token_id()
            token_id = event.get("token_id")
            token_id = None if token_id is None else str(token_id)
            if (current is None and not self._loaded) or (
                    current is not None and token_id is not None and _newer(token_id, current)):
                # A token this page has not loaded yet: decide after the next refresh.
                self._deferred.append(event)
                if refresh_on_unknown:
                    self._refresh_soon()
                continue
            self._seen.add(event_id)
            self.progress.remember_event(event_id)
            if not live and not self._after_current_token(event):
                continue
            changed |= self._apply_trigger(kind, event, token_id == current)
        if changed:
            self._render()

    def _after_current_token(self, event: dict[str, Any]) -> bool:
        token = self.token
        occurred = parse_time(event.get("occurred_at"))
        return bool(token and token.created_at and occurred and occurred >= token.created_at)

    def _apply_trigger(self, kind: str, event: dict[str, Any], current: bool) -> bool:
        if kind == REJECTED:
            self._show_rejection(event)
            return False
        if kind not in TRIGGER_TYPES:
            return False
        if not current:
            self._show_old_url_in_use()
            return False
        self.rejection_banner.clear()
        self.rejection_fix_button.setVisible(False)
        note = self._describe_trigger(kind, event)
        at = str(event.get("occurred_at") or "") or None
        changed = False
        test = self.progress.step(W.TEST_ACTION)
        if not test.done:
            self.progress.mark_done(W.TEST_ACTION, note, at)
            changed = True
        if kind == "workflow_trigger.received" and not self.progress.is_done(W.REAL_TEST):
            # Done only once the password it carried reached the account (see below).
            self._real_pending[int(event.get("id", 0))] = note
            self._real_failure = ""
            changed = True
        return changed

    def _apply_reset_result(self, kind: str, event: dict[str, Any]) -> bool:
        """A reset ended: it decides the real test started by its trigger."""
        if kind not in (*RESET_OK, RESET_FAILED):
            return False  # queued, retrying: not an outcome yet
        details = event.get("details") or {}
        try:
            trigger = int(details.get("trigger_event_id") or 0)
        except (TypeError, ValueError):
            return False
        note = self._real_pending.pop(trigger, None)
        if note is None or self.progress.is_done(W.REAL_TEST):
            return False
        if kind in RESET_OK:
            where = f" The new password reached {event['account']}." \
                if event.get("account") else ""
            at = str(event.get("occurred_at") or "") or None
            self.progress.mark_done(W.REAL_TEST, note + where, at)
            self._real_failure = ""
            return True
        if kind == RESET_FAILED:
            summary = str(event.get("summary") or "the reset failed").rstrip(".")
            self._real_failure = (
                f"IT Glue's trigger arrived, but the password was not changed: {summary}. "
                "Fix that (the Accounts page shows each account's match and agent), then "
                "change the password in IT Glue again.")
            return True
        return False

    @staticmethod
    def _describe_trigger(kind: str, event: dict[str, Any]) -> str:
        name = event.get("resource_name") or "a password"
        details = event.get("details") or {}
        keys = [str(k) for k in details.get("keys") or []]
        if kind == "workflow_trigger.test":
            text = f"a test trigger for \u201c{name}\u201d"
        else:
            text = f"a password change in IT Glue for \u201c{name}\u201d"
        if keys:
            text += f" (keys: {', '.join(keys)})"
        missing = [k for k, _ in W.DEFAULT_PAYLOAD if keys and k not in keys]
        text += "."
        if missing:
            text += (f" The body had no {', '.join(missing)}: check the Key/Value rows "
                     "(step 8).")
        return text

    def _show_rejection(self, event: dict[str, Any]) -> None:
        details = event.get("details") or {}
        code = str(details.get("code") or "")
        hint = str(details.get("token_hint") or "")
        advice = W.REJECTION_ADVICE.get(code)
        when = when_text(event.get("occurred_at"))
        if advice is None:
            summary = str(event.get("summary") or "The tenant refused a workflow trigger.")
            text, step = f"{summary} ({when})", None
        else:
            template, step = advice
            text = (f"The tenant refused a trigger at {when}. "
                    + template.format(hint=f" ({hint})" if hint else ""))
        self.rejection_banner.show_message("error", text)
        self._rejection_step = step
        if step is not None:
            number = W.STEP_KEYS.index(step) + 1
            self.rejection_fix_button.setText(f"Go to step {number}")
        self.rejection_fix_button.setVisible(step is not None)

    def _show_old_url_in_use(self) -> None:
        token = self.token
        grace = token.grace_until if token else None
        until = f" until {friendly(grace)}" if grace else " for now"
        self.rejection_banner.show_message(
            "warning", "IT Glue called the previous workflow URL. It still works" + until
            + ", but paste the current URL into the Webhook action before then.")
        self._rejection_step = W.URL
        self.rejection_fix_button.setText(f"Go to step {W.STEP_KEYS.index(W.URL) + 1}")
        self.rejection_fix_button.setVisible(True)


    # == lifecycle =============================================================================

    def shutdown(self) -> None:
        """The window is going away: stop listening and forget the URL."""
        super().shutdown()
        self.workflow_url.forget()
        if self.event_stream is not None:
            for signal, slot in ((self.event_stream.events_received, self._on_events),
                                 (self.event_stream.state_changed, self._on_stream_state)):
                with contextlib.suppress(RuntimeError, TypeError):  # gone with the stream
                    signal.disconnect(slot)

    def forget_secrets(self) -> None:
        self.workflow_url.forget()
        self._set_revealed(False)
        self._render_url()


def _newer(token_id: str, current: str) -> bool:
    try:
        return int(token_id) > int(current)
    except ValueError:
        return False
