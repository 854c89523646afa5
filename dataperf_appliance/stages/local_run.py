"""Run a whole benchmark from a task_setup.yml into the run layout (docs/architecture.md).

This is what the CLI's `run` does in one process; the Airflow DAG runs the
same stage functions (dataperf_appliance.stages.pipeline) as separate tasks.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from dataperf_appliance.stages import pipeline
from dataperf_appliance.engine.runs import staging_dir
from dataperf_appliance.engine.storage import Storage
from dataperf_appliance.tracks import load_task_setup
from dataperf_appliance.engine.parallel import ProgressCallback



def run_benchmark(task_setup_path: Path, run_dir: Path, *, data_root: Path, n_jobs: int = -1,
                  progress: ProgressCallback | None = None) -> dict:
    """Validate `task_setup_path`, run it, and publish the run at `run_dir`; return results.json's content.

    An invalid file raises ConfigError before anything is written. A failure
    later leaves the run under its hidden staging name with manifest state
    `failed` and the error, and is raised again. Disk only: no S3 sync.
    """
    task_setup_path, run_dir = Path(task_setup_path), Path(run_dir)
    validated_at, started = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    setup = load_task_setup(task_setup_path, data_root=data_root)
    validate_seconds = time.perf_counter() - started
    if run_dir.exists():
        raise FileExistsError(f"{run_dir} exists already: choose a new folder for the run")
    paths = pipeline.RunPaths(run_id=run_dir.name, final=run_dir, staging=staging_dir(run_dir),
                              data_root=Path(data_root), source_dir=task_setup_path.parent)
    pipeline.start_run(paths, task_setup_path.read_text(), setup, validated_at=validated_at,
                       validate_seconds=validate_seconds)
    try:
        with pipeline.stage(paths, "prepare_data"):
            pipeline.prepare_data(paths, setup, Storage.disk_only(paths.data_root))
        with pipeline.stage(paths, "evaluate"):
            pipeline.evaluate(paths, setup, None, n_jobs=n_jobs, progress=progress)
        with pipeline.stage(paths, "report"):
            results = pipeline.report(paths, setup)
        pipeline.publish(paths, Storage.disk_only(paths.data_root))
    except BaseException as error:
        pipeline.fail(paths, error)
        raise
    return results
