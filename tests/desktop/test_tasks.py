"""The one task runner: a coroutine started from Qt that fails is reported the same way
wherever it was started (page, events window, alert service), and never unredacted."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

WORKFLOW = "qpwt_Zk3vQ9xYw8rT2mN4bV6cX1aS5dF7gH0j"


async def _fail() -> None:
    raise RuntimeError("boom")


def test_a_failed_task_reaches_the_excepthook_from_page_events_window_and_alerts(
        qtbot, qloop, prefs, monkeypatch):
    from qp_desktop.services.alerts import AlertCenter
    from qp_desktop.services.notifier import Notifier
    from qp_desktop.services.tenant_client import TenantClient
    from qp_desktop.ui.events.page import MonitorWindow
    from qp_desktop.ui.page import Page

    seen: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda _t, exc, _tb: seen.append(exc))
    page = Page("some_page")
    events = MonitorWindow(None)
    qtbot.addWidget(page)
    qtbot.addWidget(events)
    alerts = AlertCenter(TenantClient(None), prefs, Notifier([]), scope=lambda: "x")
    for count, owner in enumerate((page, events, alerts), start=1):
        owner.tasks.start(_fail())
        qtbot.waitUntil(lambda count=count: len(seen) == count, timeout=5000)
    assert [str(exc) for exc in seen] == ["boom", "boom", "boom"]
    assert not (page.tasks.busy or events.tasks.busy or alerts.busy)


def test_shutdown_cancels_a_pages_tasks(qtbot, qloop):
    import asyncio

    from qp_desktop.ui.page import Page

    page = Page("some_page")
    qtbot.addWidget(page)
    task = page.tasks.start(asyncio.Event().wait())
    page.shutdown()
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.cancelled()


def test_without_a_crash_handler_a_failed_task_is_logged_redacted(tmp_path: Path) -> None:
    # A fresh process with the app's logging and Python's own excepthook.
    script = textwrap.dedent(f"""
        import asyncio
        from pathlib import Path
        from qp_desktop.services.logs import setup_logging
        from qp_desktop.services.tasks import TaskSet

        setup_logging(Path({str(tmp_path / "logs")!r}))

        async def fail():
            raise ValueError("calling https://qp.example.com/hooks/itglue/{WORKFLOW}")

        async def main():
            tasks = TaskSet()
            task = tasks.start(fail())
            await asyncio.wait([task])
            await asyncio.sleep(0)  # the done callback runs on the next turn

        asyncio.run(main())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=True,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                 "PYTHONPATH": ":".join(sys.path)})
    log_file = (tmp_path / "logs" / "qp-desktop.log").read_text()
    for text in (result.stderr, log_file):
        assert "a background task failed" in text and "ValueError" in text
        assert WORKFLOW[5:] not in text
