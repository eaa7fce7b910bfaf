import asyncio

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    done = Signal(int)


def test_async_work_runs_while_qtbot_waits(qtbot, qloop):
    emitter = _Emitter()

    async def work():
        await asyncio.sleep(0)
        emitter.done.emit(42)

    task = qloop.create_task(work())
    with qtbot.waitSignal(emitter.done, timeout=5000) as blocker:
        pass
    assert blocker.args == [42]
    assert task.done()


def test_second_test_still_processes_events(qtbot, qloop):
    emitter = _Emitter()
    qloop.call_soon(emitter.done.emit, 7)
    with qtbot.waitSignal(emitter.done, timeout=5000) as blocker:
        pass
    assert blocker.args == [7]
