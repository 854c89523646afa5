"""The names a user chooses from: classifiers and each track's strategies.

Free of heavy imports, so the config, the CLI and the UI load fast. The
registries that implement these names (models.py, debugging/strategies.py,
selection/strategies.py) build from them and fail at import if one is missing.
"""

from __future__ import annotations

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
#: Names the DataPerf reference uses for the same strategies.
DEBUGGING_STRATEGY_ALIASES: dict[str, str] = {"neighbor_shapley": "knn_shapley"}

SELECTION_STRATEGIES: tuple[str, ...] = (
    "random", "balanced_random", "uncertainty", "diversity", "centroid", "closest_furthest",
)
#: The selection strategies that buy their labels from the pool's label oracle (the rest guess them).
SELECTION_BUYS_LABELS: frozenset[str] = frozenset({"random", "balanced_random", "uncertainty", "diversity"})


#: The figures of a debugging method summarized over repeats and compared with random (dataperf_appliance.stats),
#: the main one first: the fraction of the training set inspected before the accuracy reaches 95% of the clean
#: one (lower is better).
DEBUGGING_HEADLINE_METRICS: tuple[str, ...] = ("fraction_fixes", "auc")
#: The figures of a debugging method in a sweep row (see dataperf_appliance.sweeps), the main one first.
DEBUGGING_SWEEP_METRICS: tuple[str, ...] = (*DEBUGGING_HEADLINE_METRICS, "before_acc", "clean_acc", "trainings",
                                            "time_s", "fit_s", "predict_s")
#: The same for a selection method: the main one is DataPerf's selection metric, the test F1 of the classifier
#: fitted on the chosen set (Dynabench's ``dataperf_f1``; higher is better).
SELECTION_HEADLINE_METRICS: tuple[str, ...] = ("f1", "accuracy", "precision", "recall")
#: ``rows`` is the size of the training set scored (a strategy's min(budget, pool); the dataset's own csv's).
SELECTION_SWEEP_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "rows", "positives", "time_s",
                                            "fit_s", "predict_s")


#: Folders under <data root>/datasets that hold generated data (the debugging digits and synthetic sets, the
#: selection track's digits), not a user's dataset: never listed or uploaded as one.
GENERATED_DATASET_FOLDERS: frozenset[str] = frozenset({"digits", "synthetic", "digits-selection"})


def registry_names(registry: dict, names: tuple[str, ...], what: str) -> tuple[str, ...]:
    """`names`, after checking that `registry` implements exactly them (a programming error otherwise)."""
    if set(registry) != set(names):
        raise RuntimeError(f"the {what} registry {sorted(registry)} does not match the catalog {sorted(names)}")
    return names
