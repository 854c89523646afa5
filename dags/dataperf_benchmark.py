"""
### DataPerf benchmark

Runs one benchmark from a `task_setup.yml`, stage by stage, into the run layout
of the appliance (`<data root>/runs/<run_id>/`), synced to S3 when a bucket is
configured. Every task is a thin call of `dataperf_appliance.stages.pipeline`.

1. **validate**: schema-checks the run's stored `task_setup.yml`. An invalid file
   fails this task (the log holds every issue with file:line) and nothing else runs.
2. **prepare_data**: brings the dataset to the data root (from S3 when it is
   there, else generates the embedded one and uploads it).
3. **evaluate**: one mapped task instance per unit of work: a benchmark task, and
   each method as code of it on its own (`<task>/<method>`), so that several
   workers run one task's methods at once.
4. **report**: merges the partial results, draws every plot.
5. **publish**: moves the run into place atomically, syncs it to S3, marks it
   `success`. Retried with exponential backoff while S3 does not answer.

A failure anywhere marks the run's manifest `failed` with the error; its files
stay under the hidden name `runs/.<run_id>.partial/`. So does a limit: every
task is stopped after `APPLIANCE_TASK_TIMEOUT_S` (not retried), the whole run
after `APPLIANCE_RUN_TIMEOUT_S`.

**Trigger** with exactly one of the params: `run_id`, a run the app created
(`runs/.<run_id>.partial/task_setup.yml`), or `task_setup_yml`, the file's text
itself (the run id is then made from Airflow's run id).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterator

from airflow.sdk import Param, dag, task

from dataperf_appliance.orchestration.airflow_gateway import DAG_ID  # defined once: the gateway triggers this DAG by it
from dataperf_appliance.engine.settings import RUN_TIMEOUT_ENV, TASK_TIMEOUT_ENV, load_run_limits

log = logging.getLogger(__name__)

# Read when the DAG file is parsed: a new value applies once the DAG processor has the new environment.
LIMITS = load_run_limits()
TASK_TIMEOUT = dt.timedelta(seconds=LIMITS.task_timeout_s)
RUN_TIMEOUT = dt.timedelta(seconds=LIMITS.run_timeout_s)
#: Publishing is retried while S3 does not answer, each try for half an hour at most (the task limit if shorter).
PUBLISH_TIMEOUT = min(dt.timedelta(minutes=30), TASK_TIMEOUT)
#: The `reason` Airflow gives the DAG's failure callback for a run stopped by its dagrun_timeout.
RUN_TIMED_OUT = "timed_out"


def _duration(seconds: float) -> str:
    """``6 h``, ``90 min``, ``5 s``: a limit as an operator set it."""
    seconds = int(seconds)
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def task_timeout_message(task_name: str, limit: dt.timedelta) -> str:
    """Why a task stopped at its execution_timeout (`limit`), in the run's manifest."""
    setting = f" ({TASK_TIMEOUT_ENV})" if limit == TASK_TIMEOUT else ""
    return f"{task_name} took longer than its limit of {_duration(limit.total_seconds())}{setting} and was stopped"


def run_timeout_message(where: str = "") -> str:
    """Why a DAG run stopped at its dagrun_timeout, in the run's manifest."""
    return (f"the run took longer than its limit of {_duration(RUN_TIMEOUT.total_seconds())} ({RUN_TIMEOUT_ENV}) "
            f"and was stopped{where}")


