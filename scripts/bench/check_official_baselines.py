#!/usr/bin/env python3
"""Check the library's DataPerf baselines against DataPerf's own code on the same inputs, and print the figures.

The library (dataperf_appliance/engine/methods/library/) re-implements DataPerf's
debugging baselines: ``neighbor_shapley`` and ``mc_shapley`` on datascope
0.0.8, ``influence_function`` on torch. This script builds small synthetic
tasks (two classes, a share of the training labels flipped, float32 rows,
labels as (N, 1) columns), runs DataPerf's appraiser classes from a copy of
its debugging evaluator (DS3Lab/dataperf-vision-debugging, imported from its
``app`` folder) and the library's files on each task, each side in a
virtual environment of its own, and prints for each pair: whether the
orders are equal, their Spearman and Kendall rank correlations, how many of
the first (noise share x N) rows they share, the largest difference of
their values, and why they differ.

It also checks the library's exact KNN-Shapley (pyDVL) against the
appliance's own ``knn_shapley_values`` (numpy 2, the appliance's
environment), and datascope's 1-nearest-neighbour values against
``knn_shapley_values(k=1)``.

Each side runs as ``PYTHON check_official_baselines.py --worker SPEC`` in
its environment; the task's arrays go through ``.npy`` files. A library file
runs as the appliance's child process runs it: the appliance's shim folder
(``appraiser``, ``method_parameters``) and the file's own folder on
``sys.path``, ``DATAPERF_SEED`` and ``DATAPERF_PARAM_*`` set. Every side gets
``--threads`` threads (default 1, as the appliance's runner gives a method)
for OpenMP, OpenBLAS and MKL. DataPerf's code is run as it is except where a
flag says otherwise:

- ``--mc-iterations`` (default 5): DataPerf's mc_shapley hard-codes 100
  Monte Carlo iterations, about 0.7 s per XGBoost fit and some 65 fits per
  iteration at 2048 features (over an hour a side). Its ShapleyImportance is
  given this number instead; datascope draws the permutations from its fixed
  seed 7 in both, so the first iterations are the same ones.
- ``--influence-official`` (default ``reduced,last-point``): DataPerf's
  influence_function computes 80 x 50 x 200 Hessian-vector products (35 to
  120 s per validation row at 2048 features on 2 cores, 45 minutes to 2.6
  hours in all). ``reduced`` runs its appraiser
  with the recursion depth set to 1 (each of its 200 recursions restarts
  from the same vector on the same batch, so they all give the first one's
  result); ``last-point`` runs its own functions with the full settings
  (depth 200, 50 repeats) on the one validation row whose order it keeps
  (row 79); ``full`` runs it untouched.

Its LinearModel takes 2048 inputs: with other widths DataPerf's
influence_function cannot run, and the script says so.

Usage (the pythons of environments that have each side's libraries)::

    python scripts/bench/check_official_baselines.py --official-repo /tmp/offdbg \\
        --official-python ENV_OFFICIAL/bin/python --datascope-python ENV_DATASCOPE/bin/python \\
        --influence-python ENV_TORCH/bin/python --pydvl-python ENV_PYDVL/bin/python \\
        --appliance-python .venv/bin/python [--dims 256,2048] [--only neighbor_shapley,mc_shapley]

The official environment needs what DataPerf's app imports: datascope 0.0.8,
xgboost, scikit-learn, torch, pyarrow, loguru, tqdm. The others are built
from the library's requirements files. A check whose python is not given is
skipped. Exit status 0 when every check that ran gave equal orders where the
same computation is expected, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "dataperf_appliance" / "methods" / "library"
DATASCOPE_FOLDER = LIBRARY / "official_datascope"
INFLUENCE_FILE = LIBRARY / "official_influence" / "influence_function.py"
PYDVL_FOLDER = LIBRARY / "pydvl_valuation"
#: The input width DataPerf's LinearModel (influence_function) is built for.
OFFICIAL_INFLUENCE_WIDTH = 2048
#: The validation row whose order DataPerf's influence_function keeps: 40 per class x 2 classes, the last.
OFFICIAL_INFLUENCE_ROW = 79
CHECKS = ("neighbor_shapley", "mc_shapley", "influence_function", "knn_shapley")
#: The modules the appliance's child process provides to a method file (``appraiser``, ``method_parameters``).
SHIM_FOLDER = REPO / "dataperf_appliance" / "methods" / "shim"
#: The thread counts the appliance's runner gives a method's process (unless the caller's environment sets them).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# --- the task -------------------------------------------------------------------------------

def make_task(rows: int, val_rows: int, dim: int, noise: float, seed: int, separation: float = 3.0):
    """Two Gaussian classes `separation` apart along a random direction; a `noise` share of training labels flipped.

    Returns train_X (rows, dim) float32, train_y (rows, 1) int64 (noisy), val_X, val_y (clean) and the
    flipped rows. With separation 3, logistic regression reaches about 0.95 validation accuracy on the clean
    labels and 0.7 on the noisy ones.
    """
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)

    def draw(n):
        labels = rng.integers(0, 2, n)
        features = rng.normal(size=(n, dim)) + ((2 * labels - 1) * separation)[:, None] * direction
        return features.astype(np.float32), labels.astype(np.int64)

    train_X, clean = draw(rows)
    val_X, val_y = draw(val_rows)
    flipped = np.sort(rng.choice(rows, int(round(noise * rows)), replace=False))
    noisy = clean.copy()
    noisy[flipped] = 1 - noisy[flipped]
    return train_X, noisy[:, None], val_X, val_y[:, None], flipped


# --- the worker side: runs in a side's environment, imports only numpy and that side's libraries -------------

def _load_task(folder: Path):
    return [np.load(folder / f"{name}.npy") for name in ("train_X", "train_y", "val_X", "val_y")]


def _seed_like_the_runner(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)


def _run_library_file(spec: dict, arrays) -> dict:
    """One library appraiser file, loaded and called as the appliance's child process does."""
    import importlib.util
    import inspect

    # As the child process: the appliance's shim folder first, then the method's own folder (its helpers).
    sys.path[:0] = [str(SHIM_FOLDER), str(Path(spec["file"]).parent)]
    module_spec = importlib.util.spec_from_file_location("dataperf_method", spec["file"])
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    classes = [value for value in vars(module).values() if inspect.isclass(value)
               and value.__module__ == module.__name__ and callable(getattr(value, "propose", None))]
    if len(classes) != 1:
        raise RuntimeError(f"{spec['file']} defines {len(classes)} appraiser classes")
    _seed_like_the_runner(spec["seed"])
    appraiser = classes[0]()
    train_X, train_y, val_X, val_y = arrays
    started = time.perf_counter()
    appraiser.fit(train_X, train_y, val_X, val_y)
    order = appraiser.propose(len(train_X) + 1)
    seconds = time.perf_counter() - started
    values = getattr(appraiser, "values", None)
    if values is None:
        values = getattr(appraiser, "scores", None)
    return {"order": order, "values": values, "seconds": seconds,
            "stopped_at": getattr(appraiser, "stopped_at", None)}


