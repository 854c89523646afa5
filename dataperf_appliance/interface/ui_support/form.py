"""The New benchmark form, without Streamlit: fields, parameters, validation.

The form is built from a track's template parameters (`tracks.default_params`),
so a parameter the template gains (the selection track's, a sweep setting)
appears in the form without a change here: its widget follows the type of
its default value (`field_specs`). Widget values become the flat parameter
dict of `tracks.render_task_setup` (`params_from_values`); the live check
(`check_params`, or `check_yaml` in the Advanced mode) renders and validates
the file and files every problem under the form field it belongs to, by the
YAML path of the problem (``tasks[0].train_size`` -> ``train_size``). A
library method chosen among the strategies brings inputs of its parameters
(`method_parameter_specs`), prefilled with its constructor's defaults.

What the Run button does next is `dataperf_appliance.interface.launch.launch_run`.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from dataperf_appliance.config import METHOD_PARAMS, SWEEP_PARAMS, ConfigError, ConfigIssue, catalog, is_safe_name
from dataperf_appliance.config.types import MAX_NOISE_LEVEL
from dataperf_appliance.engine.settings import Settings
from dataperf_appliance.tracks import TRACKS, default_params, parse_task_setup, preview, render_and_parse, track_of
from dataperf_appliance.tracks import available_tracks as available_tracks  # the form's choice of track
from dataperf_appliance.engine.upload_limits import MAX_FILES_PER_UPLOADER

#: Form parameters whose values are chosen from a list the same for every track: {key: options}.
_CHOICES: dict[str, tuple[str, ...]] = {"model": catalog.MODEL_NAMES}
#: What each option of a choice means, shown beside its name: {key: {option: description}}.
_OPTION_DESCRIPTIONS: dict[str, Mapping[str, str]] = {"model": catalog.MODEL_DESCRIPTIONS}


def option_label(key: str, option: Any) -> str:
    """How a choice's option is shown: its name, and what it is where that matters (official or not)."""
    description = _OPTION_DESCRIPTIONS.get(key, {}).get(option)
    return f"{option}: {description}" if description else str(option)



#: How each known parameter is shown: (label, help). Unknown ones get a label made from their name.
FIELD_INFO: dict[str, tuple[str, str]] = {
    "track": ("Track", "debugging: find the mislabeled training points; selection: pick the best training set"),
    "dataset": ("Dataset", "digits and synthetic are generated on demand; other names are dataset folders "
                           "uploaded on the Datasets page"),
    "model": ("Model", "the classifier trained on the (cleaned or selected) training data"),
    "seed": ("Seed", "the same file and seed give the same results"),
    "eval_points": ("Evaluation points", "blank: every budget 1..train_size; N: N evenly spaced budgets "
                                         "(faster for large training sets)"),
    "dim": ("Embedding dimension", "blank for the default; only the synthetic dataset (debugging) or the "
                                   "embedding length (selection) uses it"),
    "tasks": ("Tasks", "the benchmark tasks (one binary task each)"),
    "train_size": ("Training size", "training points per task (the selection budget on the selection track)"),
    "val_size": ("Validation size", "clean validation points given to the strategies"),
    "test_size": ("Test size", "test points: the accuracy of every curve point"),
    "noise_level": ("Noise level", f"fraction of the training labels flipped (0 to {MAX_NOISE_LEVEL})"),
    "strategies": ("Strategies", "the methods of the appliance to compare"),
    "submissions": ("Your methods", "names of your own methods; upload their files below "
                                    "(filled in from the uploaded file names)"),
    "repeats": ("Repeats", "how many times each setting is run, with the seeds seed, seed+1, ..."),
    "emb_file": ("Pool embeddings file", "inside the dataset folder; {dim} is replaced by the dimension"),
    "train_csv": ("Train csv of a task", "inside the dataset folder; {task} is the task"),
    "test_parquet": ("Test set of a task", "inside the dataset folder; {task} and {dim} are replaced"),
    "results_dir": ("Results folder", "inside the run folder: the reference's result files"),
}

#: The order of the form: the data and the model first, then sizes, methods, and the rest in template order.
FIELD_ORDER = ("dataset", "model", "tasks", "train_size", "val_size", "test_size", "noise_level", "strategies",
               "submissions", "seed", "repeats", "eval_points", "dim")

