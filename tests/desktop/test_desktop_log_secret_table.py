"""The desktop app's log masks every row of the secret-bearing table (Bearer headers,
``password = …`` with spaces, ``secret:`` and the rest), in lines and in tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.secret_text import CASES, leaks, logging_script


def test_every_secret_bearing_text_is_masked_in_the_apps_log_file_and_stderr(
        tmp_path: Path) -> None:
    # The app's own logging setup, as main() installs it, in a fresh process.
    script = logging_script(f"""
        from pathlib import Path
        from qp_desktop.services.logs import setup_logging
        setup_logging(Path({str(tmp_path / "logs")!r}))
    """, "qp_desktop.services.session", tmp_path / "cases.json")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=True,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                 "PYTHONPATH": ":".join(sys.path)})
    log_file = (tmp_path / "logs" / "qp-desktop.log").read_text()
    for text in (result.stderr, log_file):
        assert text.count("Traceback (most recent call last)") == len(CASES)
        assert "Bearer \u2026" in text and "secret: \u2026" in text
        assert leaks(text) == []
