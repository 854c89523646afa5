#!/usr/bin/env bash
# Airflow's settings for the appliance, only sourced: one file for the entrypoint and the supervisord
# programs, the tests and a developer's shell. It exports the settings and changes nothing on disk:
#
#   source scripts/runtime/airflow-env.sh
#
# What acts on them (the first setup, a command with the settings, the settings printed, a Celery worker's
# env file) is scripts/runtime/airflow-cli.sh: init | exec COMMAND... | print | worker-env HOST.
#
# Metadata database: PostgreSQL, a local cluster in the container (APPLIANCE_AIRFLOW_DB=postgres, the
# default). Why: SQLite, the standalone default, lets one writer at a time, and in Airflow 3 the
# scheduler, the DAG processor and the API server (which writes every task's state changes on behalf of
# the task processes, through the execution API) all write at once; with five benchmark runs triggered
# together that means "database is locked" errors and lost state updates, and Airflow documents SQLite
# as for development only. PostgreSQL takes concurrent writers with row locks, is what Airflow is tested
# on, and costs about 30 MB of memory here. The choice was checked by the concurrency test of
# tests/test_orchestration.py (five runs triggered at once), which can be run against SQLite with
# APPLIANCE_AIRFLOW_DB=sqlite for comparison.
#
# An external PostgreSQL (e.g. Amazon RDS): set
#   AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg://USER:PASSWORD@HOST:5432/DBNAME
# (driver psycopg 3, installed with the appliance; URL-encode special characters of the password)
# before this file is sourced; APPLIANCE_AIRFLOW_DB then becomes `external`, the async URL is derived
# (postgresql+psycopg_async://...), `airflow-cli.sh init` migrates that database and the local cluster is
# neither created nor started (`start-postgres.sh run` exits at once). APPLIANCE_AIRFLOW_DB=sqlite uses
# $AIRFLOW_HOME/airflow.db (development only).
#
# Secrets are generated at the first `airflow-cli.sh init`, never defaulted, and kept in
# $AIRFLOW_HOME/secrets/ (folder 0700, files 0600, owner only); this file reads them from there:
#   airflow.env                 the PostgreSQL password of the `airflow` role, the JWT secret shared by
#                               the scheduler and the API server, the API server's secret key, the Fernet key
#   airflow-admin-password.json the password of the Airflow UI user `admin` (SimpleAuthManager, role
#                               admin), as {"admin": "<password>"}; Airflow reads it there, and nothing
#                               prints it. Read it with: cat "$AIRFLOW_HOME/secrets/airflow-admin-password.json"
#
# Settings read here (all optional):
#   APPLIANCE_DATA_DIR, APPLIANCE_VENV  the data root and the virtual environment (scripts/runtime/paths.sh,
#                                 sourced first, sets them and their defaults)
#   AIRFLOW_HOME                  default $APPLIANCE_DATA_DIR/airflow
#   APPLIANCE_AIRFLOW_DB          postgres (default) | sqlite | external (see above)
#   APPLIANCE_PG_PORT             the local cluster's port on 127.0.0.1 (default 5432)
#   APPLIANCE_PGDATA              the local cluster's folder (default $AIRFLOW_HOME/postgres; started as root,
#                                 /var/lib/dataperf-appliance/postgres-<checksum of the data root's path>)
#   APPLIANCE_AIRFLOW_HOST        API server address (default 127.0.0.1: this machine only; the image sets
#                                 0.0.0.0, for its published port; workers on other machines need it too)
#   APPLIANCE_AIRFLOW_PORT        API server port (default 8080)
#   APPLIANCE_AIRFLOW_UI_URL      the Airflow UI as a browser reaches it (links from the app;
#                                 default http://localhost:$APPLIANCE_AIRFLOW_PORT)
#   APPLIANCE_AIRFLOW_PARALLELISM task processes at once (default 2, for a 2 to 4 core instance)
#   APPLIANCE_AIRFLOW_LOG_PORT    the task-log server's port (default 8793; the programs start none: the API
#                                 server reads the task logs from disk)
#   APPLIANCE_EXECUTOR_IDLE_S     seconds without work after which the executor's worker processes end (30)
#   APPLIANCE_TASK_JOBS           worker processes of one `evaluate` task (default 1: tasks run side by side)
#   APPLIANCE_TASK_THREADS        BLAS/OpenMP threads per process (default 1)
#   APPLIANCE_EXECUTOR, APPLIANCE_BROKER_URL, APPLIANCE_REDIS_HOST, APPLIANCE_REDIS_PORT, APPLIANCE_WORKER_CONCURRENCY,
#   APPLIANCE_WORKER_NAME         the executor and, with celery, its broker and workers (below)

