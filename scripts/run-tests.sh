#!/usr/bin/env bash
# The one test command: `make test` and .ci/run both end here.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  # pytest's "no tests collected": a suite that runs nothing has failed, say so plainly.
  echo "run-tests: pytest collected no tests; treating that as a failure" >&2
  exit 1
fi

# Second pass: the Letta-facing tests (marker `letta`) again, against a real Letta 0.16.8 on
# loopback (scripts/letta-server.sh). Runs with the whole suite (no arguments) or with
# VOICEOPS_REAL_LETTA=1; VOICEOPS_REAL_LETTA=0 skips it, except under CI=true, where it is
# required and a failure to set it up fails the run.
real_letta_pass() {
  bash scripts/letta-server.sh setup || { echo "run-tests: real Letta install failed" >&2; return 1; }
  trap 'bash scripts/letta-server.sh stop' EXIT
  bash scripts/letta-server.sh start || { echo "run-tests: real Letta did not start" >&2; return 1; }
  local url; url=$(sed -n 's/^LETTA_BASE_URL=//p' .letta/run/env)
  echo "run-tests: Letta-facing tests against the real Letta 0.16.8 at $url" >&2
  LETTA_BASE_URL=$url .venv/bin/python -m pytest -m letta -q tests
  local rc=$?
  bash scripts/letta-server.sh stop
  trap - EXIT
  [ "$rc" -eq 5 ] && { echo "run-tests: no letta tests collected" >&2; return 1; }
  return "$rc"
}

want=${VOICEOPS_REAL_LETTA:-}
if [ -z "$want" ]; then want=$([ "$#" -eq 0 ] && echo 1 || echo 0); fi
if [ "${CI:-}" = "true" ] && [ "$#" -eq 0 ]; then want=1; fi
if [ "$want" = 1 ]; then
  real_letta_pass
  letta_status=$?
  if [ "$letta_status" -ne 0 ]; then
    echo "run-tests: the real-Letta pass failed (exit $letta_status)" >&2
    [ "$status" -eq 0 ] && status=1
  fi
fi
exit "$status"
