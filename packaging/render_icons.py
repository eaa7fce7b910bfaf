"""Render the PNG icons from their SVG sources (``qp_desktop/resources/icons/*.svg``).

    python packaging/render_icons.py            # rewrite the committed PNGs
    python packaging/render_icons.py --sheet sheet.png   # also a review sheet, light + dark

The SVGs are the only source; the PNGs are committed so that every platform (and a Qt
without its SVG icon plugin) gets crisp bitmaps. Run this after editing an SVG.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QRectF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

ICONS = Path(__file__).resolve().parent.parent / "qp_desktop" / "resources" / "icons"
from qp_desktop.resources import APP_SIZES, TRAY_SIZES, TRAY_STATUSES  # noqa: E402


def render(svg: Path, size: int) -> QImage:
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


def targets() -> list[tuple[Path, int, Path]]:
    """(svg, size, png) for every committed PNG."""
    out = [(ICONS / "app.svg", size, ICONS / f"app-{size}.png") for size in APP_SIZES]
    for status in TRAY_STATUSES:
        svg = ICONS / f"tray-{status}.svg"
        out += [(svg, size, ICONS / f"tray-{status}-{size}.png") for size in TRAY_SIZES]
    return out


def write_sheet(path: Path) -> None:
    """Every icon at every size on a light and a dark panel, for a human to look at."""
    rows = [("app", APP_SIZES[:6])] + [(f"tray-{s}", TRAY_SIZES) for s in TRAY_STATUSES]
    panels = (("#f4f5f7", "#1f2328"), ("#2b2f36", "#e4e7eb"), ("#000000", "#ffffff"),
              ("#ffffff", "#000000"))
    cell, label_w = 300, 90
    width = label_w + cell * len(panels)
    height = 40 + sum(max(sizes) + 30 for _, sizes in rows)
    sheet = QImage(width, height, QImage.Format.Format_ARGB32)
    sheet.fill(QColor("#808080"))
    painter = QPainter(sheet)
    painter.setFont(QFont("DejaVu Sans", 8))
    y = 20
    for name, sizes in rows:
        row_h = max(sizes) + 30
        for p, (bg, fg) in enumerate(panels):
            x0 = label_w + p * cell
            painter.fillRect(x0, y - 10, cell, row_h, QColor(bg))
            x = x0 + 6
            for size in sizes:
                if x + size > x0 + cell:
                    break
                painter.drawImage(x, y, render(ICONS / f"{name}.svg", size))
                x += size + 4
            painter.setPen(QColor(fg))
        painter.setPen(QColor("#000000"))
        painter.drawText(6, y + 14, name)
        y += row_h
    painter.end()
    sheet.save(str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", type=Path, help="also write a review sheet to this PNG")
    parser.add_argument("--check", action="store_true",
                        help="only check that every PNG exists with the right size")
    args = parser.parse_args(argv)
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    assert app is not None
    for svg, size, png in targets():
        if args.check:
            image = QImage(str(png))
            if image.isNull() or image.width() != size or image.height() != size:
                print(f"{png}: missing or not {size}x{size}", file=sys.stderr)
                return 1
            continue
        if not render(svg, size).save(str(png), b"PNG"):
            raise SystemExit(f"could not write {png}")
        print(f"wrote {png.relative_to(ICONS.parent.parent.parent)}")
    if args.sheet:
        write_sheet(args.sheet)
        print(f"wrote {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
