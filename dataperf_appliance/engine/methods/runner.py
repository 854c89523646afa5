"""Run a method file in a child process of its own: arrays in through files, its answer back, limits enforced.

The parent side of `child`. For each (task, repeat, setting) a method is run
anew, as a built-in strategy is: the child writes the inputs' ``.npy`` files
into a scratch folder under the data root, runs with the python of the
method's environment (`environments`; the appliance's own when it has no
requirements), and is killed past its time limit; its memory limit is set in
the child. A method that fails -- an exception, over a limit, an answer that
is not an order -- gives a `MethodOutcome` with the error and the traceback,
never an exception: the run's other methods go on.

What a method can do: it runs with the appliance's rights (docs/security.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataperf_appliance.engine.methods.environments import EnvironmentBuildError, ensure_environment

_HERE = Path(__file__).resolve().parent
#: The script the child runs, and the folder of modules a DataPerf method file imports (``appraiser``).
CHILD_SCRIPT, SHIM_FOLDER = _HERE / "child.py", _HERE / "shim"
#: Scratch folders of running methods, under the data root (nothing is written outside it).
SCRATCH_FOLDER = "scratch"
#: The interfaces a method file implements: DataPerf's debugging appraiser (fit, propose) and a selector (select).
APPRAISER, SELECTOR = "appraiser", "selector"
#: The environment variables a method reads: the repeat's seed, and each of its parameters.
SEED_VARIABLE, PARAMETER_PREFIX = "DATAPERF_SEED", "DATAPERF_PARAM_"
#: The thread counts of the numerical libraries (OpenMP, OpenBLAS, MKL) a method's process starts with.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# How much of a failed method's output its error keeps.
_LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class MethodCall:
    """What runs: a method file (absolute), its requirements (or None), the class to take (None: the only one
    with the track's entry points), its parameters and its limits."""

    name: str
    file: Path
    requirements: Path | None = None
    class_name: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    memory_mib: int = 8192
    timeout_s: float = 3600.0


@dataclass
class MethodOutcome:
    """A method's answer on one task, or why there is none.

    answer: {"order"} (debugging) or {"rows", "labels", "revealed"} (selection), arrays; empty on failure.
    seconds, cpu_seconds: of the method's own work (fit and propose; select), as DataPerf's time files;
    wall_seconds: the whole child, its start and the environment's lookup included;
    peak_rss_mib: the child's peak memory; stopped_at: where a method with a stopping rule stopped.
    """

    name: str
    answer: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float | None = None
    cpu_seconds: float | None = None
    wall_seconds: float | None = None
    peak_rss_mib: float | None = None
    stopped_at: Any = None
    class_name: str | None = None
    error: str | None = None
    traceback: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def record(self) -> dict[str, Any]:
        """The outcome's figures for results.json (no arrays)."""
        fields = ("seconds", "cpu_seconds", "wall_seconds", "peak_rss_mib", "stopped_at", "class_name", "error",
                  "traceback")
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}


def _tail(path: Path) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:])


def _environment(call: MethodCall) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(PARAMETER_PREFIX)}
    # JSON, text included: "0.5" stays a text, where a raw 0.5 would read back as a number.
    env.update({f"{PARAMETER_PREFIX}{key.upper()}": json.dumps(value) for key, value in call.parameters.items()})
    env["PYTHONHASHSEED"] = "0"
    # One thread per method, as the engine's own fits: the methods of a run share the cores, and on the small
    # training sets of a task a library's thread pool spins more than it computes (XGBoost: ~50x slower).
    for name in THREAD_VARIABLES:
        env.setdefault(name, "1")
    env.pop("PYTHONPATH", None)  # the method's environment, not the appliance's, provides its imports
    return env


