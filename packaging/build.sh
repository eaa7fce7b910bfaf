#!/usr/bin/env bash
# Build one-folder PyInstaller bundles of qp-desktop and qp-agent.
#
#   packaging/build.sh [desktop|agent|all]      (default: all)
#
# Environment: PYTHON (default .venv/bin/python, else python3) must have the project and
# the `packaging` extra installed:  pip install -e '.[packaging]'
# DIST (default dist/) and WORK (default build/pyinstaller/) choose the output folders.
# Result: $DIST/qp-desktop/qp-desktop and $DIST/qp-agent/qp-agent (plus, on Linux,
# $DIST/qp-desktop/share/ with the .desktop file, AppStream metainfo and icons).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
what="${1:-all}"
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
DIST="${DIST:-$ROOT/dist}"
WORK="${WORK:-$ROOT/build/pyinstaller}"
APP_ID=$("$PYTHON" -c 'from qp_desktop import APP_ID; print(APP_ID)')

if ! "$PYTHON" -m PyInstaller --version >/dev/null 2>&1; then
  echo "PyInstaller is not installed for $PYTHON. Run: $PYTHON -m pip install -e '.[packaging]'" >&2
  exit 1
fi
# The committed PNGs must exist (they are rendered from the SVGs by render_icons.py).
QT_QPA_PLATFORM=offscreen "$PYTHON" packaging/render_icons.py --check

build() {
  local name=$1 start=$SECONDS
  echo "building $name ..." >&2
  # Each build its own PyInstaller cache: the two builds of `all` run side by side, and
  # --clean empties the cache it uses.
  PYINSTALLER_CONFIG_DIR="$WORK/$name-cache" \
  "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK/$name" "packaging/$name.spec"
  echo "built $DIST/$name in $((SECONDS - start)) s, $(du -sh "$DIST/$name" | cut -f1)" >&2
}

desktop_share() {
  # freedesktop files next to the bundle, laid out like /usr/share, for installers.
  local share="$DIST/qp-desktop/share"
  install -Dm644 "resources/$APP_ID.desktop" "$share/applications/$APP_ID.desktop"
  install -Dm644 "resources/$APP_ID.metainfo.xml" "$share/metainfo/$APP_ID.metainfo.xml"
  install -Dm644 qp_desktop/resources/icons/app.svg \
    "$share/icons/hicolor/scalable/apps/$APP_ID.svg"
  for size in 16 24 32 48 64 128 256 512; do
    install -Dm644 "qp_desktop/resources/icons/app-$size.png" \
      "$share/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
  done
}

case "$what" in
  desktop) build qp-desktop ;;
  agent) build qp-agent ;;
  all)
    # Side by side: PyInstaller's analysis runs on one core, and a build machine has two.
    build qp-desktop & desktop=$!
    build qp-agent & agent=$!
    failed=0
    wait "$desktop" || failed=1
    wait "$agent" || failed=1
    [ "$failed" -eq 0 ] || exit 1 ;;
  *) echo "usage: $0 [desktop|agent|all]" >&2; exit 2 ;;
esac
if [ -d "$DIST/qp-desktop" ] && [ "$(uname -s)" = "Linux" ] && [ "$what" != agent ]; then
  desktop_share
fi
