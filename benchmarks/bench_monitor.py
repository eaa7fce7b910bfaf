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

from PySide6.QtCore import QElapsedTimer, QEventLoop, QSortFilterProxyModel, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from qp_desktop.ui.event_model import F_HAYSTACK, EventTableModel  # noqa: E402
from qp_desktop.ui.monitor import MonitorWindow  # noqa: E402
from qp_desktop.ui.monitor_demo import demo_events  # noqa: E402


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


def run_feed(app: QApplication, window: MonitorWindow, texts: list[str], rate: int,
             seconds: float, batch_ms: int) -> tuple[float, float, int]:
    """Feed ``rate`` events/s in stream-sized batches; return (max gap, p99 gap, fed)."""
    heartbeat = QTimer()
    heartbeat.setInterval(5)
    clock = QElapsedTimer()
    gaps: list[float] = []
    last = [0.0]

    def beat() -> None:
        now = clock.nsecsElapsed() / 1e6
        gaps.append(now - last[0])
        last[0] = now

    per_batch = max(1, rate * batch_ms // 1000)
    position = [0]

    def feed() -> None:
        start = position[0]
        chunk = texts[start:start + per_batch]
        position[0] += len(chunk)
        if chunk:
            # What EventStream does per batch: parse the SSE data, then one signal.
            window.add_events([json.loads(t) for t in chunk])

    feeder = QTimer()
    feeder.setInterval(batch_ms)
    if texts:
        feeder.timeout.connect(feed)
    heartbeat.timeout.connect(beat)
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    clock.start()
    heartbeat.start()
    feeder.start()
    loop.exec()
    feeder.stop()
    heartbeat.stop()
    gaps = gaps[1:] or [0.0]
    ordered = sorted(gaps)
    p99 = ordered[int(len(ordered) * 0.99) - 1] if len(ordered) > 1 else ordered[0]
    return max(gaps), p99, position[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000, help="live events per second")
    parser.add_argument("--seconds", type=float, default=5.0)
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

    # Baseline stall: the same heartbeat with nothing fed (timer + offscreen paint noise).
    idle_max, idle_p99, _ = run_feed(app, window, [], args.rate, min(args.seconds, 2.0),
                                     args.batch_ms)
    live_max, live_p99, fed = run_feed(app, window, live_texts, args.rate, args.seconds,
                                       args.batch_ms)
    emit("monitor_gui_stall_max_ms_at_1000_eps", live_max, "ms", idle_max)
    emit("monitor_gui_stall_p99_ms_at_1000_eps", live_p99, "ms", idle_p99)
    emit("monitor_events_fed", fed, "events")

    # The same feed while a text filter is active and the technician has scrolled away.
    window.filter_text.setText("reset")
    app.processEvents()
    bar = window.table.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    more = wire_events(int(args.rate * args.seconds) + args.rate,
                       start_id=(window.model.newest_id or 0) + 1)
    f_max, f_p99, _ = run_feed(app, window, more, args.rate, args.seconds, args.batch_ms)
    emit("monitor_gui_stall_max_ms_filtered_scrolled_away", f_max, "ms", idle_max)
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
