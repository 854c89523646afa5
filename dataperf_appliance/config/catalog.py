"""The names a user chooses from: classifiers, each track's strategies, the libraries' methods and their parameters.

Free of heavy imports, so the config, the CLI and the UI load fast. The
registries that implement these names (engine/models.py, engine/debugging/debugging_strategies.py,
engine/selection/selection_strategies.py) build from them and fail at import if one is missing.
A library method's parameters are read from its appraiser file's source, which
is never imported here (its libraries live in an environment of their own).
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from typing import NamedTuple

#: The classifier of the official DataPerf debugging evaluator (dataperf_appliance.engine.reference_classifier).
DATAPERF_REFERENCE_MODEL = "dataperf_reference"
#: The classifier of the official DataPerf selection evaluator (see engine/selection/selection_evaluation.py).
SELECTION_REFERENCE_MODEL = "logistic_regression"

#: Every classifier, with what a user should know when choosing one.
MODEL_DESCRIPTIONS: dict[str, str] = {
    DATAPERF_REFERENCE_MODEL: "the official DataPerf debugging evaluator's classifier (gives DataPerf's numbers)",
    "logistic_regression": "scikit-learn's logistic regression (the official selection evaluator's; not the "
                           "official debugging model)",
    "linear_svm": "scikit-learn's linear SVM (not an official DataPerf model)",
    "knn": "5 nearest neighbours (not an official DataPerf model)",
    "random_forest": "a random forest of 100 trees (not an official DataPerf model)",
    "hist_gradient_boosting": "histogram gradient boosting (not an official DataPerf model)",
    "mlp": "a one-hidden-layer perceptron (not an official DataPerf model)",
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_DESCRIPTIONS)
DEFAULT_DEBUGGING_MODEL = DATAPERF_REFERENCE_MODEL
DEFAULT_SELECTION_MODEL = SELECTION_REFERENCE_MODEL

DEBUGGING_STRATEGIES: tuple[str, ...] = ("random", "knn_shapley", "confident_learning", "loss")


#: The folder of the libraries' methods: ``<folder>/<file>`` of each `LibraryMethod`, and each folder's
#: requirements.txt.
LIBRARY_METHODS_FOLDER = Path(__file__).resolve().parents[1] / "engine" / "methods" / "library"


class LibraryMethod(NamedTuple):
    """A debugging method of a library, run from its appraiser file in ``dataperf_appliance/engine/methods/library/``
    (`folder`/`file`) in the environment of that folder's requirements.txt: DataPerf's own baselines and the
    field's data valuation methods."""

    folder: str
    file: str
    description: str
    #: One of the four baselines of the official DataPerf debugging evaluator.
    official: bool = False

    @property
    def path(self) -> Path:
        """The appraiser file."""
        return LIBRARY_METHODS_FOLDER / self.folder / self.file


#: The methods of libraries, by the name a file gives in ``baselines``; each runs in a child process.
DEBUGGING_LIBRARY_METHODS: dict[str, LibraryMethod] = {
    "neighbor_shapley_datascope": LibraryMethod(
        "official_datascope", "neighbor_shapley.py", "DataPerf's baseline: datascope 0.0.8's KNN-Shapley", True),
    "mc_shapley": LibraryMethod(
        "official_datascope", "mc_shapley.py",
        "DataPerf's baseline: datascope 0.0.8's Monte Carlo Shapley of XGBoost accuracy, 100 permutations", True),
    "influence_function": LibraryMethod(
        "official_influence", "influence_function.py",
        "DataPerf's baseline: influence functions of its torch model on the validation set", True),
    "data_oob": LibraryMethod("pydvl_valuation", "data_oob.py", "pyDVL 0.10's Data-OOB (a random forest's "
                                                                  "out-of-bag agreement)"),
    "data_banzhaf": LibraryMethod("pydvl_valuation", "data_banzhaf.py",
                                  "pyDVL 0.10's Data Banzhaf, maximum sample reuse"),
    "beta_shapley": LibraryMethod("pydvl_valuation", "beta_shapley.py", "pyDVL 0.10's Beta Shapley"),
    "tmc_shapley": LibraryMethod("pydvl_valuation", "tmc_shapley.py",
                                 "pyDVL 0.10's truncated Monte Carlo Shapley"),
    "leave_one_out": LibraryMethod("pydvl_valuation", "leave_one_out.py", "pyDVL 0.10's leave-one-out"),
    "knn_shapley_pydvl": LibraryMethod("pydvl_valuation", "knn_shapley.py",
                                       "pyDVL 0.10's exact KNN-Shapley (to check the appliance's own)"),
}
#: Every debugging method a file can name in ``baselines``: the appliance's own, then the libraries'.
DEBUGGING_BASELINES: tuple[str, ...] = (*DEBUGGING_STRATEGIES, *DEBUGGING_LIBRARY_METHODS)
#: A library method's parameter: a flag, a number or a word (it reaches the method as DATAPERF_PARAM_<NAME>).
ParameterValue = bool | int | float | str


