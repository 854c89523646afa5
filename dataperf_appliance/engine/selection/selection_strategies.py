"""Selection strategies: choose a training set of at most `budget` pool points and their labels.

Every strategy has the same signature::

    fn(pool_embeddings, oracle, examples, budget, *, seed, model) -> (indices, labels)

pool_embeddings
    (n, d) float: the candidate pool. Its labels are *not* given.
oracle
    a `LabelOracle` over the pool: ``oracle.label(indices)`` reveals the true
    labels of the points a strategy chooses. It is the only way to see a
    label, and it is the act of buying one: a strategy keeps every point it
    buys, so the number of labels bought is the size of the training set.
examples
    (m, d) float, m >= 1: embeddings of the task's example positives (the
    DataPerf ``alpha_example_set``); they are known to be positive for free.
budget
    int >= 1: the most points the training set may hold (the setup's
    ``train_size``). A strategy returns min(budget, n) points.
seed
    int; every strategy is deterministic given it.
model
    the benchmark's classifier name (`dataperf_appliance.engine.models.MODEL_NAMES`);
    ``uncertainty`` trains it between rounds (logistic regression when it
    has no ``predict_proba``).
indices, labels
    (k,) int64 pool rows, distinct, in the order chosen, and (k,) int64
    labels in {0, 1}, k = min(budget, n).

Two strategies buy no label: ``centroid``, the reference's baseline, and
``closest_furthest``, a later variant of it; they label points by a guess.

`choose_training_set` is the entry point: it checks the inputs, runs the
strategy, and checks its answer -- among others that every label it bought is
of a point it kept, with the label the oracle gave.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.utils import check_array

from dataperf_appliance.config import catalog
from dataperf_appliance.config.catalog import registry_names
from dataperf_appliance.engine.models import DEFAULT_MODEL, MODEL_NAMES, fit_estimator, make_model

#: Rows of the pool whose distances are computed at once (bounds scratch memory to ~64 MiB at d = 256).
_DISTANCE_CHUNK = 32_768


class LabelBudgetError(RuntimeError):
    """A strategy asked the oracle for more distinct labels than its budget."""


class LabelOracle:
    """The true labels of a pool, revealed only point by point, as an annotator would.

    ``LabelOracle(labels, budget=None)`` with labels (n,) in {0, 1}. The
    labels live in a closure, not in an attribute, so the only way to read one
    is `label`, which records what it reveals: `revealed` counts the distinct
    points revealed so far and `revealed_indices` lists them in the order they
    were first revealed. Asking again for a revealed point is free. With a
    `budget`, revealing more distinct points than that raises LabelBudgetError.
    """

    __slots__ = ("_reveal", "_seen", "_order", "_budget")

    def __init__(self, labels, *, budget: int | None = None) -> None:
        hidden = np.array(labels)  # a private copy: the caller's array cannot change what is revealed
        if hidden.ndim != 1 or hidden.dtype.kind not in "biu" or not np.isin(hidden, (0, 1)).all():
            raise ValueError("labels must be a 1-D array of integers 0 or 1")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, np.integer))
                                   or budget < 0):
            raise ValueError(f"budget must be a non-negative integer or None; got {budget!r}")
        hidden = hidden.astype(np.int64)
        hidden.setflags(write=False)

        def reveal(indices: np.ndarray) -> np.ndarray:
            return hidden[indices].copy()

        self._reveal = reveal
        self._seen = np.zeros(len(hidden), dtype=bool)
        self._order: list[int] = []
        self._budget = None if budget is None else int(budget)

    def __len__(self) -> int:
        return len(self._seen)

    def __repr__(self) -> str:
        return f"LabelOracle(size={len(self)}, revealed={self.revealed}, budget={self._budget})"

    @property
    def budget(self) -> int | None:
        """The most distinct points this oracle reveals, or None for no limit."""
        return self._budget

    @property
    def revealed(self) -> int:
        """Number of distinct points whose label has been revealed."""
        return len(self._order)

    def revealed_indices(self) -> np.ndarray:
        """The revealed points (k,) int64, in the order they were first revealed."""
        return np.array(self._order, dtype=np.int64)

    def label(self, indices) -> np.ndarray:
        """The true labels (k,) int64 of pool rows `indices` (k,), recording them as revealed."""
        indices = np.asarray(indices)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise ValueError(f"indices must be a 1-D array of integer pool rows; got {indices.dtype} {indices.shape}")
        indices = indices.astype(np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"pool rows must be in 0..{len(self) - 1}")
        _, first = np.unique(indices, return_index=True)
        distinct = indices[np.sort(first)]  # each point once, in the order asked
        new = distinct[~self._seen[distinct]]
        if self._budget is not None and self.revealed + len(new) > self._budget:
            raise LabelBudgetError(f"revealing {len(new)} more label(s) would exceed the budget of "
                                   f"{self._budget} ({self.revealed} already revealed)")
        self._seen[new] = True
        self._order.extend(new.tolist())
        return self._reveal(indices)


# --- geometry -------------------------------------------------------------------------------

def _squared_distances(X: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance (n,) float64 of every row of X (n, d) to `point` (d,), chunked."""
    out = np.empty(len(X))
    point = np.asarray(point, dtype=np.float64)
    for start in range(0, len(X), _DISTANCE_CHUNK):
        diff = X[start:start + _DISTANCE_CHUNK].astype(np.float64) - point
        out[start:start + _DISTANCE_CHUNK] = np.einsum("ij,ij->i", diff, diff)
    return out


