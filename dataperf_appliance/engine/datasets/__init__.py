"""Datasets: the embedded digits, a synthetic one for scale, and official DataPerf folders.

Every dataset ends up as DataPerf-format files under the data root:
``<data root>/datasets/<dataset>/...``. Generated datasets (digits, synthetic)
are written on demand into a folder per seed (and dimension), since the
DataPerf file names do not carry the seed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataperf_appliance.config import catalog
from dataperf_appliance.engine.datasets import digits, synthetic
from dataperf_appliance.engine.datasets.dataperf_files import (
    DebuggingTaskData,
    read_debugging_task,
    task_file_paths,
    write_embedding_parquet,
    write_groundtruth_csv,
)

GENERATED = (digits.NAME, synthetic.NAME)


@dataclass(frozen=True)
class DebuggingTaskSpec:
    """What identifies one debugging task's files (the keys of a `tasks` item)."""

    data_id: str
    train_size: int
    noise_level: float
    val_size: int
    test_size: int


def dataset_dir(data_root: Path, dataset: str, *, seed: int = 0, dim: int | None = None) -> Path:
    """The folder holding `dataset`'s DataPerf files under `data_root`."""
    base = Path(data_root) / "datasets" / dataset
    if dataset == digits.NAME:
        return base / f"seed-{seed}"
    if dataset == synthetic.NAME:
        return base / f"dim-{dim or synthetic.DEFAULT_DIM}-seed-{seed}"
    return base


def list_datasets(data_root: Path | None) -> list[dict]:
    """What is available: the generated datasets and every folder under <data root>/datasets."""
    found = [
        {"name": digits.NAME, "kind": "embedded", "tasks": list(digits.TASK_IDS),
         "description": "scikit-learn's 1,797 handwritten digits (8x8), balanced binary tasks"},
        {"name": synthetic.NAME, "kind": "generated", "tasks": ["synthetic-N"],
         "description": "make_classification, up to 2,048 dimensions and 100,000 training points"},
    ]
    root = Path(data_root) / "datasets" if data_root else None
    if root and root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in catalog.GENERATED_DATASET_FOLDERS):
            tasks = folder_tasks(folder)
            found.append({"name": folder.name, "kind": "folder", "tasks": tasks, "description": str(folder)})
    return found


#: A task's files in a dataset folder: a debugging task's training embeddings, a selection task's examples.
DEBUGGING_TRAIN_GLOB, SELECTION_EXAMPLES_GLOB = "*_train_*.parquet", "alpha_example_set_*.csv"


def folder_tasks(folder: Path) -> list[str]:
    """The task ids of a dataset folder: those with debugging training embeddings, then those with selection
    example sets (``examples/alpha_example_set_<task>.csv``)."""
    folder = Path(folder)
    debugging = sorted({f.name.split("_train_")[0] for f in folder.rglob(DEBUGGING_TRAIN_GLOB)})
    selection = sorted(f.name[len("alpha_example_set_"):-len(".csv")]
                       for f in (folder / "examples").glob(SELECTION_EXAMPLES_GLOB))
    return list(dict.fromkeys(debugging + selection))


def size_problems(dataset: str, data_id: str, sizes: dict[str, int], data_root: Path | None,
                  *, embedding_folder: str = "embeddings/", groundtruth_folder: str = "data/",
                  noise_level: float | None = None) -> list[tuple[str, str]]:
    """Problems of one task against its dataset, as (field, message) pairs; [] when it can run.

    `sizes` has train_size, val_size and test_size. For an official folder the
    task's files must exist (`noise_level` picks the train file).
    """
    train, val, test = sizes["train_size"], sizes["val_size"], sizes["test_size"]
    if dataset == digits.NAME:
        if data_id not in digits.TASK_IDS:
            return [("data_id", f"unknown task {data_id!r} of dataset digits; choose one of {', '.join(digits.TASK_IDS)}")]
        n_pos, n_neg = digits.class_counts(data_id)
        need = [digits.balanced_counts(s) for s in (train, val, test)]
        need_pos, need_neg = sum(p for p, _ in need), sum(n for _, n in need)
        if need_pos > n_pos or need_neg > n_neg:
            return [("train_size",
                     f"task {data_id} has {n_pos} positive and {n_neg} negative images, but train+val+test "
                     f"= {train}+{val}+{test} needs {need_pos} and {need_neg} (balanced splits)")]
        return []
    if dataset == synthetic.NAME:
        if not synthetic.is_task_id(data_id):
            return [("data_id", f"unknown task {data_id!r} of dataset synthetic; use synthetic-N, e.g. synthetic-0")]
        return [(field, f"{sizes[field]} is more than {synthetic.MAX_SPLIT_SIZE:,}")
                for field in ("val_size", "test_size") if sizes[field] > synthetic.MAX_SPLIT_SIZE]
    if data_root is None:
        return []
    folder = dataset_dir(data_root, dataset)
    if not folder.is_dir():
        return [("data_id", f"dataset {dataset!r} not found: no folder {folder}")]
    files = task_file_paths(folder, embedding_folder, groundtruth_folder, data_id, train,
                            noise_level if noise_level is not None else 0.0, val, test)
    fields = {"train": "train_size", "val": "val_size", "test": "test_size", "groundtruth": "data_id"}
    return [(fields[key], f"dataset {dataset!r} has no file {path.relative_to(folder)}")
            for key, path in files.items() if not path.exists()]


