"""The stages of a track whose engine module implements them as plain functions."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from ..config import TaskSetup
from ..parallel import ProgressCallback


class EngineTrack:
    """A `Track`'s stages delegated to its engine module (``prepare_data``, ``run_tasks``, ``write_task_run``,
    ``evaluate_tasks``, ``sweep_metrics``, ``report``), imported when a stage first runs: the config, the CLI
    and the pages load without the engine's libraries."""

    def engine(self) -> ModuleType:
        raise NotImplementedError

    def prepare_data(self, setup: TaskSetup, data_root: Path) -> dict[str, dict[str, Path]]:
        return self.engine().prepare_data(setup, data_root)

    def run_tasks(self, setup: TaskSetup, data_root: Path, source_dir: Path, *, data_ids: list[str] | None = None,
                  n_jobs: int = -1, progress: ProgressCallback | None = None) -> list[Any]:
        return self.engine().run_tasks(setup, data_root, source_dir, data_ids=data_ids, n_jobs=n_jobs,
                                       progress=progress)

    def write_task_run(self, setup: TaskSetup, run: Any, work_dir: Path, source_dir: Path) -> dict:
        return self.engine().write_task_run(setup, run, work_dir, source_dir)

    def evaluate_tasks(self, setup: TaskSetup, data_root: Path, work_dir: Path, source_dir: Path, *,
                       data_ids: list[str] | None = None, n_jobs: int = -1,
                       progress: ProgressCallback | None = None) -> dict[str, dict]:
        return self.engine().evaluate_tasks(setup, data_root, work_dir, source_dir, data_ids=data_ids,
                                            n_jobs=n_jobs, progress=progress)

    def task_metrics(self, run: Any) -> dict[str, dict]:
        return self.engine().sweep_metrics(run)

    def report(self, setup: TaskSetup, work_dir: Path, *, replicates: dict | None = None) -> dict:
        return self.engine().report(setup, work_dir, replicates=replicates)
