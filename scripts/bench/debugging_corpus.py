#!/usr/bin/env python3
"""A corpus of folders in the official DataPerf debugging layout, where rounding and instability bite.

Each folder is the official evaluator's ``app/`` working folder for one task
(``task_setup.yml``, ``embeddings/``, ``data/``, ``submissions/``), with
2,048-d embeddings (the official classifier takes no other length) and 30% of
the training labels flipped. The nine cases cross, two at a time (a Latin
square):

* test sizes 100, 200 and 500: at 100 and 200 an accuracy can be an exact
  rounding tie (129/200 = 0.645), where numpy's and Python's rounding differ;
* near-chance, realistic (non-negative, sparse, large embeddings like a CNN's
  pooled features, where the official training is unstable and small
  differences grow) and easy data;
* training sizes 100, 200 and 300, with balanced or unbalanced labels.

Each task has two submissions: an imperfect detector (the flipped rows
mostly first) and a random order.

Usage: scripts/bench/debugging_corpus.py --out DIR [--dim D]   (prints the folders it wrote)
scripts/bench/compare_official_debugging.py scores the corpus with the official code, the yardstick and the appliance.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataperf_appliance.engine.datasets import flip_labels
from dataperf_appliance.engine.datasets.dataperf_files import (
    atomic_write_bytes,
    noise_token,
    write_embedding_parquet,
    write_groundtruth_csv,
)

#: The official LinearModel is nn.Linear(2048, 128): its folders hold 2,048-d embeddings.
OFFICIAL_DIM = 2048
NOISE_LEVEL = 0.3
#: Not read by the official main.py, but a field of its task_setup.yml.
VAL_SIZE = 100
KINDS = ("near-chance", "realistic", "easy")
TEST_SIZES = (100, 200, 500)
TRAIN_SIZES = (100, 200, 300)
#: The share of label 1 in an unbalanced case.
UNBALANCED_SHARE = 0.25


@dataclass(frozen=True)
class CorpusCase:
    kind: str
    train_size: int
    test_size: int
    balanced: bool
    seed: int

    @property
    def data_id(self) -> str:
        # No '_': the official main.py finds a task's submissions by the part of the name before the first '_'.
        balance = "bal" if self.balanced else "unbal"
        return f"{self.kind}-n{self.train_size}-t{self.test_size}-{balance}"


def corpus_cases() -> list[CorpusCase]:
    """Nine cases: every kind with every test size, the training size a Latin square over both, balance
    alternating."""
    cases = []
    for k, kind in enumerate(KINDS):
        for t, test_size in enumerate(TEST_SIZES):
            index = k * len(TEST_SIZES) + t
            cases.append(CorpusCase(kind, TRAIN_SIZES[(k + t) % len(TRAIN_SIZES)], test_size,
                                    balanced=index % 2 == 0, seed=index))
    return cases


def _features(kind: str, labels: np.ndarray, dim: int, rng: np.random.Generator,
              prototypes: np.ndarray) -> np.ndarray:
    n = len(labels)
    if kind == "realistic":
        # Pooled ReLU features: a shared non-negative profile, a class shift on a few hundred dimensions,
        # per-image noise, then the ReLU (about half the values are 0, the rest up to a few units).
        latent = prototypes[labels] + rng.normal(scale=1.0, size=(n, dim))
        return np.maximum(latent, 0.0).astype(np.float32)
    return (prototypes[labels] + rng.normal(size=(n, dim))).astype(np.float32)


def _prototypes(kind: str, dim: int, rng: np.random.Generator) -> np.ndarray:
    """(2, dim) class centres."""
    if kind == "realistic":
        shared = np.abs(rng.normal(scale=0.8, size=dim))
        shift = np.zeros((2, dim))
        informative = rng.choice(dim, size=dim // 8, replace=False)
        shift[:, informative] = rng.normal(scale=0.35, size=(2, len(informative)))
        return shared + shift
    # Gaussian classes whose centres lie `distance` apart (in units of the noise's standard deviation).
    distance = {"near-chance": 0.15, "easy": 4.0}[kind]
    direction = rng.normal(size=dim)
    direction *= distance / 2 / np.linalg.norm(direction)
    return np.stack([-direction, direction])


def _labels(n: int, balanced: bool, rng: np.random.Generator) -> np.ndarray:
    ones = n // 2 if balanced else int(round(UNBALANCED_SHARE * n))
    labels = np.zeros(n, dtype=np.int64)
    labels[:ones] = 1
    return rng.permutation(labels)


def _submissions(y_noisy: np.ndarray, y_true: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """An imperfect detector (flipped rows score 1 plus noise, the rest noise only) and a random order."""
    suspicion = (y_noisy != y_true) + 0.8 * rng.random(len(y_true))
    return {"detector": np.argsort(-suspicion, kind="stable"), "random": rng.permutation(len(y_true))}


def _task_setup(case: CorpusCase) -> str:
    return (
        "paths:\n  embedding_folder: embeddings/\n  groundtruth_folder: data/\n  submission_folder: submissions/\n"
        "  results_folder: results/\n\ntasks:\n"
        f"  - data_id: {case.data_id}\n    train_size: {case.train_size}\n    noise_level: {NOISE_LEVEL}\n"
        f"    test_size: {case.test_size}\n    val_size: {VAL_SIZE}\n\nbaselines:\n  - name: random\n"
    )


def write_case(case: CorpusCase, folder: Path, dim: int = OFFICIAL_DIM) -> Path:
    """Write `case` as an official debugging folder under `folder`/<data_id>; returns that folder."""
    rng = np.random.default_rng(case.seed)
    prototypes = _prototypes(case.kind, dim, rng)
    y_true = _labels(case.train_size, case.balanced, rng)
    y_test = _labels(case.test_size, case.balanced, rng)
    X_train = _features(case.kind, y_true, dim, rng, prototypes)
    X_test = _features(case.kind, y_test, dim, rng, prototypes)
    y_noisy = flip_labels(y_true, NOISE_LEVEL, rng)

    root = folder / case.data_id
    ids = np.array([f"{case.data_id}-{i:04d}" for i in range(case.train_size)])
    test_ids = np.array([f"{case.data_id}-test-{i:04d}" for i in range(case.test_size)])
    embeddings = root / "embeddings"
    write_embedding_parquet(embeddings / f"{case.data_id}_train_{noise_token(NOISE_LEVEL)}_{case.train_size}.parquet",
                            X_train, y_noisy, ids, dtype=np.float32)
    write_embedding_parquet(embeddings / f"{case.data_id}_test_{case.test_size}.parquet", X_test, y_test,
                            test_ids, dtype=np.float32)
    write_groundtruth_csv(root / "data" / f"dataset_{case.data_id}_train.csv", ids, y_true)
    for method, order in _submissions(y_noisy, y_true, rng).items():
        text = "".join(f"{index}\n" for index in order)
        atomic_write_bytes(root / "submissions" / f"{case.data_id}_{method}.txt", text.encode())
    (root / "results").mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(root / "task_setup.yml", _task_setup(case).encode())
    return root


def write_corpus(folder: Path, dim: int = OFFICIAL_DIM) -> list[Path]:
    return [write_case(case, folder, dim) for case in corpus_cases()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder to write the corpus into")
    parser.add_argument("--dim", type=int, default=OFFICIAL_DIM,
                        help="the embedding length (the official classifier takes 2048 only)")
    args = parser.parse_args(argv)
    for path in write_corpus(args.out, args.dim):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
