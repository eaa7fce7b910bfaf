"""``pip install .`` gives working commands, and the wheel holds the icons and migrations.

The wheel is built from a copy of the source tree (so no ``build/`` is left behind), then
installed with ``--no-deps`` into a fresh venv that borrows this venv's dependencies through
a ``.pth`` file: the commands it creates must run from the installed wheel alone.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from qp_desktop import resources

ROOT = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                ".pytest_cache", ".mypy_cache", ".ruff_cache", "screenshots",
                                ".bench", "tests", "benchmarks")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    out = base / "out"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "-w", str(out), str(src)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("qp_desktop-*.whl")
    return built


def test_wheel_holds_resources_migrations_and_entry_points(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (entry_points_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = zf.read(entry_points_name).decode()
    for name in resources.ICON_NAMES:
        assert f"qp_desktop/resources/icons/{name}.svg" in names
        sizes = resources.APP_SIZES if name == "app" else resources.TRAY_SIZES
        for size in sizes:
            assert f"qp_desktop/resources/icons/{name}-{size}.png" in names
    assert "qp_desktop/resources/__init__.py" in names
    for module in sorted((ROOT / "qp_common").glob("*.py")):  # the rules all three share
        assert module.relative_to(ROOT).as_posix() in names
    migrations = ROOT / "qp_tenant" / "migrations"
    for script in [migrations / "env.py", *sorted((migrations / "versions").glob("*.py"))]:
        assert script.relative_to(ROOT).as_posix() in names
    parser = configparser.ConfigParser()
    parser.read_string(entry_points)
    assert parser["console_scripts"]["qp-tenant"] == "qp_tenant.cli:main"
    assert parser["console_scripts"]["qp-agent"] == "qp_agent.cli:main"
    assert parser["gui_scripts"]["qp-desktop"] == "qp_desktop.main:main"


@pytest.mark.timeout(600)
def test_installed_wheel_gives_working_commands(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    vpy = venv / "bin" / "python"
    purelib = subprocess.run([vpy, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies come from this venv (not its editable install of the project: .pth
    # files in a directory added by a .pth are not processed).
    Path(purelib, "zz-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(vpy), "install", "-q",
                             "--no-deps", "--no-index", str(wheel)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen")
    bin_dir = venv / "bin"

    def run(*args: str) -> str:
        done = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
        return done.stdout

    assert "qp-tenant 0.1.0" in run(bin_dir / "qp-tenant", "--version")
    assert "qp-agent 0.1.0" in run(bin_dir / "qp-agent", "--version")
    assert "--screenshot" in run(bin_dir / "qp-desktop", "--help")
    # The migrations run from the installed package.
    assert "up to date" in run(bin_dir / "qp-tenant", "migrate", "--data-dir", tmp_path / "data")
    # The icons load from the installed package, not from this checkout.
    where = run(vpy, "-c", "import qp_desktop.resources as r; "
                "from PySide6.QtGui import QGuiApplication; app = QGuiApplication([]); "
                "assert not r.app_icon().isNull(); print(r.path('tray-error', 22))")
    assert where.strip().startswith(purelib)
