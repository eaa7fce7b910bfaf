"""The one way to run a coroutine started from Qt (a click, a timer, a signal).

qasync's ``asyncSlot`` tasks can be garbage-collected mid-run, so every widget and service
starts its async work through :class:`TaskSet`: it keeps a reference until the task ends,
cancels what is left on :meth:`TaskSet.cancel_all`, and reports a task that raised through
:func:`report_task_failure`, the same for every caller.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio is imported when a task starts: the sign-in window is built first
    import asyncio

log = logging.getLogger(__name__)


def report_task_failure(exc: BaseException) -> None:
    """Surface an exception nobody awaited.

    When something replaced ``sys.excepthook`` (the app's crash handler, which logs through
    the redacting log filter and shows the crash dialog; pytest-qt, which fails the test)
    it gets the exception. Otherwise it is logged here, so it still goes through the log
    filter rather than the default hook's unredacted print to stderr.
    """
    hook = sys.excepthook
    if hook is sys.__excepthook__:
        log.error("a background task failed", exc_info=(type(exc), exc, exc.__traceback__))
    else:
        hook(type(exc), exc, exc.__traceback__)


def _loop() -> asyncio.AbstractEventLoop:
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # started before the loop runs (a window built at start-up)
        return asyncio.get_event_loop()


class TaskSet:
    """The tasks one widget or service started and has not seen end."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = _loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            report_task_failure(exc)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