#: Parameters filled from uploaded files, not from a field (`method_entries`).
UPLOADED_PARAMS = frozenset({"methods"})
#: The field of the methods to run: a chosen library method's parameters are shown under it.
STRATEGIES_FIELD = "strategies"
#: Where a run keeps the uploaded methods' code and requirements.
METHODS_FOLDER = "methods/"
#: An uploaded requirements file: for every uploaded method, or (``<method>.requirements.txt``) for one.
REQUIREMENTS_NAME, REQUIREMENTS_SUFFIX = "requirements.txt", ".requirements.txt"

#: YAML keys that are not parameter names, and the parameter that fills them.
YAML_ALIASES: dict[str, str] = {"baselines": "strategies", "data_id": "tasks", "name": "strategies"}

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


# ---- fields ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldSpec:
    """One form field.

    kind: track | choice | multichoice | int | float | bool | optional_number | names | numbers | text.
    options: the choices (choice, multichoice; tasks when they are known).
    """

    key: str
    kind: str
    label: str
    help: str
    default: Any
    options: tuple[str, ...] = ()

    @property
    def advanced(self) -> bool:
        """Shown folded away: file path templates and other free text."""
        return self.kind == "text"


def _label(key: str) -> tuple[str, str]:
    return FIELD_INFO.get(key, (key.replace("_", " ").capitalize(), ""))


def _options(key: str, track: str) -> tuple[str, ...]:
    if key == STRATEGIES_FIELD:
        return tuple(track_of(track).strategies)
    return _CHOICES.get(key, ())


def dataset_options(track: str, default: str, folders: Iterable[str] = ()) -> tuple[str, ...]:
    """The datasets a user can pick: the track's generated ones, then dataset folders (disk or S3)."""
    names = [default, *track_of(track).builtin_datasets]
    names += sorted(name for name in folders if name not in catalog.GENERATED_DATASET_FOLDERS)
    return tuple(dict.fromkeys(names))


def task_options(dataset: str, data_root: Path | None = None) -> tuple[str, ...]:
    """The task ids of a dataset when they are known: the digits', or those of its folder under `data_root`
    (an uploaded dataset); else () (a dataset in S3 only, or generated with free task ids)."""
    from dataperf_appliance.engine.datasets import dataset_dir, digits, folder_tasks

    if dataset == digits.NAME:
        return tuple(digits.TASK_IDS)
    if data_root is None or dataset in catalog.GENERATED_DATASET_FOLDERS:
        return ()
    folder = dataset_dir(data_root, dataset)
    return tuple(folder_tasks(folder)) if folder.is_dir() else ()


#: The tasks a form offers ticked for a dataset folder (its first ones).
DEFAULT_FOLDER_TASKS = 3


def nullable(track: str, key: str) -> bool:
    """True when the file's top-level `key` of `track` may be null (a number field then accepts a blank)."""
    import types
    import typing

    field_info = TRACKS[track].setup_model.model_fields.get(key) if track in TRACKS else None
    if field_info is None:
        return False
    annotation = field_info.annotation
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and \
        type(None) in typing.get_args(annotation)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sweep_params() -> frozenset[str]:
    """The parameters that take a list of values in a sweep."""
    return SWEEP_PARAMS


