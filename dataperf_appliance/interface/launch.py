"""Launching a run: what the New benchmark page's Run button does, outside the page.

Store the run (`pipeline.create_run`), copy what was submitted to S3 when a
bucket is set, trigger the DAG through the gateway. Idempotent per run id, so
a double click starts one run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dataperf_appliance.orchestration import airflow_gateway

from dataperf_appliance.stages import pipeline
from dataperf_appliance.engine.settings import Settings
from dataperf_appliance.engine.storage import Storage, StorageError


@dataclass(frozen=True)
class Launch:
    """What the Run button did: the run id, whether Airflow took it, and messages for the user."""

    run_id: str
    triggered: bool
    error: str | None = None
    warnings: tuple[str, ...] = ()


def launch_run(text: str, run_id: str, *, settings: Settings, files: Mapping[str, bytes] | None = None,
               trigger: Callable[[str], Any] | None = None, storage: Storage | None = None) -> Launch:
    """Store the run, copy it to S3 when a bucket is set, trigger the DAG; idempotent for one run id.

    `trigger` defaults to `airflow_gateway.trigger_run`, `storage` to the store of `settings`. A second call with the
    same id and text (a double click) creates and triggers nothing new. When
    Airflow cannot take the run, the stored run is marked failed with the
    reason, so it does not wait forever as queued.
    """
    trigger = trigger or airflow_gateway.trigger_run
    warnings = []
    pipeline.create_run(text, run_id, files=dict(files or {}), settings=settings)
    storage = storage or Storage.from_settings(settings)
    if storage.enabled:
        try:
            storage.upload_submitted_run(run_id)
        except (StorageError, OSError) as error:
            warnings.append(f"the run's files were not copied to S3 yet ({error}); the run uploads them when "
                            "it is published")
    try:
        trigger(run_id)
    except airflow_gateway.RunAlreadyTriggered:
        pass  # this run id was triggered by an earlier click
    except airflow_gateway.AirflowUnavailable as error:
        message = f"Airflow could not start the run: {error}"
        pipeline.fail_run(run_id, message, settings=settings)
        return Launch(run_id, False, message, tuple(warnings))
    return Launch(run_id, True, None, tuple(warnings))
