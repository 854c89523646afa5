"""The names a user chooses from: classifiers and each track's strategies.

Free of heavy imports, so the config, the CLI and the UI load fast. The
registries that implement these names (models.py, debugging/strategies.py,
selection/strategies.py) build from them and fail at import if one is missing.
"""

from __future__ import annotations

from typing import NamedTuple

#: The classifier of the official DataPerf debugging evaluator (dataperf_appliance.reference_classifier).
DATAPERF_REFERENCE_MODEL = "dataperf_reference"
#: The classifier of the official DataPerf selection evaluator (see selection/evaluation.py).
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


class LibraryMethod(NamedTuple):
    """A debugging method of a library, run from its appraiser file in ``dataperf_appliance/methods/library/``
    (`folder`/`file`) in the environment of that folder's requirements.txt: DataPerf's own baselines and the
    field's data valuation methods."""

    folder: str
    file: str
    description: str
    #: One of the four baselines of the official DataPerf debugging evaluator.
    official: bool = False


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
#: The figures of a debugging method summarized over repeats and compared with random (dataperf_appliance.stats),
#: the main one first: the fraction of the training set inspected before the accuracy reaches 95% of the clean
#: one (lower is better); then the area under the fixing curve and the detection metrics.
DEBUGGING_HEADLINE_METRICS: tuple[str, ...] = ("fraction_fixes", "auc", *DEBUGGING_DETECTION_METRICS)
#: The figures of a debugging method in a sweep row (see dataperf_appliance.sweeps), the main one first.
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