def field_specs(track: str, *, dataset: str | None = None, dataset_folders: Iterable[str] = (),
                sweep: bool = False, data_root: Path | None = None) -> list[FieldSpec]:
    """The fields of the form of `track`, in the template's parameter order.

    The widget kind follows the default value: text with known choices -> a
    choice, a list with known choices -> a multiple choice, int/float/bool ->
    a number or a checkbox, None -> an optional number, a list of numbers ->
    numbers, a list of names -> names, other text -> text (shown with the
    advanced settings). With `sweep`, the sweepable parameters (a model, a
    number) take several values: a multiple choice, or numbers.
    """
    defaults = default_params(track)
    swept = sweep_params() if sweep else frozenset()
    specs = []
    for key, default in defaults.items():
        if key in UPLOADED_PARAMS or key == METHOD_PARAMS:  # method_params: under the strategies, per method
            continue
        label, help_text = _label(key)
        options = _options(key, track)
        if key in swept and not isinstance(default, list):
            if options:
                specs.append(FieldSpec(key, "multichoice", label, help_text, [default], options))
                continue
            if _is_number(default):
                specs.append(FieldSpec(key, "numbers", label, f"{help_text} (sweep: comma-separated values)".strip(),
                                       [default]))
                continue
        if key == "track":
            specs.append(FieldSpec(key, "track", label, help_text, track, tuple(available_tracks())))
        elif key == "dataset" and isinstance(default, str):
            specs.append(FieldSpec(key, "choice", label, help_text, default,
                                   dataset_options(track, default, dataset_folders)))
        elif key == "tasks" and isinstance(default, list):
            chosen = dataset if dataset is not None else defaults.get("dataset", "")
            own = chosen != defaults.get("dataset")
            known = task_options(chosen, data_root)
            if known and not own:
                known = tuple(dict.fromkeys([*known, *default]))
            kind = "multichoice" if known else "names"
            # Another dataset has its own tasks: its first ones ticked, never the default dataset's.
            ticked = list(known[:DEFAULT_FOLDER_TASKS]) if own and known else [] if own else list(default)
            specs.append(FieldSpec(key, kind, label, help_text, ticked, known))
        elif options and isinstance(default, list):
            specs.append(FieldSpec(key, "multichoice", label, help_text, list(default), options))
        elif options and isinstance(default, str):
            specs.append(FieldSpec(key, "choice", label, help_text, default, options))
        elif isinstance(default, bool):
            specs.append(FieldSpec(key, "bool", label, help_text, default))
        elif _is_number(default) and nullable(track, key):
            specs.append(FieldSpec(key, "optional_number", label, f"{help_text} (blank: null)".strip(), default))
        elif isinstance(default, int):
            specs.append(FieldSpec(key, "int", label, help_text, default))
        elif isinstance(default, float):
            specs.append(FieldSpec(key, "float", label, help_text, default))
        elif default is None:
            specs.append(FieldSpec(key, "optional_number", label, help_text, None))
        elif isinstance(default, list) and default and all(_is_number(v) for v in default):
            specs.append(FieldSpec(key, "numbers", label, help_text, list(default)))
        elif isinstance(default, list):
            specs.append(FieldSpec(key, "names", label, help_text, list(default)))
        else:
            specs.append(FieldSpec(key, "text", label, help_text, default))
    rank = {key: index for index, key in enumerate(("track", *FIELD_ORDER))}
    return sorted(specs, key=lambda spec: rank.get(spec.key, len(rank)))


@dataclass(frozen=True)
class MethodParameterSpec:
    """One parameter of a library method, as a form input. kind: int | float | bool | text."""

    method: str
    name: str
    kind: str
    default: Any
    help: str

    @property
    def key(self) -> str:
        """Its place among the widget values (``method_params.data_oob.n_estimators``): one per method."""
        return f"{METHOD_PARAMS}.{self.method}.{self.name}"

    @property
    def label(self) -> str:
        return self.name


_PARAMETER_INPUT_KINDS = {bool: "bool", int: "int", float: "float", str: "text"}


def method_parameter_specs(track: str, methods: Iterable[str] | None = None) -> list[MethodParameterSpec]:
    """The inputs of the parameters of `methods` (None: every method with parameters of `track`), in the order
    of `methods` and of each constructor; [] for a track or a method without any."""
    defaults = default_params(track).get(METHOD_PARAMS) or {}
    chosen = defaults if methods is None else [name for name in dict.fromkeys(methods) if name in defaults]
    specs = []
    for method in chosen:  # every method of the defaults' method_params is a library's
        described = catalog.library_parameter_descriptions(method)
        specs += [MethodParameterSpec(method, name, _PARAMETER_INPUT_KINDS[type(default)], default,
                                      described.get(name, ""))
                  for name, default in defaults[method].items()]
    return specs


def widget_key(track: str, spec: FieldSpec | MethodParameterSpec, scope: str | None = None) -> str:
    """The session-state key of a field's widget (`scope`: a dataset other than the default's, whose tasks are
    kept apart); a method's parameter has one per track and method."""
    return f"nb.{track}.{spec.key}.{spec.kind}" + (f".{scope}" if scope else "")


def presets(track: str) -> tuple[str, ...]:
    return tuple(TRACKS[track].presets)


