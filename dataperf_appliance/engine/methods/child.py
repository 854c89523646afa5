"""Run one method file in this process, on arrays read from a request folder: the child side of `runner`.

Started as ``python child.py REQUEST_DIR`` by the appliance, often with the
python of a method's own virtual environment, so it imports nothing of the
appliance: only the standard library and numpy. The folder holds
``request.json`` and the inputs as ``.npy`` files; this writes the answer
(``order.npy``, or ``rows.npy`` and ``labels.npy``) and ``outcome.json``, or
``error.json`` with the traceback, and exits 0 or 3.

The memory limit is set here, before the method's code is imported, so that
what the method allocates is counted and nothing else is limited.
"""

import importlib.util
import inspect
import json
import os
import random
import resource
import sys
import time
import traceback
from pathlib import Path

FAILED_EXIT_CODE = 3
# What a class needs to be taken as a method of each interface: DataPerf's appraiser (debugging) and a selector.
ENTRY_POINTS = {"appraiser": ("fit", "propose"), "selector": ("select",)}


class MethodError(Exception):
    """The method file or its answer cannot be used (said in one line)."""


def _limit_memory(mebibytes):
    if mebibytes:
        limit = int(mebibytes) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _load_class(path, class_name, interface):
    # A name of its own: a file called appraiser.py must not take the place of the `appraiser` module it imports.
    spec = importlib.util.spec_from_file_location("dataperf_method", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    needed = ENTRY_POINTS[interface]
    if class_name:
        found = getattr(module, class_name, None)
        if not inspect.isclass(found):
            raise MethodError(f"{Path(path).name} has no class {class_name}")
        return found
    candidates = [value for value in vars(module).values()
                  if inspect.isclass(value) and value.__module__ == module.__name__
                  and all(callable(getattr(value, name, None)) for name in needed)]
    if len(candidates) != 1:
        what = " and ".join(needed)
        listed = ", ".join(c.__name__ for c in candidates)
        raise MethodError(f"{Path(path).name} defines {len(candidates)} classes with {what}"
                          + (f" ({listed}): name one with class:" if candidates else ""))
    return candidates[0]


class LabelOracle:
    """The pool's labels, revealed point by point and counted; more distinct points than the budget raise."""

    def __init__(self, labels, budget):
        self._labels, self._budget, self.revealed = labels, budget, {}

    def label(self, indices):
        import numpy as np

        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        for index in indices.tolist():
            if index not in self.revealed:
                if len(self.revealed) >= self._budget:
                    raise MethodError(f"asked for more than the budget of {self._budget} labels")
                self.revealed[index] = int(self._labels[index])
        return np.array([self.revealed[i] for i in indices.tolist()], dtype=np.int64)


def _run(folder, request):
    import numpy as np

    method_class = _load_class(request["file"], request.get("class_name"), request["interface"])
    method = method_class()
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    outcome = {"class_name": method_class.__name__}
    if request["interface"] == "appraiser":
        arrays = {name: np.load(folder / f"{name}.npy") for name in ("train_X", "train_y", "val_X", "val_y")}
        method.fit(arrays["train_X"], arrays["train_y"], arrays["val_X"], arrays["val_y"])
        proposed = method.propose(request["budget"])
        np.save(folder / "order.npy", np.asarray(proposed).reshape(-1))
    else:
        pool = np.load(folder / "pool_X.npy")
        oracle = LabelOracle(np.load(folder / "pool_labels.npy"), request["budget"])
        answer = method.select(pool, np.load(folder / "examples_X.npy"), request["budget"], oracle)
        rows, labels = answer if isinstance(answer, tuple) else (answer, None)
        rows = np.asarray(rows).reshape(-1)
        np.save(folder / "rows.npy", rows)
        np.save(folder / "labels.npy", oracle.label(rows) if labels is None else np.asarray(labels).reshape(-1))
        np.save(folder / "revealed.npy", np.array(list(oracle.revealed), dtype=np.int64))
    outcome["seconds"] = time.perf_counter() - started_wall
    outcome["cpu_seconds"] = time.process_time() - started_cpu
    stopped_at = getattr(method, "stopped_at", None)
    if stopped_at is not None:
        outcome["stopped_at"] = stopped_at if isinstance(stopped_at, (str, int, float, dict, list)) else str(stopped_at)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    outcome["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # KiB on Linux
    return outcome


def main(argv):
    folder = Path(argv[1])
    request = json.loads((folder / "request.json").read_text())
    _limit_memory(request.get("memory_mib"))
    # The official harness leaves numpy's global generator unseeded; a repeat's seed makes a run repeatable.
    random.seed(request["seed"])
    # The official modules the appliance provides first, then the method's own folder (its helper modules).
    sys.path[:0] = [request["shim"], str(Path(request["file"]).parent)]
    try:
        import numpy as np

        np.random.seed(request["seed"] % 2**32)
        outcome = _run(folder, request)
    except BaseException as error:  # the method's own failure, whatever it is, goes back with its traceback
        message = str(error) if isinstance(error, MethodError) else f"{type(error).__name__}: {error}"
        if isinstance(error, MemoryError):
            message = f"MemoryError: over the memory limit of {request.get('memory_mib')} MiB"
        (folder / "error.json").write_text(json.dumps({"error": message, "traceback": traceback.format_exc()}))
        return FAILED_EXIT_CODE
    (folder / "outcome.json").write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
