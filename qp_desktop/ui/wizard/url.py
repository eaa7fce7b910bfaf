"""The setup wizard's workflow URL: generate, reveal, copy, and a test trigger sent from this
computer."""

from __future__ import annotations

from qp_desktop.services.wizard_trigger import send_test_trigger, test_body
from qp_desktop.ui import wizard_steps as W


class WizardUrl:
    """Mixin of :class:`~qp_desktop.ui.wizard.page.SetupWizardPage`: the URL's actions."""

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
