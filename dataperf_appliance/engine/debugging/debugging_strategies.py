"""Cleaning strategies of the debugging track: training rows in the order to inspect them.

A strategy maps one task's data to an *inspection order*: a permutation of
``range(n_train)``, the most suspicious row (likely mislabeled, most harmful)
first. Every strategy has the same signature::

    fn(X_train, y_train, X_val, y_val, *, seed, model) -> order

X_train
    (n_train, d) float embeddings of the training rows.
y_train
    (n_train,) int in {0, 1}: the given, *noisy* labels.
X_val, y_val
    (n_val, d) float and (n_val,) int in {0, 1}: a small set with clean labels.
seed
    int; every strategy is deterministic given it.
model
    the name of the benchmark's evaluation classifier (see
    `dataperf_appliance.engine.models.MODEL_NAMES`); strategies that need predicted
    probabilities use it when it has ``predict_proba`` and fall back to
    logistic regression otherwise.
order
    (n_train,) int64, a permutation of ``range(n_train)``.

`rank_training_points` is the entry point: it checks the name, the model and
the inputs, then runs the strategy.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from sklearn.metrics import pairwise_distances_chunked
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils import check_array

from dataperf_appliance.config import catalog
from dataperf_appliance.config.catalog import registry_names
from dataperf_appliance.engine.models import DEFAULT_MODEL, MODEL_NAMES, make_model

#: Folds of the out-of-fold predicted probabilities (fewer when a class is smaller).
CV_FOLDS = 5
#: K, the neighbours of KNN-Shapley's utility.
DEFAULT_K = 10
# Scratch memory (MiB) KNN-Shapley may use for one chunk of validation points.
# It keeps about 8 arrays of (chunk, n_train) 8-byte numbers alive at once, so the
# distance chunk handed to scikit-learn gets an eighth of it.
_KNN_SHAPLEY_SCRATCH_MIB = 256


class Strategy(Protocol):
    def __call__(self, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
                 *, seed: int = 0, model: str = DEFAULT_MODEL) -> np.ndarray: ...


# --- validation ---------------------------------------------------------------------------

def _check_labels(y, n_rows: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_rows:
        raise ValueError(f"{name} must have shape ({n_rows},), one label per row; got shape {y.shape}")
    if y.dtype.kind not in "biu":
        raise ValueError(f"{name} must hold integer labels 0 or 1; got dtype {y.dtype}")
    if len(y) and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name} must hold only the labels 0 and 1; got {np.unique(y)[:10].tolist()}")
    return y.astype(np.int64, copy=False)


def _check_task(X_train, y_train, X_val, y_val) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inputs as arrays, or ValueError naming what is wrong. Float32 stays float32 (no copy)."""
    X_train = check_array(X_train, dtype="numeric", ensure_min_samples=2, input_name="X_train")
    X_val = check_array(X_val, dtype="numeric", input_name="X_val")
    if X_val.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_val has {X_val.shape[1]} features but X_train has {X_train.shape[1]}")
    y_train = _check_labels(y_train, len(X_train), "y_train")
    y_val = _check_labels(y_val, len(X_val), "y_val")
    return X_train, y_train, X_val, y_val


def _check_seed(seed) -> int:
    # StratifiedKFold and default_rng both accept 0 <= seed < 2**32.
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in 0..2**32-1; got {seed!r}")
    return int(seed)


def _check_model(model: str) -> str:
    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
    return model


# --- random -------------------------------------------------------------------------------

def random(X_train, y_train, X_val, y_val, *, seed: int = 0, model: str = DEFAULT_MODEL) -> np.ndarray:
    """A uniformly random order: the baseline every other strategy must beat. Ignores the data and `model`."""
    X_train, *_ = _check_task(X_train, y_train, X_val, y_val)
    return np.random.default_rng(_check_seed(seed)).permutation(len(X_train)).astype(np.int64)


# --- KNN-Shapley --------------------------------------------------------------------------

