"""Building the IT Glue page's widgets: connection, workflow URL, payload rows."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from qp_desktop.services.workflow_url import LABEL
from qp_desktop.ui.itglue.formatting import REGIONS, _form, _label
from qp_desktop.ui.theme import monospace_font
from qp_desktop.ui.widgets import (
    Banner,
    ClipboardNote,
    SecretField,
    StatusBadge,
)


class ITGlueLayout:
    """Mixin of :class:`~qp_desktop.ui.itglue.page.ITGluePage`: its widgets."""

    # -- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(28, 22, 28, 28)
        root.setSpacing(16)

        self.build_header(root, "IT Glue",
                          "Connect IT Glue and give its password workflow a URL to call.",
                          refresh="refresh_button", busy="itglue_busy", banner="itglue_banner")

        for box in (self._build_connection(), self._build_token(), self._build_payload()):
            # Never squeeze a group below its natural height: the scroll area scrolls instead
            # (wrapped labels make Qt underestimate the page's minimum height otherwise).
            box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            root.addWidget(box)
        root.addStretch(1)

    def _build_connection(self) -> QGroupBox:
        box = QGroupBox("Connection")
        box.setObjectName("connection_box")
        layout = QVBoxLayout(box)
        layout.setSpacing(12)
        form = _form()
        self.connection_badge = StatusBadge("connection_status")
        self.region_label = _label(name="region_label", wrap=False)
        self.key_hint_label = _label(name="key_hint_label", wrap=False)
        self.key_hint_label.setFont(monospace_font())
        self.last_verified_label = _label(name="last_verified_label", wrap=False)
        self.last_error_label = _label(name="last_error_label")
        form.addRow("Status", self.connection_badge)
        form.addRow("Region", self.region_label)
        form.addRow("API key", self.key_hint_label)
        form.addRow("Last verified", self.last_verified_label)
        form.addRow("Last error", self.last_error_label)
        # The tenant's watcher (absent on a tenant without one: the row stays hidden).
        self.watcher_label = _label(name="watcher_label")
        form.addRow("Watcher", self.watcher_label)
        self.connection_form = form
        form.setRowVisible(self.watcher_label, False)
        layout.addLayout(form)

        self.connect_heading = QLabel()
        self.connect_heading.setProperty("role", "heading")
        self.connect_heading.setContentsMargins(0, 8, 0, 0)
        layout.addWidget(self.connect_heading)
        connect_form = _form()
        self.region_combo = QComboBox()
        self.region_combo.setObjectName("region_combo")
        for code, name in REGIONS:
            self.region_combo.addItem(f"{name} ({code})", code)
        self.api_key = SecretField("api_key", "ITG.\u2026")
        connect_form.addRow("Region", self.region_combo)
        connect_form.addRow("API key", self.api_key)
        layout.addLayout(connect_form)
        self.connection_message = Banner("connection_message")
        layout.addWidget(self.connection_message)
        note = _label("The tenant checks the key with IT Glue before saving it. The key "
                      "needs the \u201cPassword Access\u201d option.", selectable=False)
        note.setProperty("role", "muted")
        layout.addWidget(note)
        buttons = QHBoxLayout()
        self.connect_button = QPushButton("Connect")
        self.connect_button.setObjectName("connect_button")
        self.connect_button.setProperty("role", "primary")
        self.connect_button.clicked.connect(self._connect_clicked)
        self.api_key.returnPressed.connect(self._connect_clicked)
        self.disconnect_button = QPushButton("Disconnect\u2026")
        self.disconnect_button.setObjectName("disconnect_button")
        self.disconnect_button.setProperty("role", "danger")
        self.disconnect_button.clicked.connect(self._disconnect_clicked)
        buttons.addWidget(self.connect_button)
        buttons.addStretch(1)
        buttons.addWidget(self.disconnect_button)
        layout.addLayout(buttons)
        return box

    def _build_token(self) -> QGroupBox:
        box = QGroupBox("Workflow Trigger Token")
        box.setObjectName("token_box")
        layout = QVBoxLayout(box)
        layout.setSpacing(12)
        intro = _label("IT Glue\u2019s workflow calls this secret URL when a password "
                       "changes. Treat it like a password.", selectable=False)
        intro.setProperty("role", "muted")
        layout.addWidget(intro)
        form = _form()
        self.token_badge = StatusBadge("token_status")
        self.created_label = _label(name="token_created_label", wrap=False)
        self.expires_label = _label(name="token_expires_label", wrap=False)
        self.days_left_label = _label(name="token_days_left_label", wrap=False)
        self.last_used_label = _label(name="token_last_used_label", wrap=False)
        form.addRow("Status", self.token_badge)
        form.addRow("Created", self.created_label)
        form.addRow("Expires", self.expires_label)
        form.addRow("Days left", self.days_left_label)
        form.addRow("Last used", self.last_used_label)

        layout.addLayout(form)

        url_caption = QLabel("Workflow URL")
        url_caption.setProperty("role", "field-label")
        layout.addWidget(url_caption)
        url_row = QHBoxLayout()
        url_row.setSpacing(8)
        self.url_field = QLineEdit()
        self.url_field.setObjectName("workflow_url")
        self.url_field.setReadOnly(True)
        self.url_field.setFont(monospace_font())
        self.url_field.setMinimumWidth(320)
        url_row.addWidget(self.url_field, 1)
        self.reveal_button = QPushButton("Reveal")
        self.reveal_button.setObjectName("reveal_button")
        self.reveal_button.setCheckable(True)
        self.reveal_button.setToolTip("Show the full URL (the tenant records that you did)")
        self.reveal_button.toggled.connect(self._reveal_toggled)
        url_row.addWidget(self.reveal_button)
        layout.addLayout(url_row)

        self.public_url_warning = Banner("public_url_warning")
        layout.addWidget(self.public_url_warning)

        buttons = QHBoxLayout()
        self.copy_url_button = QPushButton("Copy URL")
        self.copy_url_button.setObjectName("copy_url_button")
        self.copy_url_button.setProperty("role", "primary")
        self.copy_url_button.clicked.connect(self._copy_url_clicked)
        self.generate_button = QPushButton("Generate New\u2026")
        self.generate_button.setObjectName("generate_button")
        self.generate_button.clicked.connect(self._generate_clicked)
        buttons.addWidget(self.copy_url_button)
        buttons.addWidget(self.generate_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.clipboard_note = ClipboardNote(self.clipboard, LABEL, "clipboard_note")
        layout.addWidget(self.clipboard_note)
        return box

    def _build_payload(self) -> QGroupBox:
        box = QGroupBox("Webhook payload for IT Glue")
        box.setObjectName("payload_box")
        layout = QVBoxLayout(box)
        layout.setSpacing(10)
        intro = _label("In the Webhook action of the IT Glue workflow, add these rows under "
                       "JSON payload (Key / Value):", selectable=False)
        intro.setProperty("role", "muted")
        layout.addWidget(intro)
        self.payload_grid = QGridLayout()
        self.payload_grid.setHorizontalSpacing(12)
        self.payload_grid.setVerticalSpacing(8)
        layout.addLayout(self.payload_grid)
        self._payload_widgets: list[QWidget] = []
        return box
