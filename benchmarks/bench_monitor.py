"""Event monitor benchmark: GUI stalls under a live feed, filter time, memory per 100k events.

Prints one JSON object per metric: {"name", "value", "unit", "baseline", "ratio"}.
Not a test: no asserts on time. Run with ``QT_QPA_PLATFORM=offscreen``.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_monitor.py [--events 100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import (  # noqa: E402
    QElapsedTimer,
    QEventLoop,
    QSortFilterProxyModel,
    Qt,
    QTimer,
)
from PySide6.QtWidgets import QApplication  # noqa: E402

from qp_desktop.demo.events import demo_events  # noqa: E402
from qp_desktop.ui.events.layout import LIVE_COALESCE_MS  # noqa: E402
from qp_desktop.ui.events.model import EventTableModel  # noqa: E402
from qp_desktop.ui.events.page import MonitorWindow  # noqa: E402
from qp_desktop.ui.events.records import F_HAYSTACK  # noqa: E402


def emit(name: str, value: float, unit: str, baseline: float | None = None) -> None:
    ratio = round(value / baseline, 3) if baseline else None
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit,
                      "baseline": None if baseline is None else round(baseline, 3),
                      "ratio": ratio}), flush=True)


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def wire_events(n: int, start_id: int = 1) -> list[str]:
    """Events as the stream carries them: one JSON text each."""
    return [json.dumps(e) for e in demo_events(n, start_id=start_id)]


def measure_memory(texts: list[str]) -> None:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    raw = [json.loads(t) for t in texts]
    raw_bytes = tracemalloc.get_traced_memory()[0] - before
    model = EventTableModel()
    before = tracemalloc.get_traced_memory()[0]
    model.append_events(raw)
    model_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del raw
    gc.collect()
    per = 100_000 / len(texts)
    # Baseline: the parsed wire dicts alone (what keeping "just the JSON" would cost).
    emit("monitor_memory_per_100k_events", model_bytes * per / 2**20, "MiB",
         raw_bytes * per / 2**20)
    del model
    gc.collect()


def measure_filter(window: MonitorWindow, app: QApplication, repeats: int = 5) -> None:
    records = window.model.rows
    needle = "svc-sql"
    best_ours = best_floor = best_proxy = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        window.filter_text.setText(needle)  # what typing does: filter, reset, relayout
        app.processEvents()
        best_ours = min(best_ours, time.perf_counter() - t0)
        window.filter_text.setText("")
        app.processEvents()
        t0 = time.perf_counter()
        shown = [r for r in records if needle in r[F_HAYSTACK]]
        best_floor = min(best_floor, time.perf_counter() - t0)
    shown_count = len(shown)
    # Baseline: the bare list comprehension over the same rows (the floor of any filter).
    emit("monitor_text_filter_100k_rows", best_ours * 1000, "ms", best_floor * 1000)

    # The textbook alternative: QSortFilterProxyModel with a Python filterAcceptsRow.
    class Proxy(QSortFilterProxyModel):
        needle = ""

        def filterAcceptsRow(self, row: int, parent: Any) -> bool:  # noqa: N802
            return self.needle in records[row][F_HAYSTACK]

    proxy = Proxy()
    proxy.setSourceModel(window.model)
    for _ in range(2):
        t0 = time.perf_counter()
        proxy.beginFilterChange()
        proxy.needle = needle
        proxy.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        filtered = proxy.rowCount()
        best_proxy = min(best_proxy, time.perf_counter() - t0)
        proxy.beginFilterChange()
        proxy.needle = ""
        proxy.endFilterChange(QSortFilterProxyModel.Direction.Rows)
    assert filtered == shown_count, (filtered, shown_count)
    emit("qsortfilterproxy_text_filter_100k_rows", best_proxy * 1000, "ms", best_ours * 1000)
    emit("monitor_text_filter_matches", shown_count, "rows")
    proxy.setSourceModel(None)


class FeedStats:
    """Heartbeat gaps (wall and GUI-thread CPU) of one kind of phase, summed over rounds."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def add(self, wall: list[float], cpu: list[float]) -> None:
        self.wall.extend(wall)
        self.cpu.extend(cpu)

    @staticmethod
    def _quantile(values: list[float], q: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]

    def max(self) -> float:
        return max(self.wall, default=0.0)

    def p99(self) -> float:
        return self._quantile(self.wall, 0.99)

    def p999(self) -> float:
        return self._quantile(self.wall, 0.999)

    def cpu_max(self) -> float:
        return max(self.cpu, default=0.0)

    def over(self, limit_ms: float) -> int:
        return sum(1 for gap in self.wall if gap >= limit_ms)


