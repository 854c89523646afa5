#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs everything the tests
# need (the appliance with its test extras, checkov in a venv of its own,
# Debian's chromium for the browser tests, podman and debootstrap for the image
# test), then pytest. Extra arguments go to
# pytest (e.g. scripts/test.sh -k config).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
export APPLIANCE_VENV=${APPLIANCE_VENV:-$repo/.venv}

"$repo/scripts/install.sh" --with-tests
"$repo/scripts/install_checkov.sh"
"$repo/scripts/install-browser.sh"
# The image test: podman with the runc runtime (crun's rlimit calls are refused in some sandboxes, CI's
# among them), iptables for its published ports, debootstrap for the local base (scripts/local-base-image.sh).
"$repo/scripts/apt-install.sh" podman runc iptables debootstrap

cd "$repo"
exec "$APPLIANCE_VENV/bin/python" -m pytest "$@"
