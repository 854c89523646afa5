"""Untrusted work and untrusted files, within bounds.

Work (checking a user's upload) runs in a child process with a memory and a
time limit: a file crafted to unpack or read to gigabytes then ends that
child, with a clear error, instead of the app that serves every user (and
Airflow and PostgreSQL beside it on a small instance). The child is a new
interpreter, not a fork: a fork of a threaded server (Streamlit) may inherit a
held lock.

A run's files, which may come from the bucket, are read whole only under a
size limit per kind of file (`MAX_MANIFEST_BYTES` and the others), and JSON is
used only when it is an object no deeper than `MAX_JSON_DEPTH`: anything else
is `Unreadable`, never another exception, whatever its depth or shape.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Address space of a check's child: what the largest dataset the appliance accepts needs to be read
#: (MAX_PARQUET_VALUES float64, twice, plus the libraries' own mappings, about 1 GiB), and no more.
CHECK_MEMORY_BYTES = 3 * 2**30
#: A check that takes longer than this is stopped.
CHECK_TIMEOUT_S = 600.0


class BoundedRunError(RuntimeError):
    """The work in the child did not finish: over its memory or time, or it died. The message says which."""


def _child_main() -> None:
    """The child: read (memory_bytes, function, args) pickled from stdin, write the outcome pickled to stdout."""
    memory_bytes, function, args = pickle.load(sys.stdin.buffer)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        outcome = ("ok", (function(*args), _peak_bytes()))
    except MemoryError:
        outcome = ("error", f"it needs more than the {memory_bytes / 2**30:.1f} GiB of memory a check may use")
    except Exception as error:  # noqa: BLE001 - sent to the parent as one line
        outcome = ("error", f"{type(error).__name__}: {error}".splitlines()[0])
    try:
        data = pickle.dumps(outcome)
    except MemoryError:
        data = pickle.dumps(("error", f"its outcome needs more than the {memory_bytes / 2**30:.1f} GiB of memory "
                                      "a check may use"))
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _peak_bytes() -> int:
    """This process's peak resident memory (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run_bounded(function: Callable[..., Any], *args: Any, memory_bytes: int = CHECK_MEMORY_BYTES,
                timeout_s: float = CHECK_TIMEOUT_S, with_peak: bool = False) -> Any:
    """``function(*args)`` computed in a new Python process limited to `memory_bytes` of address space.

    With `with_peak`: (the result, the child's peak resident memory in bytes).

    `function` must be a module-level function of an importable module; `args`
    and the result are pickled. Raises BoundedRunError (one line) when the
    child runs out of memory, takes longer than `timeout_s`, raises, or dies;
    the child is always gone when this returns.
    """
    request = pickle.dumps((memory_bytes, function, args))
    # A fresh interpreter (not a fork of a threaded server, nor multiprocessing's spawn, which would run
    # the server's main module again), its errors to our stderr.
    process = subprocess.Popen([sys.executable, "-c", "from dataperf_appliance.engine.bounded import _child_main; "
                                "_child_main()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        out, _ = process.communicate(request, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BoundedRunError(f"it took longer than {timeout_s:.0f} s") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    try:
        status, value = pickle.loads(out)
    except (pickle.UnpicklingError, EOFError, ValueError):
        raise BoundedRunError(f"the check's process died (exit code {process.returncode}), most likely over the "
                              f"{memory_bytes / 2**30:.1f} GiB of memory a check may use") from None
    if status != "ok":
        raise BoundedRunError(value)
    result, peak = value
    return (result, peak) if with_peak else result


# ---- bounded reads: a run's files, which may come from the bucket (whoever can write it) -----------------------

#: The largest file of each kind the app reads whole; a larger one is refused before it is read. Measured on real
#: runs (docs/security.md): a manifest.json is 3-21 KB; a results.json 0.5 MB (the default run), 0.8 MB (a sweep of
#: 24 cells), about 55 MB for the largest sweep the grid allows at the default sizes (500 cells of one repeat,
#: train_size 200), which parses to a peak of 155 MiB in 4 s.
MAX_MANIFEST_BYTES = 2**20
MAX_RESULTS_BYTES = 64 * 2**20
#: A run's tables (sweep.csv, repeats.csv: 1-22 KB in those runs) and pictures (plots/*.png: 40-310 KB).
MAX_TABLE_BYTES = 64 * 2**20
MAX_PLOT_BYTES = 16 * 2**20
#: A whole run, on disk or in the bucket: the runs above are 0.3-3 MB.
MAX_RUN_BYTES = 2 * 2**30
#: One download the Run page hands Streamlit (a file, or the whole-run zip): Streamlit keeps its bytes in memory
#: for the session, on an instance of 4 GiB shared with Airflow and PostgreSQL, so this is well under MAX_RUN_BYTES.
MAX_SERVED_BYTES = 256 * 2**20
#: JSON nested deeper is refused: the appliance writes 9 levels at most, and a deeper value would exhaust the
#: recursion of whatever walks it later (a page rendering it, Compare flattening it).
MAX_JSON_DEPTH = 32


class Unreadable(ValueError):
    """A file the app will not use: too large, not a regular file, not JSON, too deep, or not a JSON object.

    The message names the file and says which.
    """


def read_limited(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The content of the regular file `path`, refused (Unreadable) when it is larger than `max_bytes`.

    The size is checked before reading and again while reading (the file may grow meanwhile). OSError when it
    cannot be read (FileNotFoundError when there is none).
    """
    path = Path(path)
    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the reader for ever
        raise Unreadable(f"{path} is not a regular file")
    with path.open("rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        data = b"" if size > max_bytes else stream.read(max_bytes + 1)
    if size > max_bytes or len(data) > max_bytes:
        raise Unreadable(f"{path} is {max(size, len(data)):,} bytes, over the {max_bytes:,} allowed")
    return data


def json_object(data: bytes | str, name: str) -> dict:
    """`data` parsed as a JSON object; Unreadable, naming `name`, for anything else.

    Anything else: not JSON or not UTF-8, nested deeper than MAX_JSON_DEPTH (however deep: the parser's own
    RecursionError is caught), or a value that is not an object (a list where a mapping is expected).
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise Unreadable(f"{name} is nested too deep to read") from None
    except MemoryError:
        raise Unreadable(f"{name} does not fit in the memory left to read it") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
        raise Unreadable(f"{name} is not JSON: {str(error).splitlines()[0][:200]}") from None
    if not isinstance(value, dict):
        raise Unreadable(f"{name} holds a JSON {type(value).__name__}, not an object")
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise Unreadable(f"{name} is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def read_json_object(path: str | os.PathLike, max_bytes: int) -> dict:
    """The JSON object in the file `path` (see `read_limited` and `json_object`): Unreadable or OSError."""
    return json_object(read_limited(path, max_bytes), str(path))


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` (parsed JSON) nests containers more than `limit` deep; iterative, so any depth is fine."""
    level = [value]
    for _ in range(limit):
        # Only containers go on to the next level: a list of a million numbers is one C-speed pass.
        level = [child for item in level for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, (dict, list))]
        if not level:
            return False
    return True
