"""Fixtures for the desktop tests: one qasync loop per test on the pytest-qt QApplication.

qasync under pytest-qt: teardown must not stop the loop (see the fixture for why).
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def qloop(qapp) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop bound to the test's QApplication.

    Anything that processes Qt events (``qtbot.waitUntil``/``waitSignal``) also runs the
    asyncio callbacks scheduled on it, so ``@asyncSlot`` handlers and services work.
    """
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        # WORKAROUND: qasync — loop.stop() calls QApplication.exit(), after which every later
        # qtbot.wait* returns at once. Cancel tasks, drop the running flag and close instead.
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            # Let the cancellations run (qasync processes them through Qt events).
            deadline = 200
            while deadline and not all(t.done() for t in pending):
                qapp.processEvents()
                deadline -= 1
        loop._QEventLoop__is_running = False  # type: ignore[attr-defined]
        asyncio.events._set_running_loop(None)
        # WORKAROUND: qasync — timers left on its internal _SimpleTimer may be finalised in
        # another thread later and crash processEvents(); stop them on the GUI thread now.
        timer = loop._timer  # type: ignore[attr-defined]
        callbacks = timer._SimpleTimer__callbacks  # type: ignore[attr-defined]
        for timer_id in list(callbacks):
            timer.killTimer(timer_id)
        callbacks.clear()
        loop.close()
        asyncio.set_event_loop(None)
        gc.collect()


# --- keyring, preferences, HTTP client and the app ---------------------------------------


@pytest.fixture
def memory_keyring() -> Iterator[object]:
    """An in-memory keyring backend for the test; the previous backend is restored."""
    import keyring

    from qp_desktop.services.secret_store import MemoryKeyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """The ``fail`` backend: what keyring picks when there is no Secret Service."""
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def prefs(tmp_path):
    """Preferences in a private INI file (never the user's real settings)."""
    from PySide6.QtCore import QSettings

    from qp_desktop.services.settings import Preferences

    return Preferences(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def http(qtbot, qloop):
    """One long-lived httpx.AsyncClient, closed on the qasync loop at teardown."""
    import httpx

    client = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0))
    yield client
    task = qloop.create_task(client.aclose())
    qtbot.waitUntil(task.done, timeout=5000)


@pytest.fixture
def make_app(qtbot, qloop, prefs, http, tmp_path):
    """Build DesktopApp instances sharing ``prefs`` and ``http``; all are shut down after."""
    from qp_desktop.app import DesktopApp
    from qp_desktop.services.secret_store import SecretStore

    apps = []

    def factory(**kwargs):
        kwargs.setdefault("local_data_dir", tmp_path / "local-tenant")
        kwargs.setdefault("clear_after_ms", 30_000)
        app = DesktopApp(prefs, SecretStore(), http, **kwargs)
        qtbot.addWidget(app.sign_in)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.shutdown()


@pytest.fixture(scope="session")
def x_display():
    """A real X display (Xvfb + openbox) for the real-window tests; fails if not installed."""
    from tests.support.xdisplay import XDisplayError, start_display

    try:
        display = start_display()
    except XDisplayError as exc:
        pytest.fail(str(exc))
    try:
        yield display
    finally:
        display.stop()