class LibraryParameter(NamedTuple):
    """A keyword parameter of a library method's appraiser constructor."""

    name: str
    default: ParameterValue
    #: What its file's module docstring says of it (its "Parameters" section); "" when nothing.
    description: str


def library_method_parameters(name: str) -> dict[str, ParameterValue]:
    """{parameter: default} of the library method `name`, in the order of its constructor (a fresh dict)."""
    return {parameter.name: parameter.default for parameter in library_parameters(name)}


def library_parameter_descriptions(name: str) -> dict[str, str]:
    """{parameter: what its file's docstring says of it} of the library method `name` ("" when nothing)."""
    return {parameter.name: parameter.description for parameter in library_parameters(name)}


def library_method_defaults() -> dict[str, dict[str, ParameterValue]]:
    """{method: {parameter: default}} of every library method (those without parameters too)."""
    return {name: library_method_parameters(name) for name in DEBUGGING_LIBRARY_METHODS}


@functools.cache
def library_parameters(name: str) -> tuple[LibraryParameter, ...]:
    """The parameters of the library method `name` (KeyError for another name): the keyword parameters of its
    appraiser class's ``__init__`` (the one class of its file with a ``propose`` method), read from the source
    with `ast` without importing it, each with its literal default and its docstring description.

    RuntimeError, naming the file and line, for a file that breaks the rule (no or several appraiser
    classes, a parameter without a literal flag, number or text default): the library's code is wrong.
    """
    path = DEBUGGING_LIBRARY_METHODS[name].path
    module = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    appraisers = [node for node in module.body if isinstance(node, ast.ClassDef)
                  and any(isinstance(item, ast.FunctionDef) and item.name == "propose" for item in node.body)]
    if len(appraisers) != 1:
        raise RuntimeError(f"{path}: {len(appraisers)} classes with a propose method; a library method's file "
                           "has exactly one")
    init = next((item for item in appraisers[0].body
                 if isinstance(item, ast.FunctionDef) and item.name == "__init__"), None)
    if init is None:
        return ()
    arguments = init.args
    positional = [*arguments.posonlyargs, *arguments.args][1:]  # without self
    undefaulted = positional[:len(positional) - len(arguments.defaults)]
    if undefaulted:
        raise RuntimeError(f"{path}:{init.lineno}: {undefaulted[0].arg} has no default; the runner constructs "
                           "the appraiser without arguments")
    pairs = [*zip(positional[len(undefaulted):], arguments.defaults),
             *((arg, default) for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults))]
    descriptions = _documented_parameters(ast.get_docstring(module) or "")
    parameters = []
    for argument, node in pairs:
        try:
            default = ast.literal_eval(node) if node is not None else None
        except (ValueError, TypeError):  # a call, a name: not a literal
            default = None
        if not isinstance(default, (bool, int, float, str)):
            raise RuntimeError(f"{path}:{argument.lineno}: the default of {argument.arg} is not a literal flag, "
                               "number or text, so a file or the form could not set it")
        parameters.append(LibraryParameter(argument.arg, default, descriptions.get(argument.arg, "")))
    return tuple(parameters)


# A parameter as a method file's docstring lists it: ``n_estimators (int, 800)``. Several may share one
# description (``alpha (float, 16.0), beta (float, 1.0): the Beta distribution's.``).
_DOCUMENTED_PARAMETER = re.compile(r"\b(\w+) \((?:bool|int|float|str), [^()]*\)")
_SAME_GROUP = re.compile(r"\s*(?:,|and)?\s*")


