"""
### DataPerf benchmark

Runs one benchmark from a `task_setup.yml`, stage by stage, into the run layout
of the appliance (`<data root>/runs/<run_id>/`), synced to S3 when a bucket is
configured. Every task is a thin call of `dataperf_appliance.pipeline`.

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
stay under the hidden name `runs/.<run_id>.partial/`.

**Trigger** with exactly one of the params: `run_id`, a run the app created
(`runs/.<run_id>.partial/task_setup.yml`), or `task_setup_yml`, the file's text
itself (the run id is then made from Airflow's run id).
"""

from __future__ import annotations

import datetime as dt
import logging
import os

from airflow.sdk import Param, dag, task

from dataperf_appliance.airflow_gateway import DAG_ID  # defined once: the gateway triggers this DAG by it
log = logging.getLogger(__name__)


def _our_run_id(context) -> str:
    """The appliance's run id of this DAG run: the `run_id` param, else one made from Airflow's run id."""
    from dataperf_appliance import pipeline

    given = (context["params"].get("run_id") or "").strip()
    if given:
        return given
    return pipeline.safe_run_id(context["dag_run"].run_id)


def _mark_failed(context) -> None:
    """on_failure_callback (task and DAG): the run's manifest becomes `failed` with the error."""
    from dataperf_appliance import pipeline

    try:
        run_id = _our_run_id(context)
    except Exception:  # noqa: BLE001 - no usable run id: nothing on disk to mark
        log.exception("cannot tell the run id of a failed DAG run")
        return
    error = context.get("exception") or context.get("reason") or "the DAG run failed"
    task_instance = context.get("task_instance") or context.get("ti")
    where = f" (task {task_instance.task_id})" if task_instance is not None else ""
    if not isinstance(error, BaseException):
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
    tags=["dataperf"],
    default_args={"retries": 0, "on_failure_callback": _mark_failed},
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

        from dataperf_appliance import pipeline
        from dataperf_appliance.config import ConfigError

        params = context["params"]
        run_id = (params.get("run_id") or "").strip()
        text = params.get("task_setup_yml") or ""
        if bool(run_id) == bool(text.strip()):
            raise AirflowFailException("give exactly one of the params run_id and task_setup_yml")
        run_id = _our_run_id(context)
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
        from dataperf_appliance import pipeline

        return pipeline.prepare_run(run)

    # Airflow's grid names each mapped instance by its unit (the expanded argument, rendered before the task
    # runs): the benchmark task id, or <task>/<method>; not 0/1/2.
    @task(retries=1, retry_delay=dt.timedelta(seconds=5), map_index_template="{{ task.op_kwargs['unit'] }}")
    def evaluate(run: str, unit: str) -> dict:
        """Rank, write submissions for and evaluate one unit: a benchmark task, or one method as code of it."""
        from dataperf_appliance import pipeline

        return pipeline.evaluate_run_task(run, unit, n_jobs=int(os.environ.get("APPLIANCE_TASK_JOBS", "1")))

    @task(retries=1, retry_delay=dt.timedelta(seconds=5))
    def report(run: str, summaries: list[dict]) -> dict:
        """Merge the partial results into results.json and draw every plot."""
        from dataperf_appliance import pipeline

        return pipeline.report_run(run)

    @task(retries=5, retry_delay=dt.timedelta(seconds=3), retry_exponential_backoff=2.0,
          max_retry_delay=dt.timedelta(minutes=2), execution_timeout=dt.timedelta(minutes=30))
    def publish(run: str) -> str:
        """Move the run into place, sync it to S3, mark it success (idempotent: retried while S3 is down)."""
        from dataperf_appliance import pipeline

        pipeline.publish_run(run)
        return run

    run = validate()
    summaries = evaluate.partial(run=run).expand(unit=prepare_data(run))
    report(run, summaries) >> publish(run)


dataperf_benchmark()
