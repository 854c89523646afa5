#!/usr/bin/env bash
# Installs the appliance, with the versions pinned for its Python in constraints/python-3.X.txt, into a
# virtual environment. The Dockerfile and CI both run this script.
#
# Usage: scripts/dev/install.sh [--with-tests]
# Settings: APPLIANCE_VENV (default: <repo>/.venv), PYTHON (default: python3; 3.11, 3.12 or 3.13),
#   APPLIANCE_EXTRAS (default: appliance, plus test with --with-tests): extras of pyproject.toml to install.
#   An extra that the constraints of this Python do not cover (their `# extras:` line; e.g. one whose
#   wheels exist for 3.11 only) is skipped with a message.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${APPLIANCE_VENV:-$repo/.venv}
python=${PYTHON:-python3}
extras=${APPLIANCE_EXTRAS:-appliance,celery}
if [ "${1:-}" = "--with-tests" ]; then
  # reference-check: PyTorch (CPU) for the tests that compare the reference classifier with torch; its
  # wheel is on disk for Python 3.11 only, so only that constraints file lists it (the others skip it).
  extras=$extras,test,reference-check
fi

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
version=$("$venv/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
constraints=$repo/constraints/python-$version.txt
if [ ! -f "$constraints" ]; then
  echo "install: Python $version ($venv) is not supported: use 3.11, 3.12 or 3.13 (set PYTHON, and remove $venv)" >&2
  exit 1
fi
covered=" $(sed -n 's/^# extras: //p' "$constraints") "
wanted=()
for extra in ${extras//,/ }; do
  if [[ "$covered" == *" $extra "* ]]; then
    wanted+=("$extra")
  else
    echo "install: skipping the extra '$extra': not available on Python $version (see $constraints)" >&2
  fi
done
extras=$(IFS=,; echo "${wanted[*]}")

# Editable, so that the templates/ and dags/ beside the package are the ones in use. Compiled to .pyc
# (scripts/dev/uv.sh sets UV_COMPILE_BYTECODE=1).
"$repo/scripts/dev/uv.sh" pip install --quiet --python "$venv/bin/python" \
  -c "$constraints" -e "${repo}${extras:+[$extras]}"
# The package itself is editable, so uv compiles none of it: compile it here (a stale .pyc is ignored).
"$venv/bin/python" -m compileall -q "$repo/dataperf_appliance" "$repo/dags" "$repo/ui" >/dev/null
echo "installed the appliance (Python $version${extras:+, extras $extras}) into $venv"
