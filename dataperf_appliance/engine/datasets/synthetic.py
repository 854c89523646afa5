"""A synthetic dataset for scale: scikit-learn's `make_classification`.

Task ids are ``synthetic-N`` (any N >= 0, which seeds the task); embeddings
have `dim` values (2..2048), up to 100,000 training points.
"""

from __future__ import annotations

import re

import numpy as np

NAME = "synthetic"
DEFAULT_DIM = 256
MAX_DIM = 2048
MAX_SPLIT_SIZE = 100_000
_TASK = re.compile(r"^synthetic-([0-9]{1,6})$")


def is_task_id(task_id: str) -> bool:
    return bool(_TASK.match(task_id))


def make_splits(task_id: str, sizes: list[int], dim: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One (embeddings (n, dim) float32, labels (n,), ids (n,)) triple per size, from one balanced problem."""
    if not is_task_id(task_id):
        raise ValueError(f"unknown synthetic task {task_id!r}: use synthetic-N, e.g. synthetic-0")
    from sklearn.datasets import make_classification  # on first use: naming the dataset needs none of it

    total = sum(sizes)
    informative = max(2, min(dim // 4, 32))
    X, y = make_classification(
        n_samples=total, n_features=dim, n_informative=informative,
        n_redundant=min(informative, dim - informative), n_classes=2, flip_y=0.0,
        class_sep=1.0, shuffle=True, random_state=int(rng.integers(2**31 - 1)),
    )
    ids = np.array([f"{task_id}-{i:06d}" for i in range(total)])
    out, start = [], 0
    for size in sizes:
        rows = slice(start, start + size)
        out.append((X[rows].astype(np.float32), y[rows].astype(np.int64), ids[rows]))
        start += size
    return out
