"""The app in real windows on a real X display (Xvfb + openbox), as a person sees it.

Every page and dialog is shown at its default size and at 1024x700 and audited
(qp_desktop/ui/layout_audit.py): no sideways scrolling, every control within reach, no text
cut off, the window on screen, arrows on combo and spin boxes, and drop-downs that paint
their highlighted entry. The pictures are kept with the test's files for the record.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from qp_desktop.demo.layout_check import SIZES

PAGES = ("page-itglue", "page-events", "page-accounts", "page-preferences",
         "page-setup-01-prereqs", "page-setup-12-real_test", "sign-in", "sign-in-first-run",
         "dialog-add-agent", "dialog-generate-token", "dialog-logs", "dialog-crash",
         "dialog-match", "dialog-automatch-result", "dialog-add-account",
         "dialog-alert-settings")


@pytest.mark.timeout(600)
def test_every_page_and_dialog_fits_at_default_size_and_at_1024x700(x_display, tmp_path):
    out = tmp_path / "real-windows"
    done = subprocess.run(
        [sys.executable, "-m", "qp_desktop", "--screenshot", str(out), "--check-layout"],
        env=x_display.env(), capture_output=True, text=True, timeout=540, check=False)
    report_file = out / "layout-report.json"
    assert report_file.exists(), done.stderr[-3000:]
    report = json.loads(report_file.read_text())
    problems = {name: found for name, found in report["problems"].items() if found}
    assert not problems, (f"pictures in {out}:\n"
                          + json.dumps(problems, indent=2, ensure_ascii=False))
    assert done.returncode == 0, done.stderr[-3000:]
    for name in PAGES:
        for size_name, _size in SIZES:
            assert (out / f"{name}@{size_name}.png").stat().st_size > 0, name


AUDIT_PROBE = textwrap.dedent("""
    import asyncio, json, sys
    import qasync
    from PySide6.QtWidgets import (QApplication, QComboBox, QHBoxLayout, QLabel,
                                   QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget)
    from qp_desktop.ui.layout_audit import audit_window
    from qp_desktop.ui.theme import apply_theme

    app = QApplication([])
    apply_theme(app)
    # What the app's style sheet once did to combo and spin boxes: blank highlight, no arrows.
    BROKEN = ("QComboBox, QSpinBox { padding: 4px 6px; border: 1px solid #d6dae0; "
              "border-radius: 5px; background: #ffffff; } "
              "QComboBox::drop-down { border: none; width: 24px; }")

    def window(broken):
        root = QWidget()
        root.resize(420, 260)
        layout = QVBoxLayout(root)
        combo = QComboBox(objectName="combo")
        combo.addItems(["Alpha", "Beta", "Gamma"])
        spin = QSpinBox(objectName="spin")
        layout.addWidget(combo)
        layout.addWidget(spin)
        if broken:
            root.setStyleSheet(BROKEN)
            page = QWidget()
            row = QHBoxLayout(page)
            for n in range(6):
                row.addWidget(QPushButton(f"A wide button {n}", objectName=f"wide{n}"))
            area = QScrollArea(objectName="area")
            area.setWidgetResizable(True)
            area.setWidget(page)
            layout.addWidget(area)
            clipped = QLabel("A sentence much too long for the box it is in", objectName="cut")
            clipped.setFixedWidth(80)
            layout.addWidget(clipped)
        root.show()
        return root

    async def main():
        found = {}
        for broken in (False, True):
            root = window(broken)
            await asyncio.sleep(0.5)
            found["broken" if broken else "fine"] = await audit_window(root)
            root.close()
        print(json.dumps(found))

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        loop.run_until_complete(main())
""")


@pytest.mark.timeout(180)
def test_the_layout_audit_sees_what_a_person_sees(x_display):
    done = subprocess.run([sys.executable, "-c", AUDIT_PROBE], env=x_display.env(),
                          capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["fine"] == []
    broken = "\n".join(found["broken"])
    assert "area scrolls sideways" in broken or "page scrolls sideways" in broken
    assert "wide5" in broken and "outside the visible width" in broken
    assert "cut \u201cA sentence" in broken and "is cut off" in broken
    assert "combo \u201cAlpha\u201d shows no drop-down arrow" in broken
    assert "spin shows no spin arrow" in broken
    assert "highlighted entry of combo" in broken