def knn_shapley_values(X_train, y_train, X_val, y_val, *, k: int = DEFAULT_K) -> np.ndarray:
    """The exact KNN-Shapley value of every training row, (n_train,) float64.

    The Shapley value of a training row in the game whose utility is the
    K-nearest-neighbour classifier's validation score, in the closed form of
    Jia et al. 2019, "Efficient task-specific data valuation for nearest
    neighbor algorithms", Theorem 1. For one validation point, with the
    training rows sorted by Euclidean distance to it (ties by row index) and
    m_i = 1[y_(i) == y_val] of the i-th nearest (1-based, N rows)::

        s_N = m_N / K * min(K, N) / N
        s_i = s_(i+1) + (m_i - m_(i+1)) / K * min(K, i) / i

    and the value is the mean of s over the validation points. The utility of
    a subset S for one validation point is (1/K) times the number of its
    min(K, |S|) nearest members of S whose label matches (0 for S empty).
    The paper writes s_N = m_N / N, which is the same when N >= K; the form
    above is the Shapley value of that utility for N < K too.

    Validation points are processed in chunks so that the scratch memory stays
    near 256 MiB whatever the sizes (100,000 training x 1,000 validation rows
    included). Distances come from scikit-learn's ``||a||^2 - 2ab + ||b||^2``
    form, so two rows whose distances differ only by rounding may sort in
    either order; exact duplicates sort by index.
    """
    X_train, y_train, X_val, y_val = _check_task(X_train, y_train, X_val, y_val)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    n_train = len(X_train)
    rank = np.arange(1, n_train, dtype=np.float64)  # i = 1..N-1
    step_weights = np.minimum(k, rank) / (k * rank)  # min(K, i) / (K i)
    total = np.zeros(n_train)
    start = 0
    for distances in pairwise_distances_chunked(X_val, X_train, metric="euclidean",
                                                working_memory=_KNN_SHAPLEY_SCRATCH_MIB / 8):
        stop = start + len(distances)
        nearest_first = np.argsort(distances, axis=1, kind="stable")  # (chunk, N); stable = ties by index
        del distances
        matches = (y_train[nearest_first] == y_val[start:stop, None]).astype(np.float64)
        values = np.empty_like(matches)
        values[:, -1] = matches[:, -1] * min(k, n_train) / (k * n_train)
        steps = (matches[:, :-1] - matches[:, 1:]) * step_weights
        # s_i = s_N + sum_{t=i}^{N-1} step_t: a cumulative sum from the far end.
        values[:, :-1] = values[:, -1:] + np.cumsum(steps[:, ::-1], axis=1)[:, ::-1]
        total += np.bincount(nearest_first.ravel(), weights=values.ravel(), minlength=n_train)
        start = stop
    return total / len(X_val)


def knn_shapley(X_train, y_train, X_val, y_val, *, seed: int = 0, model: str = DEFAULT_MODEL,
                k: int = DEFAULT_K) -> np.ndarray:
    """Rows by ascending KNN-Shapley value (`knn_shapley_values`), ties by index.

    The DataPerf reference's ``neighbor_shapley`` with k=1: a row whose label disagrees
    with the validation points near it has a low (often negative) value, and is
    inspected first. Model-free and exact, so `seed` and `model` play no part.
    """
    values = knn_shapley_values(X_train, y_train, X_val, y_val, k=k)
    return np.argsort(values, kind="stable").astype(np.int64)


# --- model probabilities: confident learning (out-of-sample), loss (in-sample) -----------------

def out_of_fold_probabilities(X_train: np.ndarray, y_train: np.ndarray, *, seed: int, model: str) -> np.ndarray:
    """Predicted class probabilities (n_train, 2) of each row from a model that did not train on it.

    Stratified `CV_FOLDS`-fold cross-validation (shuffled with `seed`) of
    classifier `model`, or of logistic regression when `model` has no
    ``predict_proba`` (e.g. ``linear_svm``). With a class of fewer rows than
    folds there are as many folds as that class has rows; with a class of fewer
    than 2 rows no fold can learn it, and every row gets the class frequencies
    (so the rare label looks the more suspicious). Inputs are assumed checked.
    """
    class_counts = np.bincount(y_train, minlength=2)
    n_folds = min(CV_FOLDS, int(class_counts.min()))
    if n_folds < 2:
        return np.tile(class_counts / len(y_train), (len(y_train), 1))
    estimator = make_model(model, seed)
    if not hasattr(estimator, "predict_proba"):
        estimator = make_model("logistic_regression", seed)
    folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    return cross_val_predict(estimator, X_train, y_train, cv=folds, method="predict_proba")


