#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the app and its tests need, if any is missing.
# Usage: scripts/system-deps.sh [run|test]   (default: test)
set -euo pipefail

purpose="${1:-test}"
# Qt's offscreen/xcb platform libraries and fonts: needed to run the desktop app at all.
packages=(python3-venv libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1
          libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
          libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 fonts-dejavu-core)
if [ "$purpose" = "test" ]; then
  # Real parts for the tests: Secret Service, D-Bus, OpenLDAP, PostgreSQL, nginx,
  # desktop-file and AppStream validators.
  packages+=(dbus dbus-x11 gnome-keyring slapd ldap-utils postgresql nginx-light
             desktop-file-utils appstream)
  # A real Active Directory: a Samba 4 AD domain controller (provisioning needs the
  # samba-ad-provision files), ldb-tools to look inside one.
  packages+=(samba samba-ad-dc samba-ad-provision ldb-tools)
  # The real-window layer: an X server, a window manager, xprop to see it is up.
  packages+=(xvfb openbox x11-utils)
  # The benchmarks' load generator (make bench): C, so the client is never the bottleneck.
  packages+=(wrk)
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing system packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "These Debian packages are missing and I am not root: ${missing[*]}" >&2
    echo "Install them with: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
