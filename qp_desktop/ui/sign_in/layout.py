"""The sign-in window's widgets."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QVBoxLayout,
)

from qp_common.credentials import MIN_PASSWORD_LENGTH
from qp_desktop.ui.widgets import Banner, BusyBar, SecretField

PASSWORD_RULE = f"At least {MIN_PASSWORD_LENGTH} characters,\nnot a common word or name."


class SignInLayout:
    """Mixin of :class:`~qp_desktop.ui.sign_in.window.SignInWindow`: its widgets."""

    # -- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 24, 24, 24)
        # The window never gets smaller than its content (messages can add lines).
        outer.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        outer.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        card = QFrame()
        card.setObjectName("sign_in_card")
        card.setProperty("role", "card")
        card.setMinimumWidth(420)
        card.setMaximumWidth(520)
        # Always the card's natural height: never squeezed (see the page's note on Qt's
        # minimum-height estimate for wrapped labels).
        card.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        row.addWidget(card, 4)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(1)

        layout = QVBoxLayout(card)
        layout.setContentsMargins(28, 26, 28, 24)
        layout.setSpacing(14)

        self.title = QLabel("Sign in")
        self.title.setObjectName("sign_in_title")
        self.title.setProperty("role", "title")
        layout.addWidget(self.title)
        self.subtitle = QLabel()
        self.subtitle.setObjectName("sign_in_subtitle")
        self.subtitle.setProperty("role", "muted")
        self.subtitle.setWordWrap(True)
        layout.addWidget(self.subtitle)

        # Tenant choice
        tenant_box = QVBoxLayout()
        tenant_box.setSpacing(6)
        self.mode_local = QRadioButton("This computer")
        self.mode_local.setObjectName("mode_local")
        self.mode_url = QRadioButton("A tenant server")
        self.mode_url.setObjectName("mode_url")
        self.mode_group = QButtonGroup(self)
        self.mode_group.addButton(self.mode_local)
        self.mode_group.addButton(self.mode_url)
        tenant_box.addWidget(self.mode_local)
        self.local_status = QLabel()
        self.local_status.setObjectName("local_status")
        self.local_status.setProperty("role", "muted")
        self.local_status.setWordWrap(True)
        self.local_status.setContentsMargins(24, 0, 0, 4)
        tenant_box.addWidget(self.local_status)
        tenant_box.addWidget(self.mode_url)
        self.tenant_url = QLineEdit()
        self.tenant_url.setObjectName("tenant_url")
        self.tenant_url.setPlaceholderText("https://qp.example.com")
        url_row = QHBoxLayout()
        url_row.setContentsMargins(24, 0, 0, 0)
        url_row.addWidget(self.tenant_url)
        tenant_box.addLayout(url_row)
        layout.addLayout(tenant_box)

        self.local_banner = Banner("local_tenant_banner")
        layout.addWidget(self.local_banner)
        self.retry_local_button = QPushButton("Try again")
        self.retry_local_button.setObjectName("retry_local_button")
        self.retry_local_button.clicked.connect(self._retry_local)
        self.retry_local_button.setVisible(False)
        # The port the tenant keeps is taken: moving it changes the workflow URL, so it is
        # offered, never done silently.
        self.new_port_button = QPushButton("Use a new port")
        self.new_port_button.setObjectName("new_port_button")
        self.new_port_button.clicked.connect(self._use_new_port)
        self.new_port_button.setVisible(False)
        local_buttons = QHBoxLayout()
        local_buttons.setSpacing(8)
        local_buttons.addWidget(self.retry_local_button)
        local_buttons.addWidget(self.new_port_button)
        local_buttons.addStretch(1)
        layout.addLayout(local_buttons)

        line = QFrame()
        line.setProperty("role", "separator")
        line.setFixedHeight(1)
        layout.addWidget(line)

        form = QFormLayout()
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(10)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.name = QLineEdit()
        self.name.setObjectName("name")
        self.name.setPlaceholderText("Optional")
        self.email = QLineEdit()
        self.email.setObjectName("email")
        self.email.setPlaceholderText("you@example.com")
        self.password = SecretField("password")
        self.confirm_password = SecretField("confirm_password")
        self.name_label = QLabel("Name")
        self.confirm_label = QLabel("Confirm password")
        form.addRow(self.name_label, self.name)
        form.addRow("Email", self.email)
        form.addRow("Password", self.password)
        # The rule is said before the first attempt, not after a refusal.
        self.password_rule = QLabel(PASSWORD_RULE)
        self.password_rule.setObjectName("password_rule")
        self.password_rule.setProperty("role", "muted")
        form.addRow("", self.password_rule)
        form.addRow(self.confirm_label, self.confirm_password)
        layout.addLayout(form)

        self.remember_me = QCheckBox("Remember me on this computer")
        self.remember_me.setObjectName("remember_me")
        self.remember_me.setToolTip("Keeps you signed in using the system keyring. "
                                    "Your password is never stored.")
        layout.addWidget(self.remember_me)

        self.keyring_banner = Banner("keyring_warning")
        layout.addWidget(self.keyring_banner)
        self.message = Banner("sign_in_message")
        layout.addWidget(self.message)

        self.busy = BusyBar("sign_in_busy")
        layout.addWidget(self.busy)
        self.submit_button = QPushButton("Sign in")
        self.submit_button.setObjectName("submit_button")
        self.submit_button.setProperty("role", "primary")
        self.submit_button.setDefault(True)
        self.submit_button.clicked.connect(self.submit)
        layout.addWidget(self.submit_button)

        self.mode_local.toggled.connect(self._on_mode_toggled)
        self.email.returnPressed.connect(self.submit)
        self.password.returnPressed.connect(self.submit)
        self.confirm_password.returnPressed.connect(self.submit)
        self.tenant_url.returnPressed.connect(self.submit)
        # A problem found before sending goes away as soon as the fields no longer have it.
        for edit in (self.tenant_url, self.email, self.password.edit,
                     self.confirm_password.edit, self.name):
            edit.textChanged.connect(self._revalidate)
        self._validation_shown = False
