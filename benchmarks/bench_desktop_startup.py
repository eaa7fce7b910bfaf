"""Desktop start-up figures, printed as JSON lines {name, value, unit, baseline, ratio}.

- ``desktop_cold_start_to_sign_in``: spawn ``python -m qp_desktop`` (offscreen) until the
  sign-in window is shown, against a bare PySide6 window started the same way (baseline).
- ``local_tenant_start_to_healthy``: spawn ``python -m qp_tenant serve`` until ``/healthz``
  answers, on a fresh data folder (first start, migrations included) and again on the same
  folder (warm); baseline is the fresh start.

The cold-start line also carries the child's CPU time (user + sys from ``os.wait4``), which
a loaded machine disturbs far less than wall time, and each figure's spread (min, max).
With ``--instructions`` (needs valgrind) it also counts the instructions each child runs to
"shown" under callgrind, once each: a figure that does not move with the machine's load.

Usage: ``.venv/bin/python benchmarks/bench_desktop_startup.py [--runs N] [--desktop-only]
[--instructions]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from qp_common.wire import parse_listening_line

ROOT = Path(__file__).resolve().parents[1]

# Both children end with os._exit() right after saying "shown": the CPU time counted is the
# time to the first window, not the interpreter's teardown (which grows with every module
# and widget and says nothing about start-up).
BARE_WINDOW = """
import os, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication(sys.argv)
w = QWidget(); w.resize(520, 640); w.show()
QTimer.singleShot(0, lambda: (print("shown", flush=True), os._exit(0)))
app.exec()
"""


def _time_until_shown(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time until the child says ``shown``, and the child's CPU time (user + sys) to
    its exit, which follows at once."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, cwd=ROOT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "shown":
            elapsed = time.perf_counter() - start
            break
    else:
        proc.kill()
        raise RuntimeError(f"{args!r} never said 'shown'")
    proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_utime + usage.ru_stime


def _instructions(args: list[str], env: dict[str, str]) -> int:
    """Instructions the child runs until it exits (right after "shown"), from callgrind."""
    result = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                             *args], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=600, check=False)
    if "shown" not in result.stdout.split():
        raise RuntimeError(f"{args!r} never said 'shown' under valgrind")
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError("callgrind reported no instruction count")
    return int(match.group(1))


def _tenant_start(data_dir: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "qp_tenant", "serve", "--host", "127.0.0.1",
                             "--port", "0", "--data-dir", str(data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, cwd=ROOT)
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            url = parse_listening_line(line) or ""
            if url:
                break
        if not url:
            raise RuntimeError("the tenant never said 'listening on'")
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return time.perf_counter() - start
            except httpx.TransportError:
                pass
            time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(15)


def _emit(name: str, value: float, unit: str, baseline: float, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit,
                      "baseline": round(baseline, 4),
                      "ratio": round(value / baseline, 3) if baseline else None, **extra}),
          flush=True)


def _spread(values: list[float]) -> list[float]:
    return [round(min(values), 4), round(max(values), 4)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--desktop-only", action="store_true",
                        help="only the cold start, not the local tenant's start")
    parser.add_argument("--instructions", action="store_true",
                        help="also count each cold start's instructions under valgrind")
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="qp-bench-") as tmp:
        tmpdir = Path(tmp)
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmpdir),
               "XDG_CONFIG_HOME": str(tmpdir / "config"),
               "XDG_DATA_HOME": str(tmpdir / "data"), "XDG_STATE_HOME": str(tmpdir / "state"),
               "PYTHONPATH": str(ROOT)}
        # An installed app starts from compiled bytecode: let the warm-up runs write it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        desktop = [sys.executable, "-m", "qp_desktop", "--tenant", "http://127.0.0.1:9",
                   "--exit-when-shown"]
        bare = [sys.executable, "-c", BARE_WINDOW]
        _time_until_shown(bare, env)  # warm the page cache for both
        _time_until_shown(desktop, env)
        app_runs, bare_runs = [], []
        for _ in range(args.runs):
            bare_runs.append(_time_until_shown(bare, env))
            app_runs.append(_time_until_shown(desktop, env))
        app_wall, app_cpu = [w for w, _ in app_runs], [c for _, c in app_runs]
        bare_wall, bare_cpu = [w for w, _ in bare_runs], [c for _, c in bare_runs]
        cpu, cpu_baseline = statistics.median(app_cpu), statistics.median(bare_cpu)
        counted: dict[str, object] = {}
        if args.instructions:
            instructions = _instructions(desktop, env)
            baseline_instructions = _instructions(bare, env)
            counted = {"instructions": instructions,
                       "instructions_baseline": baseline_instructions,
                       "instructions_ratio": round(instructions / baseline_instructions, 3)}
        _emit("desktop_cold_start_to_sign_in", statistics.median(app_wall), "s",
              statistics.median(bare_wall), spread=_spread(app_wall),
              baseline_spread=_spread(bare_wall), cpu=round(cpu, 4),
              cpu_baseline=round(cpu_baseline, 4),
              cpu_ratio=round(cpu / cpu_baseline, 3) if cpu_baseline else None,
              cpu_spread=_spread(app_cpu), cpu_baseline_spread=_spread(bare_cpu),
              runs=args.runs, **counted)
        if args.desktop_only:
            return 0

        fresh, warm = [], []
        for i in range(args.runs):
            data_dir = tmpdir / f"tenant-{i}"
            fresh.append(_tenant_start(data_dir, env))
            warm.append(_tenant_start(data_dir, env))
        fresh_median = statistics.median(fresh)
        _emit("local_tenant_start_to_healthy_first_run", fresh_median, "s", fresh_median)
        _emit("local_tenant_start_to_healthy", statistics.median(warm), "s", fresh_median)
    return 0


if __name__ == "__main__":
    sys.exit(main())