def _run_official_datascope(spec: dict, arrays) -> dict:
    """DataPerf's ShapleyAppraiser (neighbor or Monte Carlo), its values recorded on the way."""
    sys.path.insert(0, spec["official_app"])
    import baselines.datascope_wrapper as wrapper
    from datascope.importance.shapley import ImportanceMethod

    recorded = {}
    mc_iterations = spec.get("mc_iterations")

    class RecordingShapleyImportance(wrapper.ShapleyImportance):
        def __init__(self, *args, **kwargs):
            if mc_iterations and "mc_iterations" in kwargs:
                kwargs["mc_iterations"] = mc_iterations
            super().__init__(*args, **kwargs)

        def score(self, *args, **kwargs):
            recorded["values"] = super().score(*args, **kwargs)
            return recorded["values"]

    wrapper.ShapleyImportance = RecordingShapleyImportance
    method = {"neighbor": ImportanceMethod.NEIGHBOR, "montecarlo": ImportanceMethod.MONTECARLO}[spec["method"]]
    _seed_like_the_runner(spec["seed"])
    appraiser = wrapper.ShapleyAppraiser(importance_method=method)
    train_X, train_y, val_X, val_y = arrays
    started = time.perf_counter()
    appraiser.fit(train_X, train_y, val_X, val_y)
    order = appraiser.propose(len(train_X) + 1)
    return {"order": order, "values": recorded.get("values"), "seconds": time.perf_counter() - started}


