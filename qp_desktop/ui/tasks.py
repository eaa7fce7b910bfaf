"""Tenant calls from widgets: the busy state around them and their failure shown.

Coroutines themselves run through :class:`qp_desktop.services.tasks.TaskSet`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from qp_desktop.services.tenant_client import SessionExpired, TenantError


class _MessageSink(Protocol):
    def show_message(self, kind: str, text: str) -> None: ...


class TenantCallsMixin:
    """``_run(action)`` for pages: busy state around a tenant call, its error shown.

    The page provides ``banner`` (where errors go by default), ``_busy`` (a counter),
    ``_closed`` and ``_update_enabled()`` (which reads ``_busy``).
    """

    banner: Any
    _busy: int
    _closed: bool

    def _update_enabled(self) -> None:
        raise NotImplementedError

    async def _run(self, action: Callable[[], Awaitable[Any]],
                   banner: _MessageSink | None = None) -> bool:
        """Run tenant calls with the busy state; show a failure in ``banner``."""
        self._busy += 1
        self._update_enabled()
        try:
            await action()
            return True
        except SessionExpired:
            return False  # the session signals it; the app returns to sign-in
        except TenantError as exc:
            if not self._closed:
                (banner or self.banner).show_message("error", exc.message)
            return False
        finally:
            self._busy -= 1
            self._update_enabled()