def preset_widget_values(track: str, preset: str, specs: Sequence[FieldSpec]) -> dict[str, Any]:
    """{widget key: value} that set the form to the track's `preset` (the fields it changes)."""
    changed = TRACKS[track].presets[preset]
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.key not in changed:
            continue
        value = changed[spec.key]
        if spec.kind in ("multichoice", "numbers") and not isinstance(value, list):
            value = [value]
        out[widget_key(track, spec)] = (value if spec.kind in ("multichoice", "int", "float", "bool", "choice")
                                        else text_of(spec, value))
    return out


def text_of(spec: FieldSpec, value: Any) -> str:
    """The text a text-like field shows for `value` (names and numbers comma-separated, None blank)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


# ---- values -> parameters ---------------------------------------------------------------------

def _number(text: str) -> int | float:
    token = text.strip()
    if not _NUMBER.match(token):
        raise ValueError(f"{token!r} is not a number")
    number = float(token)
    return int(token) if re.fullmatch(r"[+-]?\d+", token) else number


def parse_field(spec: FieldSpec, value: Any) -> Any:
    """The parameter value of one widget value; ValueError with a plain message when it cannot be read.

    Widgets that hold typed values (choices, numbers, checkboxes) pass
    through; text fields are read: names and numbers comma-separated, an
    optional number blank for null.
    """
    if spec.kind in ("names", "numbers", "optional_number", "text") and not isinstance(value, str):
        return list(value) if isinstance(value, (list, tuple)) else value
    if spec.kind == "names":
        return [part.strip() for part in value.split(",") if part.strip()]
    if spec.kind == "numbers":
        parts = [part for part in value.split(",") if part.strip()]
        if not parts:
            raise ValueError("give at least one number")
        return [_number(part) for part in parts]
    if spec.kind == "optional_number":
        return None if not value.strip() else _number(value)
    if spec.kind == "multichoice":
        return list(value or [])
    if spec.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def params_from_values(track: str, values: Mapping[str, Any], specs: Sequence[FieldSpec] | None = None,
                       ) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(parameters, errors by field) from the widget values; a field without a value keeps its default. A
    method's parameter is the value under its `MethodParameterSpec.key`, else its default."""
    specs = specs if specs is not None else field_specs(track)
    params = default_params(track)
    errors: dict[str, list[str]] = {}
    for spec in specs:
        if spec.key == "track":
            continue
        if spec.key not in values:
            continue
        try:
            params[spec.key] = parse_field(spec, values[spec.key])
        except ValueError as error:
            errors.setdefault(spec.key, []).append(str(error))
    for parameter in method_parameter_specs(track):
        if parameter.key in values:
            params[METHOD_PARAMS][parameter.method][parameter.name] = parse_method_parameter(
                parameter, values[parameter.key])
    return params, errors


def parse_method_parameter(spec: MethodParameterSpec, value: Any) -> Any:
    """The parameter value of a method parameter's widget: a whole float of an int input becomes an int (the
    rest is checked with the file: a wrong type is an error at its line)."""
    if spec.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# ---- validation ----------------------------------------------------------------------------------

