#!/usr/bin/env bash
# Installs the appliance, with the versions pinned in constraints.txt, into a
# virtual environment. The Dockerfile and CI both run this script.
#
# Usage: scripts/install.sh [--with-tests]
# Settings: APPLIANCE_VENV (default: <repo>/.venv), PYTHON (default: python3).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${APPLIANCE_VENV:-$repo/.venv}
python=${PYTHON:-python3}
extras=appliance
if [ "${1:-}" = "--with-tests" ]; then
  # reference-check: PyTorch (CPU) for the tests that compare the reference classifier with torch.
  extras=appliance,test,reference-check
fi

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --progress-bar off --upgrade pip
# Editable, so that the templates/ and dags/ beside the package are the ones in use.
"$venv/bin/python" -m pip install --quiet --progress-bar off \
  -c "$repo/constraints.txt" -e "${repo}[$extras]"
echo "installed the appliance into $venv"
