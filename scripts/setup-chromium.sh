#!/usr/bin/env bash
# Installs headless Chromium from Debian's `chromium` package for the dashboard's browser tests
# (crates/durable-dashboard/tests/browser.rs). Needs root for apt-get; does nothing when Chromium is already there.
set -euo pipefail
CHROMIUM=${DURABLE_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  echo "chromium ready: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-chromium: $CHROMIUM is missing; run this script as root (it runs apt-get install chromium)," \
    "or set DURABLE_CHROMIUM to a Chromium executable" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "chromium ready: $("$CHROMIUM" --version)"
