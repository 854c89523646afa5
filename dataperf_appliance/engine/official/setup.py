"""The task files of the two official DataPerf evaluators, as they are: checked, with the line of each problem.

`dataperf-appliance evaluate DIR` takes a folder laid out for one of the
official evaluators; each track names its evaluator's task file
(`dataperf_appliance.tracks`), and the one a folder holds tells its track:

* debugging (DS3Lab/dataperf-vision-debugging): ``task_setup.yml`` with
  ``paths`` (``embedding_folder``, ``groundtruth_folder``,
  ``submission_folder``, ``results_folder``), ``tasks`` (``data_id``,
  ``train_size``, ``noise_level``, ``test_size``, ``val_size``) and an
  optional ``baselines`` list (read by the official baseline scripts only; ignored);
* selection (CoactiveAI/dataperf-vision-selection): ``task_setup.yaml`` with
  ``dim``, ``emb_file``, a ``[train_csv, test_parquet]`` pair per task as a
  top-level key, ``eval_tasks``, ``results_dir`` and ``data_dir`` (every other
  path is relative to it; the folder itself when absent, as in older files);
  ``spark_driver_memory`` and ``docker_data_dir`` are accepted and ignored.

These are not the appliance's own `task_setup.yml` (each track's setup model), which
adds keys of its own and groups the selection pairs under ``tasks``: the
official files are taken unchanged. Every path must stay inside the folder
(relative, no ``..``), so reading and writing never leave it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, TypeAdapter, ValidationError, model_validator

from dataperf_appliance.config import ConfigError, ConfigIssue, FieldProblems, Loc, Paths, load_yaml, read_config_text
from dataperf_appliance.config.issues import validation_issues
from dataperf_appliance.config.types import MAX_SPLIT_SIZE, MAX_TASKS, DataFile, Folder, SafeName, TaskPair, TrainSize
from dataperf_appliance.engine.datasets.dataperf_files import task_file_paths

DEBUGGING_FILE = "task_setup.yml"
SELECTION_FILE = "task_setup.yaml"
#: The official selection file's keys that only Spark or Docker use.
SELECTION_IGNORED_KEYS = ("spark_driver_memory", "docker_data_dir")

_STRICT = ConfigDict(extra="forbid", frozen=True)
SplitSize = Annotated[int, Strict(), Field(gt=0, le=MAX_SPLIT_SIZE)]


class OfficialDebuggingTask(BaseModel):
    """One task of the official debugging file; its files are named after these values."""

    model_config = _STRICT

    data_id: SafeName
    train_size: TrainSize
    noise_level: Annotated[float, Strict(), Field(ge=0, lt=1, allow_inf_nan=False)]
    test_size: SplitSize
    val_size: SplitSize

    @model_validator(mode="after")
    def _findable(self) -> OfficialDebuggingTask:
        if "_" in self.data_id:
            # The official main.py keeps the submissions whose name split at '_' starts with the data_id.
            raise FieldProblems([(("data_id",), f"{self.data_id!r} holds '_': the official evaluator finds a "
                                                "task's submissions by the file name's part before the first "
                                                "'_', so it would find none; use '-' instead")])
        return self


class OfficialBaseline(BaseModel):
    """An entry of ``baselines``: what the official baseline scripts run (any text, e.g. ``neighbor_shapley
    (datascope)``); the evaluator does not read it."""

    model_config = _STRICT

    name: Annotated[str, Strict()]


class OfficialDebuggingSetup(BaseModel):
    """The official debugging evaluator's ``task_setup.yml``."""

    model_config = _STRICT

    paths: Paths
    tasks: Annotated[tuple[OfficialDebuggingTask, ...], Field(min_length=1, max_length=MAX_TASKS)]
    baselines: tuple[OfficialBaseline, ...] = ()

    @model_validator(mode="after")
    def _distinct(self) -> OfficialDebuggingSetup:
        seen: dict[str, int] = {}
        problems: list[tuple[Loc, str]] = []
        for index, task in enumerate(self.tasks):
            if task.data_id in seen:
                problems.append((("tasks", index, "data_id"), f"{task.data_id!r} is listed twice (first as "
                                                              f"tasks[{seen[task.data_id]}]): both would write "
                                                              f"{task.data_id}_evaluation.json"))
            seen.setdefault(task.data_id, index)
        if problems:
            raise FieldProblems(problems)
        return self

    def file_problems(self, folder: Path) -> list[tuple[Loc, str]]:
        """(loc, message) of every file a task needs that `folder` lacks; [] when all are there."""
        problems: list[tuple[Loc, str]] = []
        for index, task in enumerate(self.tasks):
            files = task_file_paths(folder, self.paths.embedding_folder, self.paths.groundtruth_folder,
                                    task.data_id, task.train_size, task.noise_level, task.val_size, task.test_size)
            # The official evaluator reads no validation file, so neither does `evaluate`.
            for key, field_name in (("train", "train_size"), ("test", "test_size"), ("groundtruth", "data_id")):
                if not files[key].is_file():
                    problems.append((("tasks", index, field_name), f"no file {files[key].relative_to(folder)}"))
        if not (folder / self.paths.submission_folder).is_dir():
            problems.append((("paths", "submission_folder"), f"no folder {self.paths.submission_folder}"))
        return problems