@dataclass
class FormCheck:
    """The outcome of checking the form (or the YAML).

    text: the task_setup.yml as it would be stored (None when it cannot be rendered at all);
    setup: the validated setup, None while invalid;
    field_errors: messages by form field; general_errors: the others (with their line);
    issues: every ConfigIssue of the file, with its line; warnings: what does not stop a run.
    """

    text: str | None = None
    setup: Any = None
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    general_errors: list[str] = field(default_factory=list)
    issues: list[ConfigIssue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.setup is not None and not self.field_errors and not self.general_errors

    def add_field_error(self, key: str, message: str) -> None:
        messages = self.field_errors.setdefault(key, [])
        if message not in messages:
            messages.append(message)

    @property
    def messages(self) -> list[str]:
        """Every error, each naming its field: for a summary above the Run button."""
        out = [f"{key}: {message}" for key, messages in self.field_errors.items() for message in messages]
        return out + list(self.general_errors)


def field_of_issue(issue_field: str | None, keys: Iterable[str]) -> str | None:
    """The form field a problem at a YAML path belongs to (``tasks[0].train_size`` -> ``train_size``), or None."""
    if not issue_field:
        return None
    keys = set(keys)
    parts = [p for p in re.split(r"[.\[\]]", issue_field) if p and not p.isdigit()]
    for part in reversed(parts):
        if part in keys:
            return part
        if part in YAML_ALIASES and YAML_ALIASES[part] in keys:
            return YAML_ALIASES[part]
    return None


def _where(issues: list[ConfigIssue]) -> str:
    """Where one problem is, for a message: ``(line 16, tasks[0].noise_level)``, or the lines of its repeats."""
    lines = [issue.line for issue in issues if issue.line is not None]
    if len(issues) == 1:
        bits = [f"line {lines[0]}"] if lines else []
        bits += [issues[0].field] if issues[0].field else []
        return f" ({', '.join(bits)})" if bits else ""
    return f" (lines {', '.join(map(str, lines))}: {len(issues)} places)" if lines else f" ({len(issues)} places)"


def _file_issues(check: FormCheck, error: ConfigError, keys: Iterable[str]) -> None:
    """File every issue under its form field; the same message at several places (every task) once."""
    keys = list(keys)
    check.issues = list(error.issues)
    grouped: dict[tuple[str | None, str], list[ConfigIssue]] = {}
    for issue in error.issues:
        grouped.setdefault((field_of_issue(issue.field, keys), issue.message), []).append(issue)
    for (key, message), issues in grouped.items():
        if key is None:
            check.general_errors.append(f"{message}{_where(issues)}")
        else:
            check.add_field_error(key, f"{message}{_where(issues)}")


def validation_data_root(settings: Settings, dataset: Any) -> Path | None:
    """Where dataset folders are looked for while checking: the data root, unless the dataset may be in S3 only.

    The same rule as `pipeline.create_run`: with a bucket, a dataset that is
    not on disk is checked once the DAG has brought it.
    """
    if not settings.s3_bucket:
        return settings.data_dir
    if isinstance(dataset, str) and dataset and (settings.datasets_dir / dataset).is_dir():
        return settings.data_dir
    return None


def preview_text(params: Mapping[str, Any]) -> str | None:
    """The task_setup.yml `params` render to, valid or not (None when the template cannot be filled)."""
    return preview(params)


def check_params(params: Mapping[str, Any], settings: Settings, *, files: Mapping[str, bytes] | None = None,
                 method_files: Mapping[str, bytes] | None = None,
                 parse_errors: Mapping[str, list[str]] | None = None) -> FormCheck:
    """Render and validate the form's parameters; every problem under its field; the user's files checked."""
    check = FormCheck()
    for key, messages in (parse_errors or {}).items():
        for message in messages:
            check.add_field_error(key, message)
    keys = list(params)
    data_root = validation_data_root(settings, params.get("dataset"))
    try:
        check.text, check.setup = render_and_parse(params, data_root=data_root)
    except ConfigError as error:
        check.text = preview_text(params)
        _file_issues(check, error, keys)
    except (ValueError, TypeError) as error:
        check.text = preview_text(params)
        key = next((k for k in keys if f"'{k}'" in str(error)), None)
        if key:
            check.add_field_error(key, str(error))
        else:
            check.general_errors.append(str(error))
    if check.setup is not None:
        check_submission_files(check, files or {})
        check_method_files(check, method_files or {})
    if check.field_errors or check.general_errors:
        check.setup = None
    return check


def train_size_limit(params: Mapping[str, Any], settings: Settings, *, upper: int = 100_000) -> int | None:
    """`_train_size_limit`, remembered for the same parameters and data root (the form reruns on every key)."""
    if not _is_number(params.get("train_size")):
        return None  # a sweep's sizes: each is checked as it is
    data_root = validation_data_root(settings, params.get("dataset"))
    try:
        key = json.dumps({k: v for k, v in params.items() if k != "train_size"}, sort_keys=True)
    except (TypeError, ValueError):
        return None
    # The start of the search is the size given; the limit found does not depend on it.
    return _train_size_limit(key, None if data_root is None else str(data_root), upper, int(params["train_size"]))


@functools.lru_cache(maxsize=256)
def _train_size_limit(params_json: str, data_root_text: str | None, upper: int, start: int) -> int | None:
    """The largest one-valued train_size the dataset allows with the other values of `params` (e.g. the
    digits: each task's smallest class must fill balanced train, val and test splits), found by the track's
    own data checks; None when `upper` fits, when train_size is swept, or when the file has other problems
    that hide it."""
    params = {**json.loads(params_json), "train_size": max(start, 1)}
    data_root = None if data_root_text is None else Path(data_root_text)

    def fits(size: int) -> bool | None:
        try:
            render_and_parse({**params, "train_size": size}, data_root=data_root)
        except ConfigError as error:
            return not any(field_of_issue(issue.field, ["train_size"]) == "train_size" for issue in error.issues)
        except (ValueError, TypeError):
            return None
        return True

    # From the current size, doubling or halving to bracket the limit, then halving the bracket: about
    # 2 log2(size) checks of ~30 ms, instead of a search over 1..upper.
    size = int(params["train_size"])
    first = fits(size)
    if first is None:
        return None
    low, high = (size, None) if first else (None, size)
    while high is None:
        if low >= upper:
            return None
        if fits(min(low * 2, upper)):
            low = min(low * 2, upper)
        else:
            high = min(low * 2, upper)
    while low is None:
        if high <= 1:
            return None
        if fits(high // 2):
            low = high // 2
        else:
            high //= 2
    while high - low > 1:  # fits(low), not fits(high)
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def check_yaml(text: str, settings: Settings, *, files: Mapping[str, bytes] | None = None,
               method_files: Mapping[str, bytes] | None = None) -> FormCheck:
    """Validate a task_setup.yml written by hand (the Advanced mode): every problem with its line."""
    check = FormCheck(text=text)
    dataset = None
    try:
        from dataperf_appliance.config import load_yaml

        data = load_yaml(text, filename="task_setup.yml").data
        dataset = data.get("dataset") if isinstance(data, dict) else None
    except ConfigError:
        pass
    try:
        check.setup = parse_task_setup(text, filename="task_setup.yml",
                                       data_root=validation_data_root(settings, dataset))
    except ConfigError as error:
        check.issues = list(error.issues)
        check.general_errors = [str(issue) for issue in error.issues]
        return check
    check_submission_files(check, files or {})
    check_method_files(check, method_files or {})
    if check.field_errors or check.general_errors:
        check.setup = None
    return check


# ---- the user's own submission files -----------------------------------------------------------

def submission_folder(setup) -> str:
    """The folder of a run that holds submissions (``submissions/`` unless the setup says otherwise)."""
    folder = setup.submission_folder
    return folder if folder.endswith("/") else folder + "/"


def methods_in_files(file_names: Iterable[str], task_ids: Iterable[str]) -> list[str]:
    """The method names the uploaded files are for: ``{task}_{method}<suffix>`` with a track's submission
    suffix (time files skipped)."""
    tasks = sorted(set(task_ids), key=len, reverse=True)  # the longest task id that matches wins
    suffixes = {track.submission_suffix for track in TRACKS.values()}
    methods: list[str] = []
    for name in file_names:
        base = PurePosixPath(name).name
        stem, dot, suffix = base.rpartition(".")
        if not dot or base.startswith("time_") or dot + suffix not in suffixes:
            continue
        for task in tasks:
            if stem.startswith(f"{task}_") and len(stem) > len(task) + 1:
                methods.append(stem[len(task) + 1:])
                break
    return list(dict.fromkeys(methods))


def with_uploaded_methods(values: Mapping[str, Any], specs: Sequence[FieldSpec], files: Iterable[str],
                          ) -> tuple[dict[str, Any], list[str]]:
    """(widget values with the uploaded files' methods added to `submissions`, the methods found in them)."""
    values = dict(values)
    spec = next((s for s in specs if s.key == "submissions"), None)
    tasks = values.get("tasks")
    task_list = tasks if isinstance(tasks, list) else [t.strip() for t in str(tasks or "").split(",")]
    inferred = methods_in_files(files, task_list)
    if not inferred or spec is None:
        return values, []
    try:
        typed = parse_field(spec, values.get("submissions", ""))
    except ValueError:
        typed = []
    values["submissions"] = list(dict.fromkeys([*typed, *inferred]))
    return values, inferred


def too_many_files(count: int) -> str | None:
    """The problem of an uploader holding `count` files, when that is more than it takes (none is used then)."""
    if count <= MAX_FILES_PER_UPLOADER:
        return None
    return (f"{count} files chosen; one uploader takes at most {MAX_FILES_PER_UPLOADER} at once. Remove some: "
            "none of them is used until then.")


def check_submission_files(check: FormCheck, files: Mapping[str, bytes]) -> None:
    """Each method of `submissions` needs a file per task, checked as its track checks one (a debugging order
    line by line)."""
    setup = check.setup
    methods = list(setup.submissions)
    names = {PurePosixPath(name).name: content for name, content in files.items()}
    if not methods:
        if names:
            check.warnings.append(f"{len(names)} uploaded file(s) are not used: list their methods under "
                                  "'Your methods'")
        return
    track = track_of(setup)
    tasks = setup.task_ids()
    used = set()
    for method in methods:
        for task in tasks:
            wanted = f"{task}_{method}{track.submission_suffix}"
            if wanted not in names:
                check.add_field_error("submissions", f"method {method!r} needs the file {wanted}: upload it")
                continue
            used.add(wanted)
            used.add(f"time_{task}_{method}.txt")
            train_size = _train_size(setup, task)
            if track.submission_problems and train_size is not None:
                for problem in _file_problems(track.submission_problems, wanted, names[wanted], train_size)[:5]:
                    check.add_field_error("submissions", problem)
    unused = sorted(set(names) - used)
    if unused:
        check.warnings.append(f"not used by this setup: {', '.join(unused)}")


def _train_size(setup, task: str) -> int | None:
    # A user's file fits one setting: submissions and sweeps do not mix, so a task has one train size.
    return next((axes["train_size"][0] for name, axes in setup.axis_values() if name == task), None)


def _file_problems(problems_of, name: str, content: bytes, train_size: int) -> list[str]:
    """`problems_of(path, train_size)` of an uploaded file, written under its own name (the problems name it)."""
    with tempfile.TemporaryDirectory(prefix="dataperf-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        return problems_of(path, train_size)


def run_files(setup, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The uploaded files as `pipeline.create_run` stores them: under the run's submission folder."""
    folder = submission_folder(setup)
    return {folder + PurePosixPath(name).name: content for name, content in files.items()}


# ---- the user's methods as code ----------------------------------------------------------------------

def method_entries(file_names: Iterable[str]) -> tuple[list[dict[str, str]], list[str]]:
    """(the ``methods`` entries of uploaded method files, problems). A ``name.py`` is the method ``name``; a
    ``name.requirements.txt`` is its requirements, a ``requirements.txt`` those of every method without one."""
    names = {PurePosixPath(name).name for name in file_names}
    entries, problems = [], []
    for base in sorted(names):
        if not base.endswith(".py"):
            if base != REQUIREMENTS_NAME and not base.endswith(REQUIREMENTS_SUFFIX):
                problems.append(f"{base}: upload a method's .py file, its NAME.requirements.txt or a "
                                "requirements.txt")
            continue
        method = base[:-len(".py")]
        if not is_safe_name(method):
            problems.append(f"{base}: the file name is the method's name: use letters, digits, '.', '_' and '-'")
            continue
        entry = {"name": method, "file": METHODS_FOLDER + base}
        own = method + REQUIREMENTS_SUFFIX
        requirements = own if own in names else REQUIREMENTS_NAME if REQUIREMENTS_NAME in names else None
        if requirements:
            entry["requirements"] = METHODS_FOLDER + requirements
        entries.append(entry)
    return entries, problems


def check_method_files(check: FormCheck, method_files: Mapping[str, bytes]) -> None:
    """Each method of the setup names an uploaded file (stored under `METHODS_FOLDER`)."""
    stored = {METHODS_FOLDER + PurePosixPath(name).name for name in method_files}
    for method in check.setup.methods:
        for relative in (method.file, method.requirements):
            if relative and relative not in stored:
                check.general_errors.append(f"method {method.name!r} needs the file {relative}: upload "
                                            f"{PurePosixPath(relative).name} with the methods' files")


def method_run_files(method_files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The uploaded methods' files as `pipeline.create_run` stores them: under `METHODS_FOLDER`."""
    return {METHODS_FOLDER + PurePosixPath(name).name: content for name, content in method_files.items()}
