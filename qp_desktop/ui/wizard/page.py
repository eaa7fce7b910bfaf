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
from typing import Any

import httpx
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QMessageBox,
    QSizePolicy,
    QWidget,
)

from qp_desktop.services import settings as S
from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.event_stream import EventStream
from qp_desktop.services.itglue_watcher import watcher_covers
from qp_desktop.services.session import Session
from qp_desktop.services.settings import Preferences
from qp_desktop.services.tenant_client import (
    CloudPrerequisite,
    ITGlueIntegration,
    SessionExpired,
    TenantClient,
    TenantError,
    WorkflowToken,
)
from qp_desktop.services.wizard_progress import WizardProgress, scope_for
from qp_desktop.services.workflow_url import (
    WorkflowUrl,
    may_copy,
)
from qp_desktop.ui import wizard_steps as W
from qp_desktop.ui.page import Page
from qp_desktop.ui.widgets import CopyField
from qp_desktop.ui.wizard.formatting import (
    PAGE_STYLE,
    REFRESH_INTERVAL_MS,
    StepView,
)
from qp_desktop.ui.wizard.layout import WizardLayout
from qp_desktop.ui.wizard.live import WizardLive
from qp_desktop.ui.wizard.render import WizardRender
from qp_desktop.ui.wizard.url import WizardUrl

log = logging.getLogger(__name__)


class SetupWizardPage(WizardLayout, WizardRender, WizardLive, WizardUrl, Page):
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
        if self.event_stream is None or self._catching_up or self._closed:
            return
        self._catching_up = True
        try:
            page = await self.client.event_page(after_id=self.progress.state.last_event_id,
                                                limit=200, type="workflow_trigger.*")
        except TenantError as exc:
            log.info("wizard could not catch up on triggers: %s", exc)
            return
        finally:
            self._catching_up = False
        if not self._closed:
            self._handle([e.to_json() for e in reversed(page.events)], live=False)
        if self._real_pending and not self._closed:
            try:
                results = await self.client.event_page(after_id=min(self._real_pending) - 1,
                                                       limit=200, type="password_reset.*")
            except TenantError as exc:
                log.info("wizard could not catch up on resets: %s", exc)
                return
            if not self._closed:
                self._handle([e.to_json() for e in reversed(results.events)], live=False)

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

    def _rejection_fix_clicked(self) -> None:
        if self._rejection_step:
            self.go_to(self._rejection_step)

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
