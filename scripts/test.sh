#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs everything the tests
# need, then pytest. Extra arguments go to pytest (e.g. scripts/test.sh -k config).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
export APPLIANCE_VENV=${APPLIANCE_VENV:-$repo/.venv}

"$repo/scripts/install.sh" --with-tests

cd "$repo"
exec "$APPLIANCE_VENV/bin/python" -m pytest "$@"
