"""The official DataPerf debugging procedure written plainly in PyTorch: the yardstick of reference_classifier.

The same steps as the DS3Lab evaluator's classifier (see reference_classifier's
docstring), one fit per call, nothing shared between fits. The tests compare
`dataperf_appliance.engine.reference_classifier` with it, and scripts/bench/bench_engine.py
times it as the evaluator's plain loop. Needs torch (the ``reference-check``
extra: ``pip install torch==2.13.0``, the CPU build); nothing else imports it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from dataperf_appliance.engine.reference_classifier import (
    ACCURACY_DECIMALS,
    BATCH_SIZE,
    BETA1,
    BETA2,
    EPOCHS,
    EPSILON,
    HIDDEN_UNITS,
    LEARNING_RATE,
    THRESHOLDS,
    TORCH_SEED,
    WEIGHT_DECAY,
)


def new_network(dim: int) -> nn.Sequential:
    """The two linear layers, freshly initialised after ``torch.manual_seed(42)``."""
    torch.manual_seed(TORCH_SEED)
    return nn.Sequential(nn.Linear(dim, HIDDEN_UNITS), nn.Linear(HIDDEN_UNITS, 1))


def _accuracy(network: nn.Sequential, X: np.ndarray, y: np.ndarray, threshold: float) -> float:
    with torch.no_grad():
        probability = torch.sigmoid(network(torch.tensor(X, dtype=torch.float32))).numpy().ravel()
    # Two steps, as the evaluator: 0 at or below the float32 threshold, then 1 above the float64 one.
    predicted = np.where(probability <= np.float32(threshold), 0.0, probability)
    predicted = np.where(predicted > threshold, 1.0, predicted)
    # round() of the numpy.float64 mean, not of a Python float, as the evaluator: numpy's rounding.
    return float(round(np.mean(predicted == np.asarray(y).ravel()), ACCURACY_DECIMALS))


def fit(X: np.ndarray, y: np.ndarray) -> tuple[nn.Sequential, float]:
    """The trained network and its chosen threshold."""
    features = torch.as_tensor(np.asarray(X, dtype=np.float32))
    labels = torch.as_tensor(np.asarray(y, dtype=np.float32).ravel())
    network = new_network(features.shape[1])
    optimizer = torch.optim.AdamW(network.parameters(), lr=LEARNING_RATE, betas=(BETA1, BETA2), eps=EPSILON,
                                  weight_decay=WEIGHT_DECAY)
    loss = nn.BCEWithLogitsLoss()
    for _ in range(EPOCHS):
        for start in range(0, len(features), BATCH_SIZE):
            optimizer.zero_grad()
            batch = slice(start, start + BATCH_SIZE)
            loss(network(features[batch]).reshape(-1), labels[batch]).backward()
            optimizer.step()
    best_accuracy, best_threshold = 0.0, 0.0
    for threshold in THRESHOLDS:
        accuracy = _accuracy(network, features.numpy(), labels.numpy(), threshold)
        if accuracy > best_accuracy:
            best_accuracy, best_threshold = accuracy, float(threshold)
    return network, best_threshold


def fit_and_score(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> float:
    """The evaluator's rounded test accuracy after training on (X, y)."""
    network, threshold = fit(X, y)
    return _accuracy(network, X_test, y_test, threshold)


def fixing_curve(X: np.ndarray, y_noisy: np.ndarray, y_true: np.ndarray, order: np.ndarray,
                 X_test: np.ndarray, y_test: np.ndarray, budgets: np.ndarray, *, reuse_fits: bool = True) -> np.ndarray:
    """Accuracy at each budget, retraining from scratch, as the evaluator's main loop does. A budget whose
    inspected row was already right leaves the labels as they were: with `reuse_fits` that same training set
    (a fit is deterministic, seeded anew each time) is not trained twice; without, every budget trains, as
    main.py does (the bench's baseline)."""
    accuracies, by_labels = [], {}
    for budget in budgets:
        labels = np.array(y_noisy, copy=True)
        inspected = np.asarray(order)[:budget]
        labels[inspected] = y_true[inspected]
        key = labels.tobytes() if reuse_fits else budget
        if key not in by_labels:
            by_labels[key] = fit_and_score(X, labels, X_test, y_test)
        accuracies.append(by_labels[key])
    return np.array(accuracies)


def evaluate_official_folder(folder: Path) -> dict[str, dict]:
    """{data_id: the official result's fields} of an official debugging folder, by this plain loop:
    ``before_acc``, ``curves`` ({submission: accuracy at budgets 1..train_size}) and ``fraction_fixes``."""
    from dataperf_appliance.engine.debugging.debugging_evaluation import fraction_fixes
    from dataperf_appliance.engine.debugging.submissions import read_submission
    from dataperf_appliance.engine.official.evaluate import official_submissions, read_official_task
    from dataperf_appliance.engine.official.setup import DEBUGGING_FILE, OfficialDebuggingSetup, load_official_setup

    setup = load_official_setup(Path(folder) / DEBUGGING_FILE, OfficialDebuggingSetup)
    paths = setup.paths
    results = {}
    for spec in setup.tasks:
        task = read_official_task(folder, paths, spec)
        budgets = np.arange(1, task.train_size + 1)
        curves = {}
        for method, path in official_submissions(folder / paths.submission_folder, spec.data_id).items():
            order = read_submission(path, task.train_size)  # a short one stops fixing, as in main.py
            curves[method] = fixing_curve(task.X_train, task.y_train, task.y_true, order, task.X_test, task.y_test,
                                          budgets)
        results[spec.data_id] = {
            "before_acc": fit_and_score(task.X_train, task.y_train, task.X_test, task.y_test),
            "curves": curves, "fraction_fixes": {name: fraction_fixes(curve) for name, curve in curves.items()}}
    return results
