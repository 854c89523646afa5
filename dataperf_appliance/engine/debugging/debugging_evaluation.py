"""The DataPerf fixing curve and its scores, and how well an order detects the flipped labels.

For every budget i, the labels of the first i rows of an inspection order are
set to their ground truth, the classifier is trained again from scratch on the
whole training set, and its test accuracy is recorded (dataperf-formats.md).

Fast, without changing a number: inspecting a row whose label was already
right leaves the training set unchanged, so the training set at a budget is
fully described by *which mislabeled rows have been fixed*. Each distinct such
set is trained once, shared between strategies, and the distinct sets are
trained in parallel on all cores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from dataperf_appliance.engine.datasets.dataperf_files import DebuggingTaskData
from dataperf_appliance.engine.models import fit_and_score, warm_up
from dataperf_appliance.engine.parallel import ordered_map
from dataperf_appliance.engine.parallel import ProgressCallback



@dataclass(frozen=True)
class FixingCurve:
    """Test accuracy (fraction in [0, 1]) after fixing the first `fixes[j]` rows of an order."""

    fixes: np.ndarray
    accuracy: np.ndarray


@dataclass(frozen=True)
class TaskEvaluation:
    """Everything measured for one task: accuracies before and after all fixes, and a curve per method.

    `trainings` distinct training sets were fitted; `fit_s` and `predict_s`
    are the wall seconds of all their fits and of all their test predictions.
    """

    before_acc: float
    clean_acc: float
    curves: dict[str, FixingCurve]
    trainings: int
    fit_s: float = 0.0
    predict_s: float = 0.0


def budgets_for(train_size: int, eval_points: int | None = None) -> np.ndarray:
    """The budgets to evaluate: every one of 1..train_size, or `eval_points` evenly spaced ones (first and last included)."""
    if train_size < 1:
        raise ValueError("train_size must be at least 1")
    if eval_points is None or eval_points >= train_size:
        return np.arange(1, train_size + 1)
    if eval_points < 2:
        raise ValueError("eval_points must be at least 2")
    return np.unique(np.round(np.linspace(1, train_size, eval_points)).astype(np.int64))


def most_trainings(train_size: int, mislabeled: int, eval_points: int | None, methods: int) -> int:
    """The most distinct training sets `evaluate_many` fits for one task of `train_size` rows, `mislabeled` of
    them flipped, with `methods` orders: nothing fixed, everything fixed, and per order one set per budget
    (`budgets_for`), of which at most mislabeled + 1 differ (the fixed rows only grow along an order)."""
    budgets = train_size if eval_points is None else min(eval_points, train_size)
    return 2 + methods * min(budgets, mislabeled + 1)


def fixed_sets(order: np.ndarray, mislabeled: np.ndarray, budgets: np.ndarray) -> list[bytes]:
    """For each budget, a key of the set of mislabeled rows fixed by then (packed bits over the mislabeled rows)."""
    position = np.full(len(mislabeled), -1)
    position[np.flatnonzero(mislabeled)] = np.arange(int(mislabeled.sum()))
    fixed = np.zeros(int(mislabeled.sum()), dtype=bool)
    keys, done = [], 0
    for budget in budgets:
        rows = position[order[done:budget]]
        fixed[rows[rows >= 0]] = True
        done = budget
        keys.append(np.packbits(fixed).tobytes())
    return keys


def _labels_for(key: bytes, task: DebuggingTaskData) -> np.ndarray:
    mislabeled_rows = np.flatnonzero(task.mislabeled)
    fixed = np.unpackbits(np.frombuffer(key, dtype=np.uint8), count=len(mislabeled_rows)).astype(bool)
    labels = task.y_train.copy()
    labels[mislabeled_rows[fixed]] = task.y_true[mislabeled_rows[fixed]]
    return labels


def _scores_for_label_sets(model: str, seed: int, X: np.ndarray, label_sets: list[np.ndarray],
                           X_test: np.ndarray, y_test: np.ndarray) -> list[tuple[float, float, float]]:
    """(accuracy, fit seconds, predict seconds) of classifier `model` trained on X with each label set."""
    # One BLAS thread everywhere, so a fit gives the same bits in a worker as in the naive loop.
    with threadpool_limits(limits=1):
        return [fit_and_score(model, seed, X, y, X_test, y_test) for y in label_sets]


def _call_with_arguments(arguments: tuple) -> list[tuple[float, float, float]]:
    return _scores_for_label_sets(*arguments)


# Fits per job: enough that shipping a task's arrays to a worker is paid rarely,
# few enough that both cores stay busy to the end.
_CHUNK = 8


@dataclass
class _TaskPlan:
    """The distinct training sets one task needs, and which budget of which method needs which."""

    task: DebuggingTaskData
    budgets: np.ndarray
    nothing_fixed: bytes
    all_fixed: bytes
    keys_by_method: dict[str, list[bytes]]
    distinct: list[bytes]

    @classmethod
    def build(cls, task: DebuggingTaskData, orders: Mapping[str, np.ndarray], eval_points: int | None) -> _TaskPlan:
        budgets = budgets_for(task.train_size, eval_points)
        n_wrong = int(task.mislabeled.sum())
        nothing = np.packbits(np.zeros(n_wrong, dtype=bool)).tobytes()
        everything = np.packbits(np.ones(n_wrong, dtype=bool)).tobytes()
        keys_by_method = {name: fixed_sets(np.asarray(order), task.mislabeled, budgets)
                          for name, order in orders.items()}
        distinct = list(dict.fromkeys([nothing, everything, *(k for keys in keys_by_method.values() for k in keys)]))
        return cls(task, budgets, nothing, everything, keys_by_method, distinct)

    def evaluation(self, accuracy: dict[bytes, float], fit_s: float = 0.0, predict_s: float = 0.0) -> TaskEvaluation:
        curves = {name: FixingCurve(fixes=self.budgets.copy(), accuracy=np.array([accuracy[k] for k in keys]))
                  for name, keys in self.keys_by_method.items()}
        return TaskEvaluation(before_acc=accuracy[self.nothing_fixed], clean_acc=accuracy[self.all_fixed],
                              curves=curves, trainings=len(self.distinct), fit_s=fit_s, predict_s=predict_s)


def evaluate_many(items: list[tuple[DebuggingTaskData, Mapping[str, np.ndarray]]], *,
                  model: str = "logistic_regression", seed: int = 0, eval_points: int | None = None,
                  n_jobs: int = -1, progress: ProgressCallback | None = None) -> list[TaskEvaluation]:
    """`evaluate_orders` for several tasks at once, all their trainings sharing one pool of workers."""
    plans = [_TaskPlan.build(task, orders, eval_points) for task, orders in items]
    chunks = [(index, plan.distinct[start:start + _CHUNK])
              for index, plan in enumerate(plans) for start in range(0, len(plan.distinct), _CHUNK)]
    arguments = [(model, seed, plans[i].task.X_train, [_labels_for(key, plans[i].task) for key in keys],
                  plans[i].task.X_test, plans[i].task.y_test) for i, keys in chunks]
    accuracy: list[dict[bytes, float]] = [{} for _ in plans]
    seconds = np.zeros((len(plans), 2))  # per task: fit, predict
    warm_up(model)
    total, done = sum(len(plan.distinct) for plan in plans), 0
    for (index, keys), values in zip(chunks, ordered_map(_call_with_arguments, arguments, n_jobs=n_jobs)):
        accuracy[index].update(zip(keys, (value[0] for value in values)))
        seconds[index] += np.sum([value[1:] for value in values], axis=0)
        done += len(keys)
        if progress:
            progress(done, total)
    return [plan.evaluation(acc, float(fit_s), float(predict_s))
            for plan, acc, (fit_s, predict_s) in zip(plans, accuracy, seconds)]


def evaluate_orders(task: DebuggingTaskData, orders: Mapping[str, np.ndarray], *, model: str = "logistic_regression",
                    seed: int = 0, eval_points: int | None = None, n_jobs: int = -1,
                    progress: ProgressCallback | None = None) -> TaskEvaluation:
    """The fixing curve of every order (a permutation of the train rows, most suspicious first).

    Each distinct training set is fitted once; the curves are identical to
    retraining from scratch at every budget (see `naive_fixing_curve`).
    """
    return evaluate_many([(task, orders)], model=model, seed=seed, eval_points=eval_points,
                         n_jobs=n_jobs, progress=progress)[0]


def naive_fixing_curve(task: DebuggingTaskData, order: np.ndarray, *, model: str = "logistic_regression",
                       seed: int = 0, eval_points: int | None = None) -> FixingCurve:
    """The reference's way: retrain from scratch at every budget, in this process. For benchmarks and tests."""
    budgets = budgets_for(task.train_size, eval_points)
    label_sets = []
    for budget in budgets:
        labels = task.y_train.copy()
        inspected = np.asarray(order)[:budget]
        labels[inspected] = task.y_true[inspected]
        label_sets.append(labels)
    scores = _scores_for_label_sets(model, seed, task.X_train, label_sets, task.X_test, task.y_test)
    return FixingCurve(fixes=budgets, accuracy=np.array([accuracy for accuracy, _, _ in scores]))


