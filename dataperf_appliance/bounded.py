"""Run untrusted work (checking a user's upload) in a child process with a memory and a time limit.

A file crafted to unpack or read to gigabytes then ends that child, with a
clear error, instead of the app that serves every user (and Airflow and
PostgreSQL beside it on a small instance). The child is a new interpreter,
not a fork: a fork of a threaded server (Streamlit) may inherit a held lock.
"""

from __future__ import annotations

import pickle
import resource
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
    process = subprocess.Popen([sys.executable, "-c", "from dataperf_appliance.bounded import _child_main; "
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
