"""What a track is: the frozen `Track` record every entry of `dataperf_appliance.tracks.TRACKS` is.

A track is a kind of benchmark (DataPerf's debugging and selection). It
declares its file (setup model, template, default parameters), its choices
(strategies, built-in datasets), how it is scored (metrics, columns, the kind
of result a method gives), what its files look like (a dataset folder's
layout, a user's submission) and where its stages and its official evaluator
are. Everything above the tracks -- the sweeps, the pipeline, the CLI, the
DAG, the pages -- asks the track, never its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from dataperf_appliance.config import Loc, TaskSetup, catalog
from dataperf_appliance.tracks.engine import Stages

#: What a method of a track gives. A curve: an order of the training set, scored at every budget (the
#: trainings are the task's, shared by its methods). A point: one training set of at most train_size points,
#: scored once (a larger one is shown but not ranked).
CURVE, POINT = "curve", "point"


class DatasetFolder(NamedTuple):
    """What a track found in a dataset folder laid out for it: its tasks, and every problem of its files."""

    tasks: list[str]
    problems: list[str]


@dataclass(frozen=True)
class OfficialEvaluator:
    """A track's official DataPerf evaluator: how `dataperf_appliance.engine.official` reads and writes its folders."""

    #: The name of its task file: the one in an official folder tells the folder's track.
    task_file: str
    #: That file as the official evaluator reads it (a pydantic model).
    setup_model: type
    #: (folder, setup, *, model, seed, n_jobs, now, progress) -> `official.evaluate.FolderEvaluation`.
    evaluate: Callable[..., Any]
    #: (run_dir, out, setup, *, data_root) -> `official.export.Export`.
    export: Callable[..., Any]


@dataclass(frozen=True, eq=False)
class Track:
    """One kind of benchmark. Its functions run over a validated setup and folders: `data_root` holds the
    datasets, `work_dir` is the run being written, `source_dir` holds a user's own files."""

    #: The value of the ``track`` key of its files.
    name: str
    #: The validated file (a frozen pydantic model with ``track: Literal[name]``).
    setup_model: type[TaskSetup]
    #: The Jinja2 template in the templates folder, and its parameters' defaults.
    template: str
    defaults: Mapping[str, Any]
    #: (setup, data_root or None) -> (loc, message) of every way the setup does not fit its dataset; with
    #: `data_root` None only the generated datasets are checked.
    data_problems: Callable[[TaskSetup, Path | None], list[tuple[Loc, str]]]
    #: Its engine module, imported on first use (the config, the CLI and the pages load without it).
    stages: Callable[[], Stages]
    #: The figures summarized over repeats and compared with random, the main one first.
    headline_metrics: tuple[str, ...]
    #: The figures of a method in a sweep row, the main one first.
    sweep_metrics: tuple[str, ...]
    #: The columns of a method's row in the run page's table (the main metric is put first).
    result_columns: tuple[str, ...]
    #: `CURVE` or `POINT`.
    result_kind: str
    #: The file suffix of a user's own submission, ``{task}_{method}<suffix>``.
    submission_suffix: str
    #: Named sets of parameters that change the defaults (the debugging arena: every method).
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The datasets it generates itself (others are folders under <data root>/datasets).
    builtin_datasets: tuple[str, ...] = ()
    #: The methods of the appliance (a user adds their own files as submissions).
    strategies: tuple[str, ...] = ()
    #: The figures of a task in the run page's table of tasks.
    task_columns: tuple[str, ...] = ()
    #: (path, train_size) -> the problems of a user's submission file, each naming its line; None: not checked
    #: before the run.
    submission_problems: Callable[[Path, int], list[str]] | None = None
    #: folder -> its tasks and problems when the folder is laid out for this track, else None.
    dataset_folder: Callable[[Path], DatasetFolder | None] | None = None
    #: Its official evaluator, imported on first use; None for a track without one.
    official: Callable[[], OfficialEvaluator] | None = None

    @property
    def main_metric(self) -> str:
        return self.headline_metrics[0]

    @property
    def lower_is_better(self) -> bool:
        """The main metric's direction (catalog.LOWER_IS_BETTER; a metric it does not list goes up)."""
        return catalog.better(self.main_metric) == "lower"
