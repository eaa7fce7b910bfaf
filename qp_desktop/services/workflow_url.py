"""The workflow URL on the desktop: one owner for how it is shown, revealed, copied and
forgotten, used by the IT Glue page, the setup wizard and the tray.

The URL holds the workflow token, a secret: it is masked until revealed, fetched from the
tenant only when needed (the tenant records each reveal), kept in memory for the token it
belongs to and nowhere else, copied through the clipboard service (which clears it after its
delay), and forgotten at sign-out. A URL whose token no longer works (expired, revoked) is
never copied: pasting it into IT Glue would only break the workflow.
"""

from __future__ import annotations

from qp_common.wire import TOKEN_EXPIRED, TOKEN_REVOKED, token_url_usable
from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.services.tenant_client import TenantClient, TenantError, WorkflowToken

LABEL = "the workflow URL"  # how the clipboard service names it in its notes
MASK = "\u2022" * 12
UNREACHABLE = (
    "IT Glue cannot reach this URL: it points to this computer or a private network. Tests "
    "from this computer work, but for real password changes the tenant needs a public https "
    "address: for the tenant on this computer, put a tunnel or reverse proxy in front of it "
    "and enter its address in Preferences; a tenant server sets QP_PUBLIC_URL.")
NOT_COPYABLE = {
    None: "There is no workflow URL yet. Generate one first.",
    TOKEN_EXPIRED: "This workflow URL has expired and no longer works. Generate a new one "
                   "and paste that into IT Glue.",
    TOKEN_REVOKED: "This workflow URL was replaced and no longer works. Copy the current one "
                   "or generate a new one.",
}


def may_copy(token: WorkflowToken | None) -> bool:
    """Whether the URL of ``token`` still works, so copying it makes sense."""
    return token is not None and token_url_usable(token.status)


def refusal(token: WorkflowToken | None) -> str:
    """Why the URL of ``token`` may not be copied ("" when it may)."""
    if may_copy(token):
        return ""
    status = None if token is None else token.status
    return NOT_COPYABLE.get(status, NOT_COPYABLE[TOKEN_EXPIRED])


def masked(token: WorkflowToken | None) -> str:
    """The URL as shown before it is revealed: the tenant's hint, then dots."""
    if token is None:
        return ""
    hint = token.url_hint
    if not hint:
        return MASK
    return hint if "\u2026" in hint or "..." in hint else hint + MASK


def unreachable_warning(token: WorkflowToken | None) -> str:
    """The sentence for a URL IT Glue cannot call ("" when it can, or there is none)."""
    return UNREACHABLE if token is not None and not token.public_url_ok else ""


class WorkflowUrl:
    """The full URL of the current token, while the app is signed in."""

    def __init__(self, client: TenantClient, clipboard: SecretClipboard):
        self.client = client
        self.clipboard = clipboard
        self._token_id: str | None = None
        self._url: str | None = None  # never logged, never stored

    def __repr__(self) -> str:
        return f"WorkflowUrl(token={self._token_id!r}, url=<hidden>)"

    def known(self, token: WorkflowToken | None) -> str | None:
        """The full URL of ``token`` if it is in memory (no call to the tenant)."""
        if token is None or token.id != self._token_id:
            return None
        return self._url

    def remember(self, token: WorkflowToken, url: str) -> None:
        """Keep the URL the tenant answered a Generate with."""
        self._token_id, self._url = token.id, url

    async def fetch(self, token: WorkflowToken | None) -> str:
        """The full URL of ``token``: from memory, or revealed by the tenant (which records
        it). Raises ``TenantError`` with the sentence to show."""
        if token is None:
            raise TenantError("no_workflow_token", NOT_COPYABLE[None])
        url = self.known(token)
        if url is None:
            url = await self.client.reveal_workflow_url()
            self._token_id, self._url = token.id, url
        return url

    async def copy(self, token: WorkflowToken | None) -> str:
        """Copy the URL of ``token`` (the clipboard clears it after its delay). Refuses a
        URL that no longer works with ``TenantError`` ``token_not_usable``."""
        if not may_copy(token):
            raise TenantError("token_not_usable", refusal(token))
        url = await self.fetch(token)
        self.clipboard.copy_secret(url, LABEL)
        return url

    def forget(self) -> None:
        """Sign-out: drop the URL from memory."""
        self._token_id = self._url = None
