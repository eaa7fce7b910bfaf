"""Packaged resources (icons) found through :mod:`importlib.resources`.

Works from a source checkout, an installed wheel and a PyInstaller bundle alike. The icons'
sources are the SVGs in ``icons/``; ``packaging/render_icons.py`` renders the PNG sizes.

    from qp_desktop import resources
    window.setWindowIcon(resources.app_icon())
    tray.setIcon(resources.tray_icon("warning"))      # "ok" | "warning" | "error"
    resources.path("tray-error")                      # Path of the SVG
    resources.path("tray-error", 22)                  # Path of the 22 px PNG
"""

from __future__ import annotations

import functools
from importlib import resources as _importlib_resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtGui import QIcon

APP_ICON = "app"
APP_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
TRAY_SIZES = (16, 22, 24, 32, 48, 64)
TRAY_STATUSES = ("ok", "warning", "error")

ICON_NAMES = (APP_ICON, *(f"tray-{status}" for status in TRAY_STATUSES))


def _sizes(name: str) -> tuple[int, ...]:
    if name == APP_ICON:
        return APP_SIZES
    if name in ICON_NAMES:
        return TRAY_SIZES
    raise KeyError(f"unknown icon {name!r}; known: {', '.join(ICON_NAMES)}")


@functools.cache
def _icons_dir() -> Path:
    # The package is installed as plain files (wheel, checkout, PyInstaller data files), so
    # the Traversable is a real directory; as_file() would only matter for a zipped install.
    folder = _importlib_resources.files(__name__) / "icons"
    return Path(str(folder))


def path(name: str, size: int | None = None) -> Path:
    """The file of icon ``name`` ("app", "tray-ok", "tray-warning", "tray-error"):
    its SVG source, or the PNG of ``size`` pixels (one of ``APP_SIZES``/``TRAY_SIZES``).

    Raises:
        KeyError: unknown name or size.
        FileNotFoundError: the package was installed without its resources.
    """
    sizes = _sizes(name)
    if size is not None and size not in sizes:
        raise KeyError(f"icon {name!r} has no {size} px PNG; sizes: {sizes}")
    file = _icons_dir() / (f"{name}-{size}.png" if size else f"{name}.svg")
    if not file.is_file():
        raise FileNotFoundError(f"missing packaged resource {file}")
    return file


def icon(name: str) -> QIcon:
    """A ``QIcon`` holding every PNG size of ``name`` (crisp at each) plus the SVG for the
    sizes in between (where Qt's SVG icon engine is available). Needs a QGuiApplication."""
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon

    result = QIcon()
    for size in _sizes(name):
        result.addFile(str(path(name, size)), QSize(size, size))
    result.addFile(str(path(name)))
    return result


def app_icon() -> QIcon:
    """The application icon (window icon, task bar, about box)."""
    return icon(APP_ICON)


def tray_icon(status: str) -> QIcon:
    """The tray icon for ``status``: "ok", "warning" or "error"."""
    if status not in TRAY_STATUSES:
        raise KeyError(f"unknown tray status {status!r}; known: {', '.join(TRAY_STATUSES)}")
    return icon(f"tray-{status}")
