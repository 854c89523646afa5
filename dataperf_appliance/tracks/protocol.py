"""What a track is: the `Track` protocol every entry of `dataperf_appliance.tracks.TRACKS` follows.

A track is a kind of benchmark (DataPerf's debugging and selection). It
declares its file (setup model, template, default parameters), its choices
(strategies, models, built-in datasets), how it is scored (main metric and
its direction), its data checks and its stages. Everything above the tracks --
the sweeps, the pipeline, the CLI, the DAG, the pages -- asks the track, never
its name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from ..config import Loc, TaskSetup
from ..parallel import ProgressCallback



class Track(Protocol):
    """One kind of benchmark. Stages are plain functions over a validated setup and folders: `data_root`
    holds the datasets, `work_dir` is the run being written, `source_dir` holds a user's own files."""

    #: The value of the ``track`` key of its files.
    name: str
    #: The validated file (a frozen pydantic model with ``track: Literal[name]``).
    setup_model: type[TaskSetup]
    #: The Jinja2 template in the templates folder, and its parameters' defaults.
    template: str
    defaults: Mapping[str, Any]
    #: Named sets of parameters that change the defaults (the debugging arena: every method).
    presets: Mapping[str, Mapping[str, Any]]
    #: The datasets it generates itself (others are folders under <data root>/datasets).
    builtin_datasets: tuple[str, ...]
    #: The methods of the appliance (a user adds their own files as submissions).
    strategies: tuple[str, ...]
    #: The classifier of the official DataPerf evaluator of the track.
    reference_model: str
    #: The headline figure of a method, and whether lower is better (catalog.LOWER_IS_BETTER holds every metric's).
    main_metric: str
    lower_is_better: bool
    #: The figures summarized over repeats and compared with random, the main one first.
    headline_metrics: tuple[str, ...]
    #: The figures of a method in a sweep row, the main one first.
    sweep_metrics: tuple[str, ...]
    #: The file suffix of a user's own submission.
    submission_suffix: str
    #: Whether a cell's fit and predict timings are shared by its methods (one training per budget).
    fits_shared_by_strategies: bool
    #: The columns of a method's row in the run page's table (the main metric is put first).
    result_columns: tuple[str, ...]
    #: Whether a method is a curve over budgets (drawn as lines), else one point (drawn as bars).
    has_curves: bool
    #: Whether a method may exceed a budget (then it is shown but not ranked).
    has_budget: bool

    def data_problems(self, setup: TaskSetup, data_root: Path | None) -> list[tuple[Loc, str]]:
        """(loc, message) of every way the setup does not fit its dataset; with `data_root` None only the
        generated datasets are checked."""

    def prepare_data(self, setup: TaskSetup, data_root: Path) -> dict[str, dict[str, Path]]:
        """Bring every task's files to the data root; {task: {name: path}}."""

    def run_tasks(self, setup: TaskSetup, data_root: Path, source_dir: Path, *, data_ids: list[str] | None = None,
                  n_jobs: int = -1, progress: ProgressCallback | None = None) -> list[Any]:
        """Evaluate the tasks `data_ids` (None: all) in memory: one task run each, nothing written."""

    def write_task_run(self, setup: TaskSetup, run: Any, work_dir: Path, source_dir: Path) -> dict:
        """Write a task run's submissions and ``partial/<task>.json``; its result."""

    def evaluate_tasks(self, setup: TaskSetup, data_root: Path, work_dir: Path, source_dir: Path, *,
                       data_ids: list[str] | None = None, n_jobs: int = -1,
                       progress: ProgressCallback | None = None) -> dict[str, dict]:
        """`run_tasks` then `write_task_run` for each; {task: result}."""

    def task_metrics(self, run: Any) -> dict[str, dict]:
        """{method: {"kind", metric: value}} of a task run: its rows of a sweep table."""

    def replicate_curves(self, run: Any) -> dict[str, dict]:
        """{method: curve} of a task run, for the bands over repeats ({} for a track without curves)."""

    def report(self, setup: TaskSetup, work_dir: Path, *, replicates: dict | None = None) -> dict:
        """results.json, the official result files and the plots of an evaluated run; its content."""

    def export_official(self, setup: TaskSetup, manifest: dict, results: dict, run_dir: Path, data_root: Path,
                        staging: Path, notes: list[str]) -> list[Path]:
        """Write the run as the official evaluator's folders under `staging`; the folders."""

    def evaluate_official(self, folder: Path, setup: Any, *, model: str, seed: int, n_jobs: int,
                          now: dt.datetime | None, progress: ProgressCallback | None) -> Any:
        """Evaluate an official folder (its checked task file `setup`) as the official evaluator would."""
