"""Live verification: events from the stream tick the wizard's steps."""

from __future__ import annotations

from typing import Any

from qp_desktop.services.event_stream import STATE_LIVE
from qp_desktop.services.tenant_client import parse_time
from qp_desktop.ui import wizard_steps as W
from qp_desktop.ui.timefmt import friendly
from qp_desktop.ui.wizard import triggers as T
from qp_desktop.ui.wizard.formatting import (
    _newer,
)


class WizardLive:
    """Mixin of :class:`~qp_desktop.ui.wizard.page.SetupWizardPage`: events in."""

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
            role = T.event_role(kind)
            if role == T.RESET:
                changed |= self._apply_reset_result(event)
                continue
            if role in (T.FACTS, T.CONFIG):
                if live:
                    self._refresh_soon()  # counts, the token or the integration changed
                continue
            if role != T.TRIGGER:
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
        if T.is_refused_trigger(kind):
            self._show_rejection(event)
            return False
        if not T.is_accepted_trigger(kind):
            return False
        if not current:
            self._show_old_url_in_use()
            return False
        self.rejection_banner.clear()
        self.rejection_fix_button.setVisible(False)
        note = T.describe_trigger(kind, event)
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

    def _apply_reset_result(self, event: dict[str, Any]) -> bool:
        """A reset ended: it decides the real test started by its trigger."""
        trigger = T.reset_trigger_id(event)
        if trigger is None:
            return False
        note = self._real_pending.pop(trigger, None)
        if note is None or self.progress.is_done(W.REAL_TEST):
            return False
        if T.reset_succeeded(event):
            at = str(event.get("occurred_at") or "") or None
            self.progress.mark_done(W.REAL_TEST, T.real_test_note(note, event), at)
            self._real_failure = ""
        else:
            self._real_failure = T.real_test_failure(event)
        return True

    def _show_rejection(self, event: dict[str, Any]) -> None:
        text, step = T.explain_refusal(event)
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