class GcWatch:
    """Pauses of Python's cycle collector (by generation) while it is installed."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], (time.perf_counter() - self._start) * 1e3))

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: Any) -> None:
        gc.callbacks.remove(self)


def heartbeat_phase(window: MonitorWindow, texts: list[str], position: list[int], rate: int,
                    seconds: float, batch_ms: int,
                    latencies: list[float] | None = None) -> tuple[list[float], list[float]]:
    """Run the event loop for ``seconds`` with a 5 ms heartbeat; feed ``rate`` events/s in
    stream-sized batches from ``texts[position[0]:]`` (none when ``rate`` is 0).

    Returns the heartbeat gaps: wall-clock ms, and the GUI thread's CPU ms within each gap
    (a gap far above its CPU time is the machine, not this process).
    """
    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.setInterval(5)
    clock = QElapsedTimer()
    wall: list[float] = []
    cpu: list[float] = []
    last = [0.0, time.thread_time()]

    def beat() -> None:
        now, now_cpu = clock.nsecsElapsed() / 1e6, time.thread_time()
        wall.append(now - last[0])
        cpu.append((now_cpu - last[1]) * 1e3)
        last[0], last[1] = now, now_cpu

    per_batch = max(1, rate * batch_ms // 1000)
    fed: list[tuple[int, float]] = []  # (last id of a batch, when it was fed)

    def feed() -> None:
        start = position[0]
        chunk = texts[start:start + per_batch]
        position[0] += len(chunk)
        if chunk:
            # What EventStream does per batch: parse the SSE data, then one signal.
            events = [json.loads(t) for t in chunk]
            fed.append((events[-1]["id"], clock.nsecsElapsed() / 1e6))
            window.add_events(events)

    def shown(records: list[Any]) -> None:
        now, newest = clock.nsecsElapsed() / 1e6, records[-1].id
        while fed and fed[0][0] <= newest:
            if latencies is not None:
                latencies.append(now - fed.pop(0)[1])
            else:
                fed.pop(0)

    feeder = QTimer()
    feeder.setTimerType(Qt.TimerType.PreciseTimer)
    feeder.setInterval(batch_ms)
    feeder.timeout.connect(feed)
    heartbeat.timeout.connect(beat)
    window.model.events_appended.connect(shown)
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    clock.start()
    last[1] = time.thread_time()
    heartbeat.start()
    if rate:
        feeder.start()
    loop.exec()
    feeder.stop()
    heartbeat.stop()
    window.model.events_appended.disconnect(shown)
    return wall[1:], cpu[1:]


def run_feed(window: MonitorWindow, texts: list[str], rate: int, seconds: float,
             batch_ms: int, rounds: int) -> tuple[FeedStats, FeedStats, list[float], int]:
    """Alternate idle and fed phases (same machine state for both); return
    (idle stats, fed stats, delivery latencies in ms, events fed)."""
    idle, live = FeedStats(), FeedStats()
    latencies: list[float] = []
    position = [0]
    flush = getattr(window, "flush_pending", None)  # absent before live coalescing
    for _ in range(rounds):
        # Settle the last fed phase (its final insert and repaint) outside the idle one.
        if flush is not None:
            flush()
        for _ in range(3):
            QApplication.processEvents()
        idle.add(*heartbeat_phase(window, texts, position, 0, seconds / rounds / 2, batch_ms))
        live.add(*heartbeat_phase(window, texts, position, rate, seconds / rounds, batch_ms,
                                  latencies))
    if flush is not None:
        flush()
    return idle, live, latencies, position[0]


def emit_feed(label: str, idle: FeedStats, live: FeedStats) -> None:
    emit(f"monitor_gui_stall_max_ms_{label}", live.max(), "ms", idle.max())
    emit(f"monitor_gui_stall_p99_ms_{label}", live.p99(), "ms", idle.p99())
    emit(f"monitor_gui_stall_p999_ms_{label}", live.p999(), "ms", idle.p999())
    # Largest GUI-thread CPU time inside one heartbeat gap: the stall this process causes
    # by itself, independent of how loaded the shared machine is.
    emit(f"monitor_gui_busy_max_ms_{label}", live.cpu_max(), "ms", idle.cpu_max())
    emit(f"monitor_gui_stalls_over_50ms_{label}", live.over(50), "gaps", idle.over(50))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000, help="live events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="fed time in total")
    parser.add_argument("--rounds", type=int, default=5, help="idle/fed alternations")
    parser.add_argument("--batch-ms", type=int, default=50, help="stream batching interval")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    texts = wire_events(args.events)
    live_texts = wire_events(int(args.rate * args.seconds) + args.rate,
                             start_id=args.events + 1)

    measure_memory(texts)

    rss0 = rss_bytes()
    window = MonitorWindow()
    window.resize(1280, 780)
    window.show()
    app.processEvents()
    t0 = time.perf_counter()
    window.model.prepend_older([json.loads(t) for t in reversed(texts)])
    app.processEvents()
    load_s = time.perf_counter() - t0
    gc.collect()
    emit("monitor_initial_load_100k_events", load_s * 1000, "ms")
    emit("monitor_rss_delta_100k_events", (rss_bytes() - rss0) / 2**20, "MiB")

    # Idle phases (the same heartbeat, nothing fed: timer and machine noise) alternate with
    # fed phases, so that both see the same load on a shared machine.
    emit("machine_load_avg_1m", os.getloadavg()[0], "load")
    with GcWatch() as gc_watch:
        idle, live, latencies, fed = run_feed(window, live_texts, args.rate, args.seconds,
                                              args.batch_ms, args.rounds)
    emit_feed("at_1000_eps", idle, live)
    emit("monitor_live_latency_max_ms", max(latencies, default=0.0), "ms",
         float(LIVE_COALESCE_MS))
    emit("monitor_events_fed", fed, "events")
    lost = fed - (len(window.model.rows) - args.events)
    emit("monitor_events_lost", lost, "events")
    emit("gc_pause_max_ms_during_feed", max((p for _, p in gc_watch.pauses), default=0.0),
         "ms")
    emit("gc_full_collections_during_feed", sum(1 for g, _ in gc_watch.pauses if g == 2),
         "collections")

    # The same feed while a text filter is active and the technician has scrolled away.
    window.filter_text.setText("reset")
    app.processEvents()
    bar = window.table.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    more = wire_events(int(args.rate * args.seconds) + args.rate,
                       start_id=(window.model.newest_id or 0) + 1)
    idle, live, _, _ = run_feed(window, more, args.rate, args.seconds / 2, args.batch_ms,
                                max(1, args.rounds // 2))
    emit_feed("filtered_scrolled_away", idle, live)
    emit("machine_load_avg_1m_after_feed", os.getloadavg()[0], "load")
    window.filter_text.setText("")
    app.processEvents()

    measure_filter(window, app)
    emit("monitor_rows_total", len(window.model.rows), "rows")
    gc.collect()
    t0 = time.perf_counter()
    gc.collect()
    emit("full_gc_pause_with_monitor_loaded", (time.perf_counter() - t0) * 1000, "ms")
    window.close()


if __name__ == "__main__":
    main()
