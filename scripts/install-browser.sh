#!/usr/bin/env bash
# Installs what the browser tests (tests/browser) need from Debian's packages, idempotently:
#   chromium   headless, driven over the DevTools protocol (no browser download ever)
# Needs root for apt-get. Without them the browser tests skip locally; under CI=true a
# missing browser is a failure (here and in the tests).
set -euo pipefail
say() { echo "install-browser: $*"; }
fail() {
    if [[ "${CI:-}" == "true" ]]; then echo "install-browser: ERROR: $*" >&2; exit 1; fi
    say "WARNING: $* (the browser tests will skip)" >&2
    exit 0
}
runs() { "$@" >/dev/null 2>&1; }

have_all() { runs chromium --version; }
have_all && exit 0
[[ $(id -u) -eq 0 ]] || fail "chromium missing and not root: apt-get install chromium"
command -v apt-get >/dev/null || fail "chromium missing and no apt-get"
say "apt-get install chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || fail "apt-get update failed"
apt-get install -y -qq chromium >/dev/null \
    || fail "apt-get install chromium failed"
have_all || fail "chromium does not run after the install"
say "chromium: $(chromium --version 2>/dev/null)"
