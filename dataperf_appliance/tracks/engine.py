"""What a track's engine module provides: its stages, as plain functions over a validated setup and folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from dataperf_appliance.config import TaskSetup
from dataperf_appliance.engine.parallel import ProgressCallback


class Stages(Protocol):
    """The functions of a track's engine module (`dataperf_appliance.engine.debugging.debugging_task`,
    `dataperf_appliance.engine.selection.selection_task`). A task's evaluation is `run_tasks` then `write_task_run`;
    `dataperf_appliance.stages.sweeps` runs one cell of a sweep per `run_tasks` call."""

    def prepare_data(self, setup: TaskSetup, data_root: Path) -> dict[str, dict[str, Path]]:
        """Bring every task's files to the data root; {task: {name: path}}."""

    def run_tasks(self, setup: TaskSetup, data_root: Path, source_dir: Path, *, data_ids: list[str] | None = None,
                  n_jobs: int = -1, progress: ProgressCallback | None = None) -> list[Any]:
        """Evaluate the tasks `data_ids` (None: all) in memory, in the setup's order: one task run each,
        nothing written."""

    def write_task_run(self, setup: TaskSetup, run: Any, work_dir: Path, source_dir: Path) -> dict:
        """Write a task run's submissions and ``partial/<task>.json``; its result."""

    def sweep_rows(self, run: Any) -> dict[str, dict]:
        """{method: {"kind", metric: value}} of a task run: its rows of a sweep table, each with the method's
        curve under `stats.CURVE` when the track's methods give curves."""

    def report(self, setup: TaskSetup, work_dir: Path, *, replicates: dict | None = None) -> dict:
        """results.json, the official result files and the plots of an evaluated run; its content."""
