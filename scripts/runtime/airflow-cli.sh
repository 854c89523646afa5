#!/usr/bin/env bash
# Airflow's commands for the appliance, with the settings of scripts/runtime/airflow-env.sh (sourced here;
# source that file itself for the settings alone).
#
# Usage:
#   scripts/runtime/airflow-cli.sh init            first start and every start, idempotent: folders, generated
#                                                  secrets and admin password, the local PostgreSQL cluster,
#                                                  and `airflow db migrate`; run it before starting the programs
#                                                  (scripts/runtime/entrypoint.sh does)
#   scripts/runtime/airflow-cli.sh exec CMD...     run CMD with the settings, e.g. `exec airflow scheduler`
#   scripts/runtime/airflow-cli.sh print           print the settings, secrets masked
#   scripts/runtime/airflow-cli.sh worker-env HOST what a Celery worker on another machine needs (below)
#
# The programs, each in the foreground (supervisord runs them through scripts/runtime/service.sh; the
# tests' Airflow, tests/airflow_harness.py, this way):
#   scripts/runtime/start-postgres.sh run
#   scripts/runtime/airflow-cli.sh exec airflow api-server     UI, REST API and the execution API the tasks call
#   scripts/runtime/airflow-cli.sh exec airflow scheduler      LocalExecutor: runs the task processes
#   scripts/runtime/airflow-cli.sh exec airflow dag-processor  parses dags/
#   scripts/runtime/airflow-cli.sh exec airflow triggerer      only for deferrable tasks (the benchmark DAG has none)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/runtime/airflow-env.sh
source "$here/airflow-env.sh"

_appliance_init() {
  umask 077
  mkdir -p "$AIRFLOW_HOME/logs" "$_appliance_secrets" "$APPLIANCE_DATA_DIR"
  chmod 0700 "$_appliance_secrets"
  if [ ! -s "$_appliance_secrets/airflow.env" ]; then
    "$APPLIANCE_VENV/bin/python" - "$_appliance_secrets/airflow.env" <<'PY'
import secrets, string, sys
from cryptography.fernet import Fernet
alphabet = string.ascii_letters + string.digits
word = lambda n: "".join(secrets.choice(alphabet) for _ in range(n))
with open(sys.argv[1], "x") as out:
    out.write(f"APPLIANCE_PG_PASSWORD={word(32)}\n")
    out.write(f"AIRFLOW__API_AUTH__JWT_SECRET={word(48)}\n")
    out.write(f"AIRFLOW__API__SECRET_KEY={word(48)}\n")
    out.write(f"AIRFLOW__CORE__FERNET_KEY={Fernet.generate_key().decode()}\n")
PY
  fi
  if ! grep -q '^APPLIANCE_REDIS_PASSWORD=' "$_appliance_secrets/airflow.env"; then
    # Added to an older secrets file too: the broker's password (APPLIANCE_EXECUTOR=celery).
    "$APPLIANCE_VENV/bin/python" -c 'import secrets; print("APPLIANCE_REDIS_PASSWORD=" + secrets.token_hex(24))' \
      >>"$_appliance_secrets/airflow.env"
  fi
  if [ ! -s "$_appliance_secrets/airflow-admin-password.json" ]; then
    "$APPLIANCE_VENV/bin/python" - "$_appliance_secrets/airflow-admin-password.json" <<'PY'
import json, secrets, string, sys
alphabet = string.ascii_letters + string.digits
with open(sys.argv[1], "x") as out:
    json.dump({"admin": "".join(secrets.choice(alphabet) for _ in range(24))}, out)
    out.write("\n")
PY
  fi
  chmod 0600 "$_appliance_secrets"/*
  # Again, now that the secrets exist (the database URL needs the password).
  # shellcheck source=scripts/runtime/airflow-env.sh
  source "$here/airflow-env.sh"

  local started_here=0
  if [ "$APPLIANCE_AIRFLOW_DB" = postgres ]; then
    "$here/start-postgres.sh" init
    if ! "$here/start-postgres.sh" status; then
      "$here/start-postgres.sh" start
      started_here=1
    fi
  fi
  local status=0
  airflow db migrate >"$AIRFLOW_HOME/logs/db-migrate.log" 2>&1 || status=$?
  if [ "$status" = 0 ]; then
    # Unpaused whenever the appliance starts (a no-op before the DAG processor first saw the DAG).
    airflow dags unpause dataperf_benchmark >/dev/null 2>&1 || true
  fi
  if [ "$started_here" = 1 ]; then
    "$here/start-postgres.sh" stop
  fi
  if [ "$status" != 0 ]; then
    echo "airflow-cli: airflow db migrate failed (exit $status); see $AIRFLOW_HOME/logs/db-migrate.log" >&2
    tail -n 20 "$AIRFLOW_HOME/logs/db-migrate.log" >&2
    return "$status"
  fi
  echo "airflow-cli: ready (database: $APPLIANCE_AIRFLOW_DB; admin password in $AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE)"
}

# The settings a Celery worker on another machine needs to join this appliance, as KEY=VALUE lines (an env
# file: `docker run --env-file`, or `set -a; source FILE`), secrets included, so mode 0600 wherever they go:
# the broker, the metadata database and the execution API at HOST, the address workers reach this
# machine at, and the JWT secret the log server checks the API server's requests with. This machine must
# listen on HOST: APPLIANCE_REDIS_HOST and APPLIANCE_PG_LISTEN (README "Scale out").
_appliance_worker_env() {
  local host=$1
  if [ -z "$host" ] || [ "$APPLIANCE_EXECUTOR" != celery ]; then
    echo "airflow-cli: worker-env needs APPLIANCE_EXECUTOR=celery and the address workers reach this machine at" \
      "(usage: $0 worker-env HOST)" >&2
    return 2
  fi
  if [ -z "${AIRFLOW__CELERY__BROKER_URL:-}" ] || [ -z "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}" ]; then
    echo "airflow-cli: no generated secrets yet: run $0 init first" >&2
    return 1
  fi
  local swap="s#@(127\.0\.0\.1|localhost)([:/])#@$host\2#"
  echo "APPLIANCE_EXECUTOR=celery"
  echo "APPLIANCE_BROKER_URL=$(sed -E "$swap" <<<"$AIRFLOW__CELERY__BROKER_URL")"
  echo "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=$(sed -E "$swap" <<<"$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")"
  echo "AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://$host:$APPLIANCE_AIRFLOW_PORT/execution/"
  echo "AIRFLOW__API_AUTH__JWT_SECRET=$AIRFLOW__API_AUTH__JWT_SECRET"
}

case "${1:-}" in
  init) _appliance_init ;;
  exec)
    shift
    [ "$#" -gt 0 ] || { echo "usage: $0 exec COMMAND [ARGS...]" >&2; exit 2; }
    exec "$@" ;;
  print)
    env | grep -E '^(AIRFLOW|APPLIANCE)' | sort \
      | sed -E 's/(JWT_SECRET|SECRET_KEY|FERNET_KEY|REDIS_PASSWORD)=.*/\1=***/; s#(://[^:/]*:)[^@]*@#\1***@#' ;;
  worker-env) _appliance_worker_env "${2:-}" ;;
  *) echo "usage: $0 init | $0 exec COMMAND [ARGS...] | $0 print | $0 worker-env HOST" >&2; exit 2 ;;
esac
