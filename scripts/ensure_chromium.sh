#!/usr/bin/env bash
# The browser tests drive Debian's Chromium; install it when it is missing (root or sudo).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "chromium is missing and cannot be installed without root; browser tests will be skipped" >&2
  exit 0
fi
echo "installing Debian's chromium for the browser tests..." >&2
$SUDO apt-get update -qq >/dev/null || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null || \
  echo "chromium could not be installed; browser tests will be skipped" >&2
