#!/usr/bin/env bash
# Install everything the project needs into the checkout: a Python 3.11 venv with
# requirements-dev.txt (devhost editable from tools/devhost), (when package.json exists) node_modules from the lock file, and
# the system Chromium the dashboard's browser tests drive (apt, only when /usr/bin/chromium
# is missing; Playwright's own browser download is never used).
# Idempotent: re-running with unchanged requirement files does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/venv.sh
# requirements-dev.txt includes requirements.txt and devhost (editable): a change to either reinstalls.
ensure_venv .venv requirements-dev.txt requirements.txt tools/devhost/pyproject.toml

if [ -f package.json ]; then
  nstamp=node_modules/.lock.sha
  nwant=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$nstamp" 2>/dev/null)" != "$nwant" ]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$nwant" > "$nstamp"
  fi
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "bootstrap: /usr/bin/chromium is missing; install it (apt-get install chromium)" \
         "as root for the dashboard's browser tests" >&2
  fi
fi
