"""Running coroutines from widgets without losing them.

qasync's ``asyncSlot`` tasks can be garbage-collected mid-run, so widgets start their async
work through :class:`TaskSet`, which keeps a reference until the task ends, reports crashes
to ``sys.excepthook`` (pytest-qt then fails the test) and cancels what is left on close.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from qp_desktop.services.tenant_client import SessionExpired, TenantError


class TaskSet:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            sys.excepthook(type(exc), exc, exc.__traceback__)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()


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
