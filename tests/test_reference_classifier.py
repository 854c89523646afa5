"""The DataPerf reference classifier against a plain PyTorch run of the official procedure.

The yardstick is dataperf_appliance/engine/reference_torch.py (PyTorch, the
``reference-check`` extra); these tests carry the ``torch`` mark, and import
torch inside each test, so a run without torch deselects them by mark
(``-m "not torch"``) instead of failing at collection.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from dataperf_appliance.engine import datasets
from dataperf_appliance.config import catalog
from dataperf_appliance.engine.datasets.dataperf_files import DebuggingTaskData
from dataperf_appliance.engine.debugging import debugging_strategies
from dataperf_appliance.engine.debugging.debugging_evaluation import budgets_for, evaluate_orders, fraction_fixes
from dataperf_appliance.engine.reference_classifier import (
    THRESHOLDS,
    DataPerfReferenceClassifier,
    choose_threshold,
    initial_weights,
    round_like_the_evaluator,
)
from dataperf_appliance.tracks import evaluate_folder

MODEL = catalog.DATAPERF_REFERENCE_MODEL


def _reference_torch():
    import torch

    from dataperf_appliance.engine import reference_torch

    torch.set_num_threads(1)  # both cores are the test runner's: no oversubscribed intra-op threads
    return reference_torch


@pytest.mark.torch
@pytest.mark.parametrize("dim", [64, 2048])
def test_initial_weights_are_torchs_bit_for_bit(dim):
    network = _reference_torch().new_network(dim)
    torch_weights = [network[0].weight, network[0].bias, network[1].weight.reshape(-1), network[1].bias]
    for ours, theirs in zip(initial_weights(dim), torch_weights):
        assert np.array_equal(ours, theirs.detach().numpy())


def _digits_task(tmp_path: Path, data_id: str, train_size: int, seed: int) -> DebuggingTaskData:
    spec = datasets.DebuggingTaskSpec(data_id, train_size, 0.3, 40, 100)
    files = datasets.prepare_debugging_task(tmp_path, "digits", spec, seed=seed)
    return datasets.load_debugging_task(files, spec)


def _synthetic_task(train_size: int, dim: int, seed: int) -> DebuggingTaskData:
    """Two overlapping Gaussian classes in `dim` dimensions, 30% of the training labels flipped."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(2, dim)) * 0.05
    y = rng.integers(0, 2, train_size + 140)
    X = (centers[y] + rng.normal(size=(len(y), dim))).astype(np.float32)
    y_noisy = y[:train_size].copy()
    flipped = rng.random(train_size) < 0.3
    y_noisy[flipped] = 1 - y_noisy[flipped]
    return DebuggingTaskData(
        data_id=f"gauss-{seed}", X_train=X[:train_size], y_train=y_noisy, y_true=y[:train_size],
        train_ids=np.array([f"i{k}" for k in range(train_size)]), X_val=X[train_size:train_size + 40],
        y_val=y[train_size:train_size + 40], X_test=X[train_size + 40:], y_test=y[train_size + 40:])


def _compare_curves(task: DebuggingTaskData, orders: dict[str, np.ndarray]) -> tuple[int, int, list[str]]:
    """(points equal, points, methods whose fraction_fixes differ) of ours against PyTorch's."""
    ours = evaluate_orders(task, orders, model=MODEL, n_jobs=1)
    budgets = budgets_for(task.train_size)
    equal = total = 0
    differing = []
    for name, order in orders.items():
        theirs = _reference_torch().fixing_curve(task.X_train, task.y_train, task.y_true, order, task.X_test,
                                                 task.y_test, budgets)
        mine = ours.curves[name].accuracy
        equal += int(np.sum(mine == theirs))
        total += len(theirs)
        if fraction_fixes(mine) != fraction_fixes(theirs):
            differing.append(name)
    return equal, total, differing