def _nearest_first(X: np.ndarray, point: np.ndarray) -> np.ndarray:
    """All rows of X, nearest to `point` first; ties by row index."""
    return np.argsort(_squared_distances(X, point), kind="stable")


def _centroid(examples: np.ndarray) -> np.ndarray:
    return np.asarray(examples, dtype=np.float64).mean(axis=0)


def _effective_budget(pool: np.ndarray, budget: int) -> int:
    return min(int(budget), len(pool))


def _batch_size(budget: int) -> int:
    """Points bought per round of the iterative strategies: a tenth of the budget, at least 1."""
    return max(1, math.ceil(budget / 10))


# --- strategies that buy labels ---------------------------------------------------------------

def random(pool_embeddings, oracle: LabelOracle, examples, budget: int, *, seed: int = 0,
           model: str = DEFAULT_MODEL) -> tuple[np.ndarray, np.ndarray]:
    """min(budget, n) pool points drawn uniformly without replacement, labelled by the oracle.

    What the reference's ``random_500.csv`` is. Ignores `examples` and `model`.
    """
    chosen = np.random.default_rng(seed).choice(len(pool_embeddings), size=_effective_budget(pool_embeddings, budget),
                                                replace=False).astype(np.int64)
    return chosen, oracle.label(chosen)