def confident_learning(X_train, y_train, X_val, y_val, *, seed: int = 0, model: str = DEFAULT_MODEL) -> np.ndarray:
    """Cleanlab's confident learning on out-of-fold probabilities (`out_of_fold_probabilities`).

    First the rows ``cleanlab.filter.find_label_issues`` flags, in cleanlab's
    order (lowest self-confidence first), then every other row by ascending
    ``cleanlab.rank.get_label_quality_scores``, ties by index. Uses only the
    training rows: the validation set plays no part. The probabilities are
    out-of-sample, as cleanlab requires: each row is scored by a model that did
    not train on it (`loss` uses the in-sample ones).
    """
    X_train, y_train, X_val, y_val = _check_task(X_train, y_train, X_val, y_val)
    pred_probs = out_of_fold_probabilities(X_train, y_train, seed=_check_seed(seed), model=_check_model(model))
    # Imported here: cleanlab takes seconds to import, and the config imports this module for its names.
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    # n_jobs=1: the benchmark runs tasks in parallel already, and the cores are shared.
    flagged = find_label_issues(y_train, pred_probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    flagged = np.asarray(flagged, dtype=np.int64)
    others = np.setdiff1d(np.arange(len(y_train)), flagged)  # ascending, so a stable sort breaks ties by index
    quality = get_label_quality_scores(y_train, pred_probs)
    others = others[np.argsort(quality[others], kind="stable")]
    return np.concatenate([flagged, others]).astype(np.int64)


def in_sample_probabilities(X_train: np.ndarray, y_train: np.ndarray, *, seed: int, model: str) -> np.ndarray:
    """Predicted class probabilities (n_train, 2) of each row from classifier `model` fitted on all the rows,
    its own included (logistic regression when `model` has no ``predict_proba``). A one-class training set
    gives every row probability 1 for that class. Inputs are assumed checked."""
    classes = np.unique(y_train)
    if len(classes) == 1:
        probabilities = np.zeros((len(y_train), 2))
        probabilities[:, classes[0]] = 1.0
        return probabilities
    estimator = make_model(model, seed)
    if not hasattr(estimator, "predict_proba"):
        estimator = make_model("logistic_regression", seed)
    return estimator.fit(X_train, y_train).predict_proba(X_train)


def loss(X_train, y_train, X_val, y_val, *, seed: int = 0, model: str = DEFAULT_MODEL) -> np.ndarray:
    """Rows by descending training loss: the cross-entropy -log p(given label) of a model fitted on the whole
    noisy training set (in-sample), ties by index.

    Unlike `confident_learning` the model has seen the row it scores, so a
    flexible model that memorized a wrong label hides it; the order is the
    training loss a practitioner reads off the fitted model. Uses only the
    training rows.
    """
    X_train, y_train, X_val, y_val = _check_task(X_train, y_train, X_val, y_val)
    probabilities = in_sample_probabilities(X_train, y_train, seed=_check_seed(seed), model=_check_model(model))
    given = np.clip(probabilities[np.arange(len(y_train)), y_train], 1e-15, 1.0)
    # Highest loss first: ascending -loss with a stable sort keeps ties in index order.
    return np.argsort(np.log(given), kind="stable").astype(np.int64)


# --- registry -----------------------------------------------------------------------------

STRATEGIES: dict[str, Strategy] = {
    "random": random,
    "knn_shapley": knn_shapley,
    "confident_learning": confident_learning,
    "loss": loss,
}
STRATEGY_NAMES = registry_names(STRATEGIES, catalog.DEBUGGING_STRATEGIES, "debugging strategy")
#: K of DataPerf's ``neighbor_shapley`` (datascope 0.0.8's KNN-Shapley): one neighbour. Its orders and
#: `knn_shapley(k=1)`'s are the same game's (scripts/bench/check_official_baselines.py); datascope sums in float32,
#: so near-equal values may swap. ``neighbor_shapley_datascope`` runs datascope itself.
OFFICIAL_NEIGHBOR_SHAPLEY_K = 1
#: The options an alias (`catalog.DEBUGGING_STRATEGY_ALIASES`) adds to the strategy it names.
_ALIAS_OPTIONS: dict[str, dict] = {"neighbor_shapley": {"k": OFFICIAL_NEIGHBOR_SHAPLEY_K}}


def rank_training_points(name: str, X_train, y_train, X_val, y_val, *, seed: int = 0,
                         model: str = DEFAULT_MODEL) -> np.ndarray:
    """The inspection order (n_train,) int64 of strategy `name`, most suspicious row first.

    X_train is (n_train, d) with n_train >= 2, y_train (n_train,) the noisy
    labels in {0, 1}, X_val (n_val, d) and y_val (n_val,) the clean validation
    set; `model` is one of `MODEL_NAMES`. The reference's names are accepted
    too (``neighbor_shapley``: ``knn_shapley`` with DataPerf's K = 1). Raises ValueError for an unknown name
    or model, or inputs of the wrong shape or labels.
    """
    try:
        strategy = STRATEGIES[catalog.DEBUGGING_STRATEGY_ALIASES.get(name, name)]
    except (KeyError, TypeError):
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}") from None
    return strategy(X_train, y_train, X_val, y_val, seed=_check_seed(seed), model=_check_model(model),
                    **_ALIAS_OPTIONS.get(name, {}))
