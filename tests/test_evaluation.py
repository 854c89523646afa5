"""The fixing curve and its scores, against hand-computed examples and the naive evaluator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataperf_appliance.config import catalog
from dataperf_appliance.engine.datasets.dataperf_files import DebuggingTaskData
from dataperf_appliance.engine.debugging.debugging_evaluation import (
    FixingCurve,
    budgets_for,
    detection_metrics,
    evaluate_orders,
    fixed_sets,
    fraction_fixes,
    naive_fixing_curve,
    normalized_auc,
)


def make_task(n_train: int, n_wrong: int, seed: int, dim: int = 3) -> DebuggingTaskData:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_train + 30, dim))
    y = (X[:, 0] + 0.3 * rng.normal(size=len(X)) > 0).astype(np.int64)
    y_noisy = y[:n_train].copy()
    flipped = rng.choice(n_train, size=n_wrong, replace=False)
    y_noisy[flipped] = 1 - y_noisy[flipped]
    return DebuggingTaskData(
        data_id="t", X_train=X[:n_train], y_train=y_noisy, y_true=y[:n_train],
        train_ids=np.array([f"i{k}" for k in range(n_train)]), X_val=X[n_train:n_train + 10],
        y_val=y[n_train:n_train + 10], X_test=X[n_train + 10:], y_test=y[n_train + 10:],
    )


@pytest.mark.parametrize("accuracy, expected", [
    ([0.5, 0.6, 0.9, 1.0], 3 / 4),          # target 0.95: first reached at position 3
    ([0.96, 0.9, 1.0], 0.0),                # already above target before any real fix
    ([0.1, 0.2, 0.3, 0.4, 0.5], 4 / 5),     # target 0.475: only the last point
    ([0.5, 0.95, 0.951, 1.0], 1 / 4),       # reaching the target exactly counts: position 1
])
def test_fraction_fixes_hand_computed(accuracy, expected):
    assert fraction_fixes(np.array(accuracy)) == pytest.approx(expected)


def test_fraction_fixes_rejects_an_empty_curve():
    with pytest.raises(ValueError):
        fraction_fixes(np.array([]))


def test_normalized_auc_is_the_mean_accuracy_of_a_flat_curve_and_a_trapezoid_otherwise():
    flat = FixingCurve(fixes=np.arange(1, 5), accuracy=np.full(4, 0.8))
    assert normalized_auc(flat, 0.8, 4) == pytest.approx(0.8)
    # (0, 0.5) -> (0.5, 1.0) -> (1.0, 1.0): 0.5 * 0.75 + 0.5 * 1.0
    ramp = FixingCurve(fixes=np.array([2, 4]), accuracy=np.array([1.0, 1.0]))
    assert normalized_auc(ramp, 0.5, 4) == pytest.approx(0.875)


# Rows 0 and 1 of five are flipped: k = 2.
FLIPPED_FIRST_TWO = np.array([True, True, False, False, False])


def test_detection_metrics_of_a_perfect_order_are_all_one():
    metrics = detection_metrics(np.array([1, 0, 4, 2, 3]), FLIPPED_FIRST_TWO)
    assert list(metrics) == list(catalog.DEBUGGING_DETECTION_METRICS)
    assert metrics == {name: 1.0 for name in catalog.DEBUGGING_DETECTION_METRICS}


def test_detection_metrics_of_the_reversed_order_are_low():
    metrics = detection_metrics(np.array([4, 3, 2, 1, 0]), FLIPPED_FIRST_TWO)
    assert metrics["precision_at_k"] == metrics["recall_at_k"] == 0.0
    assert metrics["auroc"] == 0.0  # every flipped row after every clean one
    # The flipped rows found at ranks 4 and 5: precision 1/4 then 2/5, each for half the recall.
    assert metrics["auprc"] == pytest.approx(0.5 * 1 / 4 + 0.5 * 2 / 5)


def test_detection_metrics_hand_computed_for_a_mixed_order():
    metrics = detection_metrics(np.array([0, 2, 1, 3, 4]), FLIPPED_FIRST_TWO)
    # One of the first k = 2 rows is flipped: precision and recall at k are the same number.
    assert metrics["precision_at_k"] == metrics["recall_at_k"] == 0.5
    # Of the 2 x 3 (flipped, clean) pairs only (row 1, row 2) is in the wrong order.
    assert metrics["auroc"] == pytest.approx(5 / 6)
    # Precision 1 at rank 1 and 2/3 at rank 3.
    assert metrics["auprc"] == pytest.approx((1 + 2 / 3) / 2)


def test_detection_metrics_are_undefined_without_a_flipped_label_or_without_a_clean_one():
    order = np.arange(4)
    assert detection_metrics(order, np.zeros(4, dtype=bool)) == dict.fromkeys(catalog.DEBUGGING_DETECTION_METRICS)
    every = detection_metrics(order, np.ones(4, dtype=bool))
    assert (every["precision_at_k"], every["recall_at_k"], every["auroc"], every["auprc"]) == (1.0, 1.0, None, None)


def test_detection_metrics_refuse_an_order_that_is_not_a_permutation():
    with pytest.raises(ValueError, match="permutation"):
        detection_metrics(np.array([0, 0, 1, 2, 3]), FLIPPED_FIRST_TWO)
    with pytest.raises(ValueError, match="permutation"):
        detection_metrics(np.array([0, 1, 2]), FLIPPED_FIRST_TWO)


def test_budgets_every_point_or_evenly_spaced_with_both_ends():
    assert budgets_for(5).tolist() == [1, 2, 3, 4, 5]
    spaced = budgets_for(1000, 5)
    assert spaced.tolist() == [1, 251, 500, 750, 1000]
    assert budgets_for(3, 10).tolist() == [1, 2, 3]
    with pytest.raises(ValueError):
        budgets_for(10, 1)


def test_fixed_sets_change_only_when_a_mislabeled_row_is_inspected():
    mislabeled = np.array([False, True, False, True])
    keys = fixed_sets(np.array([0, 1, 2, 3]), mislabeled, np.arange(1, 5))
    assert keys[0] != keys[1]          # row 1 was wrong: fixed
    assert keys[1] == keys[2]          # row 2 was right: nothing changes, no retraining
    assert keys[2] != keys[3]


def test_curve_skips_retraining_but_matches_the_naive_evaluator():
    task = make_task(n_train=40, n_wrong=10, seed=1)
    rng = np.random.default_rng(0)
    orders = {"a": rng.permutation(40), "b": rng.permutation(40),
              "perfect": np.argsort(~task.mislabeled, kind="stable")}
    evaluation = evaluate_orders(task, orders, n_jobs=2)
    for name, order in orders.items():
        naive = naive_fixing_curve(task, order)
        assert np.array_equal(evaluation.curves[name].accuracy, naive.accuracy), name
        assert np.array_equal(evaluation.curves[name].fixes, np.arange(1, 41))
    # at most one training per distinct fixed set: 11 per order, shared ends
    assert evaluation.trainings <= 3 * 11
    assert evaluation.trainings < 3 * 40
    assert evaluation.clean_acc == evaluation.curves["a"].accuracy[-1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_train=st.integers(4, 16), data=st.data(), seed=st.integers(0, 2**16),
       model=st.sampled_from(["logistic_regression", "knn", "linear_svm"]),
       eval_points=st.one_of(st.none(), st.integers(2, 6)))
def test_fast_curve_equals_retraining_at_every_budget(n_train, data, seed, model, eval_points):
    n_wrong = data.draw(st.integers(0, n_train - 1))
    task = make_task(n_train=n_train, n_wrong=n_wrong, seed=seed)
    order = np.array(data.draw(st.permutations(range(n_train))))
    fast = evaluate_orders(task, {"m": order}, model=model, seed=seed, eval_points=eval_points, n_jobs=1)
    naive = naive_fixing_curve(task, order, model=model, seed=seed, eval_points=eval_points)
    assert np.array_equal(fast.curves["m"].fixes, naive.fixes)
    assert np.array_equal(fast.curves["m"].accuracy, naive.accuracy)
