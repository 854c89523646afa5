"""Reading and writing the DataPerf selection-track files (dataperf-formats.md, "Selection track").

Files, each exactly as the reference evaluator (CoactiveAI/dataperf-vision-selection) reads them:

candidate pool, parquet
    ``ImageID`` (string), ``embedding`` (list of `dim` floats).
test set of a task, parquet
    ``ImageID``, ``embedding``, ``Confidence`` (the label 0/1, written as the
    strings '0'/'1' as in the official files; integers are accepted on read).
training set of a task (a submission), csv
    header ``ImageID,Confidence``, one chosen pool point per row, Confidence
    its label 0/1.
examples of a task, csv
    ``LabelName,ImageID,Confidence,OriginalURL,DisplayName``: about 20 pool
    points known to be positive.

Readers check a file and raise ValueError (for a user's training set, the
`TrainingSetError` subclass, row by row) naming the file; writers write whole
files atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dataperf_appliance.engine.atomic_file import atomic_write_bytes

from dataperf_appliance.engine.datasets.dataperf_files import embedding_matrix, read_parquet_checked
from dataperf_appliance.engine.user_files import MAX_REPORTED_PROBLEMS, ProblemList, UserFileError, read_text  # noqa: F401 (re-exported)
from dataperf_appliance.engine.user_files import MAX_TRAINING_SET_BYTES

ID_COLUMN = "ImageID"
EMBEDDING_COLUMN = "embedding"
LABEL_COLUMN = "Confidence"
TRAINING_SET_HEADER = f"{ID_COLUMN},{LABEL_COLUMN}"
EXAMPLE_COLUMNS = ("LabelName", "ImageID", "Confidence", "OriginalURL", "DisplayName")


class TrainingSetError(UserFileError):
    """A training-set csv that cannot be used.

    The message has one problem per line, ``file:row N: what is wrong`` with
    N the 1-based data row (the header is not counted), or ``file:header: ...``
    / ``file: ...`` for the file as a whole. `problems` holds them as a list,
    `path` the file.
    """


@dataclass(frozen=True)
class EmbeddedSet:
    """Rows of a pool or test parquet, in file order.

    image_ids: (n,) str; embeddings: (n, dim) float, the file's precision
    (float32 stays float32); labels: (n,) int64 in {0, 1} for a test set,
    None for the pool.
    """

    image_ids: np.ndarray
    embeddings: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def dim(self) -> int:
        return self.embeddings.shape[1]


# --- helpers --------------------------------------------------------------------------------

def _shown(token: str, limit: int = 40) -> str:
    """`token` quoted for a message, shortened when long."""
    return repr(token if len(token) <= limit else token[:limit] + "...")


def _labels_01(values: pd.Series | np.ndarray, where: str) -> np.ndarray:
    """Labels as int64 0/1; accepts integers, whole floats, booleans and the strings '0'/'1'."""
    series = pd.Series(values)
    if series.isna().any():
        raise ValueError(f"{where}: {int(series.isna().sum())} label(s) missing; {LABEL_COLUMN} must be 0 or 1")
    if series.dtype == bool:
        return series.to_numpy().astype(np.int64)
    if series.dtype.kind in "iuf":
        numbers = series.astype("float64").to_numpy()
    else:
        # Strings: only '0' and '1' (what Spark gives the reference) -- not '1.0', not ' 1'.
        text = series.astype(str)
        bad = ~text.isin(["0", "1"])
        if bad.any():
            raise ValueError(f"{where}: {LABEL_COLUMN} must be 0 or 1; found {_shown(str(text[bad].iloc[0]))}")
        return (text == "1").to_numpy().astype(np.int64)
    if not np.isin(numbers, [0, 1]).all():
        bad = numbers[~np.isin(numbers, [0, 1])]
        raise ValueError(f"{where}: {LABEL_COLUMN} must be 0 or 1; found {bad[:5].tolist()}")
    return numbers.astype(np.int64)


def _image_ids(table: pa.Table, path: Path) -> np.ndarray:
    ids = table.column(ID_COLUMN)
    if ids.null_count:
        raise ValueError(f"{path.name}: {ids.null_count} row(s) have no {ID_COLUMN}")
    image_ids = np.asarray(ids.to_pandas().astype(str).to_numpy(), dtype=object)
    unique, counts = np.unique(image_ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{path.name}: {ID_COLUMN} {_shown(str(unique[counts > 1][0]))} appears "
                         f"{int(counts[counts > 1][0])} times; every image must appear once")
    return image_ids


def _embedding_table(image_ids, embeddings: np.ndarray, labels: np.ndarray | None = None) -> pa.Table:
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or len(embeddings) != len(image_ids):
        raise ValueError(f"embeddings must have shape ({len(image_ids)}, dim); got {embeddings.shape}")
    value_type = pa.float32() if embeddings.dtype == np.float32 else pa.float64()
    if embeddings.shape[1] < 1:
        raise ValueError("embeddings must have at least one value per row")
    flat = pa.array(np.ascontiguousarray(embeddings, dtype=value_type.to_pandas_dtype()).ravel(), type=value_type)
    offsets = np.arange(len(embeddings) + 1, dtype=np.int64) * embeddings.shape[1]
    # A plain list (int32 offsets) is what every reader knows; only a huge pool needs the large one.
    lists = (pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), flat) if offsets[-1] < 2**31
             else pa.LargeListArray.from_arrays(pa.array(offsets), flat))
    columns = {
        ID_COLUMN: pa.array([str(i) for i in image_ids], type=pa.string()),
        EMBEDDING_COLUMN: lists,
    }
    if labels is not None:
        # As the official test sets store it: the text "0"/"1". The official evaluator reads the training
        # csv's labels as text (Spark) and scores with pos_label='1', so integer test labels crash it.
        columns[LABEL_COLUMN] = pa.array(np.where(np.asarray(labels) == 1, "1", "0"), type=pa.string())
    return pa.table(columns)


def _write_table(path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(Path(path), sink.getvalue().to_pybytes())


# --- pool -----------------------------------------------------------------------------------

def write_pool(path: Path, image_ids, embeddings: np.ndarray) -> None:
    """Write a candidate pool parquet: ImageID (n,) and embeddings (n, dim), float32 kept as float32."""
    _write_table(path, _embedding_table(image_ids, embeddings))


def read_pool(path: Path, dim: int | None = None) -> EmbeddedSet:
    """Read a candidate pool parquet; every embedding must have `dim` values (if given).

    Raises ValueError naming the file for a missing column, an embedding of
    another length, duplicate or missing ImageIDs, or an empty pool.
    """
    path = Path(path)
    table = read_parquet_checked(path, [ID_COLUMN, EMBEDDING_COLUMN])
    if table.num_rows == 0:
        raise ValueError(f"{path.name}: the pool is empty")
    return EmbeddedSet(_image_ids(table, path), embedding_matrix(table, EMBEDDING_COLUMN, path, dim))


# --- test set -------------------------------------------------------------------------------

def write_test_set(path: Path, image_ids, embeddings: np.ndarray, labels: np.ndarray) -> None:
    """Write a test-set parquet: ImageID (n,), embeddings (n, dim), Confidence (n,) 0/1 as the text "0"/"1"."""
    labels = _labels_01(np.asarray(labels), "labels")
    if len(labels) != len(image_ids):
        raise ValueError(f"labels must have shape ({len(image_ids)},); got {labels.shape}")
    _write_table(path, _embedding_table(image_ids, embeddings, labels))


def read_test_set(path: Path, dim: int | None = None) -> EmbeddedSet:
    """Read a test-set parquet; Confidence may be integers or the strings '0'/'1'.

    Raises ValueError naming the file for a missing column, an embedding of
    another length than `dim`, a label other than 0/1, or no rows.
    """
    path = Path(path)
    table = read_parquet_checked(path, [ID_COLUMN, EMBEDDING_COLUMN, LABEL_COLUMN])
    if table.num_rows == 0:
        raise ValueError(f"{path.name}: the test set is empty")
    labels = _labels_01(table.column(LABEL_COLUMN).to_pandas(), path.name)
    return EmbeddedSet(_image_ids(table, path), embedding_matrix(table, EMBEDDING_COLUMN, path, dim), labels)


def parquet_rows(path: Path) -> int:
    """Number of rows of a parquet file, from its footer (the data is not read)."""
    return pq.ParquetFile(path).metadata.num_rows


# --- training set (a submission) --------------------------------------------------------------

def training_set_csv(image_ids, labels) -> bytes:
    """The bytes of a DataPerf training-set csv: header ``ImageID,Confidence``, labels as 0/1."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(image_ids):
        raise ValueError(f"labels must have shape ({len(image_ids)},); got {labels.shape}")
    labels = _labels_01(labels, "labels")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([ID_COLUMN, LABEL_COLUMN])
    writer.writerows(zip((str(i) for i in image_ids), labels.tolist()))
    return out.getvalue().encode()


