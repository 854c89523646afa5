"""The DataPerf reference classifier against a plain PyTorch run of the official procedure.

The yardstick is dataperf_appliance/reference_torch.py (PyTorch, the
``reference-check`` extra); these tests carry the ``torch`` mark, and import
torch inside each test, so a run without torch deselects them by mark
(``-m "not torch"``) instead of failing at collection.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dataperf_appliance import datasets
from dataperf_appliance.config import catalog
from dataperf_appliance.datasets.dataperf_files import DebuggingTaskData
from dataperf_appliance.debugging import strategies
from dataperf_appliance.debugging.evaluation import budgets_for, evaluate_orders, fraction_fixes
from dataperf_appliance.reference_classifier import THRESHOLDS, DataPerfReferenceClassifier, initial_weights

MODEL = catalog.DATAPERF_REFERENCE_MODEL


def _reference_torch():
    import torch

    from dataperf_appliance import reference_torch

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
        orders = {name: strategies.rank_training_points(name, task.X_train, task.y_train, task.X_val, task.y_val,
                                                        seed=seed)
                  for name in ("random", "knn_shapley")}
        e, t, d = _compare_curves(task, orders)
        equal, total, differing = equal + e, total + t, differing + [f"{data_id}/{name}" for name in d]
    assert total == 3 * 2 * 100
    assert equal / total >= 0.99, f"only {equal} of {total} curve points equal PyTorch's"
    assert differing == []


@pytest.mark.torch
def test_fixing_curve_equals_torchs_in_2048_dimensions():
    task = _synthetic_task(train_size=100, dim=2048, seed=7)
    order = np.random.default_rng(7).permutation(task.train_size)
    equal, total, differing = _compare_curves(task, {"random": order})
    assert equal / total >= 0.99, f"only {equal} of {total} curve points equal PyTorch's"
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
