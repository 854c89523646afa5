"""Run untrusted work (checking a user's upload) in a child process with a memory and a time limit.

A file crafted to unpack or read to gigabytes then ends that child, with a
clear error, instead of the app that serves every user (and Airflow and
PostgreSQL beside it on a small instance). The child is spawned, not forked:
a fork of a threaded server (Streamlit) may inherit a held lock.
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from typing import Any

#: Address space of a check's child: what the largest dataset the appliance accepts needs to be read
#: (MAX_PARQUET_VALUES float64, twice, plus the libraries' own mappings, about 1 GiB), and no more.
CHECK_MEMORY_BYTES = 3 * 2**30
#: A check that takes longer than this is stopped.
CHECK_TIMEOUT_S = 600.0


class BoundedRunError(RuntimeError):
    """The work in the child did not finish: over its memory or time, or it died. The message says which."""


def _child(send, memory_bytes: int, function: Callable[..., Any], args: tuple) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        outcome = ("ok", function(*args))
    except MemoryError:
        outcome = ("error", f"it needs more than the {memory_bytes / 2**30:.1f} GiB of memory a check may use")
    except Exception as error:  # noqa: BLE001 - sent to the parent as one line
        outcome = ("error", f"{type(error).__name__}: {error}".splitlines()[0])
    try:
        send.send(outcome)
    except MemoryError:
        send.send(("error", f"its outcome needs more than the {memory_bytes / 2**30:.1f} GiB of memory a check "
                            "may use"))


def run_bounded(function: Callable[..., Any], *args: Any, memory_bytes: int = CHECK_MEMORY_BYTES,
                timeout_s: float = CHECK_TIMEOUT_S) -> Any:
    """``function(*args)`` computed in a spawned child limited to `memory_bytes` of address space.

    `function` must be a module-level function; `args` and the result are
    pickled. Raises BoundedRunError (one line) when the child runs out of
    memory, takes longer than `timeout_s`, raises, or dies; the child is
    always gone when this returns.
    """
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, memory_bytes, function, args), daemon=True)
    process.start()
    send.close()
    try:
        if not receive.poll(timeout_s):
            raise BoundedRunError(f"it took longer than {timeout_s:.0f} s")
        status, value = receive.recv()
    except (EOFError, ConnectionError):
        process.join(5)
        raise BoundedRunError(f"the check's process died (exit code {process.exitcode}), most likely over the "
                              f"{memory_bytes / 2**30:.1f} GiB of memory a check may use") from None
    finally:
        receive.close()
        if process.is_alive():
            process.kill()
        process.join()
    if status != "ok":
        raise BoundedRunError(value)
    return value