def write_training_set(path: Path, image_ids, labels) -> Path:
    """Write a training-set csv (ImageID (n,), labels (n,) in {0, 1}) atomically; return `path`."""
    atomic_write_bytes(Path(path), training_set_csv(image_ids, labels))
    return Path(path)


def _check_budget(budget) -> int | None:
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be a positive integer or None; got {budget!r}")
    return int(budget)


def _row_name(line: int) -> str:
    """The header is line 1; data row N is line N + 1."""
    return ":header" if line == 1 else f":row {line - 1}"


def read_training_set(path: Path, pool_ids: set[str], budget: int | None = None) -> pd.DataFrame:
    """A user's training-set csv, checked row by row -> DataFrame (ImageID str, Confidence int64).

    A valid file is UTF-8 text (a byte-order mark is fine), with the header
    exactly ``ImageID,Confidence``, then 1 to `budget` rows (any number if
    None), each an ImageID of the pool (`pool_ids`) not seen before and the
    label ``0`` or ``1``. Windows line ends are fine, and so is a final line
    end; a blank line elsewhere is not. A file over `MAX_TRAINING_SET_BYTES`
    is refused before it is read.

    Raises TrainingSetError listing up to `MAX_REPORTED_PROBLEMS` problems,
    each naming the file and the 1-based data row, e.g.
    ``mine.csv:row 4: ImageID 'x9' is not in the pool``; FileNotFoundError
    when there is no file.
    """
    path = Path(path)
    budget = _check_budget(budget)
    name = path.name
    text = read_text(path, max_bytes=MAX_TRAINING_SET_BYTES, what="a training set", error=TrainingSetError,
                     line_name=_row_name)
    if not text.strip():
        raise TrainingSetError(path, [f"{name}: the file is empty; expected the header {TRAINING_SET_HEADER} "
                                      "and one row per chosen image"])
    if "\x00" in text:
        row = text[:text.index("\x00")].count("\n")
        raise TrainingSetError(path, [f"{name}:{'header' if row == 0 else f'row {row}'}: holds a NUL byte"])
    # Split on '\n' only (str.splitlines would also split on form feeds and the like, and shift row numbers).
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()  # the final line end is not a blank row
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    header = lines[0]
    if header != TRAINING_SET_HEADER:
        hint = " (the header line is missing?)" if header.split(",")[0] in pool_ids else ""
        raise TrainingSetError(path, [f"{name}:header: expected exactly {TRAINING_SET_HEADER!r}, "
                                      f"found {_shown(header)}{hint}"])
    rows = lines[1:]
    if not rows:
        raise TrainingSetError(path, [f"{name}: no rows after the header; a training set needs at least one image"])
    problems = ProblemList(name)
    ids: list[str] = []
    labels: list[int] = []
    first_row: dict[str, int] = {}
    limit = len(rows) if budget is None else min(len(rows), budget)
    for number, line in enumerate(rows[:limit], start=1):
        problem = None
        try:
            fields = next(csv.reader([line]), [])
        except csv.Error as error:
            fields, problem = [], f"not a csv row ({error})"
        if problem:
            pass
        elif not line.strip():
            problem = "blank row; one image per row, and only the file's end may follow the last row"
        elif len(fields) != 2:
            problem = f"expected 2 fields (ImageID,Confidence), found {len(fields)} in {_shown(line)}"
        else:
            image_id, label = fields
            if not image_id:
                problem = "ImageID is empty"
            elif image_id not in pool_ids:
                problem = f"ImageID {_shown(image_id)} is not in the pool"
            elif label not in ("0", "1"):
                problem = f"Confidence {_shown(label)} must be 0 or 1"
            elif image_id in first_row:
                problem = f"duplicate ImageID {_shown(image_id)} (first on row {first_row[image_id]})"
            else:
                first_row[image_id] = number
                ids.append(image_id)
                labels.append(int(label))
        if problem:
            problems.add(f"{name}:row {number}: {problem}")
    if budget is not None and len(rows) > budget:
        problems.add(f"{name}:row {budget + 1}: more than {budget} rows; the budget is {budget} images "
                        f"(the file has {len(rows)})")
    if problems:
        raise TrainingSetError(path, problems.lines())
    return pd.DataFrame({ID_COLUMN: pd.Series(ids, dtype=object),
                         LABEL_COLUMN: np.array(labels, dtype=np.int64)})


