"""The reference evaluator's metrics: a hand-computed example, and the exact reference classifier."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from dataperf_appliance.engine.selection.selection_evaluation import evaluate_training_set, reference_classifier

# One feature: the classes are x < 1.5 (label 0) and x > 1.5 (label 1), so any sensible fit
# predicts 0 for negative x and 1 for positive x.
TRAIN_X = np.array([[0.0], [1.0], [2.0], [3.0]])
TRAIN_Y = np.array([0, 0, 1, 1])
TEST_X = np.array([[-5.0], [-4.0], [5.0], [6.0], [-3.0]])
TEST_Y = np.array([0, 1, 1, 1, 0])  # the second point is a positive the model calls negative


def test_metrics_on_a_hand_made_example():
    result = evaluate_training_set(TRAIN_X, TRAIN_Y, TEST_X, TEST_Y)
    # Predictions 0, 0, 1, 1, 0 against 0, 1, 1, 1, 0: TP 2, FP 0, FN 1, TN 2.
    assert result["accuracy"] == pytest.approx(4 / 5)
    assert result["precision"] == pytest.approx(2 / 2)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))  # 0.8
    assert result["fit_s"] >= 0 and result["predict_s"] >= 0
    assert result["converged"] is True


def test_one_class_training_set_predicts_its_class():
    # The reference's LogisticRegression cannot be fitted on one class; we predict that class.
    all_positive = evaluate_training_set(TRAIN_X, np.ones(4, dtype=int), TEST_X, TEST_Y)
    assert all_positive["accuracy"] == pytest.approx(3 / 5)
    assert all_positive["precision"] == pytest.approx(3 / 5)
    assert all_positive["recall"] == 1.0
    assert all_positive["f1"] == pytest.approx(2 * 0.6 / 1.6)
    assert all_positive["converged"] is None
    all_negative = evaluate_training_set(TRAIN_X, np.zeros(4, dtype=int), TEST_X, TEST_Y)
    assert (all_negative["precision"], all_negative["recall"], all_negative["f1"]) == (0.0, 0.0, 0.0)
    assert all_negative["accuracy"] == pytest.approx(2 / 5)


def test_classifier_is_exactly_the_references():
    assert reference_classifier().get_params() == LogisticRegression(random_state=0).get_params()
    assert reference_classifier().max_iter == 100  # scikit-learn's default, not models.make_model's 1000


def test_same_numbers_as_the_reference_code_path():
    """The reference fits on labels read as the strings '0'/'1' and scores with pos_label='1'."""
    X, y = make_classification(n_samples=500, n_features=64, n_informative=20, flip_y=0.2, random_state=1)
    X = X * 30  # noisy and badly scaled, so lbfgs stops at its 100 iterations
    X_train, y_train, X_test, y_test = X[:300], y[:300], X[300:], y[300:]
    with pytest.warns(ConvergenceWarning):  # what the reference prints; our result says converged False
        reference = LogisticRegression(random_state=0).fit(X_train.tolist(), y_train.astype(str).tolist())
    predicted = reference.predict(X_test.tolist()).tolist()
    truth = y_test.astype(str).tolist()
    expected = {"accuracy": accuracy_score(truth, predicted),
                "recall": recall_score(truth, predicted, pos_label="1"),
                "precision": precision_score(truth, predicted, pos_label="1"),
                "f1": f1_score(truth, predicted, pos_label="1")}

    result = evaluate_training_set(X_train, y_train, X_test, y_test)

    assert {key: result[key] for key in expected} == expected  # equal, not approximately
    assert result["converged"] is False


def test_float32_embeddings_give_the_float64_numbers():
    X, y = make_classification(n_samples=200, n_features=16, random_state=2)
    X32 = X.astype(np.float32)
    as32 = evaluate_training_set(X32[:80], y[:80], X32[80:], y[80:])
    as64 = evaluate_training_set(X32[:80].astype(np.float64), y[:80], X32[80:].astype(np.float64), y[80:])
    assert {k: as32[k] for k in ("accuracy", "f1")} == {k: as64[k] for k in ("accuracy", "f1")}


@pytest.mark.parametrize("model", ["knn", "random_forest", "linear_svm"])
def test_other_models(model):
    result = evaluate_training_set(TRAIN_X, TRAIN_Y, TEST_X, TEST_Y, model=model, seed=0)
    assert 0 <= result["accuracy"] <= 1 and result["converged"] is None


@pytest.mark.parametrize("change, message", [
    ({"train_labels": np.array([0, 1, 2, 1])}, "only the integer labels"),
    ({"train_labels": np.array([0, 1])}, "shape"),
    ({"test_embeddings": np.ones((5, 2))}, "values"),
    ({"model": "nope"}, "unknown model"),
    ({"train_embeddings": np.ones((0, 1)), "train_labels": np.array([], dtype=int)}, "sample"),
])
def test_bad_inputs(change, message):
    arguments = {"train_embeddings": TRAIN_X, "train_labels": TRAIN_Y, "test_embeddings": TEST_X,
                 "test_labels": TEST_Y, **change}
    model = arguments.pop("model", "logistic_regression")
    with pytest.raises(ValueError, match=message):
        evaluate_training_set(*arguments.values(), model=model)
