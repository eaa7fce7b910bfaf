"""The packaged icons: every name and size is there, loads, and matches the app id."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QImage

from qp_desktop import APP_ID, resources


def test_app_id_is_reverse_dns():
    assert re.fullmatch(r"[a-z]+(\.[a-z0-9]+)+\.[A-Za-z][A-Za-z0-9]*", APP_ID)


@pytest.mark.parametrize("name", resources.ICON_NAMES)
def test_every_icon_has_its_svg_source_and_each_png_size(name, qapp):
    sizes = resources.APP_SIZES if name == "app" else resources.TRAY_SIZES
    assert resources.path(name).read_text().lstrip().startswith("<?xml")
    for size in sizes:
        image = QImage(str(resources.path(name, size)))
        assert (image.width(), image.height()) == (size, size)
        assert image.hasAlphaChannel()
        # Not blank: the centre pixel is part of the mark.
        assert image.pixelColor(size // 2, size // 2).alpha() > 0


def test_app_icon_offers_every_size(qapp):
    icon = resources.app_icon()
    assert not icon.isNull()
    available = {(s.width(), s.height()) for s in icon.availableSizes()}
    assert {(n, n) for n in resources.APP_SIZES} <= available
    assert not icon.pixmap(QSize(20, 20)).isNull()  # between sizes: scaled, not empty


@pytest.mark.parametrize("status", ["ok", "warning", "error"])
def test_tray_icons_for_each_status(status, qapp):
    icon = resources.tray_icon(status)
    assert not icon.isNull()
    assert icon.pixmap(QSize(22, 22)).size() == QSize(22, 22)


def test_tray_statuses_look_different(qapp):
    # The badge (lower right) is a different colour for each status.
    colours = {status: QImage(str(resources.path(f"tray-{status}", 64))).pixelColor(46, 41)
               for status in resources.TRAY_STATUSES}
    assert len({c.name() for c in colours.values()}) == 3


def test_unknown_names_and_sizes_are_refused():
    with pytest.raises(KeyError):
        resources.path("nope")
    with pytest.raises(KeyError):
        resources.path("app", 17)
    with pytest.raises(KeyError):
        resources.tray_icon("busy")
