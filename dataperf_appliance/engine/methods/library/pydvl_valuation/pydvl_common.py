"""Helpers shared by the pyDVL 0.10.0 appraisers of this folder (one method per file).

Not an appraiser itself: it defines no class with ``fit`` and ``propose``.
The appliance puts this folder on the method's ``sys.path``, so the appraiser
files import it by name.

The utility of the model-based methods (TMC-Shapley, Beta Shapley, Data
Banzhaf, leave-one-out) is the validation accuracy of
`ConstantFallbackLogisticRegression` trained on a subset of the training
rows: scikit-learn's logistic regression (liblinear, L2, C = 1: the fastest
of its solvers on a few hundred rows of 2048 features), or, on a subset with
a single label, the constant prediction of that label, which is what a
classifier trained on it would answer, rather than a failed fit. The empty
subset scores 0.5, chance for two classes.

Parameters are read with `read_parameter`: ``DATAPERF_PARAM_<NAME>``
overrides the constructor's value. Values come back per training row with
`values_by_row`; the inspection order is ascending value (`ascending_order`).
"""

import time

import numpy as np
from method_parameters import read_parameter, repeat_seed, require_positive  # noqa: F401 (re-exported)
from sklearn.base import BaseEstimator, ClassifierMixin

#: The score of the empty subset: chance accuracy for two classes.
EMPTY_SUBSET_SCORE = 0.5


class ConstantFallbackLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression (liblinear), or the constant label when the training rows have only one."""

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y).reshape(-1)
        self.classes_ = np.unique(y)
        if len(self.classes_) == 1:
            self.model_ = None
        else:
            self.model_ = LogisticRegression(C=self.C, solver="liblinear").fit(X, y)
        return self

    def predict(self, X):
        if self.model_ is None:
            return np.full(len(X), self.classes_[0])
        return self.model_.predict(X)


def labels_1d(labels):
    """DataPerf passes labels as an (N, 1) column; pyDVL's datasets take (N,)."""
    return np.asarray(labels).reshape(-1).astype(np.int64)


def make_datasets(train_X, train_y, val_X, val_y):
    """pyDVL Datasets of the (noisy) training rows and the (clean) validation rows."""
    from pydvl.valuation.dataset import Dataset

    return Dataset(train_X, labels_1d(train_y)), Dataset(val_X, labels_1d(val_y))


def make_utility(validation, C=1.0):
    """pyDVL's ModelUtility: the validation accuracy of `ConstantFallbackLogisticRegression` on a subset."""
    from pydvl.valuation.scorers import SupervisedScorer
    from pydvl.valuation.utility import ModelUtility

    scorer = SupervisedScorer("accuracy", validation, default=EMPTY_SUBSET_SCORE, range=(0.0, 1.0))
    return ModelUtility(ConstantFallbackLogisticRegression(C=C), scorer, catch_errors=True, show_warnings=False)


def fit_valuation(valuation, training, n_jobs):
    """`valuation.fit(training)` with joblib's `n_jobs` workers; returns the seconds it took.

    BLAS runs on one thread meanwhile: the models are small, and a second
    BLAS thread cost more than it gave (TMC-Shapley on 200 x 2048: 32 s
    against 25 s on 2 cores).
    """
    from joblib import parallel_config
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    with parallel_config(n_jobs=n_jobs), threadpool_limits(limits=1, user_api="blas"):
        valuation.fit(training)
    return time.perf_counter() - started


def values_by_row(result, n_rows):
    """The values of a pyDVL ValuationResult as an (n_rows,) array in row order.

    A row that no sample reached (no update, or NaN, e.g. never outside a
    sampled subset in MSR, or never out of the bag in Data-OOB) gets the mean
    of the others: no evidence either way.
    """
    values = np.full(n_rows, np.nan)
    rows = np.asarray(result.indices, dtype=np.int64)
    values[rows] = np.where(np.asarray(result.counts) > 0, np.asarray(result.values, dtype=np.float64), np.nan)
    missing = ~np.isfinite(values)
    if missing.all():
        return np.zeros(n_rows)
    values[missing] = values[~missing].mean()
    return values


def ascending_order(values):
    """Row indices by ascending value, ties by row index: the lowest value is inspected first."""
    return np.argsort(np.asarray(values, dtype=np.float64), kind="stable").astype(np.int64)


def stopping_rule(name, cap, max_seconds):
    """(the criteria by name, the rule that stops at the first of them): the sample cap `cap` under `name`, and
    pyDVL's MaxTime when `max_seconds` is positive."""
    from pydvl.valuation.stopping import MaxTime

    criteria = {name: cap}
    if max_seconds > 0:
        criteria["max_seconds"] = MaxTime(max_seconds)
    return criteria, combine_criteria(criteria)


def combine_criteria(criteria):
    """The pyDVL stopping criteria of the dict `criteria` joined by "or": the first to fire stops."""
    combined = None
    for criterion in criteria.values():
        combined = criterion if combined is None else combined | criterion
    return combined


def stopping_report(criteria, samples, seconds, unit):
    """What `stopped_at` says for a sampling method.

    `criteria` maps a name to the pyDVL stopping criterion it names (the
    parts of the one the method ran with); those whose values all count as
    converged are the ones that stopped it.
    """
    stopped_by = [name for name, criterion in criteria.items()
                  if criterion.converged.size and bool(np.all(criterion.converged))]
    return {"stopped_by": stopped_by or ["sampler"], unit: int(samples), "seconds": round(seconds, 1)}
