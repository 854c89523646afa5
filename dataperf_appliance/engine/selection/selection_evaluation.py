"""Scoring a training set exactly as the DataPerf selection reference evaluator does.

The reference (CoactiveAI/dataperf-vision-selection, ``eval.py``) fits
``sklearn.linear_model.LogisticRegression(random_state=0)`` -- scikit-learn's
defaults, so at most 100 lbfgs iterations -- on the training set's
embeddings and scores its predictions on the test set with accuracy,
precision, recall and f1, class 1 positive. `evaluate_training_set` does the
same with the same classifier when the model is ``logistic_regression``. That
is deliberately *not* `dataperf_appliance.engine.models.make_model`'s logistic
regression (``max_iter=1000``, seeded), which the debugging track uses: with
another iteration limit the numbers would differ from the reference's.

Two differences, neither changing a number the reference can produce:

* the reference reads the labels as the strings '0'/'1' and scores with
  ``pos_label='1'``; here they are the integers 0/1 and ``pos_label=1``;
* the reference cannot fit a training set of one class (scikit-learn raises);
  here such a set gets a classifier that predicts its one class
  (`dataperf_appliance.engine.models.fit_model`), so e.g. the all-positive centroid
  baseline scores recall 1 instead of failing the run. A precision or recall
  whose denominator is 0 is 0 (``zero_division=0``), the value the reference
  gets too, after a warning.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.utils import check_array

from dataperf_appliance.config.catalog import SELECTION_REFERENCE_MODEL as REFERENCE_MODEL
from dataperf_appliance.engine.models import MODEL_NAMES, fit_model

METRICS = ("accuracy", "precision", "recall", "f1")


def reference_classifier() -> LogisticRegression:
    """The reference evaluator's classifier, unfitted: ``LogisticRegression(random_state=0)``, nothing else."""
    return LogisticRegression(random_state=0)


def _labels(y, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one label per row; got {y.shape}")
    if y.dtype.kind not in "biu" or not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name} must hold only the integer labels 0 and 1")
    return y.astype(np.int64)


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """accuracy, precision, recall and f1 of predictions (n,) against labels (n,), class 1 positive; in [0, 1]."""
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, pos_label=1, zero_division=0)),
    }


def evaluate_training_set(train_embeddings, train_labels, test_embeddings, test_labels, *,
                          model: str = REFERENCE_MODEL, seed: int = 0) -> dict:
    """Fit on a training set (k, d) / (k,), score on a test set (t, d) / (t,); labels 0/1, k, t >= 1.

    ``logistic_regression`` is the reference's exact `reference_classifier`
    (`seed` plays no part); any other of `MODEL_NAMES` is
    `dataperf_appliance.engine.models.fit_model(model, seed, ...)`. Embeddings are
    used as float64, as the reference's Python lists are.

    Returns {"accuracy", "precision", "recall", "f1"}: fractions in [0, 1];
    {"fit_s", "predict_s"}: wall seconds of the fit and of the prediction;
    "converged": for the reference classifier, whether lbfgs stopped before its
    iteration limit (a warning the reference prints), else None.
    """
    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
    X = check_array(train_embeddings, dtype=np.float64, input_name="train_embeddings")
    X_test = check_array(test_embeddings, dtype=np.float64, input_name="test_embeddings")
    if X_test.shape[1] != X.shape[1]:
        raise ValueError(f"test embeddings have {X_test.shape[1]} values but training embeddings {X.shape[1]}")
    y = _labels(train_labels, len(X), "train_labels")
    y_test = _labels(test_labels, len(X_test), "test_labels")
    converged = None
    started = time.perf_counter()
    if model == REFERENCE_MODEL and len(np.unique(y)) == 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported as "converged" instead
            classifier = reference_classifier().fit(X, y)
        converged = bool(classifier.n_iter_.max() < classifier.max_iter)
    else:
        classifier = fit_model(model, seed, X, y)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    predicted = np.asarray(classifier.predict(X_test))
    predict_s = time.perf_counter() - started
    return {**scores(y_test, predicted), "fit_s": fit_s, "predict_s": predict_s, "converged": converged}
