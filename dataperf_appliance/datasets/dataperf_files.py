"""Reading and writing the DataPerf debugging-track files (dataperf-formats.md).

Files of one task, under a dataset folder:
  {embedding_folder}/{data_id}_train_{noise_level}_{train_size}.parquet   encoding, label (noisy), filename
  {embedding_folder}/{data_id}_val_{val_size}.parquet                     encoding, label, filename
  {embedding_folder}/{data_id}_test_{test_size}.parquet                   encoding, label, filename
  {groundtruth_folder}/dataset_{data_id}_train.csv                        ImageID, hv_label
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class DebuggingTaskData:
    """The arrays of one debugging task, rows in file order.

    X_*: (n, d) float embeddings; y_train: (n_train,) noisy labels in {0, 1};
    y_true: (n_train,) the human-verified labels of the same rows;
    train_ids: (n_train,) the image ids (the `filename` column).
    """

    data_id: str
    X_train: np.ndarray
    y_train: np.ndarray
    y_true: np.ndarray
    train_ids: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def train_size(self) -> int:
        return len(self.y_train)

    @property
    def mislabeled(self) -> np.ndarray:
        """Boolean (n_train,): rows whose given label differs from the true one."""
        return self.y_train != self.y_true


def noise_token(noise_level: float) -> str:
    """The noise level as the reference writes it in file names (Python's str of the float)."""
    return str(float(noise_level))


def _noise_tokens(noise_level: float) -> list[str]:
    # The reference formats whatever YAML gave it: `0.3` -> "0.3", but `0` -> "0".
    tokens = [noise_token(noise_level)]
    if float(noise_level).is_integer():
        tokens.append(str(int(noise_level)))
    return tokens


def task_file_paths(dataset_dir: Path, embedding_folder: str, groundtruth_folder: str, data_id: str,
                    train_size: int, noise_level: float, val_size: int, test_size: int) -> dict[str, Path]:
    """The four files of a task: keys train, val, test, groundtruth.

    For the train file, the first existing spelling of the noise level is used.
    """
    emb = dataset_dir / embedding_folder
    train_candidates = [emb / f"{data_id}_train_{token}_{train_size}.parquet" for token in _noise_tokens(noise_level)]
    train = next((p for p in train_candidates if p.exists()), train_candidates[0])
    return {
        "train": train,
        "val": emb / f"{data_id}_val_{val_size}.parquet",
        "test": emb / f"{data_id}_test_{test_size}.parquet",
        "groundtruth": dataset_dir / groundtruth_folder / f"dataset_{data_id}_train.csv",
    }


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_embedding_parquet(path: Path, embeddings: np.ndarray, labels: np.ndarray, filenames: np.ndarray, *,
                            dtype: type = np.float64) -> None:
    """Write a DataPerf embedding parquet: `encoding` (list of `dtype`), `label` (0/1), `filename`.

    The official evaluator's main.py needs float32 (its classifier's weights are float32).
    """
    value_type = pa.from_numpy_dtype(np.dtype(dtype))
    table = pa.table({
        "encoding": pa.array(list(np.asarray(embeddings, dtype=dtype)), type=pa.list_(value_type)),
        "label": pa.array(np.asarray(labels, dtype=np.int64)),
        "filename": pa.array([str(f) for f in filenames], type=pa.string()),
    })
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def write_groundtruth_csv(path: Path, image_ids: np.ndarray, labels: np.ndarray) -> None:
    """Write a DataPerf ground-truth csv: `ImageID`, `hv_label`."""
    frame = pd.DataFrame({"ImageID": [str(i) for i in image_ids], "hv_label": np.asarray(labels, dtype=np.int64)})
    atomic_write_bytes(path, frame.to_csv(index=False).encode())


def _binary_labels(values: pd.Series, where: str) -> np.ndarray:
    # Accept integers, floats that are whole, and the strings '0'/'1' alike.
    try:
        labels = pd.to_numeric(values, errors="raise").to_numpy()
    except (ValueError, TypeError):
        raise ValueError(f"{where}: labels must be 0 or 1") from None
    if len(labels) and not np.isin(labels, [0, 1]).all():
        raise ValueError(f"{where}: labels must be 0 or 1, found {sorted(set(labels.tolist()) - {0, 1})[:5]}")
    return labels.astype(np.int64)


def read_embedding_parquet(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a DataPerf embedding parquet -> (embeddings (n, d) float64, labels (n,), filenames (n,))."""
    if not path.exists():
        raise FileNotFoundError(f"missing file {path}")
    frame = pq.read_table(path).to_pandas()
    missing = {"encoding", "label", "filename"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path.name}: missing column(s) {', '.join(sorted(missing))}")
    lengths = frame["encoding"].map(len)
    if len(frame) and lengths.nunique() != 1:
        raise ValueError(f"{path.name}: encodings have different lengths {sorted(lengths.unique())[:5]}")
    embeddings = np.array(frame["encoding"].tolist(), dtype=np.float64).reshape(len(frame), -1)
    return embeddings, _binary_labels(frame["label"], path.name), frame["filename"].astype(str).to_numpy()


def read_groundtruth_csv(path: Path) -> dict[str, int]:
    """Read a DataPerf ground-truth csv -> {ImageID: hv_label}."""
    if not path.exists():
        raise FileNotFoundError(f"missing file {path}")
    frame = pd.read_csv(path, dtype={"ImageID": str})
    missing = {"ImageID", "hv_label"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path.name}: missing column(s) {', '.join(sorted(missing))}")
    return dict(zip(frame["ImageID"], _binary_labels(frame["hv_label"], path.name).tolist()))


def read_debugging_task(files: dict[str, Path], data_id: str) -> DebuggingTaskData:
    """Read one task's DataPerf files (see `task_file_paths`); without a "val" file (the evaluation needs
    none) the validation arrays are empty."""
    X_train, y_train, train_ids = read_embedding_parquet(files["train"])
    X_test, y_test, _ = read_embedding_parquet(files["test"])
    if "val" in files:
        X_val, y_val, _ = read_embedding_parquet(files["val"])
    else:
        X_val, y_val = np.empty((0, X_train.shape[1])), np.empty(0, dtype=np.int64)
    truth = read_groundtruth_csv(files["groundtruth"])
    unknown = [i for i in train_ids if i not in truth]
    if unknown:
        raise ValueError(f"{files['groundtruth'].name}: no hv_label for {len(unknown)} train image(s), e.g. {unknown[0]}")
    dims = {X_train.shape[1], X_val.shape[1], X_test.shape[1]}
    if len(dims) != 1:
        raise ValueError(f"task {data_id}: train, val and test embeddings differ in length {sorted(dims)}")
    return DebuggingTaskData(
        data_id=data_id, X_train=X_train, y_train=y_train,
        y_true=np.array([truth[i] for i in train_ids], dtype=np.int64), train_ids=train_ids,
        X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test,
    )


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
