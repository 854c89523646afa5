#!/usr/bin/env bash
# Where the appliance's files are: the first settings every script reads. Sourced by
# scripts/runtime/airflow-env.sh (so by appliance-env.sh and every script that sources either), and by
# scripts/runtime/entrypoint.sh before anything else (before it drops root).
#
#   APPLIANCE_REPO      this checkout (the image: /opt/appliance/src)
#   APPLIANCE_VENV      the virtual environment (default <repo>/.venv); its bin/ goes first on PATH
#   APPLIANCE_DATA_DIR  the data root, made absolute (a relative one is taken from the current folder).
#                       Its default, <repo>/data, is set here and nowhere else in scripts/; the package's own
#                       default (dataperf_appliance/engine/settings.py, DEFAULT_DATA_DIR) is the same folder, and
#                       tests/test_lint.py checks that they agree. The image's /data (Dockerfile ENV) is a
#                       deployment's value, not a second default.
#
# Only sourced: it sets variables, and changes nothing on disk.

APPLIANCE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export APPLIANCE_REPO
export APPLIANCE_VENV=${APPLIANCE_VENV:-$APPLIANCE_REPO/.venv}
case ":$PATH:" in
  *":$APPLIANCE_VENV/bin:"*) ;;
  *) export PATH="$APPLIANCE_VENV/bin:$PATH" ;;
esac
APPLIANCE_DATA_DIR=$(realpath -m "${APPLIANCE_DATA_DIR:-$APPLIANCE_REPO/data}")
export APPLIANCE_DATA_DIR
