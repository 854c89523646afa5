"""The embedded default dataset: scikit-learn's bundled handwritten digits.

1,797 real 8x8 images, about 174 to 183 of each digit, shipped inside
scikit-learn, so nothing is downloaded. Each task is one balanced binary
problem: ``digit-K`` (K against the other digits) or ``even-odd`` (even digits
against odd ones, large enough for DataPerf's full 300/100/500 sizes).
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

NAME = "digits"
EMBEDDING_DIM = 128
TASK_IDS: tuple[str, ...] = tuple(f"digit-{k}" for k in range(10)) + ("even-odd",)
_DIGIT_TASK = re.compile(r"^digit-([0-9])$")


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    # Imported on first read: `evaluate` on an official folder names the datasets module but reads no digits.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32), bunch.target.astype(np.int64)


def image_ids() -> np.ndarray:
    """The ImageID of every digit image, e.g. ``digits-0042`` (shape (1797,))."""
    images, _ = _digits()
    return np.array([f"digits-{i:04d}" for i in range(len(images))])


def image(image_id: str) -> np.ndarray | None:
    """The 8x8 grey image (values 0..16) behind `image_id`, or None if it is not a digit."""
    match = re.fullmatch(r"digits-(\d{4})", image_id)
    images, _ = _digits()
    if not match or int(match.group(1)) >= len(images):
        return None
    return images[int(match.group(1))]


def embed(images: np.ndarray) -> np.ndarray:
    """Deterministic embeddings of 8x8 images: shape (n, 8, 8) -> (n, 128) float32.

    The 64 pixel intensities scaled to [0, 1], followed by 64 fixed random
    tanh features of them (the projection is seeded by a constant, so an image
    always gets the same embedding).
    """
    pixels = images.reshape(len(images), -1).astype(np.float64) / 16.0
    projection = np.random.default_rng(20240501).normal(size=(64, 64)) / 8.0
    return np.hstack([pixels, np.tanh(pixels @ projection)]).astype(np.float32)


@lru_cache(maxsize=1)
def embeddings() -> np.ndarray:
    """Embeddings of all digit images, shape (1797, 128)."""
    images, _ = _digits()
    return embed(images)


def positive_mask(task_id: str) -> np.ndarray:
    """Boolean (1797,): which images are the positive class of `task_id`."""
    _, target = _digits()
    match = _DIGIT_TASK.match(task_id)
    if match:
        return target == int(match.group(1))
    if task_id == "even-odd":
        return target % 2 == 0
    raise ValueError(f"unknown digits task {task_id!r}; choose one of {', '.join(TASK_IDS)}")


def class_counts(task_id: str) -> tuple[int, int]:
    """(number of positive images, number of negative images) of `task_id`."""
    positives = int(positive_mask(task_id).sum())
    return positives, len(positive_mask(task_id)) - positives


def balanced_counts(size: int) -> tuple[int, int]:
    """(positives, negatives) of a balanced split of `size` rows."""
    return size // 2, size - size // 2


def draw_balanced_splits(task_id: str, sizes: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Disjoint balanced splits of image indices, one per size, each shuffled.

    Raises ValueError when the task's pool cannot give the sizes asked.
    """
    is_positive = positive_mask(task_id)
    positives = rng.permutation(np.flatnonzero(is_positive))
    negatives = rng.permutation(np.flatnonzero(~is_positive))
    need_pos = sum(balanced_counts(s)[0] for s in sizes)
    need_neg = sum(balanced_counts(s)[1] for s in sizes)
    if need_pos > len(positives) or need_neg > len(negatives):
        raise ValueError(
            f"task {task_id} has {len(positives)} positive and {len(negatives)} negative images; "
            f"the sizes asked need {need_pos} and {need_neg}"
        )
    splits, pos_at, neg_at = [], 0, 0
    for size in sizes:
        n_pos, n_neg = balanced_counts(size)
        chosen = np.concatenate([positives[pos_at:pos_at + n_pos], negatives[neg_at:neg_at + n_neg]])
        splits.append(rng.permutation(chosen))
        pos_at, neg_at = pos_at + n_pos, neg_at + n_neg
    return splits
