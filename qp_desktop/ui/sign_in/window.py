"""The sign-in window: choose the tenant, sign in, or create the local administrator.

It is the first thing on screen, so this module imports only PySide6 and light modules: the
session, the local tenant and the tenant client (httpx, keyring) are handed over by
:meth:`SignInWindow.attach` once they are built, and their errors are imported where caught.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QLineEdit,
    QWidget,
)

from qp_common.credentials import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from qp_common.urls import normalise_tenant_url
from qp_desktop.services import settings as S
from qp_desktop.services.settings import Preferences
from qp_desktop.services.tasks import TaskSet
from qp_desktop.ui.sign_in.layout import SignInLayout

if TYPE_CHECKING:
    from PySide6.QtGui import QCloseEvent, QKeyEvent, QShowEvent

    from qp_desktop.services.local_tenant import ChildServerError, LocalTenant
    from qp_desktop.services.session import Session
    from qp_desktop.services.tenant_client import TenantError

LOCAL_TENANT_KEY = "local"
# Two short lines rather than a wrapped label: the form column is narrow, and a wrapped
# label's height is underestimated there, which squeezes the fields around it.


def describe_sign_in_error(exc: TenantError) -> str:
    """The sentence shown for a failed sign-in."""
    from qp_desktop.ui.timefmt import wait_text  # datetime: not needed to show the window

    if exc.code == "too_many_attempts":
        if exc.retry_after:
            return (f"Too many sign-in attempts. For your account's safety, wait "
                    f"{wait_text(exc.retry_after)} before trying again.")
        return exc.message
    return exc.message


class SignInWindow(SignInLayout, QWidget):
    """Built with the session and the local tenant, or without them (``None``) to be shown
    at start-up before they exist and :meth:`attach`-ed to them right after; until then
    nothing can be sent and the local tenant is not started.

    Signals:
        closed: the technician closed the window.
    """

    closed = Signal()

    def __init__(self, session: Session | None, local_tenant: LocalTenant | None,
                 prefs: Preferences, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sign_in_window")
        self.setWindowTitle("Sign in \u2014 QP Desktop")
        self._session = session
        self._local_tenant = local_tenant
        self.prefs = prefs
        self.tasks = TaskSet()
        self.first_run = False
        self._local_checked = False
        # Busy is a state, not the bar's visibility: the bar reads as hidden whenever the
        # window is, e.g. while a silent sign-in hides this window.
        self._busy = False
        self._placed = False
        self._build()
        self._load_preferences()
        self._update_mode()
        self.resize(560, 680)

    def attach(self, session: Session, local_tenant: LocalTenant) -> None:
        """Hand over the services of a window built without them."""
        self._session, self._local_tenant = session, local_tenant
        self.update_keyring_warning()
        self._update_enabled()

    @property
    def attached(self) -> bool:
        return self._session is not None and self._local_tenant is not None

    @property
    def session(self) -> Session:
        assert self._session is not None, "SignInWindow.attach() was not called"
        return self._session

    @property
    def local_tenant(self) -> LocalTenant:
        assert self._local_tenant is not None, "SignInWindow.attach() was not called"
        return self._local_tenant

    def _load_preferences(self) -> None:
        local = self.prefs.get(S.TENANT_MODE) != "url"
        self.mode_local.setChecked(local)
        self.mode_url.setChecked(not local)
        self.tenant_url.setText(self.prefs.get(S.TENANT_URL))
        self.email.setText(self.prefs.get(S.LAST_EMAIL))
        self.remember_me.setChecked(self.prefs.get(S.REMEMBER_ME))
        self.update_keyring_warning()

    def set_tenant_url(self, url: str) -> None:
        """``--tenant URL`` on the command line."""
        self.mode_url.setChecked(True)
        self.tenant_url.setText(url)

    def update_keyring_warning(self) -> None:
        if self._session is None:
            return  # said by attach()
        warning = self.session.store.warning
        if warning:
            self.keyring_banner.show_message("warning", warning)
            self.remember_me.setChecked(False)
            self.remember_me.setEnabled(False)
        else:
            self.keyring_banner.clear()
            self.remember_me.setEnabled(True)

    # -- state --------------------------------------------------------------------------------

    @property
    def local_mode(self) -> bool:
        return self.mode_local.isChecked()

    def _on_mode_toggled(self, _checked: bool) -> None:
        self.message.clear()
        self._update_mode()
        if (self.attached and self.local_mode and not self.local_tenant.running
                and self.isVisible()):
            self.start_local()

    def _update_mode(self) -> None:
        local = self.local_mode
        self.tenant_url.setEnabled(not local)
        first_run = local and self.first_run
        for widget in (self.name, self.name_label, self.confirm_password, self.confirm_label,
                       self.password_rule):
            widget.setVisible(first_run)
        if first_run:
            self.title.setText("Welcome")
            self.subtitle.setText(
                "Create the local administrator for the tenant on this computer. You will "
                "use this email and password to sign in.")
            self.submit_button.setText("Create administrator")
        else:
            self.title.setText("Sign in")
            self.subtitle.setText("Sign in to manage your IT Glue workflow and watch "
                                  "password changes as they happen.")
            self.submit_button.setText("Sign in")
        if not local:
            self.local_banner.clear()
            self.retry_local_button.setVisible(False)
            self.new_port_button.setVisible(False)
            self.local_status.setText("Runs a private tenant on this computer.")
        self._update_enabled()

    def _update_enabled(self) -> None:
        busy = self._busy
        if not self.attached:
            self.submit_button.setEnabled(False)
            self.remember_me.setEnabled(False)
            return
        local_ready = self.local_tenant.running and self._local_checked
        can_submit = not busy and (not self.local_mode or local_ready)
        self.submit_button.setEnabled(can_submit)
        for widget in (self.mode_local, self.mode_url, self.email, self.password,
                       self.confirm_password, self.name):
            widget.setEnabled(not busy)
        self.tenant_url.setEnabled(not busy and not self.local_mode)
        self.remember_me.setEnabled(not busy and self.session.store.available)

    def set_busy(self, busy: bool, text: str = "") -> None:
        self._busy = busy
        self.busy.setVisible(busy)
        if busy and text:
            self.message.show_message("info", text)
        elif not busy and self.message.kind == "info":
            self.message.clear()
        self._update_enabled()

    # -- local tenant -------------------------------------------------------------------------

    def start_local(self) -> None:
        self.tasks.start(self.prepare_local())

    def _retry_local(self) -> None:
        self.start_local()

    def _use_new_port(self) -> None:
        """Let the tenant pick a free port; the new one is kept from then on."""
        self.local_tenant.port = 0
        self.prefs.set(S.LOCAL_TENANT_PORT, 0)
        self.start_local()

    def _show_local_failure(self, exc: ChildServerError) -> None:
        from qp_desktop.services.local_tenant import PortTakenError

        self.local_status.setText("Not running.")
        self.local_banner.show_message("error", exc.message, exc.details)
        self.retry_local_button.setVisible(True)
        self.new_port_button.setVisible(isinstance(exc, PortTakenError))

    async def prepare_local(self) -> bool:
        """Start the local tenant if needed and find out whether it needs its administrator."""
        from qp_desktop.services.local_tenant import ChildServerError
        from qp_desktop.services.tenant_client import TenantError

        self.local_banner.clear()
        self.retry_local_button.setVisible(False)
        self.new_port_button.setVisible(False)
        self.local_status.setText("Starting the tenant on this computer\u2026")
        self._busy = True
        self.busy.setVisible(True)
        self._update_enabled()
        try:
            url = await self.local_tenant.ensure_started()
            self.first_run = await self.session.client.at(url).setup_status()
            self._local_checked = True
            self.local_status.setText(f"Ready at {self.local_tenant.url}. Your data stays on "
                                      "this computer.")
            return True
        except ChildServerError as exc:
            self._show_local_failure(exc)
            return False
        except TenantError as exc:
            self.local_status.setText("Not running.")
            self.local_banner.show_message("error", exc.message)
            self.retry_local_button.setVisible(True)
            return False
        finally:
            self._busy = False
            self.busy.setVisible(False)
            self._update_mode()

    # -- signing in ---------------------------------------------------------------------------

    def submit(self) -> None:
        if not self.submit_button.isEnabled():
            return
        self.tasks.start(self._submit())

    def _validate(self) -> str | None:
        if not self.local_mode:
            try:
                normalise_tenant_url(self.tenant_url.text())
            except ValueError as exc:
                return str(exc)
        email = self.email.text().strip()
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            return "Enter your email address."
        if not self.password.text():
            return "Enter your password."
        if self.local_mode and self.first_run:
            if len(self.password.text()) < MIN_PASSWORD_LENGTH:
                return f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters."
            if len(self.password.text()) > MAX_PASSWORD_LENGTH:
                return f"Choose a password of at most {MAX_PASSWORD_LENGTH} characters."
            if self.password.text() != self.confirm_password.text():
                return "The two passwords do not match."
        return None

    def _revalidate(self, *_: object) -> None:
        if not self._validation_shown:
            return
        problem = self._validate()
        if problem is None:
            self._validation_shown = False
            self.message.clear()
        elif problem != self.message.label.text():
            self.message.show_message("error", problem)

    async def _submit(self) -> None:
        from qp_desktop.services.local_tenant import ChildServerError
        from qp_desktop.services.tenant_client import TenantError

        problem = self._validate()
        if problem:
            self.message.show_message("error", problem)
            self._validation_shown = True
            return
        self._validation_shown = False
        remember = self.remember_me.isChecked() and self.session.store.available
        email = self.email.text().strip()
        self.prefs.set(S.TENANT_MODE, "local" if self.local_mode else "url")
        self.prefs.set(S.LAST_EMAIL, email)
        self.prefs.set(S.REMEMBER_ME, remember)
        creating = self.local_mode and self.first_run
        self.set_busy(True, "Creating the administrator\u2026" if creating else "Signing in\u2026")
        try:
            if self.local_mode:
                url = await self.local_tenant.ensure_started()
                if creating:
                    await self.session.create_admin(
                        url, LOCAL_TENANT_KEY, self.local_tenant.setup_token, email,
                        self.password.text(), remember, self.name.text().strip() or None)
                else:
                    await self.session.sign_in(url, LOCAL_TENANT_KEY, email,
                                               self.password.text(), remember)
            else:
                url = normalise_tenant_url(self.tenant_url.text())
                self.tenant_url.setText(url)
                self.prefs.set(S.TENANT_URL, url)
                await self.session.sign_in(url, url, email, self.password.text(), remember)
        except ChildServerError as exc:
            self.set_busy(False)
            self._show_local_failure(exc)
            return
        except TenantError as exc:
            self.set_busy(False)
            if exc.code == "already_set_up":
                self.first_run = False
                self._update_mode()
            self.message.show_message("error", describe_sign_in_error(exc))
            return
        self.set_busy(False)
        self.first_run = False
        self.password.clear()
        self.confirm_password.clear()
        self._update_mode()
        self.update_keyring_warning()

    async def resume(self, base_url: str, tenant_key: str) -> bool:
        """Silent sign-in with the remembered token, showing progress while it runs."""
        from qp_desktop.services.tenant_client import TenantError

        self.set_busy(True, "Signing you in\u2026")
        try:
            return await self.session.resume(base_url, tenant_key)
        except TenantError as exc:
            self.set_busy(False)
            self.message.show_message("error", exc.message)
            return False
        finally:
            if self._busy:
                self.set_busy(False)

    def first_field(self) -> QWidget:
        """Where typing should go: the first field that still needs something."""
        if not self.local_mode and not self.tenant_url.text().strip():
            return self.tenant_url
        if self.local_mode and self.first_run and not self.email.text().strip():
            return self.name
        if not self.email.text().strip():
            return self.email
        return self.password.edit

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt naming
        if not self._placed:
            from qp_desktop.ui.screen import fit_on_screen

            self._placed = True
            fit_on_screen(self, move=True)
        super().showEvent(event)
        # After the window manager has mapped the window, so the focus sticks.
        QTimer.singleShot(0, self._focus_first_field)

    def _focus_first_field(self) -> None:
        focused = self.focusWidget()
        if focused is None or not focused.isEnabled() or not isinstance(focused, QLineEdit):
            # Qt's default reason, OtherFocusReason; naming it would build PySide's ``Qt``
            # namespace (dozens of enums) before the window is painted.
            self.first_field().setFocus()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt naming
        from PySide6.QtCore import Qt

        # Enter on a check box or a radio button (which ignore it) signs in too.
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.submit()
            return
        super().keyPressEvent(event)

    def show_expired(self, message: str) -> None:
        """Back from the main window: keep what was typed and say why."""
        self.update_keyring_warning()
        self.message.show_message("warning", message)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt naming
        self.tasks.cancel_all()
        self.closed.emit()
        super().closeEvent(event)