def _run_official_influence(spec: dict, arrays) -> dict:
    """DataPerf's influence_function: its appraiser (depth as asked) or its functions on the row it keeps."""
    sys.path.insert(0, spec["official_app"])
    import baselines.influence_function as influence

    train_X, train_y, val_X, val_y = arrays
    _seed_like_the_runner(spec["seed"])
    started = time.perf_counter()
    if spec["how"] == "last-point":
        from baselines.ptif.calc_influence_function import calc_influence_single
        from classifier import LogisticClassifier

        classifier = LogisticClassifier()
        classifier.fit(train_X, train_y)
        loaders = influence.InfluenceFunctionAppraiser()
        values, _, helpful, _ = calc_influence_single(
            classifier.model, loaders.create_dataloader(train_X, train_y), loaders.create_dataloader(val_X, val_y),
            test_id_num=OFFICIAL_INFLUENCE_ROW, gpu=-1, recursion_depth=200, r=50)
        return {"order": helpful, "values": [float(v) for v in values], "seconds": time.perf_counter() - started}
    recorded = {}
    original = influence.calc_img_wise

    def calc_img_wise(config, model, train_loader, test_loader):
        if spec["how"] == "reduced":
            config = {**config, "recursion_depth": 1}
        recorded["result"] = original(config, model, train_loader, test_loader)
        return recorded["result"]

    influence.calc_img_wise = calc_img_wise
    appraiser = influence.InfluenceFunctionAppraiser()
    appraiser.fit(train_X, train_y, val_X, val_y)
    order = appraiser.propose(len(train_X) + 1)
    per_row = recorded["result"][0]
    last = per_row[str(max(int(key) for key in per_row))]["influence"]
    return {"order": order, "values": [float(v) for v in last], "seconds": time.perf_counter() - started}


def _run_appliance_knn(spec: dict, arrays) -> dict:
    sys.path.insert(0, spec["repo"])
    from dataperf_appliance.engine.debugging.debugging_strategies import knn_shapley_values

    train_X, train_y, val_X, val_y = arrays
    started = time.perf_counter()
    values = knn_shapley_values(train_X, train_y.reshape(-1), val_X, val_y.reshape(-1), k=spec["k"])
    return {"order": np.argsort(values, kind="stable"), "values": values, "seconds": time.perf_counter() - started}