if ! (return 0 2>/dev/null); then
  echo "airflow-env.sh is only sourced (source $0); its commands are in $(dirname "$0")/airflow-cli.sh:" \
    "init | exec COMMAND [ARGS...] | print | worker-env HOST" >&2
  exit 2
fi

# shellcheck source=scripts/runtime/paths.sh
source "$(dirname "${BASH_SOURCE[0]}")/paths.sh"

AIRFLOW_HOME=$(realpath -m "${AIRFLOW_HOME:-$APPLIANCE_DATA_DIR/airflow}")
export AIRFLOW_HOME
if [ -n "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}" ] && [ -z "${APPLIANCE_AIRFLOW_DB:-}" ]; then
  APPLIANCE_AIRFLOW_DB=external
fi
export APPLIANCE_AIRFLOW_DB=${APPLIANCE_AIRFLOW_DB:-postgres}
export APPLIANCE_PG_PORT=${APPLIANCE_PG_PORT:-5432}
# Started as root on a host, PostgreSQL runs as another OS user (it refuses root), which may not enter the
# folder the data root is in (/root, a `mktemp -d` folder: 0700). Its cluster then goes to a folder of its
# own, one per data root, under this root-owned folder, rather than any of the user's folders being opened
# up. A cluster already in $AIRFLOW_HOME/postgres stays there.
_appliance_system_dir=/var/lib/dataperf-appliance
if [ -z "${APPLIANCE_PGDATA:-}" ]; then
  APPLIANCE_PGDATA=$AIRFLOW_HOME/postgres
  if [ "$(id -u)" = 0 ] && [ ! -s "$APPLIANCE_PGDATA/PG_VERSION" ]; then
    APPLIANCE_PGDATA=$_appliance_system_dir/postgres-$(printf '%s' "$APPLIANCE_DATA_DIR" | cksum | cut -d ' ' -f 1)
  fi
