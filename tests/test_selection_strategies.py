"""Selection strategies: the label oracle, never reading an unchosen label, determinism, and the contract checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification

from dataperf_appliance.engine.selection import selection_strategies
from dataperf_appliance.engine.selection.selection_strategies import (
    BUYS_LABELS,
    STRATEGY_NAMES,
    LabelBudgetError,
    LabelOracle,
    choose_training_set,
)

BUDGET = 40


@pytest.fixture(scope="module")
def pool():
    """A pool of 400 points, 15 % positive, and 20 example positives (embeddings of pool positives)."""
    X, y = make_classification(n_samples=400, n_features=12, n_informative=6, n_redundant=0, weights=[0.85],
                               class_sep=1.5, random_state=3)
    examples = X[np.flatnonzero(y == 1)[:20]]
    return X.astype(np.float32), y.astype(np.int64), examples


class StrictOracle(LabelOracle):
    """An oracle that fails the moment a label outside `allowed` is asked for, and logs every request."""

    def __init__(self, labels, allowed, *, budget=None):
        super().__init__(labels, budget=budget)
        self.allowed = set(np.asarray(allowed).tolist())
        self.asked: list[int] = []

    def label(self, indices):
        indices = np.asarray(indices)
        outside = set(indices.tolist()) - self.allowed
        if outside:
            raise AssertionError(f"read the label of {sorted(outside)[:5]}, which the strategy does not keep")
        self.asked.extend(indices.tolist())
        return super().label(indices)


# --- the oracle -------------------------------------------------------------------------------

def test_oracle_reveals_only_what_is_asked_and_counts_distinct_points():
    oracle = LabelOracle(np.array([0, 1, 1, 0, 1]))
    assert len(oracle) == 5 and oracle.revealed == 0
    assert oracle.label([3, 1]).tolist() == [0, 1]
    assert oracle.label(np.array([1, 2, 2])).tolist() == [1, 1, 1]
    assert oracle.revealed == 3
    assert oracle.revealed_indices().tolist() == [3, 1, 2]
    assert oracle.label(np.array([], dtype=np.int64)).tolist() == []


def test_oracle_exposes_no_labels():
    labels = np.array([0, 1, 1, 0, 1])
    oracle = LabelOracle(labels)
    public = sorted(name for name in dir(oracle) if not name.startswith("_"))
    assert public == ["budget", "label", "revealed", "revealed_indices"]
    with pytest.raises(TypeError):
        vars(oracle)  # no __dict__ to look into
    with pytest.raises(AttributeError):
        oracle.labels = labels  # and nothing can be attached
    assert np.asarray(oracle).dtype == object  # not an array of labels in disguise
    labels[:] = 0  # the oracle holds its own copy
    assert oracle.label([1]).tolist() == [1]


def test_oracle_budget():
    oracle = LabelOracle(np.zeros(10, dtype=int), budget=3)
    oracle.label([0, 1])
    oracle.label([1, 0, 2])  # asking again is free
    with pytest.raises(LabelBudgetError, match="budget of 3"):
        oracle.label([3])
    assert oracle.revealed == 3


@pytest.mark.parametrize("indices, error", [([5], IndexError), ([-1], IndexError), ([0.5], ValueError),
                                            ([[0]], ValueError)])
def test_oracle_refuses_bad_indices(indices, error):
    with pytest.raises(error):
        LabelOracle(np.zeros(5, dtype=int)).label(indices)


@pytest.mark.parametrize("labels", [[0, 2], [[0, 1]], [0.5, 1.0]])
def test_oracle_refuses_bad_labels(labels):
    with pytest.raises(ValueError):
        LabelOracle(np.array(labels))


# --- every strategy ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_strategy_reads_no_label_it_does_not_keep(pool, name):
    """Run once to learn the training set; run again with an oracle that refuses every other point.

    Strategies are deterministic, so the second run must give the same set without ever
    touching a label outside it. And every label bought is of a point kept, with the oracle's label.
    """
    X, y, examples = pool
    chosen, labels = choose_training_set(name, X, LabelOracle(y, budget=BUDGET), examples, BUDGET, seed=7)
    strict = StrictOracle(y, allowed=chosen, budget=BUDGET)

    again, again_labels = choose_training_set(name, X, strict, examples, BUDGET, seed=7)

    np.testing.assert_array_equal(again, chosen)
    np.testing.assert_array_equal(again_labels, labels)
    assert len(chosen) == BUDGET == len(np.unique(chosen))
    if name in BUYS_LABELS:
        assert set(strict.revealed_indices().tolist()) == set(chosen.tolist())
        assert strict.revealed == BUDGET
        np.testing.assert_array_equal(labels, y[chosen])  # bought labels are the true ones
    else:
        assert strict.asked == [] and strict.revealed == 0


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_strategy_deterministic_given_seed(pool, name):
    X, y, examples = pool
    runs = [choose_training_set(name, X, LabelOracle(y), examples, BUDGET, seed=seed) for seed in (1, 1, 2)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    if name in ("random", "balanced_random", "uncertainty"):
        assert not np.array_equal(runs[0][0], runs[2][0])


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_budget_larger_than_pool_takes_the_whole_pool(pool, name):
    X, y, examples = pool
    chosen, labels = choose_training_set(name, X[:30], LabelOracle(y[:30]), examples, 100, seed=0)
    assert sorted(chosen.tolist()) == list(range(30))


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_budget_of_one(pool, name):
    X, y, examples = pool
    chosen, labels = choose_training_set(name, X, LabelOracle(y, budget=1), examples, 1, seed=0)
    assert len(chosen) == 1 and len(labels) == 1


def test_balanced_random_balances_a_skewed_pool(pool):
    X, y, examples = pool  # 15 % positive: a uniform draw of 40 holds about 6 positives
    _, labels = choose_training_set("balanced_random", X, LabelOracle(y), examples, BUDGET, seed=0)
    _, random_labels = choose_training_set("random", X, LabelOracle(y), examples, BUDGET, seed=0)
    assert labels.sum() >= 12
    assert labels.sum() > random_labels.sum()


def test_uncertainty_uses_the_model_and_its_fallback(pool):
    X, y, examples = pool
    for model in ("knn", "linear_svm", "random_forest"):  # linear_svm has no predict_proba
        chosen, labels = choose_training_set("uncertainty", X, LabelOracle(y), examples, BUDGET, seed=0, model=model)
        assert len(set(chosen.tolist())) == BUDGET


def test_diversity_starts_at_the_examples_centroid(pool):
    X, y, examples = pool
    chosen, _ = choose_training_set("diversity", X, LabelOracle(y), examples, 5)
    distances = ((X.astype(float) - examples.mean(axis=0)) ** 2).sum(axis=1)
    assert chosen[0] == int(np.argmin(distances))


def test_centroid_is_the_reference_baseline(pool):
    X, y, examples = pool
    chosen, labels = choose_training_set("centroid", X, LabelOracle(y), examples, 10)
    distances = np.linalg.norm(X.astype(float) - examples.mean(axis=0), axis=1)
    assert sorted(chosen.tolist()) == sorted(np.argsort(distances)[:10].tolist())
    assert labels.tolist() == [1] * 10


def test_closest_furthest_labels_half_and_half(pool):
    X, y, examples = pool
    chosen, labels = choose_training_set("closest_furthest", X, LabelOracle(y), examples, 11)
    assert labels.tolist() == [1] * 6 + [0] * 5


# --- the entry point's checks -------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"name": "nope"}, "unknown strategy"),
    ({"model": "nope"}, "unknown model"),
    ({"budget": 0}, "budget"),
    ({"budget": True}, "budget"),
    ({"seed": -1}, "seed"),
    ({"examples": np.ones((2, 3))}, "features"),
    ({"oracle": LabelOracle(np.zeros(3, dtype=int))}, "LabelOracle over the 400"),
])
def test_choose_checks_its_inputs(pool, kwargs, message):
    X, y, examples = pool
    arguments = {"name": "random", "pool_embeddings": X, "oracle": LabelOracle(y), "examples": examples,
                 "budget": 5, "seed": 0, "model": "logistic_regression", **kwargs}
    with pytest.raises(ValueError, match=message):
        choose_training_set(arguments.pop("name"), arguments.pop("pool_embeddings"), arguments.pop("oracle"),
                            arguments.pop("examples"), arguments.pop("budget"), **arguments)


def test_a_used_oracle_is_refused(pool):
    X, y, examples = pool
    oracle = LabelOracle(y)
    oracle.label([0])
    with pytest.raises(ValueError, match="revealed labels already"):
        choose_training_set("random", X, oracle, examples, 5)


def _peeking(pool_embeddings, oracle, examples, budget, *, seed=0, model=""):
    peek = oracle.label(np.arange(budget * 2))  # reads twice what it keeps
    keep = np.arange(budget)
    return keep, peek[:budget]


def _guessing_buyer(pool_embeddings, oracle, examples, budget, *, seed=0, model=""):
    return np.arange(budget), np.ones(budget, dtype=np.int64)  # claims to buy but never asks


@pytest.mark.parametrize("cheat, registered_as, message", [
    (_peeking, "random", "bought 10 label"),
    (_guessing_buyer, "uncertainty", "bought 0 label"),
    (_peeking, "centroid", "must buy no label"),
])
def test_a_strategy_that_breaks_the_contract_is_caught(pool, monkeypatch, cheat, registered_as, message):
    X, y, examples = pool
    monkeypatch.setitem(selection_strategies.STRATEGIES, registered_as, cheat)
    with pytest.raises(RuntimeError, match=message):
        choose_training_set(registered_as, X, LabelOracle(y), examples, 5)
