"""The PyInstaller bundles build, and the desktop bundle runs on its own.

``qp-desktop --screenshot DIR`` from the bundle starts the embedded tenant and the IT Glue
emulator as child processes of the bundle's own executable (no Python from the venv is on
PATH), renders every window in both palettes and exits. Slow (minutes): marked ``bundle``,
run by ``make test-bundle``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qp_desktop import APP_ID

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.bundle, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("bundle")
    env = {**os.environ, "PYTHON": sys.executable, "DIST": str(base / "dist"),
           "WORK": str(base / "work"), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(["bash", str(ROOT / "packaging" / "build.sh"), "all"], env=env,
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    return base / "dist"


def _clean_env(home: Path) -> dict[str, str]:
    """No venv, no PYTHONPATH: only what the bundle brings."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(home / "run")}
    (home / "run").mkdir(parents=True, mode=0o700)
    return env


def test_desktop_bundle_renders_every_window_with_its_own_tenant(dist: Path, tmp_path: Path):
    exe = dist / "qp-desktop" / "qp-desktop"
    assert exe.is_file() and os.access(exe, os.X_OK)
    out = tmp_path / "shots"
    result = subprocess.run([str(exe), "--screenshot", str(out)], env=_clean_env(tmp_path / "h"),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-8000:]
    # The embedded tenant was started from the bundle's executable.
    assert f"starting the local tenant: {exe} -m qp_tenant" in result.stderr
    assert "local tenant ready at http://127.0.0.1:" in result.stderr
    for name in ("sign-in", "integration", "monitor"):
        for prefix in ("", "dark-"):
            png = out / f"{prefix}{name}.png"
            assert png.is_file() and png.stat().st_size > 5000, png


def test_desktop_bundle_carries_icons_and_desktop_files(dist: Path):
    internal = dist / "qp-desktop" / "_internal"
    assert (internal / "qp_desktop" / "resources" / "icons" / "tray-warning-22.png").is_file()
    assert (internal / "qp_tenant" / "migrations" / "env.py").is_file()
    share = dist / "qp-desktop" / "share"
    assert (share / "applications" / f"{APP_ID}.desktop").is_file()
    assert (share / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    assert (share / "icons" / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png").is_file()


def test_agent_bundle_runs(dist: Path, tmp_path: Path):
    exe = dist / "qp-agent" / "qp-agent"
    env = _clean_env(tmp_path / "h")
    version = subprocess.run([str(exe), "--version"], env=env, capture_output=True, text=True,
                             timeout=120)
    assert version.returncode == 0 and "qp-agent 0.1.0" in version.stdout, version.stderr
    # A config problem is reported in one sentence, proving the CLI and its parser load.
    config = tmp_path / "agent.toml"
    config.write_text('tenant_url = "https://qp.example.com"\n[[directory]]\nname = "x"\n'
                      'kind = "nope"\n')
    bad = subprocess.run([str(exe), "run", "--config", str(config)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (dist / "qp-agent" / "_internal" / "PySide6").exists()
