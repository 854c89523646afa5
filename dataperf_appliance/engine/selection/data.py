"""Selection-track datasets: the embedded digits default, and official DataPerf folders.

A dataset folder holds, exactly as the reference's ``data_dir`` does (paths
relative to the folder; ``{dim}`` is the embedding length)::

    embeddings/train_emb_{dim}_dataperf.parquet     the candidate pool: ImageID, embedding
    test_sets/alpha_test_set_{task}_{dim}.parquet   a test set per task: ImageID, embedding, Confidence
    examples/alpha_example_set_{task}.csv           about 20 known positives per task
    train_sets/random_500_{task}.csv                500 random pool points with their true labels

and, not a DataPerf file, the appliance's label oracle::

    labels/pool_labels_{task}.csv                   ImageID,Confidence of every pool point

The reference ships one ``random_500.csv`` for all tasks; the digits get one
per task, because a label belongs to a task. The pool-label file is what the
strategies "buy" labels from (`strategies.LabelOracle`): the digits have it,
and an official folder needs it only for strategies that buy labels.

The embedded default is generated from scikit-learn's 1,797 digits
(`dataperf_appliance.engine.datasets.digits`) into
``<data root>/datasets/digits-selection/seed-{seed}``: the images are split
once per seed, stratified by digit, into the pool (60 %) and a held-out part
(40 %); each task's test set is drawn balanced from the held-out part, so the
pool and every test set are disjoint.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from dataperf_appliance.engine.datasets import digits
from dataperf_appliance.engine.selection import files

DIGITS_DATASET = "digits"
DIGITS_FOLDER = "digits-selection"
DIGITS_DIM = digits.EMBEDDING_DIM
TASK_IDS = digits.TASK_IDS
#: Fraction of each digit's images held out of the pool; the test sets are drawn from it.
HELD_OUT_FRACTION = 0.4
#: Rows of the random training set written for each task (the reference's random_500.csv).
RANDOM_TRAIN_SIZE = 500
DEFAULT_EXAMPLES = 20

# Salts of the random streams, so that each draw is independent of the others.
_SPLIT, _TEST, _EXAMPLES, _RANDOM = 0, 1, 2, 3


# --- file names -------------------------------------------------------------------------------

def pool_file_name(dim: int) -> str:
    return f"embeddings/train_emb_{dim}_dataperf.parquet"


def test_file_name(task: str, dim: int) -> str:
    return f"test_sets/alpha_test_set_{task}_{dim}.parquet"


def examples_file_name(task: str) -> str:
    return f"examples/alpha_example_set_{task}.csv"


def random_train_file_name(task: str, n: int = RANDOM_TRAIN_SIZE) -> str:
    return f"train_sets/random_{n}_{task}.csv"


def labels_file_name(task: str) -> str:
    return f"labels/pool_labels_{task}.csv"


def dataset_dir(data_root: Path, dataset: str, *, seed: int = 0) -> Path:
    """The folder of a selection dataset: the generated digits per seed, else ``<data root>/datasets/<dataset>``."""
    if dataset == DIGITS_DATASET:
        return Path(data_root) / "datasets" / DIGITS_FOLDER / f"seed-{seed}"
    if not dataset or "/" in dataset or "\\" in dataset or dataset.startswith("."):
        raise ValueError(f"dataset {dataset!r} must be 'digits' or the name of a folder under <data root>/datasets")
    return Path(data_root) / "datasets" / dataset


def inside(folder: Path, relative: str, what: str) -> Path:
    """`folder / relative`, refusing a path that leaves `folder` (an absolute path, or '..')."""
    path = (Path(folder) / relative)
    if Path(relative).is_absolute() or not path.resolve().is_relative_to(Path(folder).resolve()):
        raise ValueError(f"{what} {relative!r} must be a path inside the dataset folder {folder}")
    return path


# --- the digits -------------------------------------------------------------------------------

def _rng(seed: int, *salt: int | str) -> np.random.Generator:
    parts = [zlib.crc32(s.encode()) if isinstance(s, str) else s for s in salt]
    return np.random.default_rng([seed, *parts])


def _check_task(task: str) -> str:
    if task not in TASK_IDS:
        raise ValueError(f"unknown digits task {task!r}; choose one of {', '.join(TASK_IDS)}")
    return task


def split_pool(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, held_out): ascending indices into the 1,797 digits, disjoint, stratified by digit.

    `HELD_OUT_FRACTION` of every digit's images (rounded) is held out; the
    split depends on the seed only, never on the tasks or sizes asked.
    """
    rng = _rng(seed, _SPLIT)
    target = np.arange(10)[:, None] == _digit_of_each()[None, :]
    held_out = []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(target[digit]))
        held_out.append(members[:int(round(HELD_OUT_FRACTION * len(members)))])
    held = np.sort(np.concatenate(held_out))
    pool = np.setdiff1d(np.arange(target.shape[1]), held)
    return pool, held


def _digit_of_each() -> np.ndarray:
    # positive_mask("digit-K") for every K gives each image's digit without reaching into private data.
    masks = np.stack([digits.positive_mask(f"digit-{k}") for k in range(10)])
    return masks.argmax(axis=0)


def pool_labels(task: str, image_ids) -> np.ndarray:
    """The true label (n,) int64 in {0, 1} of digit images ``digits-NNNN`` for `task` (1 = positive)."""
    _check_task(task)
    index = {image_id: i for i, image_id in enumerate(digits.image_ids())}
    unknown = [i for i in image_ids if i not in index]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a digits image id")
    rows = np.array([index[i] for i in image_ids], dtype=np.int64)
    return digits.positive_mask(task)[rows].astype(np.int64)