def balanced_random(pool_embeddings, oracle: LabelOracle, examples, budget: int, *, seed: int = 0,
                    model: str = DEFAULT_MODEL) -> tuple[np.ndarray, np.ndarray]:
    """Random points steered towards a 50/50 class balance, buying only the labels it keeps.

    The obvious way -- draw at random and drop the surplus of the majority
    class -- would read labels the training set does not keep. Instead the
    points are drawn in rounds of a tenth of the budget: before each round,
    every unbought point gets a *guessed* class, the label of its nearest
    known point (the bought points and the example positives); the round's
    draws are split between the guessed classes in proportion to what each
    class still lacks of budget/2, each part drawn uniformly among the points
    guessed to be of that class (and from all unbought points when too few
    are). Every bought point is kept, so the result has exactly min(budget, n)
    points; its balance is as good as the guesses. Ignores `model`.
    """
    X = pool_embeddings
    rng = np.random.default_rng(seed)
    total = _effective_budget(X, budget)
    wanted = np.array([total - total // 2, total // 2])  # negatives, positives
    available = np.ones(len(X), dtype=bool)
    # Distance of every pool point to its nearest known point, and that point's label; updated incrementally.
    nearest_distance = np.full(len(X), np.inf)
    guessed = np.zeros(len(X), dtype=np.int64)

    def learn(points: np.ndarray, labels: np.ndarray) -> None:
        for point, label in zip(points, labels):
            distance = _squared_distances(X, point)
            closer = distance < nearest_distance
            nearest_distance[closer] = distance[closer]
            guessed[closer] = label

    learn(np.asarray(examples), np.ones(len(examples), dtype=np.int64))
    chosen: list[np.ndarray] = []
    bought: list[np.ndarray] = []
    have = np.zeros(2, dtype=np.int64)
    while have.sum() < total:
        size = min(_batch_size(total), total - int(have.sum()))
        lacking = np.maximum(wanted - have, 0)
        n_positive = int(round(size * lacking[1] / lacking.sum()))
        picks = []
        for label, count in ((1, n_positive), (0, size - n_positive)):
            candidates = np.flatnonzero(available & (guessed == label))
            take = rng.choice(candidates, size=min(count, len(candidates)), replace=False)
            available[take] = False
            picks.append(take)
        shortfall = size - sum(len(p) for p in picks)
        if shortfall:
            take = rng.choice(np.flatnonzero(available), size=shortfall, replace=False)
            available[take] = False
            picks.append(take)
        round_points = np.concatenate(picks).astype(np.int64)
        labels = oracle.label(round_points)
        learn(X[round_points], labels)
        have += np.bincount(labels, minlength=2)
        chosen.append(round_points)
        bought.append(labels)
    return np.concatenate(chosen), np.concatenate(bought)


def _probability_model(model: str, seed: int, X: np.ndarray, y: np.ndarray):
    """Classifier `model` (logistic regression if it has no predict_proba) fitted on X, y of two classes."""
    estimator = make_model(model, seed)
    if not hasattr(estimator, "predict_proba"):
        estimator = make_model("logistic_regression", seed)
    return fit_estimator(estimator, X, y)


def uncertainty(pool_embeddings, oracle: LabelOracle, examples, budget: int, *, seed: int = 0,
                model: str = DEFAULT_MODEL) -> tuple[np.ndarray, np.ndarray]:
    """Active learning by uncertainty sampling; buys exactly the points it keeps.

    Seed set (a tenth of the budget, at least 2 points): half the pool points
    nearest the examples' centroid (likely positives), half drawn uniformly
    from the rest (mostly negatives). Then in rounds of a tenth of the budget:
    classifier `model` is fitted on the points bought so far, and the unbought
    points whose predicted probability of class 1 is closest to 0.5 are
    bought (ties by row). While the bought labels hold one class only, the
    round is drawn uniformly instead.
    """
    X = pool_embeddings
    rng = np.random.default_rng(seed)
    total = _effective_budget(X, budget)
    in_set = np.zeros(len(X), dtype=bool)
    n_seed = min(total, max(2, _batch_size(total)))
    near = _nearest_first(X, _centroid(examples))[:math.ceil(n_seed / 2)]
    in_set[near] = True
    spread = rng.choice(np.flatnonzero(~in_set), size=n_seed - len(near), replace=False)
    chosen = np.concatenate([near, spread]).astype(np.int64)
    in_set[chosen] = True
    labels = oracle.label(chosen)
    while len(chosen) < total:
        size = min(_batch_size(total), total - len(chosen))
        candidates = np.flatnonzero(~in_set)
        if len(np.unique(labels)) == 2:
            fitted = _probability_model(model, seed, X[chosen], labels)
            p_positive = fitted.predict_proba(X[candidates])[:, list(fitted.classes_).index(1)]
            picks = candidates[np.argsort(np.abs(p_positive - 0.5), kind="stable")[:size]]
        else:
            picks = rng.choice(candidates, size=size, replace=False)
        picks = picks.astype(np.int64)
        in_set[picks] = True
        chosen = np.concatenate([chosen, picks])
        labels = np.concatenate([labels, oracle.label(picks)])
    return chosen, labels


def diversity(pool_embeddings, oracle: LabelOracle, examples, budget: int, *, seed: int = 0,
              model: str = DEFAULT_MODEL) -> tuple[np.ndarray, np.ndarray]:
    """k-center greedy (Euclidean) over the pool, then the labels of the chosen points.

    The first center is the pool point nearest the examples' centroid; each
    next one is the point farthest from every center so far (ties by row).
    The choice never looks at a label: the labels of the chosen points are
    bought once, at the end. Deterministic; ignores `seed` and `model`.
    Costs min(budget, n) passes over the pool.
    """
    X = pool_embeddings
    total = _effective_budget(X, budget)
    first = int(_nearest_first(X, _centroid(examples))[0])
    chosen = [first]
    distance = _squared_distances(X, X[first])
    distance[first] = -1.0  # never again, even when all remaining points are duplicates of centers
    for _ in range(total - 1):
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        np.minimum(distance, _squared_distances(X, X[nxt]), out=distance)
        distance[chosen] = -1.0
    chosen_array = np.array(chosen, dtype=np.int64)
    return chosen_array, oracle.label(chosen_array)


# --- strategies that buy no label -----------------------------------------------------------

def centroid(pool_embeddings, oracle: LabelOracle, examples, budget: int, *, seed: int = 0,
             model: str = DEFAULT_MODEL) -> tuple[np.ndarray, np.ndarray]:
    """The reference baseline: the min(budget, n) pool points nearest the examples' centroid, all labelled 1.

    It buys no label (the oracle is not asked), as the reference's
    ``selection.py`` does. The reference first draws a random subset of the
    pool and takes the nearest among it; this takes the nearest in the whole
    pool (Euclidean, ties by row). A one-class training set: the reference's
    own classifier cannot be fitted on it, see `evaluation.evaluate_training_set`.
    """
    chosen = _nearest_first(pool_embeddings, _centroid(examples))[:_effective_budget(pool_embeddings, budget)]
    return chosen.astype(np.int64), np.ones(len(chosen), dtype=np.int64)


def closest_furthest(pool_embeddings, oracle: LabelOracle, examples, budget: int, *, seed: int = 0,
                     model: str = DEFAULT_MODEL) -> tuple[np.ndarray, np.ndarray]:
    """A later reference baseline: the points most cosine-similar to the examples' centroid labelled 1,
    the least similar labelled 0 (ceil(k/2) and floor(k/2) of them, k = min(budget, n)); buys no label.
    Ties by row."""
    X = pool_embeddings
    total = _effective_budget(X, budget)
    center = _centroid(examples)
    similarity = np.empty(len(X))
    for start in range(0, len(X), _DISTANCE_CHUNK):
        rows = X[start:start + _DISTANCE_CHUNK].astype(np.float64)
        norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(center)
        similarity[start:start + _DISTANCE_CHUNK] = rows @ center / np.where(norms > 0, norms, 1.0)
    most_similar_first = np.argsort(-similarity, kind="stable")
    n_close = math.ceil(total / 2)
    close = most_similar_first[:n_close]
    far = most_similar_first[n_close:][::-1][:total - n_close]
    chosen = np.concatenate([close, far]).astype(np.int64)
    return chosen, np.concatenate([np.ones(len(close)), np.zeros(len(far))]).astype(np.int64)


# --- registry -------------------------------------------------------------------------------

Strategy = Callable[..., tuple[np.ndarray, np.ndarray]]
STRATEGIES: dict[str, Strategy] = {
    "random": random,
    "balanced_random": balanced_random,
    "uncertainty": uncertainty,
    "diversity": diversity,
    "centroid": centroid,
    "closest_furthest": closest_furthest,
}
STRATEGY_NAMES = registry_names(STRATEGIES, catalog.SELECTION_STRATEGIES, "selection strategy")
#: Strategies that buy their labels from the oracle (the rest guess them and need no pool labels).
BUYS_LABELS: frozenset[str] = catalog.SELECTION_BUYS_LABELS


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in 0..2**32-1; got {seed!r}")
    return int(seed)


def _check_answer(name: str, indices, labels, oracle: LabelOracle, expected: int) -> tuple[np.ndarray, np.ndarray]:
    indices, labels = np.asarray(indices), np.asarray(labels)
    if indices.shape != (expected,) or indices.dtype.kind not in "iu":
        raise RuntimeError(f"strategy {name} returned indices {indices.dtype} {indices.shape}; "
                           f"expected ({expected},) ints")
    if labels.shape != (expected,) or not np.isin(labels, (0, 1)).all():
        raise RuntimeError(f"strategy {name} returned labels of shape {labels.shape} or outside 0/1")
    if len(np.unique(indices)) != expected or indices.min() < 0 or indices.max() >= len(oracle):
        raise RuntimeError(f"strategy {name} returned a pool row twice or out of range")
    bought = oracle.revealed_indices()
    if name in BUYS_LABELS:
        if set(bought.tolist()) != set(indices.tolist()):
            raise RuntimeError(f"strategy {name} bought {len(bought)} label(s) but keeps {expected} points: "
                               "every bought label must be of a kept point, and every kept point bought")
        if not np.array_equal(oracle.label(indices), labels):  # asking again for revealed points is free
            raise RuntimeError(f"strategy {name} returned labels other than the oracle's")
    elif len(bought):
        raise RuntimeError(f"strategy {name} must buy no label, but bought {len(bought)}")
    return indices.astype(np.int64), labels.astype(np.int64)


def choose_training_set(name: str, pool_embeddings, oracle: LabelOracle, examples, budget: int, *,
                        seed: int = 0, model: str = DEFAULT_MODEL) -> tuple[np.ndarray, np.ndarray]:
    """The training set strategy `name` chooses: pool rows (k,) int64 in the order chosen, labels (k,) int64.

    pool_embeddings (n, d) and examples (m, d), m >= 1, are finite numbers;
    `oracle` reveals the pool's labels (len n, nothing revealed yet); budget
    >= 1; k = min(budget, n). Raises ValueError for an unknown name or model,
    or inputs of the wrong shape; RuntimeError if the strategy breaks its
    contract (see the module docstring).
    """
    try:
        strategy = STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}") from None
    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
    pool = check_array(pool_embeddings, dtype=(np.float64, np.float32), input_name="pool_embeddings")
    examples = check_array(examples, dtype=(np.float64, np.float32), input_name="examples")
    if examples.shape[1] != pool.shape[1]:
        raise ValueError(f"examples have {examples.shape[1]} features but the pool has {pool.shape[1]}")
    if not isinstance(oracle, LabelOracle) or len(oracle) != len(pool):
        raise ValueError(f"oracle must be a LabelOracle over the {len(pool)} pool points")
    if oracle.revealed:
        raise ValueError("oracle has revealed labels already: use a new one for each strategy")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be a positive integer; got {budget!r}")
    indices, labels = strategy(pool, oracle, examples, int(budget), seed=_check_seed(seed), model=model)
    return _check_answer(name, indices, labels, oracle, min(int(budget), len(pool)))