@contextlib.contextmanager
def _within_the_limits(task_name: str) -> Iterator[None]:
    """The body of a task. Past its execution_timeout it fails at once, not retried (it would only take as long
    again), with its limit named. Stopped by Airflow (SIGTERM: the run past its limit, a user, lost heartbeats)
    it unwinds instead of waiting for the SIGKILL, so that its methods' processes, in sessions of their own, are
    killed with it (`methods.runner`) and its stage is recorded as failed."""
    import signal

    from airflow.sdk.exceptions import AirflowFailException, AirflowTaskTerminated, AirflowTaskTimeout

    def stop(signum, frame):
        raise AirflowTaskTerminated(f"{task_name} was stopped by Airflow (signal {signal.Signals(signum).name})")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except AirflowTaskTimeout:
        raise AirflowFailException(task_timeout_message(task_name, TASK_TIMEOUT)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _our_run_id(context) -> str:
    """The appliance's run id of this DAG run: the `run_id` param, else one made from Airflow's run id."""
    from dataperf_appliance.stages import pipeline

    given = (context["params"].get("run_id") or "").strip()
    if given:
        return given
    return pipeline.safe_run_id(context["dag_run"].run_id)


def _mark_failed(context) -> None:
    """on_failure_callback (task and DAG): the run's manifest becomes `failed` with the error."""
    from airflow.sdk.exceptions import AirflowTaskTimeout

    from dataperf_appliance.stages import pipeline

    try:
        run_id = _our_run_id(context)
    except Exception:  # noqa: BLE001 - no usable run id: nothing on disk to mark
        log.exception("cannot tell the run id of a failed DAG run")
        return
    error = context.get("exception") or context.get("reason") or "the DAG run failed"
    task_instance = context.get("task_instance") or context.get("ti")
    where = f" (task {task_instance.task_id})" if task_instance is not None else ""
    if isinstance(error, AirflowTaskTimeout):  # publish's, or one outside `_within_the_limits`
        limit = getattr(getattr(task_instance, "task", None), "execution_timeout", None) or TASK_TIMEOUT
        error = task_timeout_message(f"task {task_instance.task_id}" if task_instance is not None else "a task",
                                     limit)
    elif error == RUN_TIMED_OUT:
        error = run_timeout_message(where)
    elif not isinstance(error, BaseException):
        error = f"{error}{where}"
    try:
        pipeline.fail_run(run_id, error)
    except Exception:  # noqa: BLE001 - a callback must not raise
        log.exception("could not mark run %s failed", run_id)


@dag(
    dag_id=DAG_ID,
    description="Run a DataPerf benchmark from a task_setup.yml: validate, prepare data, evaluate, report, publish",
    doc_md=__doc__,
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=8,
    dagrun_timeout=RUN_TIMEOUT,
    tags=["dataperf"],
    default_args={"retries": 0, "on_failure_callback": _mark_failed, "execution_timeout": TASK_TIMEOUT},
    on_failure_callback=_mark_failed,
    params={
        "run_id": Param(
            "", type="string", title="Run id",
            description="A run created by the app (runs/.<run_id>.partial/task_setup.yml). Leave empty "
                        "when you paste a task_setup.yml below.",
            pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]{0,127})?$",
        ),
        "task_setup_yml": Param(
            "", type="string", format="multiline", title="task_setup.yml",
            description="The whole file, when no run id is given. It is validated by the first task.",
        ),
    },
)
def dataperf_benchmark():
    @task(retries=0)
    def validate(**context) -> str:
        """Load and schema-check the run's task_setup.yml; returns the run id."""
        from airflow.sdk.exceptions import AirflowFailException

        from dataperf_appliance.stages import pipeline
        from dataperf_appliance.config import ConfigError

        params = context["params"]
        run_id = (params.get("run_id") or "").strip()
        text = params.get("task_setup_yml") or ""
        if bool(run_id) == bool(text.strip()):
            raise AirflowFailException("give exactly one of the params run_id and task_setup_yml")
        run_id = _our_run_id(context)
        with _within_the_limits("validate"):
            if text.strip():
                # A direct trigger: store the text as given; it is checked just below.
                pipeline.create_run(text, run_id, check=False)
            try:
                data_ids = pipeline.validate_run(run_id)
            except ConfigError as error:
                log.error("task_setup.yml of run %s is invalid:\n%s", run_id, error)
                raise AirflowFailException(f"invalid task_setup.yml:\n{error}") from None
            except pipeline.RunError as error:
                raise AirflowFailException(str(error)) from None
        log.info("run %s: %d benchmark task(s): %s", run_id, len(data_ids), ", ".join(data_ids))
        return run_id

    @task(retries=1, retry_delay=dt.timedelta(seconds=5))
    def prepare_data(run: str) -> list[str]:
        """Bring the dataset to the data root; returns the units of work (one `evaluate` each)."""
        from dataperf_appliance.stages import pipeline

        with _within_the_limits("prepare_data"):
            return pipeline.prepare_run(run)

    # Airflow's grid names each mapped instance by its unit (the expanded argument, rendered before the task
    # runs): the benchmark task id, or <task>/<method>; not 0/1/2.
    @task(retries=1, retry_delay=dt.timedelta(seconds=5), map_index_template="{{ task.op_kwargs['unit'] }}")
    def evaluate(run: str, unit: str) -> dict:
        """Rank, write submissions for and evaluate one unit: a benchmark task, or one method as code of it."""
        from dataperf_appliance.stages import pipeline

        with _within_the_limits(f"evaluate {unit}"):
            return pipeline.evaluate_run_task(run, unit, n_jobs=int(os.environ.get("APPLIANCE_TASK_JOBS", "1")))

    @task(retries=1, retry_delay=dt.timedelta(seconds=5))
    def report(run: str, summaries: list[dict]) -> dict:
        """Merge the partial results into results.json and draw every plot."""
        from dataperf_appliance.stages import pipeline

        with _within_the_limits("report"):
            return pipeline.report_run(run)

    # A try that hangs on S3 is retried like one that failed (so no `_within_the_limits` here).
    @task(retries=5, retry_delay=dt.timedelta(seconds=3), retry_exponential_backoff=2.0,
          max_retry_delay=dt.timedelta(minutes=2), execution_timeout=PUBLISH_TIMEOUT)
    def publish(run: str) -> str:
        """Move the run into place, sync it to S3, mark it success (idempotent: retried while S3 is down)."""
        from dataperf_appliance.stages import pipeline

        pipeline.publish_run(run)
        return run

    run = validate()
    summaries = evaluate.partial(run=run).expand(unit=prepare_data(run))
    report(run, summaries) >> publish(run)


dataperf_benchmark()
