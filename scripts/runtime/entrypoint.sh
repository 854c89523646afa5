#!/usr/bin/env bash
# The appliance's entrypoint: the image's ENTRYPOINT, and what scripts/start.sh runs on a plain host.
# Every start (each step is idempotent, so a first boot and a restart are the same):
#
#   1. scripts/runtime/airflow-cli.sh init: folders, generated secrets and Airflow admin password (never a
#      default), the local PostgreSQL cluster, `airflow db migrate`;
#   2. the UI password: `python -m dataperf_appliance.interface.access` (generated at the first start unless
#      APPLIANCE_UI_PASSWORD is set);
#   3. with APPLIANCE_S3_BUCKET set: restores the run history from the bucket (every run there that is
#      not on disk, newest first, for at most storage.RESTORE_TIME_BUDGET_S; storage.restore_history: the
#      runs left are downloaded when opened). When S3 cannot be read the appliance starts anyway with the
#      runs on disk, and says so;
#   4. exec supervisord in the foreground (supervisord.conf): it becomes this process, so `docker stop`'s
#      SIGTERM (or a SIGTERM to this pid) stops every program in order before it exits. The DAG is unpaused
#      by the one-shot program `unpause-dag` once the DAG processor has stored it.
#
# Who runs what: everything runs as the user that starts this script. In the image that is the
# non-root user `appliance`, PostgreSQL included. Started as root with APPLIANCE_RUN_AS=<user> (the image
# sets APPLIANCE_RUN_AS=appliance, so `docker run --user 0` with a data volume owned by root works), it
# hands the data root to that user and continues as that user. Started as root without it (a plain host
# as root, e.g. in /root), the programs run as root except PostgreSQL, which refuses root and runs as the
# OS user `postgres`, with its cluster in a folder of its own outside the data root
# (scripts/runtime/airflow-env.sh, scripts/runtime/start-postgres.sh); no permission of the data root is
# changed.
#
# Settings: scripts/runtime/paths.sh, appliance-env.sh and airflow-env.sh (their headers list them), the
# storage settings APPLIANCE_S3_BUCKET / APPLIANCE_S3_PREFIX / AWS_ENDPOINT_URL, and APPLIANCE_UI_PASSWORD.
#
# `scripts/runtime/entrypoint.sh worker` (the image: `docker run IMAGE worker`) runs only an Airflow Celery
# worker for an appliance started with APPLIANCE_EXECUTOR=celery elsewhere: see the `worker` case below.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The repository, the virtual environment and the data root (absolute), before anything else: the same for
# root and for the user it hands over to.
# shellcheck source=scripts/runtime/paths.sh
source "$here/paths.sh"

if [ "$(id -u)" = 0 ] && [ -n "${APPLIANCE_RUN_AS:-}" ]; then
  data=$APPLIANCE_DATA_DIR
  mkdir -p "$data"
  if [ "$(stat -c %U "$data")" != "$APPLIANCE_RUN_AS" ]; then
    echo "entrypoint: handing $data to the user $APPLIANCE_RUN_AS"
    chown -R "$APPLIANCE_RUN_AS:" "$data"
  fi
  home=$(getent passwd "$APPLIANCE_RUN_AS" | cut -d: -f6)
  exec setpriv --reuid="$APPLIANCE_RUN_AS" --regid="$(id -g "$APPLIANCE_RUN_AS")" --init-groups -- \
    env HOME="${home:-/tmp}" USER="$APPLIANCE_RUN_AS" APPLIANCE_RUN_AS= "$0" "$@"
fi

umask 027
say() { echo "entrypoint: $*"; }

role=${1:-appliance}
case "$role" in
  appliance) ;;
  worker)
    # Only an Airflow Celery worker, for the appliance that runs elsewhere: no setup, no database, no
    # supervisord. Its settings are the main instance's `scripts/runtime/airflow-cli.sh worker-env HOST`; its
    # own Airflow home and logs are its own folder of the data root (the rest of the data root is shared).
    missing=()
    for setting in APPLIANCE_BROKER_URL AIRFLOW__DATABASE__SQL_ALCHEMY_CONN AIRFLOW__CORE__EXECUTION_API_SERVER_URL; do
      [ -n "${!setting:-}" ] || missing+=("$setting")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
      say "a worker needs ${missing[*]}: the main instance's" \
        "\`scripts/runtime/airflow-cli.sh worker-env HOST\` prints them" >&2
      exit 2
    fi
    export APPLIANCE_EXECUTOR=celery
    APPLIANCE_WORKER_NAME=${APPLIANCE_WORKER_NAME:-$(hostname -f 2>/dev/null || hostname)}
    worker_dir=$APPLIANCE_DATA_DIR/workers/$APPLIANCE_WORKER_NAME
    export APPLIANCE_WORKER_NAME AIRFLOW_HOME=${AIRFLOW_HOME:-$worker_dir/airflow}
    export APPLIANCE_LOG_DIR=${APPLIANCE_LOG_DIR:-$worker_dir/logs} APPLIANCE_RUN_DIR=${APPLIANCE_RUN_DIR:-$worker_dir/run} ;;
  *)
    echo "usage: $0 [appliance|worker]" >&2
    exit 2 ;;
esac

# shellcheck source=scripts/runtime/appliance-env.sh
source "$here/appliance-env.sh"
cd "$APPLIANCE_REPO"