_PAIR = TypeAdapter(TaskPair)


class OfficialSelectionSetup(BaseModel):
    """The official selection evaluator's ``task_setup.yaml``: fixed keys, and a pair per task at the top level."""

    model_config = ConfigDict(extra="allow", frozen=True)

    dim: Annotated[int, Strict(), Field(ge=1)]
    emb_file: DataFile
    eval_tasks: Annotated[tuple[SafeName, ...], Field(min_length=1, max_length=MAX_TASKS)]
    results_dir: Folder
    data_dir: Folder | None = None
    spark_driver_memory: Any = None
    docker_data_dir: Any = None

    @classmethod
    def key_problems(cls, data: dict) -> list[tuple[Loc, str]]:
        """(loc, message) of every top-level key that is neither a known key nor a task's pair.

        Checked before the model (and whatever its fields say), so a misspelt key is named as such.
        """
        problems: list[tuple[Loc, str]] = []
        for key, value in data.items():
            if key in cls.model_fields:
                continue
            if not isinstance(value, list):
                close = difflib.get_close_matches(key, list(cls.model_fields), n=1)
                problems.append(((key,), f"unknown key {key!r}: a task's line is '{key}: [train.csv, test.parquet]'"
                                         + (f" (did you mean {close[0]!r}?)" if close else "")))
                continue
            try:
                _PAIR.validate_python(value)
            except ValidationError as error:
                problems += [((key, *item["loc"]), _pair_message(item)) for item in error.errors()]
        return problems

    @model_validator(mode="after")
    def _evaluated_tasks(self) -> OfficialSelectionSetup:
        problems: list[tuple[Loc, str]] = []
        seen: dict[str, int] = {}
        for index, task in enumerate(self.eval_tasks):
            if task in seen:
                problems.append((("eval_tasks", index), f"{task!r} is listed twice (first as item {seen[task]})"))
            elif task not in (self.model_extra or {}):
                problems.append((("eval_tasks", index), f"{task!r} has no [train_csv, test_parquet] pair: add a "
                                                        f"line '{task}: [train.csv, test.parquet]'"))
            seen.setdefault(task, index)
        if problems:
            raise FieldProblems(problems)
        return self

    @property
    def pairs(self) -> dict[str, tuple[str, str]]:
        """task -> (training csv, test parquet), paths relative to the data folder, for the evaluated tasks."""
        return {task: tuple(self.model_extra[task]) for task in self.eval_tasks}

    def data_folder(self, folder: Path) -> Path:
        return folder / self.data_dir if self.data_dir else folder

    def file_problems(self, folder: Path) -> list[tuple[Loc, str]]:
        """(loc, message) of every file the evaluated tasks need that is not under the data folder."""
        data = self.data_folder(folder)
        if not data.is_dir():
            return [(("data_dir",), f"no folder {self.data_dir}")]
        problems: list[tuple[Loc, str]] = []
        if not (data / self.emb_file).is_file():
            problems.append((("emb_file",), f"no file {self.emb_file} in {self.data_dir or 'the folder'}"))
        for task, pair in self.pairs.items():
            for position, relative in enumerate(pair):
                if relative is None:
                    problems.append(((task, position), "the training set to score is missing (null)"))
                elif not (data / relative).is_file():
                    problems.append(((task, position), f"no file {relative} in {self.data_dir or 'the folder'}"))
        return problems


def _pair_message(error: dict) -> str:
    if error["type"] == "value_error":
        return (str(error["ctx"]["error"]).replace("inside the dataset folder", "inside data_dir")
                .replace(" (train_csv may be null)", ""))
    return error["msg"]


OfficialSetup = OfficialDebuggingSetup | OfficialSelectionSetup


def official_task_file(folder: Path, layouts: Mapping[str, str]) -> Path:
    """The official task file in `folder`: the one of `layouts` ({task file name: its track}) it holds.

    Raises ConfigError when the folder holds none or several.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError([ConfigIssue(str(folder), None, None, None, "no such folder")])
    found = [folder / name for name in layouts if (folder / name).is_file()]
    if len(found) != 1:
        if found:
            what = "both" if len(found) == 2 else "several"
        else:
            what = "neither" if len(layouts) == 2 else "none"
        named = " and ".join(f"{name} (the official {track} layout)" for name, track in layouts.items())
        raise ConfigError([ConfigIssue(str(folder), None, None, None, (
            f"has {what} of {named}; exactly one tells the track"))])
    return found[0]


def load_official_setup(path: Path, model: type[OfficialSetup]) -> OfficialSetup:
    """The official task file at `path` read as `model`, the files it names checked to exist.

    Raises ConfigError listing every problem, each at its line and field.
    Read-only.
    """
    document = load_yaml(read_config_text(path), filename=str(path))
    issues = list(document.issues)
    if model is OfficialSelectionSetup:
        issues += [document.issue(loc, message) for loc, message in model.key_problems(document.data)]
    try:
        setup = model.model_validate(document.data)
    except ValidationError as error:
        raise ConfigError(issues + validation_issues(error, document, model)) from None
    if issues:
        raise ConfigError(issues)
    issues += [document.issue(loc, message) for loc, message in setup.file_problems(path.parent)]
    if issues:
        raise ConfigError(issues)
    return setup
