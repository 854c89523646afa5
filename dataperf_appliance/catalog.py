"""The names a user chooses from: classifiers and each track's strategies.

Free of heavy imports, so the config, the CLI and the UI load fast. The
registries that implement these names (models.py, debugging/strategies.py,
selection/strategies.py) build from them and fail at import if one is missing.
"""

from __future__ import annotations

MODEL_NAMES: tuple[str, ...] = (
    "logistic_regression", "linear_svm", "knn", "random_forest", "hist_gradient_boosting", "mlp",
)
DEFAULT_MODEL = "logistic_regression"
#: The official DataPerf debugging evaluator's classifier, by the name models.py gives it.
DATAPERF_REFERENCE_MODEL = "dataperf_reference"
#: The classifier of the debugging track when none is named (a run's `model`, `evaluate --model`).
DEFAULT_DEBUGGING_MODEL = "logistic_regression"

DEBUGGING_STRATEGIES: tuple[str, ...] = ("random", "knn_shapley", "confident_learning", "loss")
#: Names the DataPerf reference uses for the same strategies.
DEBUGGING_STRATEGY_ALIASES: dict[str, str] = {"neighbor_shapley": "knn_shapley"}

SELECTION_STRATEGIES: tuple[str, ...] = (
    "random", "balanced_random", "uncertainty", "diversity", "centroid", "closest_furthest",
)
#: The selection strategies that buy their labels from the pool's label oracle (the rest guess them).
SELECTION_BUYS_LABELS: frozenset[str] = frozenset({"random", "balanced_random", "uncertainty", "diversity"})


def registry_names(registry: dict, names: tuple[str, ...], what: str) -> tuple[str, ...]:
    """`names`, after checking that `registry` implements exactly them (a programming error otherwise)."""
    if set(registry) != set(names):
        raise RuntimeError(f"the {what} registry {sorted(registry)} does not match the catalog {sorted(names)}")
    return names