def run_method(call: MethodCall, interface: str, inputs: dict[str, np.ndarray], *, budget: int, seed: int,
               data_root: Path) -> MethodOutcome:
    """Run `call`, a method of `interface` (`APPRAISER`, `SELECTOR`), on `inputs` (the arrays the child reads,
    by name) in a child process; its outcome.

    Never raises for the method's own faults: they are in the outcome's `error` (one line) and `traceback`.
    """
    started = time.perf_counter()
    outcome = MethodOutcome(call.name)
    scratch = Path(data_root) / SCRATCH_FOLDER
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{call.name}.", dir=scratch) as tmp:
        folder = Path(tmp)
        try:
            python = ensure_environment(call.requirements, data_root) if call.requirements else None
        except (EnvironmentBuildError, OSError, subprocess.SubprocessError) as error:
            outcome.error = f"{call.name}: {error}"
            return outcome
        for name, array in inputs.items():
            np.save(folder / f"{name}.npy", array)
        request = {"interface": interface, "file": str(call.file), "class_name": call.class_name, "seed": seed,
                   "budget": budget, "memory_mib": call.memory_mib, "shim": str(SHIM_FOLDER)}
        (folder / "request.json").write_text(json.dumps(request))
        env = {**_environment(call), SEED_VARIABLE: str(seed)}
        log = folder / "output.log"
        with open(log, "wb") as out:
            child = subprocess.Popen([str(python or sys.executable), str(CHILD_SCRIPT), str(folder)], env=env,
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=folder, start_new_session=True)
            try:
                code = child.wait(timeout=call.timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)  # the method's own children too
                child.wait()
                code = None
            except BaseException:
                # This process is being stopped (its Airflow task's time limit, the run's, an interrupt): the
                # method, in a session of its own, would outlive it and hold a core for nobody.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                raise
        outcome.wall_seconds = round(time.perf_counter() - started, 6)
        if code is None:
            outcome.error = f"{call.name}: stopped after its time limit of {call.timeout_s:g} s"
            outcome.traceback = _tail(log)
        elif (folder / "error.json").exists():
            reported = json.loads((folder / "error.json").read_text())
            outcome.error = f"{call.name}: {reported['error']}"
            outcome.traceback = reported["traceback"]
        elif code != 0 or not (folder / "outcome.json").exists():
            cause = f"killed by signal {-code}" if code < 0 else f"exited {code}"
            hint = " (over its memory limit?)" if code in (-signal.SIGKILL, -signal.SIGSEGV) else ""
            outcome.error = f"{call.name}: the method's process {cause}{hint}"
            outcome.traceback = _tail(log)
        else:
            reported = json.loads((folder / "outcome.json").read_text())
            for key in ("seconds", "cpu_seconds", "peak_rss_mib", "stopped_at", "class_name"):
                setattr(outcome, key, reported.get(key))
            outcome.answer = {path.stem: np.load(path, allow_pickle=False)
                              for path in folder.glob("*.npy") if path.stem not in inputs}
    return outcome


def order_of(outcome: MethodOutcome, train_size: int) -> np.ndarray | None:
    """The debugging method's answer as an inspection order of `train_size` rows (rows it did not propose
    appended in index order, as for a submitted file), or None after setting the outcome's error."""
    proposed = outcome.answer.get("order")
    problem = None
    if proposed is None:
        problem = "propose returned nothing"
    elif proposed.dtype.kind == "f" and np.all(np.isfinite(proposed)) and np.all(proposed == np.round(proposed)):
        proposed = proposed.astype(np.int64)
    if problem is None and proposed.dtype.kind not in "iu":
        problem = f"propose must return row indices (integers); got {proposed.dtype}"
    elif problem is None and proposed.size and (proposed.min() < 0 or proposed.max() >= train_size):
        bad = int(proposed[(proposed < 0) | (proposed >= train_size)][0])
        problem = f"propose returned row {bad}, outside 0..{train_size - 1}"
    elif problem is None and len(np.unique(proposed)) != len(proposed):
        values, counts = np.unique(proposed, return_counts=True)
        problem = f"propose returned row {int(values[counts > 1][0])} twice"
    if problem:
        outcome.error = f"{outcome.name}: {problem}"
        return None
    rest = np.setdiff1d(np.arange(train_size), proposed)
    return np.concatenate([proposed.astype(np.int64), rest]).astype(np.int64)


