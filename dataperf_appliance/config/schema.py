"""What a valid ``task_setup.yml`` is, and checking a file against it.

The models keep the DataPerf reference keys (``paths``, ``tasks`` with
``data_id``/``train_size``/``noise_level``/``test_size``/``val_size``,
``baselines`` with ``name``) and add the appliance's own (``track``,
``dataset``, ``model``, ``seed``, ``eval_points``, ``dim``, ``submissions``).
They are frozen and refuse unknown keys; numbers and text are strict (the text
``"200"`` is not a size, ``true`` is not a number).

Checking happens in three layers, each collecting every problem it finds:

1. `loader.load_yaml`: YAML syntax and safety (tags, aliases, size, depth);
2. the pydantic models: keys, types, ranges, names, cross-field rules;
3. the dataset: `dataperf_appliance.datasets.size_problems` says whether each
   task can be drawn from (or found in) its dataset.

Every problem becomes a `ConfigIssue` at the line and column of the key or
list item concerned (pydantic's error ``loc`` is looked up in the positions the
loader recorded). Checking is read-only: a rejected file changes nothing.

Adding a track: write its setup model (with ``track: Literal["<track>"]`` and
a ``dataset_problems(data_root)`` method), register it in `SETUP_MODELS`, and
turn `TaskSetup` into ``Annotated[Union[...], Field(discriminator="track")]``.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from ..catalog import DEBUGGING_STRATEGIES as STRATEGY_NAMES
from ..catalog import DEBUGGING_STRATEGY_ALIASES
from ..catalog import DEFAULT_MODEL, MODEL_NAMES
from .loader import ConfigError, ConfigIssue, Loc, YamlDocument, format_loc, load_yaml, read_config_text

#: The track of a file that does not say (the DataPerf reference files do not).
DEFAULT_TRACK = "debugging"
#: Largest training set of a task (the evaluation retrains once per budget).
MAX_TRAIN_SIZE = 100_000
#: Largest validation or test set of a task.
MAX_SPLIT_SIZE = 1_000_000
#: Largest fraction of flipped training labels: above it the labels carry almost no signal.
MAX_NOISE_LEVEL = 0.9
#: Most tasks in one file.
MAX_TASKS = 100
#: Largest seed (numpy's seeds are 32-bit).
MAX_SEED = 2**32 - 1
#: Embedding length bounds of the synthetic dataset.
MIN_DIM, MAX_DIM = 2, 2048
#: Longest name (data_id, dataset, method) and longest folder path.
MAX_NAME_LENGTH, MAX_PATH_LENGTH = 100, 200

# Names become parts of file names under the data root
# ({data_id}_train_..., {data_id}_{method}.txt, datasets/<dataset>/), so they
# are restricted to characters that cannot leave a folder or surprise a shell.
# The first character must be a letter or digit: that rules out ".", "..",
# hidden files and names that look like command-line options.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_name(value: str) -> str:
    """`value` if it is a safe name (``digit-0``, ``my_method.v2``); ValueError otherwise."""
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"is longer than {MAX_NAME_LENGTH} characters")
    if not _NAME.fullmatch(value):
        raise ValueError(f"{_shorten(value)!r} is not a safe name: use letters, digits, '.', '_' and '-', "
                         "starting with a letter or digit (it becomes part of a file name)")
    return value


def check_folder(value: str) -> str:
    """`value` if it is a relative folder inside the data root (``embeddings/``, ``a/b``); ValueError otherwise."""
    if len(value) > MAX_PATH_LENGTH:
        raise ValueError(f"is longer than {MAX_PATH_LENGTH} characters")
    parts = value[:-1].split("/") if value.endswith("/") else value.split("/")
    if not all(_NAME.fullmatch(part) for part in parts):
        raise ValueError(f"{_shorten(value)!r} is not a safe relative folder: write names of letters, digits, "
                         "'.', '_' and '-' separated by '/', like 'embeddings/' (no '..', no leading '/', "
                         "no '\\' or drive letter)")
    return value


def check_model_name(value: str) -> str:
    if value not in MODEL_NAMES:
        raise ValueError(f"unknown model {_shorten(value)!r}; choose one of: {', '.join(MODEL_NAMES)}")
    return value


def check_strategy_name(value: str) -> str:
    if value not in STRATEGY_NAMES and value not in DEBUGGING_STRATEGY_ALIASES:
        raise ValueError(f"unknown baseline {_shorten(value)!r}; choose one of: {', '.join(STRATEGY_NAMES)} "
                         "(your own methods go under submissions)")
    return value


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


SafeName = Annotated[str, Strict(), AfterValidator(check_name)]
Folder = Annotated[str, Strict(), AfterValidator(check_folder)]
ModelName = Annotated[str, Strict(), AfterValidator(check_model_name)]
StrategyName = Annotated[str, Strict(), AfterValidator(check_strategy_name)]

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True)


class FieldProblems(ValueError):
    """Raised by a model validator for problems of several fields at once.

    `problems` holds (loc relative to the model, message) pairs, so each can be
    reported at its own line; str() lists them for a caller of the model itself.
    """

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{format_loc(loc)}: {message}" for loc, message in problems))


class Paths(BaseModel):
    """The DataPerf folders, relative to the dataset folder (inputs) or the run folder (outputs)."""

    model_config = _MODEL_CONFIG

    embedding_folder: Folder = Field("embeddings/", description="the train, val and test parquet files")
    groundtruth_folder: Folder = Field("data/", description="the dataset_{data_id}_train.csv ground truth files")
    submission_folder: Folder = Field("submissions/", description="the inspection orders, {data_id}_{method}.txt")
    results_folder: Folder = Field("results/", description="the {data_id}_evaluation.json files")


class DebuggingTask(BaseModel):
    """One binary task of the debugging track (DataPerf's keys, in DataPerf's order)."""

    model_config = _MODEL_CONFIG

    data_id: SafeName = Field(description="the task's name; its files are named after it")
    train_size: Annotated[int, Strict(), Field(gt=0, le=MAX_TRAIN_SIZE)] = Field(
        description="training rows (every budget 1..train_size is evaluated)")
    noise_level: Annotated[float, Strict(), Field(ge=0, le=MAX_NOISE_LEVEL, allow_inf_nan=False)] = Field(
        description="fraction of the training labels flipped")
    test_size: Annotated[int, Strict(), Field(gt=0, le=MAX_SPLIT_SIZE)] = Field(
        description="test rows: the accuracy of each curve point")
    val_size: Annotated[int, Strict(), Field(gt=0, le=MAX_SPLIT_SIZE)] = Field(
        description="validation rows with clean labels, given to the strategies")


class Baseline(BaseModel):
    """A cleaning strategy of the appliance to run on every task."""

    model_config = _MODEL_CONFIG

    name: StrategyName


class DebuggingSetup(BaseModel):
    """A valid ``task_setup.yml`` of the debugging track."""

    model_config = _MODEL_CONFIG

    track: Literal["debugging"] = "debugging"
    dataset: SafeName = Field("digits", description="digits, synthetic, or a folder under <data root>/datasets")
    model: ModelName = Field(DEFAULT_MODEL, description="the classifier retrained at every budget")
    seed: Annotated[int, Strict(), Field(ge=0, le=MAX_SEED)] = 0
    eval_points: Annotated[int, Strict(), Field(ge=2)] | None = Field(
        None, description="null: every budget 1..train_size; N: N evenly spaced budgets")
    dim: Annotated[int, Strict(), Field(ge=MIN_DIM, le=MAX_DIM)] | None = Field(
        None, description="embedding length of the synthetic dataset (null: 256)")
    paths: Paths = Paths()
    tasks: Annotated[tuple[DebuggingTask, ...], Field(min_length=1, max_length=MAX_TASKS)]
    baselines: tuple[Baseline, ...] = ()
    submissions: tuple[SafeName, ...] = Field(
        (), description="your own methods: {submission_folder}/{data_id}_{method}.txt for every task")

    @model_validator(mode="after")
    def _check_across_fields(self) -> DebuggingSetup:
        problems = list(_duplicates(self.tasks, "tasks", "data_id", lambda t: t.data_id))
        problems += _duplicates(self.baselines, "baselines", "name", lambda b: b.name)
        problems += _duplicates(self.submissions, "submissions", None, lambda name: name)
        baseline_names = {b.name for b in self.baselines}
        problems += [(("submissions", index), f"{name!r} is also a baseline: the two would write the same "
                                              "submission files; rename your method")
                     for index, name in enumerate(self.submissions) if name in baseline_names]
        if not self.baselines and not self.submissions:
            problems.append((("baselines",), "nothing to evaluate: list at least one baseline or submission"))
        if self.eval_points is not None:
            smallest = min(self.tasks, key=lambda t: t.train_size)
            if self.eval_points > smallest.train_size:
                problems.append((("eval_points",), f"{self.eval_points} is more than the train_size "
                                 f"{smallest.train_size} of task {smallest.data_id}; use at most "
                                 f"{smallest.train_size}, or null for every budget"))
        if self.dim is not None and self.dataset != "synthetic":
            problems.append((("dim",), f"dim applies only to dataset synthetic; set it to null for dataset "
                                       f"{self.dataset!r}"))
        if problems:
            raise FieldProblems(problems)
        return self

    def dataset_problems(self, data_root: Path | None) -> list[tuple[Loc, str]]:
        """Problems of the tasks against the dataset, as (loc, message) pairs; [] when every task can run.

        An official dataset folder is looked for under `data_root`; with
        `data_root` None only the generated datasets are checked.
        """
        from ..datasets import size_problems  # pandas and pyarrow: loaded once a file gets this far
        problems = []
        for index, task in enumerate(self.tasks):
            sizes = {"train_size": task.train_size, "val_size": task.val_size, "test_size": task.test_size}
            for field_name, message in size_problems(
                    self.dataset, task.data_id, sizes, data_root,
                    embedding_folder=self.paths.embedding_folder,
                    groundtruth_folder=self.paths.groundtruth_folder, noise_level=task.noise_level):
                problems.append((("tasks", index, field_name), message))
        return problems

    def to_yaml_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, str, numbers, None) in the file's key order; loads back to an equal setup."""
        return self.model_dump(mode="json")


