"""Building the setup wizard's widgets: the step list and each step's panel."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
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
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services import settings as S
from qp_desktop.services.workflow_url import LABEL
from qp_desktop.ui import wizard_steps as W
from qp_desktop.ui.layout_audit import KEEP_IN_VIEW
from qp_desktop.ui.theme import monospace_font
from qp_desktop.ui.widgets import Banner, ClipboardNote, CopyField, StatusBadge
from qp_desktop.ui.wizard.formatting import (
    StepView,
    _button,
    _label,
)


class StepStack(QStackedWidget):
    """The step panels, as tall as the one shown.

    ``QStackedLayout`` answers height-for-width with its tallest page's, so the scroll area
    around it offered a short step a scroll bar the length of the longest one (and cut its
    card off at the bottom). Pages not shown are sized Ignored (``_show_step``), so the
    other size hints already follow the current page; this makes height-for-width agree.
    """

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt's name
        page = self.currentWidget()
        return page.heightForWidth(width) if page is not None else super().heightForWidth(width)


class WizardLayout:
    """Mixin of :class:`~qp_desktop.ui.wizard.page.SetupWizardPage`: its widgets."""

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
        # The progress and live-update lines stay one line each, never broken in a narrow column.
        self.progress_label = _label(name="progress_label", role="muted", wrap=False)
        self.progress_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        side.addWidget(self.progress_label)
        self.stream_label = _label(name="stream_state", role="muted", wrap=False)
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
        self.stack = StepStack()
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
