"""Showing the setup wizard's state: marks, texts, banners, enabled controls."""

from __future__ import annotations

from PySide6.QtCore import Qt

from qp_desktop.services.itglue_watcher import watcher_instead
from qp_desktop.services.tenant_client import parse_time
from qp_desktop.services.workflow_url import (
    masked,
    may_copy,
    unreachable_warning,
)
from qp_desktop.ui import wizard_steps as W
from qp_desktop.ui.m365_dialog import cloud_prerequisite_text
from qp_desktop.ui.roles import ADMIN, TECHNICIAN, gate
from qp_desktop.ui.timefmt import friendly
from qp_desktop.ui.widgets import CopyField
from qp_desktop.ui.wizard.formatting import (
    _token_hint,
    step_icon,
    when_text,
)


class WizardRender:
    """Mixin of :class:`~qp_desktop.ui.wizard.page.SetupWizardPage`: rendering."""

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
        # Beside a list of twelve, "1 of 2 steps done" reads as a mistake: say which two.
        self.progress_label.setText(
            f"{done} of {len(required)} steps done" if len(required) == len(W.STEPS)
            else f"Required: {done} of {len(required)} done")
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
                                  f"\u201c{key}\u201d", mono=True, fit=True)
            value_field = CopyField(f"wizard_payload_value_{i - 1}", self.clipboard, value,
                                    f"\u201c{value}\u201d", mono=True, fit=True)
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
