#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs everything the tests need (the appliance with its
# test extras, checkov in a venv of its own, Debian's chromium for the browser tests, podman and
# debootstrap for the image test), then pytest:
#   - every test, the end-to-end ones and the image's build and run included, on the Python of .venv
#     (python3: 3.11 in CI), with the 25 slowest listed;
#   - the fast suite (-m "not slow and not torch") on each other supported Python (scripts/dev/pythons.py:
#     3.11, 3.12, 3.13), each in a venv of its own, .venv-3.X, from pyenv or python3.X on PATH, alongside the whole suite at the
#     lowest CPU priority. A missing one fails the run in CI (CI=true) and is reported, not run, elsewhere.
# Extra arguments go to the first pytest only, and the other Pythons are then left out
# (e.g. scripts/test.sh -k config).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
export APPLIANCE_VENV=${APPLIANCE_VENV:-$repo/.venv}

started=$SECONDS
"$repo/scripts/dev/install.sh" --with-tests
"$repo/scripts/dev/install_checkov.sh"
"$repo/scripts/dev/install-browser.sh"
# The image test (-m image): podman with the runc runtime (crun's rlimit calls are refused in some sandboxes),
# iptables for its published ports, debootstrap for the local base (scripts/dev/local-base-image.sh).
"$repo/scripts/dev/apt-install.sh" podman runc iptables debootstrap
# The Celery broker of the scale-out test (tests/test_scale_out.py), as in the image.
"$repo/scripts/dev/apt-install.sh" redis-server
echo "test: installs (the appliance, checkov, chromium, podman) took $((SECONDS - started)) s"

cd "$repo"
if [ "$#" -gt 0 ]; then
  exec "$APPLIANCE_VENV/bin/python" -m pytest "$@"
fi

status=0
main_version=$("$APPLIANCE_VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
# The other Pythons' fast suites run while the whole suite does, at the lowest CPU priority (nice 19): the
# whole suite's services (Airflow, PostgreSQL, chromium, podman) spend much of their time waiting, and the
# fast suites take that idle CPU without slowing them. Each writes a log, printed when it ends.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
versions=()
for version in $(python3 "$repo/scripts/dev/pythons.py"); do
  [ "$version" != "$main_version" ] || continue
  if ! interpreter=$(python3 "$repo/scripts/dev/pythons.py" "$version"); then
    if [ "${CI:-}" = true ]; then
      status=1
    fi
    echo "test: no Python $version on this machine: the fast suite did not run on it" >&2
    continue
  fi
  PYTHON=$interpreter APPLIANCE_VENV=$repo/.venv-$version "$repo/scripts/dev/install.sh" --with-tests
  # Not the `torch` tests either: PyTorch's CPU wheel (the reference-check extra) is there for 3.11 only.
  APPLIANCE_VENV=$repo/.venv-$version nice -n 19 "$repo/.venv-$version/bin/python" -m pytest \
    -m "not slow and not torch" -p no:cacheprovider --basetemp "$logs/tmp-$version" >"$logs/$version.log" 2>&1 &
  pids+=("$!")
  versions+=("$version")
done

started=$SECONDS
"$APPLIANCE_VENV/bin/python" -m pytest --durations=25 || status=$?
echo "test: the whole suite on $("$APPLIANCE_VENV/bin/python" --version) took $((SECONDS - started)) s"

for index in "${!pids[@]}"; do
  version=${versions[$index]}
  wait "${pids[$index]}" || status=$?
  echo "---- the fast suite on Python $version:"
  cat "$logs/$version.log"
done
echo "test: the fast suites on Python ${versions[*]:-none} ended $((SECONDS - started)) s after the whole suite started"
exit "$status"
