#!/usr/bin/env bash
# One program of the appliance, in the foreground, as supervisord runs it (see supervisord.conf), with
# Airflow's settings from scripts/runtime/airflow-env.sh. The Airflow programs first wait (up to 2 minutes)
# for the local PostgreSQL cluster to accept connections, so that a start or restart of the whole appliance
# does not burn their restart attempts while the database comes up.
#
# Usage: scripts/runtime/service.sh api-server|scheduler|dag-processor|triggerer|streamlit|unpause-dag|redis|worker
#   redis   the Celery broker (APPLIANCE_EXECUTOR=celery without APPLIANCE_BROKER_URL): Debian's redis-server
#           on $APPLIANCE_REDIS_HOST:$APPLIANCE_REDIS_PORT, with the generated password, nothing on disk
#   worker  an Airflow Celery worker: APPLIANCE_WORKER_CONCURRENCY task processes, named
#           $APPLIANCE_WORKER_NAME, serving its task logs on $APPLIANCE_AIRFLOW_LOG_PORT
# Settings: scripts/runtime/appliance-env.sh (APPLIANCE_UI_PORT, APPLIANCE_UI_HOST) and
# scripts/runtime/airflow-env.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/runtime/appliance-env.sh
source "$here/appliance-env.sh"

wait_for_database() {
  [ "$APPLIANCE_AIRFLOW_DB" = postgres ] || return 0
  local attempt
  for attempt in $(seq 1 240); do
    if "$here/start-postgres.sh" status; then
      return 0
    fi
    [ "$attempt" = 1 ] && echo "service: waiting for PostgreSQL on 127.0.0.1:$APPLIANCE_PG_PORT"
    sleep 0.5
  done
  echo "service: PostgreSQL does not accept connections on 127.0.0.1:$APPLIANCE_PG_PORT after 2 minutes" >&2
  exit 1
}

# LocalExecutor workers left by a scheduler that was killed (SIGKILL, out of memory) wait forever for work
# that never comes, about 90 MB each. The idle ones are ended before a new scheduler starts; a busy one
# finishes its task first (Airflow takes its result, or resets the task for the new scheduler) and is
# ended at the next scheduler start, or when the appliance stops.
end_idle_orphaned_workers() {
  local self pid command
  read -r -a self <<<"$(sed 's/.*) //' "/proc/$$/stat")"
  for pid in $(appliance_session_pids "${self[3]}"); do
    command=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
    case "$command" in
      "airflow worker -- LocalExecutor"*"<idle>"*)
        echo "service: ending an idle LocalExecutor worker left by an earlier scheduler (pid $pid)"
        kill -s TERM "$pid" 2>/dev/null || true ;;
    esac
  done
}

# Airflow's programs stop on SIGTERM by raising SystemExit in their signal handler. When that lands inside a
# database call, Airflow's own error handling can swallow it (seen in the DAG processor: "Error persisting state
# for bundle", and it ran on until supervisord's SIGKILL). So the program runs as a child of this script, which
# sends SIGTERM again every APPLIANCE_STOP_REPEAT_S seconds until it has ended. The program gets the first
# SIGTERM from supervisord itself (stopasgroup signals the whole group). It dies with this script
# (--pdeathsig KILL), so killing this script's pid is still killing the program.
run_until_stopped() {
  local child status waited=0 repeat=${APPLIANCE_STOP_REPEAT_S:-10}
  stop_requested=0
  trap 'stop_requested=1' TERM INT
  setpriv --pdeathsig KILL -- "$@" &
  child=$!
  while :; do
    if wait "$child"; then return 0; else status=$?; fi
    kill -0 "$child" 2>/dev/null || return "$status"
    [ "$stop_requested" = 1 ] && break  # wait ended for the signal: the program has it too
  done
  while kill -0 "$child" 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
    if [ $((waited % repeat)) = 0 ] && kill -0 "$child" 2>/dev/null; then
      echo "service: $1 $2 still runs ${waited} s after SIGTERM: sending SIGTERM again"
      kill -s TERM "$child" 2>/dev/null || true
    fi
  done
  wait "$child"
}

name=${1:-}
case "$name" in
  api-server|dag-processor)
    wait_for_database
    run_until_stopped airflow "$name" ;;
  scheduler)
    end_idle_orphaned_workers
    wait_for_database
    # No log server (about 140 MB): the API server runs on this machine and reads the task logs from
    # disk; for a task still running, the Airflow UI then notes "Could not read served logs" among
    # the log's sources, under the lines read from the file.
    run_until_stopped airflow scheduler --skip-serve-logs ;;
  triggerer)
    # No log server of its own: it would serve the logs of deferred tasks, which the benchmark DAG has
    # not, and costs about 85 MB.
    wait_for_database
    run_until_stopped airflow triggerer --skip-serve-logs ;;
  streamlit)
    # ui/server.py: the app behind its login gate (no upload or session before the password).
    # uvicorn would take a client's address from X-Forwarded-For when the peer is 127.0.0.1: the gate
    # alone decides whom to believe (APPLIANCE_TRUSTED_PROXIES).
    export FORWARDED_ALLOW_IPS=""
    exec streamlit run "$APPLIANCE_REPO/ui/server.py" \
      --server.port "$APPLIANCE_UI_PORT" \
      --server.address "$APPLIANCE_UI_HOST" \
      --server.headless true \
      --server.fileWatcherType none \
      --browser.gatherUsageStats false ;;
  unpause-dag)
    exec python "$here/unpause_dag.py" ;;
  redis)
    if [ -z "${APPLIANCE_REDIS_PASSWORD:-}" ]; then
      echo "service: no Redis password yet: run scripts/runtime/airflow-cli.sh init" >&2
      exit 1
    fi
    # The configuration comes on stdin, so that the password is on no command line. No persistence: a
    # task whose message a restart lost stays queued until the scheduler queues it again
    # ([scheduler] task_queued_timeout).
    cd "$APPLIANCE_RUN_DIR"
    exec redis-server - <<EOF
bind $APPLIANCE_REDIS_HOST
port $APPLIANCE_REDIS_PORT
requirepass $APPLIANCE_REDIS_PASSWORD
protected-mode yes
save ""
appendonly no
daemonize no
logfile ""
EOF
    ;;
  worker)
    wait_for_database
    exec airflow celery worker --celery-hostname "$APPLIANCE_WORKER_NAME" \
      --concurrency "$APPLIANCE_WORKER_CONCURRENCY" ;;
  *)
    echo "usage: $0 api-server|scheduler|dag-processor|triggerer|streamlit|unpause-dag|redis|worker" >&2
    exit 2 ;;
esac