def worker(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    os.chdir(spec["scratch"])  # DataPerf's influence code writes an outdir/ where it runs
    arrays = _load_task(Path(spec["task"]))
    runner = {"library": _run_library_file, "official_datascope": _run_official_datascope,
              "official_influence": _run_official_influence, "appliance_knn": _run_appliance_knn}[spec["kind"]]
    result = runner(spec, arrays)
    out = Path(spec["out"])
    np.save(out / "order.npy", np.asarray(result["order"], dtype=np.int64).reshape(-1))
    if result.get("values") is not None:
        np.save(out / "values.npy", np.asarray(result["values"], dtype=np.float64).reshape(-1))
    (out / "result.json").write_text(json.dumps({"seconds": result["seconds"],
                                                 "stopped_at": result.get("stopped_at")}, default=str))
    return 0


# --- the parent side -----------------------------------------------------------------------

class Side:
    """What one run gave: its order, its values (or None), seconds, and an error if it failed."""

    def __init__(self, label, order=None, values=None, seconds=None, stopped_at=None, error=None):
        self.label, self.order, self.values, self.seconds = label, order, values, seconds
        self.stopped_at, self.error = stopped_at, error


def run_side(label: str, python: str, spec: dict, scratch: Path, environment: dict | None = None) -> Side:
    folder = Path(tempfile.mkdtemp(prefix="side-", dir=scratch))
    spec = {**spec, "out": str(folder), "scratch": str(folder)}
    (folder / "spec.json").write_text(json.dumps(spec))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("DATAPERF_") and key != "PYTHONPATH"}
    env.update({"DATAPERF_SEED": str(spec["seed"]), "PYTHONHASHSEED": "0", **(environment or {})})
    if spec["threads"]:  # both sides alike: float sums (torch's, XGBoost's) can depend on the thread count
        env.update({name: str(spec["threads"]) for name in THREAD_VARIABLES})
    with open(folder / "log.txt", "w") as log:
        completed = subprocess.run([python, str(Path(__file__).resolve()), "--worker", str(folder / "spec.json")],
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
    if completed.returncode != 0:
        tail = (folder / "log.txt").read_text(errors="replace").strip().splitlines()[-3:]
        return Side(label, error=f"exit {completed.returncode}: " + " | ".join(tail))
    result = json.loads((folder / "result.json").read_text())
    values = np.load(folder / "values.npy") if (folder / "values.npy").exists() else None
    return Side(label, np.load(folder / "order.npy"), values, result["seconds"], result.get("stopped_at"))


def positions(order: np.ndarray) -> np.ndarray:
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    return where


def spearman_of_orders(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two permutations (no ties): 1 - 6 sum d^2 / (n (n^2 - 1))."""
    n = len(a)
    d = positions(a).astype(np.float64) - positions(b)
    return float(1 - 6 * np.sum(d * d) / (n * (n * n - 1)))


def kendall_of_orders(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau of two permutations (no ties): (concordant - discordant) / (n choose 2)."""
    pa, pb = positions(a), positions(b)
    upper = np.triu(np.ones((len(a), len(a)), dtype=bool), 1)
    signs = np.sign(pa[:, None] - pa[None, :]) * np.sign(pb[:, None] - pb[None, :])
    return float(signs[upper].sum() / upper.sum())


def tied_values(values: np.ndarray | None) -> int:
    """How many rows share their value with another row."""
    if values is None:
        return 0
    _, counts = np.unique(values, return_counts=True)
    return int(counts[counts > 1].sum())


def compare(name: str, first: Side, second: Side, n_flipped: int, expect_equal: bool, known_reason: str) -> dict:
    row = {"check": name, "sides": f"{first.label} | {second.label}", "expect_equal": expect_equal}
    failed = [side for side in (first, second) if side.error]
    if failed:
        row["error"] = "; ".join(f"{side.label}: {side.error}" for side in failed)
        return row
    a, b = np.asarray(first.order), np.asarray(second.order)
    n = len(a)
    row.update(rows=n, seconds=[round(first.seconds, 1), round(second.seconds, 1)],
               equal_orders=bool(np.array_equal(a, b)),
               first_difference=(int(np.argmax(a != b)) if not np.array_equal(a, b) else None),
               spearman=round(spearman_of_orders(a, b), 4), kendall=round(kendall_of_orders(a, b), 4),
               top_overlap=f"{len(set(a[:n_flipped].tolist()) & set(b[:n_flipped].tolist()))}/{n_flipped}")
    if first.values is not None and second.values is not None and len(first.values) == len(second.values):
        difference = np.asarray(first.values, dtype=np.float64) - np.asarray(second.values, dtype=np.float64)
        row["max_abs_value_difference"] = float(np.max(np.abs(difference)))
        row["max_abs_difference_after_constant_shift"] = float(np.max(np.abs(difference - difference.mean())))
    ties = max(tied_values(first.values), tied_values(second.values))
    if row["equal_orders"]:
        reason = "equal: " + known_reason
    elif ties and row.get("max_abs_value_difference", 1.0) == 0.0:
        reason = f"the same values; {ties} rows tie on value and the ties are ordered differently"
    else:
        reason = ("NOT EQUAL, although expected: " if expect_equal else "") + known_reason
        if ties:
            reason += f" ({ties} rows tie on value)"
    row["reason"] = reason
    for side in (first, second):
        if side.stopped_at is not None:
            row.setdefault("stopped_at", {})[side.label] = side.stopped_at
    return row


def print_row(row: dict) -> None:
    head = f"[{row['check']}] {row['sides']}"
    if "error" in row:
        print(f"{head}\n    FAILED: {row['error']}")
        return
    print(f"{head}\n    seconds {row['seconds'][0]} | {row['seconds'][1]}; equal orders: {row['equal_orders']}"
          + (f" (first difference at position {row['first_difference']})" if not row["equal_orders"] else "")
          + f"; Spearman {row['spearman']}, Kendall {row['kendall']}; first-{row['top_overlap'].split('/')[1]} "
            f"overlap {row['top_overlap']}")
    if "max_abs_value_difference" in row:
        print(f"    values: max |difference| {row['max_abs_value_difference']:.3g}, after removing the mean "
              f"difference {row['max_abs_difference_after_constant_shift']:.3g}")
    if "stopped_at" in row:
        print(f"    stopped_at: {json.dumps(row['stopped_at'])}")
    print(f"    why: {row['reason']}")


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "--worker":
        return worker(argv[1])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-repo", required=True, type=Path,
                        help="DataPerf's debugging evaluator (its app/ folder holds baselines/)")
    parser.add_argument("--official-python", required=True, help="python with DataPerf's app's libraries")
    parser.add_argument("--datascope-python", help="python of official_datascope/requirements.txt")
    parser.add_argument("--influence-python", help="python of official_influence/requirements.txt")
    parser.add_argument("--pydvl-python", help="python of pydvl_valuation/requirements.txt")
    parser.add_argument("--appliance-python", help="python of the appliance (dataperf_appliance importable)")
    parser.add_argument("--dims", default="256,2048", help="feature widths, comma-separated (default 256,2048)")
    parser.add_argument("--rows", type=int, default=200, help="training rows (default 200)")
    parser.add_argument("--val-rows", type=int, default=100, help="validation rows (default 100; DataPerf's "
                        "influence_function needs at least 80)")
    parser.add_argument("--noise", type=float, default=0.3, help="share of flipped training labels (default 0.3)")
    parser.add_argument("--seed", type=int, default=0, help="the task's and the repeat's seed (default 0)")
    parser.add_argument("--mc-iterations", type=int, default=5,
                        help="Monte Carlo iterations of both mc_shapley sides (DataPerf's: 100; default 5)")
    parser.add_argument("--influence-official", default="reduced,last-point",
                        help="how DataPerf's influence_function runs: reduced, last-point, full (comma-separated)")
    parser.add_argument("--only", default=",".join(CHECKS), help=f"checks to run (default all: {','.join(CHECKS)})")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP/OPENBLAS/MKL_NUM_THREADS of every side (default 1, as the appliance's runner; "
                             "0 leaves the libraries' own defaults)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", type=Path, help="keep the sides' folders (logs, orders) under this folder")
    args = parser.parse_args(argv)

    official_app = (args.official_repo / "app").resolve()
    if not (official_app / "baselines" / "datascope_wrapper.py").exists():
        parser.error(f"{official_app} has no baselines/datascope_wrapper.py: not DataPerf's debugging evaluator")
    checks = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        parser.error(f"unknown checks {unknown}; choose from {', '.join(CHECKS)}")
    influence_ways = [way.strip() for way in args.influence_official.split(",") if way.strip()]
    if set(influence_ways) - {"reduced", "last-point", "full"}:
        parser.error("--influence-official takes reduced, last-point and full")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="check-baselines-", dir=args.keep))
    rows = []

    def record(row):
        rows.append(row)
        print_row(row)
        sys.stdout.flush()

    for dim in [int(width) for width in args.dims.split(",")]:
        train_X, train_y, val_X, val_y, flipped = make_task(args.rows, args.val_rows, dim, args.noise, args.seed)
        task = scratch / f"task-{dim}"
        task.mkdir()
        for name, array in zip(("train_X", "train_y", "val_X", "val_y"), (train_X, train_y, val_X, val_y)):
            np.save(task / f"{name}.npy", array)
        base = {"task": str(task), "seed": args.seed, "official_app": str(official_app), "repo": str(REPO),
                "threads": args.threads}
        n_flipped = len(flipped)
        print(f"\n=== task: {args.rows} x {dim} float32, {args.val_rows} validation rows, {n_flipped} flipped "
              f"labels, seed {args.seed}; threads per side: {args.threads or 'as the libraries choose'}")

        if "neighbor_shapley" in checks and args.datascope_python:
            official = run_side("DataPerf neighbor_shapley", args.official_python,
                                {**base, "kind": "official_datascope", "method": "neighbor"}, scratch)
            ours = run_side("library neighbor_shapley", args.datascope_python,
                            {**base, "kind": "library", "file": str(DATASCOPE_FOLDER / "neighbor_shapley.py")},
                            scratch)
            record(compare("neighbor_shapley", official, ours, n_flipped, True,
                           "the same datascope call on the same inputs, sorted the same way"))
            if args.appliance_python:
                appliance = run_side("appliance knn_shapley_values(k=1)", args.appliance_python,
                                     {**base, "kind": "appliance_knn", "k": 1}, scratch)
                record(compare("neighbor_shapley vs appliance k=1", ours, appliance, n_flipped, False,
                               "the same game (1-nearest-neighbour Shapley); datascope credits the farthest row "
                               "against the null score (the worse constant class) instead of 0, which shifts "
                               "every value by the same amount, and sums in float32 (cdef float), so near-equal "
                               "values can swap"))

        if "mc_shapley" in checks and args.datascope_python:
            iterations = {"DATAPERF_PARAM_MC_ITERATIONS": str(args.mc_iterations)}
            official = run_side(f"DataPerf mc_shapley ({args.mc_iterations} iterations)", args.official_python,
                                {**base, "kind": "official_datascope", "method": "montecarlo",
                                 "mc_iterations": args.mc_iterations}, scratch)
            same_seed = run_side("library mc_shapley (permutation seed 7)", args.datascope_python,
                                 {**base, "kind": "library", "file": str(DATASCOPE_FOLDER / "mc_shapley.py")},
                                 scratch, {**iterations, "DATAPERF_PARAM_PERMUTATION_SEED": "7"})
            record(compare("mc_shapley", official, same_seed, n_flipped, True,
                           "the same datascope Monte Carlo run: the same permutations (datascope's seed 7), "
                           "utility and truncation"))
            if args.seed != 7:
                repeat_seed = run_side(f"library mc_shapley (permutation seed {args.seed})", args.datascope_python,
                                       {**base, "kind": "library", "file": str(DATASCOPE_FOLDER / "mc_shapley.py")},
                                       scratch, iterations)
                record(compare("mc_shapley, another seed", official, repeat_seed, n_flipped, False,
                               f"other permutations (the repeat's seed {args.seed} against datascope's fixed 7): "
                               f"Monte Carlo noise of {args.mc_iterations} iterations"))

        if "influence_function" in checks and args.influence_python:
            ours = run_side("library influence_function", args.influence_python,
                            {**base, "kind": "library", "file": str(INFLUENCE_FILE)}, scratch)
            if dim != OFFICIAL_INFLUENCE_WIDTH:
                print(f"[influence_function] DataPerf's LinearModel takes {OFFICIAL_INFLUENCE_WIDTH} inputs: it "
                      f"cannot run on {dim}; the library's ran in {ours.seconds and round(ours.seconds, 1)} s")
            elif args.val_rows <= OFFICIAL_INFLUENCE_ROW:
                print(f"[influence_function] DataPerf's code reads validation row {OFFICIAL_INFLUENCE_ROW}: it "
                      f"cannot run with {args.val_rows} validation rows")
            else:
                reasons = {
                    "reduced": "the same computation (DataPerf's appraiser with recursion depth 1: its 200 "
                               "recursions all restart from the same vector on the same batch)",
                    "last-point": "the same computation (DataPerf's functions, full settings, on validation row "
                                  f"{OFFICIAL_INFLUENCE_ROW}, the only one whose order its appraiser keeps)",
                    "full": "the same computation (DataPerf's appraiser as it is)"}
                for way in influence_ways:
                    official = run_side(f"DataPerf influence_function ({way})", args.official_python,
                                        {**base, "kind": "official_influence", "how": way}, scratch)
                    record(compare(f"influence_function ({way})", official, ours, n_flipped, True, reasons[way]))

        if "knn_shapley" in checks and args.pydvl_python and args.appliance_python:
            ours = run_side("library knn_shapley (pyDVL, k=10)", args.pydvl_python,
                            {**base, "kind": "library", "file": str(PYDVL_FOLDER / "knn_shapley.py")}, scratch)
            appliance = run_side("appliance knn_shapley_values(k=10)", args.appliance_python,
                                 {**base, "kind": "appliance_knn", "k": 10}, scratch)
            record(compare("knn_shapley", ours, appliance, n_flipped, False,
                           "the same closed form (Jia et al. 2019, K = 10); distances from scikit-learn's "
                           "neighbour search here and its ||a||^2 - 2ab + ||b||^2 form there, so rows at "
                           "near-equal distances can swap"))

    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    # An expected equality holds with equal orders, or with equal values whose ties are ordered otherwise.
    mismatched = [row["check"] for row in rows if "error" in row or (
        row["expect_equal"] and not row["equal_orders"] and row.get("max_abs_value_difference") != 0.0)]
    print(f"\n{len(rows)} comparisons; " + (f"not as expected: {', '.join(mismatched)}" if mismatched
                                            else "every expected equality held"))
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
