#!/bin/sh
# Installs (as root, on Debian) whatever promptlearn's build, tests and CLI need and is missing.
set -eu
packages="cmake g++ make pkg-config libeigen3-dev nlohmann-json3-dev libsqlite3-dev libfmt-dev libsodium-dev catch2 sqlite3"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  if [ "$(id -u)" -ne 0 ]; then
    echo "run as root (or with sudo) to install:$missing" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
