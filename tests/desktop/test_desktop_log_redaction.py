"""The desktop app's log (file and stderr) and crash report never show a secret."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

WORKFLOW = "qpwt_Zk3vQ9xYw8rT2mN4bV6cX1aS5dF7gH0j"
REFRESH = "qprt_AAAAbbbbCCCCdddd2222"
ITG_KEY = "ITG.3f8a9c0d1e2b4a5f6c7d8e9f0a1b2c3d"
BASIC = "dXNlcjpodW50ZXIy"
CODE = "QPE-ABCD-EF23-GH45-JK67"
PASSWORD = "Hunter2-Pw"
SECRETS = (WORKFLOW[5:], REFRESH[5:], ITG_KEY[4:], BASIC, CODE[4:], PASSWORD)


def test_the_apps_log_masks_lines_tracebacks_and_the_crash_report(tmp_path: Path) -> None:
    # The app's own logging setup and crash hook, in a fresh process, as main() installs them.
    script = textwrap.dedent(f"""
        import logging, sys
        from pathlib import Path
        from qp_desktop.services.logs import setup_logging
        from qp_desktop.ui.crash_dialog import CrashHandler, crash_report

        setup_logging(Path({str(tmp_path / "logs")!r}))
        logging.getLogger("qp_desktop.services.session").info(
            "refresh with %s, Authorization: Basic %s", {REFRESH!r}, {BASIC!r})
        try:
            raise ValueError("url https://qp.example.com/hooks/itglue/{WORKFLOW} "
                             "key {ITG_KEY} code {CODE} {{'password': '{PASSWORD}'}}")
        except ValueError:
            info = sys.exc_info()
        CrashHandler()(*info)  # no QApplication: it only logs
        print(crash_report(*info))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=True,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                 "PYTHONPATH": ":".join(sys.path)})
    log_file = (tmp_path / "logs" / "qp-desktop.log").read_text()
    for text in (result.stderr, log_file, result.stdout):
        assert "ValueError" in text and "qpwt_\u2026" + WORKFLOW[-4:] in text
        for secret in SECRETS:
            assert secret not in text, secret
    for text in (result.stderr, log_file):
        assert "Traceback (most recent call last)" in text and "Basic \u2026" in text
