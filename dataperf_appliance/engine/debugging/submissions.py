"""DataPerf debugging-track submission files: an inspection order and the seconds it took.

A submission of method M for task D is two files in one folder, exactly as the
reference evaluator reads them (dataperf-formats.md):

``{D}_{M}.txt``
    one 0-based row index of the train parquet per line, the row to inspect
    first on the first line;
``time_{D}_{M}.txt``
    one float: the seconds the method took to produce the order.

`write_submission` writes both; `read_submission` and `read_time_file` check a
file someone else wrote and say, line by line, what is wrong with it;
`complete_order` extends a partial order to every training row.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from dataperf_appliance.engine.atomic_file import atomic_write_bytes
from dataperf_appliance.engine.user_files import MAX_REPORTED_PROBLEMS  # noqa: F401 (re-exported)
from dataperf_appliance.engine.user_files import MAX_SUBMISSION_BYTES, ProblemList, UserFileError, decode_text, read_text
from dataperf_appliance.config.names import SAFE_NAME_RULE, is_safe_name

#: A time file larger than this is refused before it is read (bytes).
MAX_TIME_FILE_BYTES = 1024

_DIGITS = re.compile(r"[0-9]+")  # ASCII digits only: int() would also take '٣', '+3', ' 3', '3_0'
# data_id and method become parts of file names: no separators, no leading dot.


class SubmissionError(UserFileError):
    """A submission or time file that cannot be used.

    The message has one problem per line, each as ``file:line: what is wrong``
    (``file: what is wrong`` for the file as a whole); `problems` holds them
    as a list, `path` the file.
    """


def submission_paths(folder: Path, data_id: str, method: str) -> tuple[Path, Path]:
    """The order file ``{folder}/{data_id}_{method}.txt`` and its time file ``{folder}/time_{data_id}_{method}.txt``."""
    for what, value in (("data_id", data_id), ("method", method)):
        if not is_safe_name(value, max_length=len(value) if isinstance(value, str) else 0):
            raise ValueError(f"{what} {value!r} cannot be part of a file name: {SAFE_NAME_RULE}")
    folder = Path(folder)
    return folder / f"{data_id}_{method}.txt", folder / f"time_{data_id}_{method}.txt"


def write_submission(folder: Path, data_id: str, method: str, order: np.ndarray, seconds: float | None) -> Path:
    """Write the order (n,) of non-negative, distinct row indices and its time (seconds >= 0, or None: no time
    file, for a user's order given without one); return the order file.

    Each file is written whole to a temporary name and then renamed, so a
    reader never sees half a file. The time file is written first: an order
    file that exists always has its time beside it (when it has one).
    """
    order = np.asarray(order)
    if order.ndim != 1 or len(order) == 0 or order.dtype.kind not in "iu":
        raise ValueError(f"order must be a non-empty 1-D array of integer row indices; got {order.dtype} of shape {order.shape}")
    if order.min() < 0:
        raise ValueError(f"order holds a negative row index {int(order.min())}")
    if len(np.unique(order)) != len(order):
        raise ValueError("order lists some row more than once")
    if seconds is not None:
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a finite number >= 0; got {seconds}")
    order_path, time_path = submission_paths(folder, data_id, method)
    if seconds is not None:
        atomic_write_bytes(time_path, f"{seconds!r}\n".encode("ascii"))
    atomic_write_bytes(order_path, "".join(f"{index}\n" for index in order.tolist()).encode("ascii"))
    return order_path


def _check_train_size(train_size: int) -> int:
    if isinstance(train_size, bool) or not isinstance(train_size, (int, np.integer)) or train_size < 1:
        raise ValueError(f"train_size must be a positive integer; got {train_size!r}")
    return int(train_size)


def _shown(token: str, limit: int = 40) -> str:
    """`token` quoted for a message, shortened when long."""
    return repr(token if len(token) <= limit else token[:limit] + "...")


def _line_name(line: int) -> str:
    return f":{line}"


def read_submission(path: Path, train_size: int) -> np.ndarray:
    """The order (k,) int64 in a user's submission file, 1 <= k <= train_size, checked line by line.

    A valid file has one index per line: ASCII digits only (no sign, no
    ``3.0``), each in ``0..train_size-1``, none twice, at least one and at most
    `train_size` lines. Spaces around an index and Windows line ends are
    accepted; a final line end is fine, any other blank line is an error. A
    file over `MAX_SUBMISSION_BYTES` is refused before it is read.

    Raises SubmissionError listing up to `MAX_REPORTED_PROBLEMS` problems, one
    per line, e.g. ``mine.txt:7: index 250 is out of range 0..199``;
    FileNotFoundError (an OSError) when there is no file. A partial order can
    be extended with `complete_order`.
    """
    path = Path(path)
    train_size = _check_train_size(train_size)
    name = path.name
    text = read_text(path, max_bytes=MAX_SUBMISSION_BYTES, what="a submission", error=SubmissionError,
                     line_name=_line_name)
    if not text.strip():
        raise SubmissionError(path, [f"{name}: the file is empty; expected one training row index per line"])
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()  # the final line end is not a blank line
    problems = ProblemList(name)
    order: list[int] = []
    first_line = [0] * train_size  # 1-based line where each index appeared; 0 = not yet
    widest = len(str(train_size - 1))
    for number, line in enumerate(lines[:train_size], start=1):
        token = line.strip()  # also drops the '\r' of a Windows line end
        problem = None
        if not token:
            problem = "blank line; one index per line, and only the last line may end the file"
        elif token[0] == "-" and _DIGITS.fullmatch(token[1:]):
            problem = f"index {_shown(token)[1:-1]} is out of range 0..{train_size - 1}"
        elif not _DIGITS.fullmatch(token):
            problem = f"{_shown(token)} is not an integer (write the index with the digits 0-9 only)"
        elif len(token.lstrip("0")) > widest:  # before int(): a 5,000-digit line must not reach int()
            problem = f"index {_shown(token)[1:-1]} is out of range 0..{train_size - 1}"
        else:
            index = int(token)
            if index >= train_size:
                problem = f"index {index} is out of range 0..{train_size - 1}"
            elif first_line[index]:
                problem = f"duplicate index {index} (first on line {first_line[index]})"
            else:
                first_line[index] = number
                order.append(index)
        if problem:
            problems.add(f"{name}:{number}: {problem}")
    if len(lines) > train_size:
        problems.add(f"{name}:{train_size + 1}: more than {train_size} lines; the task has {train_size} "
                        "training rows, and each is listed at most once")
    if problems:
        raise SubmissionError(path, problems.lines())
    return np.array(order, dtype=np.int64)


def read_time_file(path: Path) -> float | None:
    """The seconds (a finite float >= 0) in a time file, or None if there is no such file.

    Raises SubmissionError when the file holds anything but one such number
    (surrounding whitespace and a final line end are fine).
    """
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size > MAX_TIME_FILE_BYTES:
        raise SubmissionError(path, [f"{name}: the file has {size:,} bytes; a time file holds one number"])
    token = decode_text(path, path.read_bytes(), SubmissionError, _line_name).strip()
    if not token:
        raise SubmissionError(path, [f"{name}: the file is empty; expected the seconds the method took"])
    if "\n" in token:
        raise SubmissionError(path, [f"{name}:2: expected one number on one line"])
    try:
        seconds = float(token)
    except ValueError:
        raise SubmissionError(path, [f"{name}:1: {_shown(token)} is not a number of seconds"]) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise SubmissionError(path, [f"{name}:1: {_shown(token)} is not a finite number of seconds >= 0"])
    return seconds


def complete_order(partial: np.ndarray, train_size: int) -> np.ndarray:
    """`partial` (k,) followed by the rows it does not list, in ascending order: a permutation (train_size,) int64.

    The DataPerf curve runs over every budget 1..train_size, so a user's order
    of fewer lines must be extended before it is evaluated. The missing rows
    are appended in ascending index order (the order of the train file): a
    choice that needs no seed, is the same for every method, and favours no
    strategy. The curve past budget k therefore measures that tail, not the
    method; a report should say where the user's own order ended.

    `partial` must hold distinct indices in ``0..train_size-1`` (as
    `read_submission` returns them); ValueError otherwise.
    """
    train_size = _check_train_size(train_size)
    partial = np.asarray(partial)
    if partial.ndim != 1 or partial.dtype.kind not in "iu":
        raise ValueError(f"partial must be a 1-D array of integer row indices; got {partial.dtype} of shape {partial.shape}")
    if len(partial) and (partial.min() < 0 or partial.max() >= train_size):
        raise ValueError(f"partial holds an index outside 0..{train_size - 1}")
    listed = np.zeros(train_size, dtype=bool)
    listed[partial] = True
    if int(listed.sum()) != len(partial):
        raise ValueError("partial lists some row more than once")
    return np.concatenate([partial.astype(np.int64), np.flatnonzero(~listed)])
