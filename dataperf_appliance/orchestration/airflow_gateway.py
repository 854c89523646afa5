"""The one way into Airflow from outside dags/ (the Streamlit app, the tests, scripts).

Triggers the benchmark DAG through Airflow's local Python client
(``airflow.api.client.local_client.Client``, which writes to Airflow's metadata
database directly) and reads runs and task instances from that database.

The calling process needs Airflow's settings in its environment, the same as
the Airflow programs (``source scripts/runtime/airflow-env.sh``): AIRFLOW_HOME and the
database URL. Airflow is imported on first use only, so importing this module
costs nothing. Every failure to reach Airflow (settings missing, database down,
database not migrated, DAG not parsed yet) raises one error,
`AirflowUnavailable`, with a message a person can act on.

    create_run(text) (pipeline) -> trigger_run(run_id) -> get_run(run_id) ... state success/failed
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

DAG_ID = "dataperf_benchmark"
FINISHED_STATES = ("success", "failed")


class AirflowUnavailable(RuntimeError):
    """Airflow cannot be used now: not configured, its database unreachable or not initialized, or no DAG."""


class RunAlreadyTriggered(ValueError):
    """A DAG run with this run id exists already."""


class RunNotFound(LookupError):
    """Airflow knows no DAG run with this run id."""


@dataclass(frozen=True)
class TaskInstanceStatus:
    task_id: str
    map_index: int  # -1 for a task that is not mapped
    state: str | None  # None until the scheduler looked at it
    try_number: int
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    #: A mapped instance's name from the DAG's map_index_template (the benchmark task id), once rendered.
    label: str | None = None


@dataclass(frozen=True)
class RunStatus:
    """One DAG run: its state and, for get_run, its task instances (for progress)."""

    run_id: str
    state: str  # queued | running | success | failed
    queued_at: dt.datetime | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    conf: dict = field(default_factory=dict)
    task_instances: list[TaskInstanceStatus] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def progress(self) -> tuple[int, int]:
        """(task instances done, task instances known); the mapped ones appear once the data is prepared."""
        done = sum(ti.state in ("success", "skipped") for ti in self.task_instances)
        return done, len(self.task_instances)

    def failed_tasks(self) -> list[TaskInstanceStatus]:
        return [ti for ti in self.task_instances if ti.state in ("failed", "upstream_failed")]


# ---- Airflow, lazily ----------------------------------------------------------------------------

@contextlib.contextmanager
def _airflow() -> Iterator[None]:
    """Turn every way of Airflow being unusable into AirflowUnavailable."""
    if not os.environ.get("AIRFLOW_HOME"):
        raise AirflowUnavailable("Airflow's settings are not in this process's environment "
                                 "(AIRFLOW_HOME is unset): start it through scripts/runtime/airflow-env.sh")
    try:
        import sqlalchemy.exc

        from airflow.exceptions import DagNotFound
    except ImportError as error:
        raise AirflowUnavailable(f"Airflow is not installed here: {error}") from error
    try:
        yield
    except DagNotFound as error:
        raise AirflowUnavailable(
            f"Airflow does not know the DAG {DAG_ID!r} yet: the DAG processor has not parsed dags/ "
            f"(wait a few seconds) or the file has an import error ({error})") from error
    except (sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.NoSuchTableError) as error:
        raise AirflowUnavailable(
            "Airflow's metadata database is not initialized: run scripts/runtime/airflow-cli.sh init "
            f"({_first_line(error)})") from error
    except sqlalchemy.exc.OperationalError as error:
        if "no such table" in str(error):
            raise AirflowUnavailable(
                "Airflow's metadata database is not initialized: run scripts/runtime/airflow-cli.sh init "
                f"({_first_line(error)})") from error
        raise AirflowUnavailable(f"Airflow's metadata database cannot be reached: {_first_line(error)}") from error
    except sqlalchemy.exc.DBAPIError as error:
        raise AirflowUnavailable(f"Airflow's metadata database failed: {_first_line(error)}") from error


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _state(value) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _session():
    from airflow.utils.session import create_session

    return create_session()


def _run_status(dag_run, task_instances=()) -> RunStatus:
    return RunStatus(
        run_id=dag_run.run_id, state=_state(dag_run.state), queued_at=dag_run.queued_at,
        start_date=dag_run.start_date, end_date=dag_run.end_date, conf=dict(dag_run.conf or {}),
        task_instances=sorted(
            (TaskInstanceStatus(ti.task_id, ti.map_index, _state(ti.state), ti.try_number, ti.start_date,
                                ti.end_date, getattr(ti, "rendered_map_index", None)) for ti in task_instances),
            key=lambda ti: (_TASK_ORDER.get(ti.task_id, 99), ti.map_index)),
    )


_TASK_ORDER = {name: i for i, name in enumerate(("validate", "prepare_data", "evaluate", "report", "publish"))}


# ---- the API ------------------------------------------------------------------------------------

def trigger_run(run_id: str) -> dict:
    """Start the benchmark DAG for a run created with `pipeline.create_run`; Airflow's run id is `run_id`.

    Returns {"run_id", "dag_id", "state", "dag_paused"}. Raises
    RunAlreadyTriggered for a run id Airflow has seen, AirflowUnavailable when
    Airflow cannot take it.
    """
    with _airflow():
        from airflow.api.client.local_client import Client
        from airflow.exceptions import DagRunAlreadyExists
        from airflow.models import DagModel

        try:
            dag_run = Client().trigger_dag(DAG_ID, run_id=run_id, conf={"run_id": run_id})
        except DagRunAlreadyExists as error:
            raise RunAlreadyTriggered(f"Airflow has a run {run_id!r} of {DAG_ID} already") from error
        with _session() as session:
            model = session.get(DagModel, DAG_ID)
            paused = bool(model and model.is_paused)
    return {"run_id": dag_run["dag_run_id"], "dag_id": dag_run["dag_id"], "state": _state(dag_run["state"]),
            "dag_paused": paused}


def get_run(run_id: str) -> RunStatus:
    """The state of a DAG run and of its task instances (mapped `evaluate` ones by map_index)."""
    with _airflow():
        from sqlalchemy import select

        from airflow.models import DagRun, TaskInstance

        with _session() as session:
            dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id))
            if dag_run is None:
                raise RunNotFound(f"Airflow has no run {run_id!r} of {DAG_ID}")
            tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == DAG_ID,
                                                             TaskInstance.run_id == run_id)).all()
            return _run_status(dag_run, tis)


def list_recent_runs(limit: int = 50) -> list[RunStatus]:
    """The most recent DAG runs, newest first (without task instances)."""
    with _airflow():
        from sqlalchemy import select

        from airflow.models import DagRun

        with _session() as session:
            runs = session.scalars(select(DagRun).where(DagRun.dag_id == DAG_ID)
                                   .order_by(DagRun.run_after.desc(), DagRun.id.desc()).limit(limit)).all()
            return [_run_status(run) for run in runs]


def health() -> dict[str, dict]:
    """The latest heartbeat of the scheduler, DAG processor and triggerer, from the metadata database.

    {"scheduler": {"healthy": bool, "latest_heartbeat": datetime | None}, ...};
    raises AirflowUnavailable when the database cannot be read.
    """
    with _airflow():
        from airflow.jobs.job import most_recent_job

        out = {}
        with _session() as session:
            for name, job_type in (("scheduler", "SchedulerJob"), ("dag_processor", "DagProcessorJob"),
                                   ("triggerer", "TriggererJob")):
                job = most_recent_job(job_type, session=session)
                out[name] = {"healthy": bool(job and job.is_alive()),
                             "latest_heartbeat": job.latest_heartbeat if job else None}
        return out


def airflow_ui_url(run_id: str | None = None) -> str:
    """The Airflow UI page of a run (or of the DAG), as a browser reaches it.

    Base: $APPLIANCE_AIRFLOW_UI_URL, else $AIRFLOW__API__BASE_URL, else
    http://localhost:$APPLIANCE_AIRFLOW_PORT (8080).
    """
    base = (os.environ.get("APPLIANCE_AIRFLOW_UI_URL") or os.environ.get("AIRFLOW__API__BASE_URL")
            or f"http://localhost:{os.environ.get('APPLIANCE_AIRFLOW_PORT', '8080')}").rstrip("/")
    url = f"{base}/dags/{DAG_ID}"
    return f"{url}/runs/{quote(run_id, safe='')}" if run_id else url
