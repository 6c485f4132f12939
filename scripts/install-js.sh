#!/usr/bin/env bash
# Installs the debug page's browser SDK (livekit-client, pinned in package.json and
# package-lock.json) into node_modules with `npm ci`; the proxy serves it from there, so the
# page needs no CDN at run time. Idempotent: does nothing while the stamp is newer than the lock.
#
# Without npm: a warning (the debug page then lists agents and dispatches, but cannot join a
# room); under CI=true, a failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STAMP=node_modules/.voiceops-installed
say() { echo "install-js: $*"; }

if [[ -f $STAMP && $STAMP -nt package-lock.json && $STAMP -nt package.json \
      && -f node_modules/livekit-client/dist/livekit-client.umd.js ]]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    msg="npm not found: the debug page (GET /debug) cannot join rooms without livekit-client; install Node.js and npm (Debian: apt-get install npm), then run 'make run' again"
    if [[ "${CI:-}" == "true" ]]; then echo "install-js: ERROR: $msg" >&2; exit 1; fi
    say "WARNING: $msg" >&2
    exit 0
fi
say "npm ci (livekit-client for the debug page)"
# --ignore-scripts: nothing from the registry runs here; the page only needs dist/ files.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
touch "$STAMP"