def check_training_set(outcome: MethodOutcome, pool_size: int, budget: int, pool_labels: np.ndarray | None) -> None:
    """Check a selection method's answer (distinct pool rows, at most the budget, labels 0/1 of the same length,
    the oracle's label wherever it bought one); on a fault, set the outcome's error."""
    rows, labels = outcome.answer.get("rows"), outcome.answer.get("labels")
    revealed = outcome.answer.get("revealed", np.zeros(0, np.int64))
    problem = None
    if rows is None or labels is None:
        problem = "select returned nothing"
    elif rows.dtype.kind not in "iu" or not len(rows):
        problem = f"select must return pool rows (integers), at least one; got {rows.dtype} {rows.shape}"
    elif len(rows) > budget:
        problem = f"select returned {len(rows)} rows, more than the budget of {budget}"
    elif rows.min() < 0 or rows.max() >= pool_size:
        problem = f"select returned a row outside the pool's 0..{pool_size - 1}"
    elif len(np.unique(rows)) != len(rows):
        problem = "select returned a pool row twice"
    elif labels.shape != rows.shape or not np.isin(labels, (0, 1)).all():
        problem = f"select must return a label 0 or 1 for each of its {len(rows)} rows; got {labels.shape}"
    elif pool_labels is not None:
        bought = np.isin(rows, revealed)
        wrong = rows[bought & (labels != pool_labels[rows])]
        if len(wrong):
            problem = f"select returned a label other than the oracle's for pool row {int(wrong[0])}"
    if problem:
        outcome.error = f"{outcome.name}: {problem}"
    else:
        outcome.answer["rows"], outcome.answer["labels"] = rows.astype(np.int64), labels.astype(np.int64)


def call_of(method: Any, source_dir: Path) -> MethodCall:
    """The `MethodCall` of a setup's method entry (`config.MethodFile`), its paths taken from `source_dir`."""
    source_dir = Path(source_dir).resolve()  # the child runs in its scratch folder
    return MethodCall(method.name, source_dir / method.file,
                      source_dir / method.requirements if method.requirements else None,
                      method.class_name, dict(method.params), method.memory_mib, float(method.timeout_s))


def library_call(name: str, parameters: dict[str, Any] | None = None) -> MethodCall:
    """The `MethodCall` of a library's method of the catalog (its appraiser file and its folder's requirements)."""
    from dataperf_appliance.config.catalog import DEBUGGING_LIBRARY_METHODS

    path = DEBUGGING_LIBRARY_METHODS[name].path
    return MethodCall(name, path, path.parent / "requirements.txt", parameters=dict(parameters or {}))


def requirements_of(setup: Any, name: str, source_dir: Path) -> Path | None:
    """The requirements file of the setup's method `name` run in a child process (`setup.isolated_methods`):
    its own entry's under ``methods:``, else the library's; None when it runs in the appliance's environment."""
    for method in setup.methods:
        if method.name == name:
            return call_of(method, source_dir).requirements
    return library_call(name).requirements


#: The kind of a method's entry in results.json, beside ``baseline`` and ``submission``.
METHOD_KIND = "method"
# The most of a failed method's traceback kept in results.json.
_TRACEBACK_CHARS = 4000


def failed_entry(outcome: MethodOutcome, metrics: tuple[str, ...]) -> dict[str, Any]:
    """The results.json entry of a method that failed on a task: every metric null, the error and traceback."""
    record = outcome.record()
    if record.get("traceback"):
        record["traceback"] = record["traceback"][-_TRACEBACK_CHARS:]
    return {"kind": METHOD_KIND, **{metric: None for metric in metrics}, "time_s": None, "method": record}