def fraction_fixes(accuracy: np.ndarray) -> float:
    """DataPerf's score (lower is better): the 0-based position of the first curve point whose
    accuracy reaches 0.95 x the accuracy at the last budget, divided by the number of points."""
    accuracy = np.asarray(accuracy, dtype=float)
    if accuracy.size == 0:
        raise ValueError("empty curve")
    target = 0.95 * accuracy[-1]
    return float(np.argmax(accuracy >= target)) / accuracy.size


def detection_metrics(order: np.ndarray, mislabeled: np.ndarray) -> dict[str, float | None]:
    """How well an order finds the flipped labels, with no training: {precision_at_k, recall_at_k, auroc,
    auprc}, each in [0, 1], higher is better.

    `order` is a permutation of the training rows, most suspicious first;
    `mislabeled` marks the flipped rows. k is the number of flipped rows, so
    precision at k (flipped rows among the first k, over k) and recall at k
    (the same count over the flipped rows) are the same number: both are
    kept, under the names a reader looks for. AUROC and AUPRC (scikit-learn's
    roc_auc_score and average_precision_score) score the whole ranking, a row
    scoring higher the earlier it comes. Undefined, hence None: every metric
    when no row is flipped, and AUROC and AUPRC also when every row is (no
    clean row to rank below the flipped ones).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    order, mislabeled = np.asarray(order), np.asarray(mislabeled, dtype=bool)
    rows = len(mislabeled)
    if not np.array_equal(np.sort(order), np.arange(rows)):
        raise ValueError(f"the order is not a permutation of the {rows} training rows")
    flipped = int(mislabeled.sum())
    k = flipped
    found = int(mislabeled[order[:k]].sum())
    # The first row of the order gets the highest score; a permutation has no ties.
    score = np.empty(rows)
    score[order] = np.arange(rows, 0, -1)
    ranked = 0 < flipped < rows
    return {
        "precision_at_k": found / k if k else None,
        "recall_at_k": found / flipped if flipped else None,
        "auroc": float(roc_auc_score(mislabeled, score)) if ranked else None,
        "auprc": float(average_precision_score(mislabeled, score)) if ranked else None,
    }


def normalized_auc(curve: FixingCurve, before_acc: float, train_size: int) -> float:
    """Area under accuracy against the fraction of rows inspected, from (0, before_acc) to (1, last accuracy).

    Equals the mean accuracy over the inspection, in [0, 1]; higher is better.
    """
    x = np.concatenate([[0.0], np.asarray(curve.fixes, dtype=float) / train_size])
    y = np.concatenate([[before_acc], curve.accuracy])
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))