def _documented_parameters(docstring: str) -> dict[str, str]:
    """{parameter: description} from the indented "Parameters ...:" section of a method file's docstring."""
    lines = docstring.splitlines()
    start = next((index for index, line in enumerate(lines)
                  if line.startswith("Parameters") and line.rstrip().endswith(":")), None)
    if start is None:
        return {}
    section = []
    for line in lines[start + 1:]:
        if line.strip() and not line[0].isspace():
            break  # the next paragraph of the docstring
        section.append(line.strip())
    text = " ".join(part for part in section if part)
    matches = list(_DOCUMENTED_PARAMETER.finditer(text))
    found: dict[str, str] = {}
    group: list[str] = []
    for index, match in enumerate(matches):
        group.append(match.group(1))
        following = text[match.end():matches[index + 1].start() if index + 1 < len(matches) else len(text)]
        if _SAME_GROUP.fullmatch(following):
            continue  # the next name shares this description
        description = following.strip().removeprefix(":").strip()
        found.update(dict.fromkeys(group, description))
        group = []
    return found


#: Names the DataPerf reference uses for the same strategies.
DEBUGGING_STRATEGY_ALIASES: dict[str, str] = {"neighbor_shapley": "knn_shapley"}

SELECTION_STRATEGIES: tuple[str, ...] = (
    "random", "balanced_random", "uncertainty", "diversity", "centroid", "closest_furthest",
)
#: The selection strategies that buy their labels from the pool's label oracle (the rest guess them).
SELECTION_BUYS_LABELS: frozenset[str] = frozenset({"random", "balanced_random", "uncertainty", "diversity"})


#: How well a debugging order detects the flipped labels, measured without training
#: (`debugging.evaluation.detection_metrics`): precision and recall among the first k rows, k the number of
#: flipped labels (so the two are equal), and the ranking's AUROC and AUPRC. None where undefined (no flipped
#: label; for AUROC and AUPRC also every label flipped).
DEBUGGING_DETECTION_METRICS: tuple[str, ...] = ("precision_at_k", "recall_at_k", "auroc", "auprc")
#: The figures of a debugging method summarized over repeats and compared with random (dataperf_appliance.engine.stats),
#: the main one first: the fraction of the training set inspected before the accuracy reaches 95% of the clean
#: one (lower is better); then the area under the fixing curve and the detection metrics.
DEBUGGING_HEADLINE_METRICS: tuple[str, ...] = ("fraction_fixes", "auc", *DEBUGGING_DETECTION_METRICS)
#: The figures of a debugging method in a sweep row (see dataperf_appliance.stages.sweeps), the main one first.
DEBUGGING_SWEEP_METRICS: tuple[str, ...] = (*DEBUGGING_HEADLINE_METRICS, "before_acc", "clean_acc", "trainings",
                                            "time_s", "fit_s", "predict_s")
#: The same for a selection method: the main one is DataPerf's selection metric, the test F1 of the classifier
#: fitted on the chosen set (Dynabench's ``dataperf_f1``; higher is better).
SELECTION_HEADLINE_METRICS: tuple[str, ...] = ("f1", "accuracy", "precision", "recall")
#: ``rows`` is the size of the training set scored (a strategy's min(budget, pool); the dataset's own csv's).
SELECTION_SWEEP_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "rows", "positives", "time_s",
                                            "fit_s", "predict_s")

#: Whether a lower value is better, for every headline metric of either track: the one place a metric's direction
#: is said. Rankings, tiles and plots follow it, tables name a metric with its arrow (`metric_label`).
LOWER_IS_BETTER: dict[str, bool] = {
    "fraction_fixes": True, "auc": False, **dict.fromkeys(DEBUGGING_DETECTION_METRICS, False),
    **dict.fromkeys(SELECTION_HEADLINE_METRICS, False),
}


def better(metric: str) -> str | None:
    """``lower`` or ``higher``: which values of `metric` are better; None for a figure without a direction
    (seconds, sizes)."""
    lower = LOWER_IS_BETTER.get(metric)
    return None if lower is None else ("lower" if lower else "higher")


def metric_label(metric: str) -> str:
    """``fraction_fixes ↓``, ``auroc ↑``: a metric named with its direction; a figure without one by its name
    alone."""
    direction = better(metric)
    return metric if direction is None else f"{metric} {'↓' if direction == 'lower' else '↑'}"


#: Folders under <data root>/datasets that hold generated data (the debugging digits and synthetic sets, the
#: selection track's digits), not a user's dataset: never listed or uploaded as one.
GENERATED_DATASET_FOLDERS: frozenset[str] = frozenset({"digits", "synthetic", "digits-selection"})


def registry_names(registry: dict, names: tuple[str, ...], what: str) -> tuple[str, ...]:
    """`names`, after checking that `registry` implements exactly them (a programming error otherwise)."""
    if set(registry) != set(names):
        raise RuntimeError(f"the {what} registry {sorted(registry)} does not match the catalog {sorted(names)}")
    return names
