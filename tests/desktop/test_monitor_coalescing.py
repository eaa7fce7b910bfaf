"""Live events in the monitor are coalesced into one insert per ``LIVE_COALESCE_MS``:
a burst is shown within one interval, in order, and nothing is lost around Pause."""

from __future__ import annotations

from PySide6.QtCore import Qt

from qp_desktop.demo.events import demo_events
from qp_desktop.ui.events.page import MonitorWindow


def _window(qtbot) -> MonitorWindow:
    window = MonitorWindow()
    qtbot.addWidget(window)
    window.show()
    return window


def _ids(window: MonitorWindow) -> list[int]:
    return [r.id for r in window.model.records]


def test_a_burst_after_a_quiet_spell_is_shown_on_the_next_loop_turn(qtbot):
    window = _window(qtbot)
    inserts = []
    window.view_model.rowsInserted.connect(lambda _p, first, last: inserts.append(last - first))
    window.add_events(demo_events(40))
    assert window.pending_count == 40  # not inserted inside the stream's signal
    qtbot.waitUntil(lambda: len(window.model.rows) == 40, timeout=5000)
    assert inserts == [39]  # one insert for the whole burst
    assert window.view_model.record_at(0).id == 40 and window.following
    assert window.counts_label.text() == "40 shown"


def test_a_steady_feed_is_shown_in_coalesced_inserts_within_one_interval(qtbot):
    window = _window(qtbot)
    window.add_events(demo_events(5))
    qtbot.waitUntil(lambda: len(window.model.rows) == 5, timeout=5000)
    events = demo_events(300, start_id=6)
    inserts: list[int] = []
    window.model.events_appended.connect(lambda records: inserts.append(len(records)))
    for start in range(0, len(events), 10):  # 30 stream batches, 10 ms apart
        window.add_events(events[start:start + 10])
        qtbot.wait(10)  # pacing like the stream, not waiting for a result
    qtbot.waitUntil(lambda: window.pending_count == 0, timeout=5000)

    assert _ids(window) == list(range(1, 306))  # nothing lost, no duplicate, in order
    assert len(inserts) < 30  # coalesced, not one insert per stream batch


def test_pause_shows_what_arrived_before_it_and_holds_the_rest(qtbot):
    window = _window(qtbot)
    window.add_events(demo_events(10))
    qtbot.waitUntil(lambda: len(window.model.rows) == 10, timeout=5000)
    window.add_events(demo_events(5, start_id=11))  # received, waiting for the next flush
    assert window.pending_count == 5
    qtbot.mouseClick(window.pause_button, Qt.MouseButton.LeftButton)
    assert window.pause_button.isChecked()
    assert _ids(window) == list(range(1, 16)) and window.pending_count == 0

    held = demo_events(20, start_id=16)
    window.add_events(held[10:])
    window.add_events(held[:10] + held[:2])  # out of order, with duplicates
    window.flush_pending()  # what the coalescing timer would do: nothing while paused
    assert _ids(window) == list(range(1, 16))
    assert window.paused_label.text() == "22 new while paused"

    qtbot.mouseClick(window.pause_button, Qt.MouseButton.LeftButton)
    assert _ids(window) == list(range(1, 36))  # at once on resume, each event once
    assert window.paused_count == 0 and window.pending_count == 0
    assert not window.paused_label.isVisible()
    assert window.counts_label.text() == "35 shown"
