"""The evaluation classifiers, by name. Each is deterministic given the seed."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sklearn.base import ClassifierMixin

from dataperf_appliance.config import catalog
from dataperf_appliance.config.catalog import registry_names


def _dataperf_reference(seed: int) -> ClassifierMixin:
    """The official debugging classifier. It seeds itself (torch.manual_seed(42) at every fit): `seed` plays no
    part. Imported here, not at the top: numba takes half a second to import, which the selection track and
    every other model never need."""
    from dataperf_appliance.engine.reference_classifier import DataPerfReferenceClassifier

    return DataPerfReferenceClassifier()


# Each estimator's module is imported when the model is first made: a command that needs one model (the
# selection evaluator's logistic regression) does not load all of scikit-learn's (ensembles, networks).
def _logistic_regression(seed: int) -> ClassifierMixin:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, random_state=seed)


def _linear_svm(seed: int) -> ClassifierMixin:
    from sklearn.svm import LinearSVC

    return LinearSVC(random_state=seed)


def _knn(seed: int) -> ClassifierMixin:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=5)


def _random_forest(seed: int) -> ClassifierMixin:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)


def _hist_gradient_boosting(seed: int) -> ClassifierMixin:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=seed)


def _mlp(seed: int) -> ClassifierMixin:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, random_state=seed)


_FACTORIES: dict[str, Callable[[int], ClassifierMixin]] = {
    catalog.DATAPERF_REFERENCE_MODEL: _dataperf_reference,
    "logistic_regression": _logistic_regression,
    "linear_svm": _linear_svm,
    "knn": _knn,
    "random_forest": _random_forest,
    "hist_gradient_boosting": _hist_gradient_boosting,
    "mlp": _mlp,
}

MODEL_NAMES = registry_names(_FACTORIES, catalog.MODEL_NAMES, "model")
#: The classifier a strategy that needs predicted probabilities uses when it is given none.
DEFAULT_MODEL = catalog.SELECTION_REFERENCE_MODEL


def make_model(name: str, seed: int = 0) -> ClassifierMixin:
    """A new, unfitted classifier called `name`, seeded with `seed`."""
    try:
        return _FACTORIES[name](seed)
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}") from None


def warm_up(name: str) -> None:
    """Do once, in this process, the set-up that model `name` would otherwise repeat in every forked worker
    (compiling the DataPerf reference's training loop)."""
    if name == catalog.DATAPERF_REFERENCE_MODEL:
        from dataperf_appliance.engine.reference_classifier import compile_kernels  # numba only for this model (see _dataperf_reference)

        compile_kernels()


class _ConstantClassifier:
    """Predicts the one class a training set holds (a fit on one class is undefined)."""

    def __init__(self, label: int) -> None:
        self.label = label

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.label)

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(X) == y))


def fit_model(name: str, seed: int, X: np.ndarray, y: np.ndarray):
    """Fit classifier `name` on X (n, d) and labels y (n,); handles a one-class y.

    The DataPerf reference trains on one class as on two (it has no such
    special case), so that model always trains.
    """
    classes = np.unique(y)
    if len(classes) == 1 and name != catalog.DATAPERF_REFERENCE_MODEL:
        return _ConstantClassifier(int(classes[0]))
    return fit_estimator(make_model(name, seed), X, y)


def fit_estimator(estimator: ClassifierMixin, X: np.ndarray, y: np.ndarray) -> ClassifierMixin:
    """`estimator` fitted on X, y; a KNN asks for no more neighbours than the rows it has (a tiny training set
    has fewer than the default 5)."""
    if hasattr(estimator, "n_neighbors"):
        estimator.set_params(n_neighbors=min(estimator.n_neighbors, len(y)))
    return estimator.fit(X, y)


def fit_and_score(name: str, seed: int, X: np.ndarray, y: np.ndarray,
                  X_test: np.ndarray, y_test: np.ndarray) -> tuple[float, float, float]:
    """(test accuracy in [0, 1], fit seconds, predict seconds) of classifier `name` trained on X (n, d), y (n,)
    and scored on X_test (t, d), y_test (t,); the seconds are wall time.

    The accuracy is the model's own `score`: the fraction of right predictions,
    or for the DataPerf reference its evaluator's rounded accuracy.
    """
    started = time.perf_counter()
    model = fit_model(name, seed, X, y)
    fitted = time.perf_counter()
    accuracy = model.score(X_test, y_test)
    done = time.perf_counter()
    return float(accuracy), fitted - started, done - fitted