fi
export APPLIANCE_PGDATA
export APPLIANCE_AIRFLOW_HOST=${APPLIANCE_AIRFLOW_HOST:-127.0.0.1}
export APPLIANCE_AIRFLOW_PORT=${APPLIANCE_AIRFLOW_PORT:-8080}
export APPLIANCE_AIRFLOW_UI_URL=${APPLIANCE_AIRFLOW_UI_URL:-http://localhost:$APPLIANCE_AIRFLOW_PORT}
export APPLIANCE_AIRFLOW_PARALLELISM=${APPLIANCE_AIRFLOW_PARALLELISM:-2}
export APPLIANCE_AIRFLOW_LOG_PORT=${APPLIANCE_AIRFLOW_LOG_PORT:-8793}
export APPLIANCE_TASK_JOBS=${APPLIANCE_TASK_JOBS:-1}
_appliance_secrets=$AIRFLOW_HOME/secrets

# Core: our DAG folder only, the executor, sized for a small instance.
export AIRFLOW__CORE__DAGS_FOLDER=$APPLIANCE_REPO/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=$APPLIANCE_AIRFLOW_PARALLELISM
export AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=$APPLIANCE_AIRFLOW_PARALLELISM
export AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG=16
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__DAG_RUN_CONF_OVERRIDES_PARAMS=True
# A worker on another machine is given the main instance's URL (scripts/runtime/entrypoint.sh worker).
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$APPLIANCE_AIRFLOW_PORT/execution/}
# Task processes wait this long for each answer of the API server (Airflow's default, 5 s, failed the tasks of
# a run with ReadTimeout when the two cores were saturated: seen in tests on a loaded machine).
export AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT=${AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT:-30}
# A scheduler that died leaves its task instances orphaned: adopt or reset them after a minute, not five.
export AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL=${AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL:-60}
# Task processes start with the benchmark's libraries already imported: the scheduler's LocalExecutor
# workers come from a forkserver that imported them once (about 3 s of imports saved per task; a
# module that fails to import is skipped, the task then imports what it needs itself).
export AIRFLOW__SCHEDULER__MP_START_METHOD=forkserver
export AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD=airflow.sdk.execution_time.supervisor,airflow.sdk.execution_time.task_runner,dataperf_appliance.stages.pipeline,dataperf_appliance.config,dataperf_appliance.engine.storage,dataperf_appliance.engine.models,dataperf_appliance.engine.debugging.debugging_task,dataperf_appliance.engine.selection.selection_task,dataperf_appliance.engine.debugging.debugging_plots
export MPLBACKEND=Agg
# Several task processes share the cores: one BLAS/OpenMP thread each (no oversubscription).
export OMP_NUM_THREADS=${APPLIANCE_TASK_THREADS:-1}
export OPENBLAS_NUM_THREADS=${APPLIANCE_TASK_THREADS:-1}
export MKL_NUM_THREADS=${APPLIANCE_TASK_THREADS:-1}
# The DAG processor: one parser process; new DAG files appear within ~10 s, changed ones within a minute.
export AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES=1
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=10
export AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL=60
export AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL=0
# The API server (UI + REST + execution API), one worker.
export AIRFLOW__API__HOST=$APPLIANCE_AIRFLOW_HOST
export AIRFLOW__API__PORT=$APPLIANCE_AIRFLOW_PORT
export AIRFLOW__API__WORKERS=1
export AIRFLOW__API__EXPOSE_CONFIG=False
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$APPLIANCE_AIRFLOW_LOG_PORT
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$((APPLIANCE_AIRFLOW_LOG_PORT + 1))
# SimpleAuthManager (Airflow 3's default): one user, admin, with a generated password (see above).
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$_appliance_secrets/airflow-admin-password.json

# Generated secrets (JWT secret, API secret key, Fernet key, the database's and Redis's passwords), once
# `init` has written them.
if [ -r "$_appliance_secrets/airflow.env" ]; then
  while IFS='=' read -r _appliance_key _appliance_value; do
    case "$_appliance_key" in
      AIRFLOW__*) export "$_appliance_key=$_appliance_value" ;;
      APPLIANCE_PG_PASSWORD) _appliance_pg_password=$_appliance_value ;;
      APPLIANCE_REDIS_PASSWORD) export APPLIANCE_REDIS_PASSWORD=$_appliance_value ;;
    esac
  done <"$_appliance_secrets/airflow.env"
fi