# --- pool labels (the appliance's oracle file; not a DataPerf file) ---------------------------

def read_pool_labels(path: Path, pool_ids: np.ndarray) -> np.ndarray:
    """The true label (n,) int64 of every pool point, in pool order, from a csv ``ImageID,Confidence``.

    This is a dataset's own file (the appliance writes it for the digits; an
    official folder may add one), so it is checked as a whole rather than row
    by row: every pool ImageID must have exactly one label 0/1.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing file {path}")
    frame = pd.read_csv(path, dtype={ID_COLUMN: str, LABEL_COLUMN: str}, keep_default_na=False)
    missing = {ID_COLUMN, LABEL_COLUMN} - set(frame.columns)
    if missing:
        raise ValueError(f"{path.name}: missing column(s) {', '.join(sorted(missing))}")
    labels = pd.Series(_labels_01(frame[LABEL_COLUMN], path.name), index=frame[ID_COLUMN].to_numpy())
    if labels.index.has_duplicates:
        raise ValueError(f"{path.name}: {ID_COLUMN} {_shown(str(labels.index[labels.index.duplicated()][0]))} "
                         "appears more than once")
    found = labels.reindex(pd.Index(pool_ids, dtype=object))
    if found.isna().any():
        unknown = found.index[found.isna()]
        raise ValueError(f"{path.name}: no label for {len(unknown)} pool image(s), e.g. {_shown(str(unknown[0]))}")
    return found.to_numpy().astype(np.int64)


# --- examples -------------------------------------------------------------------------------

def write_examples(path: Path, image_ids, *, label_name: str, display_name: str,
                   original_urls=None) -> None:
    """Write an examples csv (LabelName,ImageID,Confidence,OriginalURL,DisplayName), every row a positive."""
    image_ids = [str(i) for i in image_ids]
    frame = pd.DataFrame({
        "LabelName": label_name,
        "ImageID": image_ids,
        "Confidence": 1,
        "OriginalURL": list(original_urls) if original_urls is not None else [""] * len(image_ids),
        "DisplayName": display_name,
    }, columns=list(EXAMPLE_COLUMNS))
    atomic_write_bytes(Path(path), frame.to_csv(index=False, lineterminator="\n").encode())


def read_examples(path: Path) -> pd.DataFrame:
    """The example positives of a task: the rows of an examples csv whose Confidence is 1 (all, if no such column).

    Only ``ImageID`` is required; the other columns of the DataPerf file are
    kept as they are. Raises ValueError naming the file if no example is left.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing file {path}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if ID_COLUMN not in frame.columns:
        raise ValueError(f"{path.name}: missing column {ID_COLUMN}; it has {', '.join(frame.columns)}")
    if LABEL_COLUMN in frame.columns:
        frame = frame[_labels_01(frame[LABEL_COLUMN], path.name) == 1]
    if frame.empty:
        raise ValueError(f"{path.name}: no example positives")
    return frame.reset_index(drop=True)
