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
exit "$status"
