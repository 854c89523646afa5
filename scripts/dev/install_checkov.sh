#!/usr/bin/env bash
# Installs checkov, pinned, into a virtual environment of its own: checkov's
# dependency pins conflict with Airflow's, so it never goes into the appliance's venv.
# Idempotent and quiet: a second run with the pinned version in place does nothing.
#
# Usage: scripts/dev/install_checkov.sh
# Settings: CHECKOV_VENV (default: <repo>/.venv-checkov), PYTHON (default: python3).
set -euo pipefail

checkov_version=3.3.30

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${CHECKOV_VENV:-$repo/.venv-checkov}
python=${PYTHON:-python3}

if [ -x "$venv/bin/checkov" ] &&
  [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null)" = "$checkov_version" ]; then
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$repo/scripts/dev/uv.sh" pip install --quiet --python "$venv/bin/python" "checkov==$checkov_version"
echo "installed checkov $checkov_version into $venv"
