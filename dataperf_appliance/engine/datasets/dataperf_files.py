"""Reading and writing the DataPerf debugging-track files (dataperf-formats.md).

Files of one task, under a dataset folder:
  {embedding_folder}/{data_id}_train_{noise_level}_{train_size}.parquet   encoding, label (noisy), filename
  {embedding_folder}/{data_id}_val_{val_size}.parquet                     encoding, label, filename
  {embedding_folder}/{data_id}_test_{test_size}.parquet                   encoding, label, filename
  {groundtruth_folder}/dataset_{data_id}_train.csv                        ImageID, hv_label
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dataperf_appliance.engine.atomic_file import atomic_write_bytes

#: The column of a debugging embedding parquet that holds the embeddings.
DEBUGGING_EMBEDDING_COLUMN = "encoding"
#: The debugging track's embeddings in memory, whatever the precision of their files.
DEBUGGING_EMBEDDING_DTYPE = np.dtype(np.float64)


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


def write_embedding_parquet(path: Path, embeddings: np.ndarray, labels: np.ndarray, filenames: np.ndarray, *,
                            dtype: type = np.float64) -> None:
    """Write a DataPerf embedding parquet: `encoding` (list of `dtype`), `label` (0/1), `filename`.

    The official evaluator's main.py needs float32 (its classifier's weights are float32).
    """
    value_type = pa.from_numpy_dtype(np.dtype(dtype))
    table = pa.table({
        DEBUGGING_EMBEDDING_COLUMN: pa.array(list(np.asarray(embeddings, dtype=dtype)), type=pa.list_(value_type)),
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


#: The most values (rows x embedding length, plus the other columns' rows) one parquet may hold, checked
#: in its footer before it is read: 2**26 float64 are 512 MiB in memory, e.g. a 256-long pool of 262,144
#: images, or 32,768 debugging rows of 2048 values; several times the official DataPerf vision files.
MAX_PARQUET_VALUES = 2**26
#: ... and the most bytes its columns unpack to (the footer's uncompressed sizes).
MAX_PARQUET_BYTES = 2**30


def read_parquet_checked(path: Path, columns: list[str]) -> pa.Table:
    """The `columns` of a parquet file, after checking from its footer alone that they exist and are not huge.

    Raises FileNotFoundError when there is no file, ValueError naming the file
    for an unreadable file, a missing column, or more than MAX_PARQUET_VALUES
    values or MAX_PARQUET_BYTES bytes in those columns (a small, highly
    compressed file can unpack to gigabytes).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing file {path}")
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        missing = [c for c in columns if c not in names]
        if missing:
            raise ValueError(f"{path.name}: missing column(s) {', '.join(missing)}; it has {', '.join(names)}")
        meta = parquet.metadata
        chunks = _column_chunks(meta, columns)
        values = sum(chunk.num_values for chunk in chunks)
        unpacked = sum(chunk.total_uncompressed_size for chunk in chunks)
        if values > MAX_PARQUET_VALUES or unpacked > MAX_PARQUET_BYTES:
            raise ValueError(f"{path.name}: {meta.num_rows:,} rows holding {values:,} values ({unpacked:,} bytes "
                             f"unpacked); at most {MAX_PARQUET_VALUES:,} values and {MAX_PARQUET_BYTES:,} bytes "
                             "are read")
        return parquet.read(columns=columns)
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{path.name}: not a readable parquet file ({error})") from None


def _column_chunks(meta: pq.FileMetaData, columns: list[str]) -> list:
    """The footer's chunks of `columns`, in every row group."""
    chunks = [meta.row_group(g).column(c) for g in range(meta.num_row_groups) for c in range(meta.num_columns)]
    return [chunk for chunk in chunks if chunk.path_in_schema.split(".")[0] in columns]


def embedding_footprint(path: Path, column_name: str) -> tuple[int, int, np.dtype]:
    """(rows, values, dtype) of the embeddings in `column_name` of a parquet file, from its footer alone, the
    dtype being what `embedding_matrix` gives them (a float type kept, integers float64).

    Raises ValueError naming the file for one that is not a readable parquet file or lacks the column.
    """
    path = Path(path)
    try:
        parquet = pq.ParquetFile(path)
        column_type = parquet.schema_arrow.field(column_name).type
        meta = parquet.metadata
    except (pa.ArrowException, OSError, KeyError) as error:
        raise ValueError(f"{path.name}: no readable column {column_name!r} ({error})") from None
    value_type = getattr(column_type, "value_type", None)
    floating = value_type is not None and pa.types.is_floating(value_type)
    dtype = np.dtype(value_type.to_pandas_dtype()) if floating else np.dtype(np.float64)
    return meta.num_rows, sum(chunk.num_values for chunk in _column_chunks(meta, [column_name])), dtype


def embedding_matrix(table: pa.Table, column_name: str, path: Path, dim: int | None) -> np.ndarray:
    """The column `column_name` (lists of numbers) as an (n, dim) array, checking every row has `dim` values.

    `dim` None: every row must have as many as the first. The file's precision
    is kept (float32 stays float32; integers become float64). Raises
    ValueError naming the file for anything else: not lists of numbers, a
    missing list or value, rows of different lengths, NaN or infinity.
    """
    column = table.column(column_name).combine_chunks()
    n = len(column)
    if pa.types.is_fixed_size_list(column.type):
        lengths = np.full(n, column.type.list_size)
    elif pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lengths = np.diff(np.asarray(column.offsets))
    else:
        raise ValueError(f"{path.name}: column {column_name!r} must hold lists of floats; it is {column.type}")
    if column.null_count:
        raise ValueError(f"{path.name}: {column.null_count} row(s) have no embedding")
    expected = dim if dim is not None else (int(lengths[0]) if n else 0)
    wrong = np.flatnonzero(lengths != expected)
    if len(wrong):
        row = int(wrong[0])
        what = f"the setup's dim is {dim}" if dim is not None else f"row 1 has {expected}"
        raise ValueError(f"{path.name}: embeddings must have {expected} values ({what}), "
                         f"but {len(wrong)} row(s) differ, e.g. row {row + 1} has {int(lengths[row])}")
    if n and expected < 1:
        raise ValueError(f"{path.name}: embeddings must have at least one value per row")
    values = column.flatten()
    if values.null_count:  # pandas writes NaN inside a list as a null
        raise ValueError(f"{path.name}: embeddings hold {values.null_count} missing (null or NaN) value(s)")
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise ValueError(f"{path.name}: embeddings must be numbers; they are {values.type}")
    matrix = values.to_numpy(zero_copy_only=False).reshape(n, expected)
    if matrix.dtype.kind != "f":
        matrix = matrix.astype(np.float64)
    if not np.isfinite(matrix).all():
        raise ValueError(f"{path.name}: embeddings hold NaN or infinite values")
    return matrix


def read_embedding_parquet(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a DataPerf embedding parquet -> (embeddings (n, d) float64, labels (n,), filenames (n,))."""
    path = Path(path)
    table = read_parquet_checked(path, [DEBUGGING_EMBEDDING_COLUMN, "label", "filename"])
    embeddings = embedding_matrix(table, DEBUGGING_EMBEDDING_COLUMN, path, None).astype(DEBUGGING_EMBEDDING_DTYPE,
                                                                                      copy=False)
    filenames = table.column("filename")
    if filenames.null_count:
        raise ValueError(f"{path.name}: {filenames.null_count} row(s) have no filename")
    labels = _binary_labels(table.column("label").to_pandas(), path.name)
    return embeddings, labels, filenames.to_pandas().astype(str).to_numpy()


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