@pytest.mark.torch
def test_fixing_curves_equal_torchs_on_digits_tasks(tmp_path):
    equal = total = 0
    differing = []
    for data_id, seed in (("digit-3", 0), ("digit-8", 1), ("digit-9", 2)):
        task = _digits_task(tmp_path, data_id, 100, seed)
        orders = {name: debugging_strategies.rank_training_points(name, task.X_train, task.y_train, task.X_val, task.y_val,
                                                        seed=seed)
                  for name in ("random", "knn_shapley")}
        e, t, d = _compare_curves(task, orders)
        equal, total, differing = equal + e, total + t, differing + [f"{data_id}/{name}" for name in d]
    assert total == 3 * 2 * 100
    assert equal / total >= 0.99, f"only {equal} of {total} curve points equal PyTorch's"
    assert differing == []


def _debugging_corpus():
    """scripts/bench/debugging_corpus.py, the corpus of official folders where rounding and instability bite."""
    path = Path(__file__).resolve().parents[1] / "scripts" / "bench" / "debugging_corpus.py"
    spec = importlib.util.spec_from_file_location("debugging_corpus", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


#: The corpus cases the test trains the yardstick on: up to 200 rows, six of the nine, every kind and test size,
#: balanced and not (the 300-row ones cost the plain loop a minute each; the official comparison runs all nine).
CORPUS_TEST_MAX_TRAIN_SIZE = 200


@pytest.mark.torch
def test_evaluate_equals_the_yardstick_on_the_corpus(tmp_path):
    """`evaluate` (the compiled classifier) against the plain PyTorch loop on corpus folders: 2,048-d,
    test sizes 100/200/500, near-chance, realistic (unstable) and easy data, (un)balanced labels.
    scripts/bench/compare_official_debugging.py runs both against the official code itself
    (docs/reference-classifier.md)."""
    corpus = _debugging_corpus()
    cases = [case for case in corpus.corpus_cases() if case.train_size <= CORPUS_TEST_MAX_TRAIN_SIZE]
    assert {c.kind for c in cases} == set(corpus.KINDS) and {c.test_size for c in cases} == set(corpus.TEST_SIZES)
    assert {c.balanced for c in cases} == {True, False}
    equal = points = 0
    differing = []
    for case in cases:
        folder = corpus.write_case(case, tmp_path)
        (mine,) = evaluate_folder(folder, n_jobs=1).results.values()
        (theirs,) = _reference_torch().evaluate_official_folder(folder).values()
        if mine["before_acc"] != theirs["before_acc"]:
            differing.append(f"{folder.name} before_acc")
        for name, curve in theirs["curves"].items():
            ours = np.array([e["accuracy"] for e in mine["submitted_evaluations"] if e["submission"] == name])
            equal, points = equal + int(np.sum(ours == curve)), points + len(curve)
            if mine["auc_score"][name]["fraction_fixes"] != theirs["fraction_fixes"][name]:
                differing.append(f"{folder.name}/{name} fraction_fixes")
    assert points == sum(2 * case.train_size for case in cases)
    assert equal / points >= 0.995, f"only {equal} of {points} curve points equal the yardstick's"
    assert differing == []


@pytest.mark.torch
def test_threshold_and_test_accuracy_equal_torchs_after_one_fit():
    task = _synthetic_task(train_size=300, dim=512, seed=3)
    network, threshold = _reference_torch().fit(task.X_train, task.y_train)
    ours = DataPerfReferenceClassifier().fit(task.X_train, task.y_train)
    assert ours.threshold_ == threshold
    assert ours.score(task.X_test, task.y_test) == _reference_torch().fit_and_score(
        task.X_train, task.y_train, task.X_test, task.y_test)


def test_accuracies_are_rounded_to_two_decimals_and_the_threshold_is_a_candidate():
    task = _synthetic_task(train_size=150, dim=32, seed=1)
    model = DataPerfReferenceClassifier().fit(task.X_train, task.y_train)
    accuracy = model.score(task.X_test, task.y_test)
    assert accuracy == round(accuracy, 2)
    assert model.threshold_ in THRESHOLDS.tolist()
    evaluation = evaluate_orders(task, {"random": np.arange(task.train_size)}, model=MODEL, n_jobs=1)
    curve = evaluation.curves["random"].accuracy
    assert np.array_equal(curve, np.round(curve, 2))
    assert evaluation.before_acc == round(evaluation.before_acc, 2)


def test_same_fit_whatever_the_seed_and_one_class_still_trains():
    """The evaluator seeds itself at every fit, so the benchmark seed plays no part; it has no one-class
    shortcut either: a fit on one label trains like any other."""
    task = _synthetic_task(train_size=100, dim=16, seed=2)
    first = DataPerfReferenceClassifier().fit(task.X_train, task.y_train)
    second = DataPerfReferenceClassifier().fit(task.X_train, task.y_train)
    assert np.array_equal(first.coef_, second.coef_)
    ones = DataPerfReferenceClassifier().fit(task.X_train, np.ones(task.train_size, dtype=int))
    assert ones.score(task.X_test, np.ones(len(task.X_test), dtype=int)) == 1.0


def test_refuses_labels_that_are_not_binary():
    with pytest.raises(ValueError, match="binary labels"):
        DataPerfReferenceClassifier().fit(np.zeros((4, 2)), np.array([0, 1, 2, 1]))


# --- rounding as the evaluator rounds: numpy's round of a numpy.float64, half to even after scaling by 100 ------

@pytest.mark.parametrize(("right", "expected"), [
    (129, 0.64),  # 0.645: Python's round(0.645, 2) gives 0.65
    (195, 0.98),  # 0.975: Python's round gives 0.97
    (5, 0.02),    # 0.025: Python's round gives 0.03
    (3, 0.02),    # 0.015, half to even upward
    (1, 0.0),     # 0.005
    (130, 0.65),  # no tie
])
def test_an_accuracy_of_k_in_200_rounds_as_the_evaluators(right, expected):
    accuracy = np.mean(np.arange(200) < right)  # a numpy.float64, as the evaluator's mean
    assert round_like_the_evaluator(accuracy) == expected


def _probabilities(*groups: tuple[int, float, int]) -> tuple[np.ndarray, np.ndarray]:
    """(probability float32, label) of `count` rows per (count, probability, label) group."""
    probability = np.concatenate([np.full(count, p, dtype=np.float32) for count, p, _ in groups])
    labels = np.concatenate([np.full(count, label) for count, _, label in groups])
    return probability, labels


def test_the_threshold_is_chosen_on_numpys_rounding():
    """At 0.10 the training accuracy is 195/200 (0.98 rounded as the evaluator, 0.97 by Python's round), at 0.15
    it is 196/200 (0.98): not strictly higher, so the evaluator keeps 0.10; Python's rounding would take 0.15."""
    probability, labels = _probabilities((5, 0.05, 0), (1, 0.12, 0), (4, 0.97, 0), (10, 0.17, 1), (180, 0.9, 1))
    assert choose_threshold(probability, labels) == THRESHOLDS[0]


def _tie_test_set(model: DataPerfReferenceClassifier, X_test: np.ndarray, right: int) -> np.ndarray:
    """Labels for X_test on which `model` is right exactly `right` times."""
    labels = model.predict(X_test)
    labels[right:] = 1 - labels[right:]
    return labels


def test_a_test_accuracy_of_129_in_200_scores_064():
    task = _synthetic_task(train_size=150, dim=32, seed=4)
    X_test = np.random.default_rng(4).normal(size=(200, 32)).astype(np.float32)
    model = DataPerfReferenceClassifier().fit(task.X_train, task.y_train)
    assert model.score(X_test, _tie_test_set(model, X_test, 129)) == 0.64
    assert model.score(X_test, _tie_test_set(model, X_test, 195)) == 0.98


@pytest.mark.torch
def test_the_yardstick_rounds_ties_as_the_evaluator():
    task = _synthetic_task(train_size=150, dim=32, seed=4)
    X_test = np.random.default_rng(4).normal(size=(200, 32)).astype(np.float32)
    model = DataPerfReferenceClassifier().fit(task.X_train, task.y_train)
    for right, expected in ((129, 0.64), (195, 0.98)):
        y_test = _tie_test_set(model, X_test, right)
        assert _reference_torch().fit_and_score(task.X_train, task.y_train, X_test, y_test) == expected