def _task_rng(seed: int, data_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(data_id.encode())])


def flipped_count(noise_level: float, rows: int) -> int:
    """How many of `rows` training labels a generated task flips: round(noise_level * rows)."""
    return int(round(noise_level * rows))


def flip_labels(labels: np.ndarray, noise_level: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of binary `labels` with `flipped_count` of them, chosen by `rng`, flipped."""
    noisy = labels.copy()
    flipped = rng.choice(len(labels), size=flipped_count(noise_level, len(labels)), replace=False)
    noisy[flipped] = 1 - noisy[flipped]
    return noisy


def generate_debugging_task(folder: Path, dataset: str, spec: DebuggingTaskSpec, *, seed: int,
                            dim: int | None = None, embedding_folder: str = "embeddings/",
                            groundtruth_folder: str = "data/") -> dict[str, Path]:
    """Write one generated task's DataPerf files into `folder` (unless already there); return their paths."""
    files = task_file_paths(folder, embedding_folder, groundtruth_folder, spec.data_id,
                            spec.train_size, spec.noise_level, spec.val_size, spec.test_size)
    if all(path.exists() for path in files.values()):
        return files
    rng = _task_rng(seed, spec.data_id)
    sizes = [spec.train_size, spec.val_size, spec.test_size]
    if dataset == digits.NAME:
        ids_all, emb_all = digits.image_ids(), digits.embeddings()
        labels_all = digits.positive_mask(spec.data_id).astype(np.int64)
        splits = [(emb_all[rows], labels_all[rows], ids_all[rows])
                  for rows in digits.draw_balanced_splits(spec.data_id, sizes, rng)]
    elif dataset == synthetic.NAME:
        splits = synthetic.make_splits(spec.data_id, sizes, dim or synthetic.DEFAULT_DIM, rng)
    else:
        raise ValueError(f"dataset {dataset!r} is not generated; place its DataPerf files under {folder}")
    (X_train, y_train, ids_train), (X_val, y_val, ids_val), (X_test, y_test, ids_test) = splits
    # The ground truth is written before the noisy train file: a reader that finds
    # the train file therefore always finds its ground truth too.
    write_groundtruth_csv(files["groundtruth"], ids_train, y_train)
    write_embedding_parquet(files["val"], X_val, y_val, ids_val)
    write_embedding_parquet(files["test"], X_test, y_test, ids_test)
    write_embedding_parquet(files["train"], X_train, flip_labels(y_train, spec.noise_level, rng), ids_train)
    return files


def prepare_debugging_task(data_root: Path, dataset: str, spec: DebuggingTaskSpec, *, seed: int,
                           dim: int | None = None, embedding_folder: str = "embeddings/",
                           groundtruth_folder: str = "data/") -> dict[str, Path]:
    """The paths of a task's four files under the data root, generating them if the dataset is generated."""
    folder = dataset_dir(data_root, dataset, seed=seed, dim=dim)
    if dataset in GENERATED:
        # DataPerf names a task's ground truth by the task alone (dataset_<id>_train.csv), so draws of other
        # sizes cannot share a folder: one would overwrite the other's ground truth.
        folder = folder / f"train-{spec.train_size}-val-{spec.val_size}-test-{spec.test_size}"
        return generate_debugging_task(folder, dataset, spec, seed=seed, dim=dim,
                                       embedding_folder=embedding_folder, groundtruth_folder=groundtruth_folder)
    files = task_file_paths(folder, embedding_folder, groundtruth_folder, spec.data_id,
                            spec.train_size, spec.noise_level, spec.val_size, spec.test_size)
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"dataset {dataset!r} lacks {', '.join(missing)}")
    return files


def load_debugging_task(files: dict[str, Path], spec: DebuggingTaskSpec) -> DebuggingTaskData:
    """Read a task's files and check them against the sizes of its spec (val_size only with a "val" file)."""
    task = read_debugging_task(files, spec.data_id)
    for name, expected, actual, key in (("train_size", spec.train_size, len(task.y_train), "train"),
                                        ("val_size", spec.val_size, len(task.y_val), "val"),
                                        ("test_size", spec.test_size, len(task.y_test), "test")):
        if key in files and expected != actual:
            raise ValueError(f"{files[key].name}: {actual} rows, but the task's {name} is {expected}")
    return task


__all__ = [
    "DebuggingTaskData", "DebuggingTaskSpec", "GENERATED", "dataset_dir", "flip_labels", "flipped_count",
    "generate_debugging_task", "list_datasets", "load_debugging_task", "prepare_debugging_task",
    "size_problems",
]