if [ "$role" = worker ]; then
  appliance_make_dirs
  mkdir -p "$AIRFLOW_HOME/logs"
  say "Celery worker $APPLIANCE_WORKER_NAME ($APPLIANCE_WORKER_CONCURRENCY task processes; task logs in" \
    "$AIRFLOW_HOME/logs, served on port $APPLIANCE_AIRFLOW_LOG_PORT)"
  exec "$here/service.sh" worker
fi

running_supervisord() {
  local pid
  pid=$(cat "$APPLIANCE_RUN_DIR/supervisord.pid" 2>/dev/null || true)
  [ -n "$pid" ] && [ "$pid" != "$$" ] && [ -r "/proc/$pid/cmdline" ] \
    && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q supervisord
}
if running_supervisord; then
  say "an appliance runs already on $APPLIANCE_DATA_DIR (supervisord pid $(cat "$APPLIANCE_RUN_DIR/supervisord.pid"))" >&2
  exit 1
fi

if ! mkdir -p "$APPLIANCE_DATA_DIR" 2>/dev/null || [ ! -w "$APPLIANCE_DATA_DIR" ]; then
  say "the data root $APPLIANCE_DATA_DIR is not writable by $(id -un) (uid $(id -u)): give that user the" \
    "folder (e.g. chown -R $(id -u):$(id -g) on the host folder mounted there), or start as root with" \
    "APPLIANCE_RUN_AS=$(id -un) (the image: docker run --user 0) to have it done" >&2
  exit 1
fi
appliance_make_dirs

if [ "$APPLIANCE_AIRFLOW_DB" = postgres ]; then
  # A postmaster.pid left by a server that was killed with its container names a pid that, in the next
  # container, may belong to another process of the same user: PostgreSQL would then refuse to start.
  # At this point no server of this cluster runs unless a process named postgres has that pid.
  pg_pid_file=$APPLIANCE_PGDATA/postmaster.pid
  if [ -f "$pg_pid_file" ] && [ -z "$(appliance_postgres_pid)" ]; then
    say "removing the stale $pg_pid_file (the pid in it is not a PostgreSQL server's)"
    rm -f "$pg_pid_file"
  fi
fi

setup_started=$SECONDS
"$here/airflow-cli.sh" init
say "Airflow's setup took $((SECONDS - setup_started)) s"
if [ "$APPLIANCE_AIRFLOW_DB" = postgres ]; then
  say "Airflow's database: the cluster in $APPLIANCE_PGDATA, PostgreSQL $("$here/start-postgres.sh" bin)"
fi

ui_password_file=$(python -m dataperf_appliance.interface.access)

if [ -n "${APPLIANCE_S3_BUCKET:-}" ]; then
  if ! python - <<'PY'; then
import sys
import time

from dataperf_appliance.engine.storage import StorageError, open_storage

storage = open_storage()
started = time.monotonic()
try:
    report = storage.restore_history()
except StorageError as error:
    print(f"entrypoint: cannot restore the run history from {storage.location}: {error}", file=sys.stderr)
    sys.exit(1)
print(f"entrypoint: restored {len(report.restored)} run(s) from {storage.location} "
      f"in {time.monotonic() - started:.1f} s")
for run_id, reason in report.skipped:
    print(f"entrypoint: run {run_id} skipped: {reason}", file=sys.stderr)
if report.skipped:
    print(f"entrypoint: {len(report.skipped)} run(s) in the bucket skipped (above); the others are restored",
          file=sys.stderr)
if report.deferred:
    print(f"entrypoint: {len(report.deferred)} older run(s) left in the bucket for later, the restore's time "
          "spent: each is downloaded when opened", file=sys.stderr)
PY
    say "starting with the runs on disk only; the history is restored at the next start" >&2
  fi
fi

# supervisord's control socket (mode 0700) also takes a username and a password, made for this start, in a
# file that supervisord.conf includes and supervisorctl reads: without them supervisord logs a CRIT line at
# every start. As root it is also told to stay root (the programs run as root, PostgreSQL drops to its own
# user), which it would otherwise log as CRIT. printf is a builtin: the password is on no command line.
write_control_conf() {
  local password
  password=$(python -c 'import secrets; print(secrets.token_hex(24))')
  (
    umask 077
    rm -f "$1.new"
    {
      echo "; Written by scripts/runtime/entrypoint.sh at this start. Use: supervisorctl -c $1 status"
      if [ "$(id -u)" = 0 ]; then
        printf '[supervisord]\nuser=root\n'
      fi
      printf '[unix_http_server]\nusername=appliance\npassword=%s\n' "$password"
      printf '[supervisorctl]\nserverurl=unix://%s/supervisor.sock\nusername=appliance\npassword=%s\n' \
        "$APPLIANCE_RUN_DIR" "$password"
    } >"$1.new"
    mv "$1.new" "$1"
  )
}
control_conf=$APPLIANCE_RUN_DIR/supervisorctl.conf
write_control_conf "$control_conf"

say "setup done in $((SECONDS - setup_started)) s; starting the programs"
say "Airflow admin password in $AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
say "app password ${ui_password_file:+in }${ui_password_file:-from APPLIANCE_UI_PASSWORD}"
say "programs' logs in $APPLIANCE_LOG_DIR; control: supervisorctl -c $control_conf status"
exec supervisord -n -c "$APPLIANCE_REPO/supervisord.conf"