# The executor. local: the scheduler runs the task processes itself (LocalExecutor). celery: the scheduler
# queues them on a Redis broker and Celery workers run them, on this machine (supervisord's program
# `worker`, unless APPLIANCE_LOCAL_WORKER=false) or on others (`scripts/runtime/entrypoint.sh worker`, the same
# image or checkout, with the same data root mounted). The broker: APPLIANCE_BROKER_URL, else the
# appliance's own Redis (supervisord's program `redis`, Debian's redis-server) on
# $APPLIANCE_REDIS_HOST:$APPLIANCE_REDIS_PORT with the generated password. Task results go to the metadata
# database (the provider's default), so a worker needs the broker, the database and the execution API.
export APPLIANCE_EXECUTOR=${APPLIANCE_EXECUTOR:-local}
case "$APPLIANCE_EXECUTOR" in
  # Airflow's LocalExecutor, whose worker processes end after APPLIANCE_EXECUTOR_IDLE_S (default 30) seconds
  # without work instead of holding about 100 MB each for good (dataperf_appliance/orchestration/airflow_executor.py).
  local) export AIRFLOW__CORE__EXECUTOR=dataperf_appliance.orchestration.airflow_executor.IdleEndingLocalExecutor ;;
  celery)
    export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
    export APPLIANCE_REDIS_HOST=${APPLIANCE_REDIS_HOST:-127.0.0.1}
    export APPLIANCE_REDIS_PORT=${APPLIANCE_REDIS_PORT:-6379}
    export APPLIANCE_WORKER_CONCURRENCY=${APPLIANCE_WORKER_CONCURRENCY:-$APPLIANCE_AIRFLOW_PARALLELISM}
    if [ -n "${APPLIANCE_BROKER_URL:-}" ]; then
      export AIRFLOW__CELERY__BROKER_URL=$APPLIANCE_BROKER_URL
    elif [ -n "${APPLIANCE_REDIS_PASSWORD:-}" ]; then
      export AIRFLOW__CELERY__BROKER_URL="redis://:$APPLIANCE_REDIS_PASSWORD@127.0.0.1:$APPLIANCE_REDIS_PORT/0"
    fi
    export AIRFLOW__CELERY__WORKER_CONCURRENCY=$APPLIANCE_WORKER_CONCURRENCY
    # A message a worker took and never acknowledged (its machine died) goes back to the queue after a
    # day; Airflow has retried the task long before (the heartbeat timeout below). Said, not defaulted.
    export AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT=86400
    # One task at a time per free slot: a worker does not hold queued tasks another worker could run now.
    export AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER=1
    # The worker's name in Airflow's records (task instance `hostname`) and in Celery: the API server
    # fetches a running task's log from http://<hostname>:$APPLIANCE_AIRFLOW_LOG_PORT, so on a cluster it
    # must be the address the main instance reaches the worker at (default: this machine's name).
    export APPLIANCE_WORKER_NAME=${APPLIANCE_WORKER_NAME:-$(hostname -f 2>/dev/null || hostname)}
    export AIRFLOW__CORE__HOSTNAME_CALLABLE=dataperf_appliance.orchestration.worker_name.worker_name ;;
  *)
    echo "airflow-env: APPLIANCE_EXECUTOR must be local or celery, not '$APPLIANCE_EXECUTOR'" >&2 ;;
esac
# A task whose process (or worker machine) died without a word is failed, and retried, after this long
# without a heartbeat (Airflow's default: 5 minutes).
export AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT=${AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT:-90}

# The metadata database.
case "$APPLIANCE_AIRFLOW_DB" in
  postgres)
    if [ -n "${_appliance_pg_password:-}" ]; then
      _appliance_pg="airflow:$_appliance_pg_password@127.0.0.1:$APPLIANCE_PG_PORT/airflow?connect_timeout=10"
      export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg://$_appliance_pg"
      export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC="postgresql+psycopg_async://$_appliance_pg"
      unset _appliance_pg
    fi ;;
  sqlite)
    export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
    unset AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC ;;
  external)
    if [ -z "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC:-}" ]; then
      case "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}" in
        postgresql+psycopg://*|postgresql://*|postgres://*)
          export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC="postgresql+psycopg_async://${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN#*://}" ;;
      esac
    fi ;;
  *)
    echo "airflow-env: APPLIANCE_AIRFLOW_DB must be postgres, sqlite or external, not '$APPLIANCE_AIRFLOW_DB'" >&2 ;;
esac
unset _appliance_pg_password _appliance_key _appliance_value
