"""Checked reading of the text files users hand in: a debugging submission, a selection training set.

Both tracks refuse an oversized file before reading it and name the line of
the first byte that is not UTF-8; each track says how it names a line
(``mine.txt:7`` for a submission, ``mine.csv:row 6`` for a training set).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

#: How a track names the 1-based line of a file in a problem, e.g. ``":7"`` or ``":row 6"``.
LineName = Callable[[int], str]

#: At most this many problems are listed in one UserFileError.
MAX_REPORTED_PROBLEMS = 20
#: A debugging submission file larger than this is refused before it is read (bytes). Kept here, with the
#: training sets' limit, so that the app's upload limit (upload_limits.py) follows them without importing
#: their readers' numpy and pandas into the login gate.
MAX_SUBMISSION_BYTES = 10 * 2**20
#: A selection training-set file larger than this is refused before it is read (bytes).
MAX_TRAINING_SET_BYTES = 64 * 2**20


class ProblemList:
    """The problems found in one file, kept up to `MAX_REPORTED_PROBLEMS` while collecting; the rest counted.

    A file of millions of bad lines must not build millions of messages.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.kept: list[str] = []
        self.hidden = 0

    def add(self, problem: str) -> None:
        if len(self.kept) < MAX_REPORTED_PROBLEMS:
            self.kept.append(problem)
        else:
            self.hidden += 1

    def __bool__(self) -> bool:
        return bool(self.kept)

    def lines(self) -> list[str]:
        """The problems kept, then one line saying how many more there were."""
        more = [f"{self.name}: ... and {self.hidden} more problem(s) not shown"] if self.hidden else []
        return self.kept + more


class UserFileError(ValueError):
    """A file handed in by a user that cannot be used.

    The message has one problem per line, each naming the file (and the line
    or row at fault); `problems` holds them as a list, `path` the file.
    """

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self):
        # Raised in a worker process (a cell of repeats), it is pickled back whole: path and problems.
        return type(self), (self.path, self.problems)


def decode_text(path: Path, data: bytes, error: type[UserFileError], line_name: LineName) -> str:
    """`data` (the bytes of `path`) as text; raises `error` naming the line of the first non-UTF-8 byte."""
    try:
        return data.decode("utf-8-sig")  # -sig: a byte-order mark some editors write is not an error
    except UnicodeDecodeError as problem:
        line = data[:problem.start].count(b"\n") + 1
        raise error(path, [f"{path.name}{line_name(line)}: not UTF-8 text "
                           f"(byte 0x{data[problem.start]:02x})"]) from None


def read_text(path: Path, *, max_bytes: int, what: str, error: type[UserFileError], line_name: LineName) -> str:
    """The text of `path`, refused with `error` before it is read when over `max_bytes`.

    `what` names the kind of file in that message (``"a submission"``).
    Raises FileNotFoundError (an OSError) when there is no file.
    """
    size = path.stat().st_size
    if size > max_bytes:
        raise error(path, [f"{path.name}: the file has {size:,} bytes; {what} may have at most {max_bytes:,}"])
    return decode_text(path, path.read_bytes(), error, line_name)
