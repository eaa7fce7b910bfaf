"""The launcher entry and AppStream metainfo are valid and carry the app id.

The validators come from Debian's ``desktop-file-utils`` and ``appstream`` packages
(scripts/system-deps.sh installs them); a missing validator fails the test.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from qp_desktop import APP_ID

ROOT = Path(__file__).resolve().parents[2]
DESKTOP_FILE = ROOT / "resources" / f"{APP_ID}.desktop"
METAINFO = ROOT / "resources" / f"{APP_ID}.metainfo.xml"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install the Debian package {package} "
                    "(bash scripts/system-deps.sh test)")
    return path


def test_desktop_file_is_valid():
    result = subprocess.run([_tool("desktop-file-validate", "desktop-file-utils"),
                             str(DESKTOP_FILE)], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "error" not in output.lower() and "warning" not in output.lower(), output


def test_metainfo_is_valid():
    result = subprocess.run([_tool("appstreamcli", "appstream"), "validate", "--no-net",
                             str(METAINFO)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_app_id_is_used_everywhere():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(DESKTOP_FILE, encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Icon"] == APP_ID
    assert section["Exec"].split()[0] == "qp-desktop"

    component = ET.parse(METAINFO).getroot()
    assert component.findtext("id") == APP_ID
    assert component.findtext("launchable") == f"{APP_ID}.desktop"
    assert component.findtext("provides/binary") == "qp-desktop"

    main_py = (ROOT / "qp_desktop" / "main.py").read_text()  # where the QApplication is made
    assert "setDesktopFileName(APP_ID)" in main_py
