#!/usr/bin/env bash
# The appliance's settings beyond Airflow's: sourced by scripts/runtime/entrypoint.sh, scripts/start.sh
# and scripts/runtime/service.sh. Sources scripts/runtime/airflow-env.sh first (which sources
# scripts/runtime/paths.sh: the repository, the virtual environment, the data root; then Airflow and its
# database), then exports:
#
#   APPLIANCE_LOG_DIR       the programs' logs, rotated by supervisord (default $APPLIANCE_DATA_DIR/logs)
#   APPLIANCE_RUN_DIR       supervisord's pid file and control socket, and start.sh's pid file
#                           (default $APPLIANCE_DATA_DIR/run; a folder under $TMPDIR when that path is too
#                           long for a unix socket)
#   APPLIANCE_UI_PORT       Streamlit's port (default 8501)
#   APPLIANCE_UI_HOST       Streamlit's address (default 127.0.0.1: this machine only; the image sets 0.0.0.0,
#                           for its published port)
#   APPLIANCE_PG_AUTOSTART  true when supervisord runs the local PostgreSQL (APPLIANCE_AIRFLOW_DB=postgres)
#   APPLIANCE_REDIS_AUTOSTART, APPLIANCE_WORKER_AUTOSTART
#                           true when supervisord runs the local Redis, the local Celery worker (below)
#   APPLIANCE_AIRFLOW_TRIGGERER  false to leave Airflow's triggerer off (default true). It only runs deferred tasks,
#                           which the benchmark DAG has none of, and idle it holds about 170 MB; but without it
#                           Airflow's home page shows a red "Triggerer". With it, memory after use measured
#                           1,180 MiB, within the 1,200 MiB target (scripts/bench/bench_appliance.py)
#   NUMBA_CACHE_DIR         numba's cache of compiled code (the DataPerf reference classifier's training loop),
#                           written once and shared by every task process (default $APPLIANCE_DATA_DIR/cache/numba)
#
# Only sourced: it sets variables and functions, and changes nothing on disk (appliance_make_dirs, below,
# makes the log and run folders when called).

# shellcheck source=scripts/runtime/airflow-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/airflow-env.sh"

APPLIANCE_LOG_DIR=$(realpath -m "${APPLIANCE_LOG_DIR:-$APPLIANCE_DATA_DIR/logs}")
if [ -z "${APPLIANCE_RUN_DIR:-}" ]; then
  APPLIANCE_RUN_DIR=$APPLIANCE_DATA_DIR/run
  # A unix socket path has at most 107 bytes.
  if [ "${#APPLIANCE_RUN_DIR}" -gt 90 ]; then
    APPLIANCE_RUN_DIR=${TMPDIR:-/tmp}/dataperf-appliance-$(id -u)-$(printf '%s' "$APPLIANCE_DATA_DIR" | cksum | cut -d ' ' -f 1)
  fi
fi
APPLIANCE_RUN_DIR=$(realpath -m "$APPLIANCE_RUN_DIR")
export APPLIANCE_LOG_DIR APPLIANCE_RUN_DIR
export APPLIANCE_UI_PORT=${APPLIANCE_UI_PORT:-8501}
export APPLIANCE_UI_HOST=${APPLIANCE_UI_HOST:-127.0.0.1}
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$APPLIANCE_DATA_DIR/cache/numba}
if [ "$APPLIANCE_AIRFLOW_DB" = postgres ]; then
  export APPLIANCE_PG_AUTOSTART=true
else
  export APPLIANCE_PG_AUTOSTART=false
fi
# With the CeleryExecutor: the appliance's own Redis unless a broker is given, and a Celery worker on
# this machine too unless APPLIANCE_LOCAL_WORKER=false (the tasks then run on other machines only).
APPLIANCE_REDIS_AUTOSTART=false
APPLIANCE_WORKER_AUTOSTART=false
if [ "$APPLIANCE_EXECUTOR" = celery ]; then
  [ -n "${APPLIANCE_BROKER_URL:-}" ] || APPLIANCE_REDIS_AUTOSTART=true
  [ "${APPLIANCE_LOCAL_WORKER:-true}" = false ] || APPLIANCE_WORKER_AUTOSTART=true
fi
export APPLIANCE_REDIS_AUTOSTART APPLIANCE_WORKER_AUTOSTART
export APPLIANCE_AIRFLOW_TRIGGERER=${APPLIANCE_AIRFLOW_TRIGGERER:-true}
case "$APPLIANCE_AIRFLOW_TRIGGERER" in
  true | false) ;;
  *) echo "APPLIANCE_AIRFLOW_TRIGGERER must be true or false, not '$APPLIANCE_AIRFLOW_TRIGGERER'" >&2; return 1 ;;
esac

# The programs' log folder and supervisord's run folder (its socket: 0700), made when missing. The one place
# that makes them: the entrypoint (before supervisord, which writes in both) and scripts/start.sh (its pid
# file, the background start's log) call it.
appliance_make_dirs() {
  mkdir -p "$APPLIANCE_LOG_DIR" "$APPLIANCE_RUN_DIR"
  chmod 0700 "$APPLIANCE_RUN_DIR"
}

# The pid of the PostgreSQL server that runs on the cluster $APPLIANCE_PGDATA, if any: its postmaster.pid, unless
# that file was left by a server that was killed (its pid then names no process called postgres).
appliance_postgres_pid() {
  local pid
  pid=$(head -n 1 "$APPLIANCE_PGDATA/postmaster.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
    echo "$pid"
  fi
}

# The pids of the live processes in session $1, one a line (read from /proc: no ps needed).
appliance_session_pids() {
  local stat line fields
  for stat in /proc/[0-9]*/stat; do
    line=$(cat "$stat" 2>/dev/null) || continue
    # The fields after the command name: state ppid pgrp session ...
    read -r -a fields <<<"${line##*) }"
    if [ "${fields[3]:-}" = "$1" ] && [ "${fields[0]}" != Z ]; then
      stat=${stat#/proc/}
      echo "${stat%/stat}"
    fi
  done
}