def max_test_size(task: str, seed: int = 0) -> int:
    """The largest balanced test set the held-out part of seed `seed` gives `task`."""
    is_positive = digits.positive_mask(_check_task(task))
    _, held = split_pool(seed)
    positives = int(is_positive[held].sum())
    negatives = len(held) - positives
    # test_size // 2 positives and the rest, ceil(test_size / 2), negatives.
    return min(2 * positives + 1, 2 * negatives)


def size_problems(task: str, *, train_size: int, test_size: int, seed: int = 0,
                  examples: int = DEFAULT_EXAMPLES) -> list[tuple[str, str]]:
    """Problems of one digits task with these sizes, as (field, message) pairs; [] when it can run."""
    if task not in TASK_IDS:
        return [("tasks", f"unknown digits task {task!r}; choose one of {', '.join(TASK_IDS)}")]
    problems = []
    pool, _ = split_pool(seed)
    if train_size > len(pool):
        problems.append(("train_size", f"{train_size} is more than the {len(pool)} images of the digits pool"))
    if test_size < 2:
        problems.append(("test_size", "a test set needs at least 2 images (one of each class)"))
    elif test_size > max_test_size(task, seed):
        problems.append(("test_size", f"task {task} can have a balanced test set of at most "
                                      f"{max_test_size(task, seed)} images (held-out part of seed {seed})"))
    positives_in_pool = int(digits.positive_mask(task)[pool].sum())
    if examples > positives_in_pool:
        problems.append(("examples", f"task {task} has only {positives_in_pool} positives in the pool"))
    return problems


def digits_task_files(folder: Path, task: str) -> dict[str, Path]:
    """The files of one digits task in a generated folder: pool, test, examples, labels, train_csv."""
    return {
        "pool": folder / pool_file_name(DIGITS_DIM),
        "test": folder / test_file_name(task, DIGITS_DIM),
        "examples": folder / examples_file_name(task),
        "labels": folder / labels_file_name(task),
        "train_csv": folder / random_train_file_name(task),
    }


def generate_selection_dataset(folder: Path, tasks: list[str], *, seed: int, test_size: int,
                               examples: int = DEFAULT_EXAMPLES) -> dict[str, dict[str, Path]]:
    """Write the digits selection dataset of `seed` into `folder`; return {task: {name: path}}.

    The names and paths are those of `digits_task_files`. Idempotent: files already present are kept, except a test set with another
    number of rows than `test_size`, which is drawn again (the DataPerf file
    name does not carry the size). Every draw is a deterministic function of
    the seed and the task, so two writers write the same bytes, each file
    atomically. Raises ValueError for an unknown task or sizes the digits
    cannot give (see `size_problems`).
    """
    folder = Path(folder)
    for task in tasks:
        problems = size_problems(task, train_size=1, test_size=test_size, seed=seed, examples=examples)
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
    all_ids, all_embeddings = digits.image_ids(), digits.embeddings()
    pool, held = split_pool(seed)
    pool_ids = all_ids[pool]
    out = {task: digits_task_files(folder, task) for task in tasks}
    pool_path = folder / pool_file_name(DIGITS_DIM)
    if not pool_path.exists():
        files.write_pool(pool_path, pool_ids, all_embeddings[pool])
    # The same random points for every task, as the reference's one random_500.csv; their labels per task.
    random_rows = np.sort(_rng(seed, _RANDOM).choice(len(pool), size=min(RANDOM_TRAIN_SIZE, len(pool)),
                                                     replace=False))
    for task in tasks:
        paths = out[task]
        is_positive = digits.positive_mask(task)
        labels = is_positive[pool].astype(np.int64)
        if not paths["labels"].exists():
            files.atomic_write_bytes(paths["labels"], files.training_set_csv(pool_ids, labels))
        if not paths["examples"].exists():
            chosen = np.sort(_rng(seed, _EXAMPLES, task).choice(np.flatnonzero(labels), size=examples,
                                                                 replace=False))
            files.write_examples(paths["examples"], pool_ids[chosen], label_name=task, display_name=task)
        if not paths["train_csv"].exists():
            files.write_training_set(paths["train_csv"], pool_ids[random_rows], labels[random_rows])
        if not paths["test"].exists() or files.parquet_rows(paths["test"]) != test_size:
            rng = _rng(seed, _TEST, task)
            n_pos = test_size // 2
            positives = rng.choice(held[is_positive[held]], size=n_pos, replace=False)
            negatives = rng.choice(held[~is_positive[held]], size=test_size - n_pos, replace=False)
            rows = rng.permutation(np.concatenate([positives, negatives]))
            files.write_test_set(paths["test"], all_ids[rows], all_embeddings[rows],
                                 is_positive[rows].astype(np.int64))
    return out


# --- an official folder -----------------------------------------------------------------------

def folder_task_files(folder: Path, task: str, *, emb_file: str, train_csv: str | None,
                      test_parquet: str) -> dict[str, Path]:
    """The files of one task of an official folder, paths relative to it as its task_setup.yaml gives them.

    Keys: pool, test, examples, and labels / train_csv when those files exist.
    Raises FileNotFoundError listing every required file that is missing.
    """
    folder = Path(folder)
    found = {
        "pool": inside(folder, emb_file, "emb_file"),
        "test": inside(folder, test_parquet, f"the test set of {task}"),
        "examples": folder / examples_file_name(task),
    }
    missing = [str(p) for p in found.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"dataset folder {folder} lacks {', '.join(missing)}")
    optional = {"labels": folder / labels_file_name(task)}
    if train_csv:
        optional["train_csv"] = inside(folder, train_csv, f"the train csv of {task}")
    found.update({key: path for key, path in optional.items() if path.exists()})
    return found