def _duplicates(items, key: str, field_name: str | None, name_of) -> Iterator[tuple[Loc, str]]:
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        name = name_of(item)
        if name in first_index:
            loc = (key, index, field_name) if field_name else (key, index)
            yield loc, f"{name!r} is listed twice (first as {key}[{first_index[name]}])"
        else:
            first_index[name] = index


#: The setup model of each track, by the value of its `track` key.
SETUP_MODELS: dict[str, type[BaseModel]] = {"debugging": DebuggingSetup}
#: A validated setup of any track. With a second track this becomes
#: ``Annotated[Union[DebuggingSetup, SelectionSetup], Field(discriminator="track")]``.
TaskSetup = DebuggingSetup


# --- from pydantic errors to ConfigIssues ---------------------------------------------------

_TYPE_MESSAGES = {
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "model_type": "must be a mapping (key: value lines)",
    "dict_type": "must be a mapping (key: value lines)",
    "model_attributes_type": "must be a mapping (key: value lines)",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "finite_number": "must be a finite number",
}


def _shown(value: Any) -> str:
    if value is None:
        return "null (nothing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {_shorten(value, 40)!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _unwrap(annotation: Any) -> Any:
    """The model type inside Annotated[...], X | None, tuple[X, ...] and list[X], if any."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is None:
            return annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None) and a is not Ellipsis]
        if origin is Annotated or origin in (tuple, list, typing.Union, types.UnionType):
            if not args:
                return None
            annotation = args[0]
        else:
            return annotation


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class of the mapping at `loc` under `model`, or None if it is not a model."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # the item type was reached when its list field was unwrapped
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = _unwrap(current.model_fields[part].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unknown_key_message(model: type[BaseModel], loc: Loc) -> str:
    key = str(loc[-1])
    owner = _model_at(model, loc[:-1])
    if owner is None:
        return f"unknown key {key!r}"
    allowed = list(owner.model_fields)
    message = f"unknown key {_shorten(key)!r}; allowed here: {', '.join(allowed)}"
    close = difflib.get_close_matches(key, allowed, n=1)
    return message + (f" (did you mean {close[0]!r}?)" if close else "")


def _message(error: dict, model: type[BaseModel]) -> str:
    kind, loc = error["type"], tuple(error["loc"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key_message(model, loc)
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[kind]}, got {_shown(error.get('input'))}"
    if kind == "too_short" and error.get("ctx", {}).get("min_length") == 1:
        return "must not be empty"
    return (error["msg"].replace("Input should be", "must be").replace("List should have", "must have")
            .replace("Tuple should have", "must have").replace(" after validation", ""))


def validation_issues(error: ValidationError, document: YamlDocument, model: type[BaseModel]) -> list[ConfigIssue]:
    """Every pydantic error of validating `document` with `model`, as ConfigIssues at their lines."""
    errors = error.errors()
    # A list whose items failed is also "too short after validation" (the
    # failed items do not count): that says nothing new, so it is dropped.
    failed_inside = {tuple(e["loc"][:end]) for e in errors for end in range(len(e["loc"]))}
    issues = []
    for item in errors:
        loc = tuple(item["loc"])
        if item["type"] == "too_short" and loc in failed_inside:
            continue
        context_error = item.get("ctx", {}).get("error")
        if isinstance(context_error, FieldProblems):
            issues += [document.issue(loc + sub_loc, message) for sub_loc, message in context_error.problems]
        else:
            issues.append(document.issue(loc, _message(item, model)))
    return issues


def parse_task_setup(text: str, *, filename: str = "task_setup.yml", data_root: Path | None = None) -> TaskSetup:
    """Validate the text of a ``task_setup.yml`` and return the setup it describes.

    `filename` names the file in messages. `data_root` is where official
    dataset folders are looked for (``<data_root>/datasets/<dataset>``); with
    None, only the generated datasets (digits, synthetic) are checked against
    their tasks. A missing ``track`` means the debugging track.

    Raises ConfigError listing every problem found, each with its line,
    column and field. Read-only: nothing is written anywhere.
    """
    document = load_yaml(text, filename=filename)
    issues = list(document.issues)
    track = document.data.get("track", DEFAULT_TRACK)
    model = SETUP_MODELS.get(track) if isinstance(track, str) else None
    if model is None:
        raise ConfigError(issues + [document.issue(("track",), f"unknown track {track!r}; choose one of: "
                                                               f"{', '.join(SETUP_MODELS)}")])
    try:
        setup = model.model_validate(document.data)
    except ValidationError as error:
        raise ConfigError(issues + validation_issues(error, document, model)) from None
    issues += [document.issue(loc, message) for loc, message in setup.dataset_problems(data_root)]
    if issues:
        raise ConfigError(issues)
    return setup


def load_task_setup(path: str | os.PathLike, *, data_root: Path | None = None) -> TaskSetup:
    """Read and validate the ``task_setup.yml`` at `path` (see `parse_task_setup`).

    A file over `loader.MAX_FILE_BYTES` is refused before it is read. Raises
    ConfigError for an invalid file, OSError when it cannot be read.
    Read-only: a rejected file changes nothing on disk.
    """
    text = read_config_text(path)
    return parse_task_setup(text, filename=str(path), data_root=data_root)
