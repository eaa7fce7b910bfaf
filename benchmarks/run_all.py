"""Run every benchmark in turn; each prints its own JSON lines on stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["bench_ingest.py", "bench_delivery.py", "bench_pipeline.py", "bench_monitor.py",
              "bench_desktop_startup.py", "bench_cluster.py", "bench_m365.py",
              "bench_directory_sync.py", "bench_watcher.py"]


def main() -> int:
    failed = 0
    for name in BENCHMARKS:
        print(f"# {name}", file=sys.stderr, flush=True)
        result = subprocess.run([sys.executable, str(HERE / name)], cwd=HERE, check=False)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
