#!/usr/bin/env python3
"""Figures of the benchmark engine, printed; not a timed test.

Debugging track:

0. The official procedure (model dataperf_reference) on 2 tasks x 4 strategies
   x 100 budgets of 2,048-d embeddings: our evaluation (all cores) against a
   plain PyTorch loop that retrains at every budget as the official main.py
   does (dataperf_appliance/engine/reference_torch.py; needs the reference-check
   extra), the ratio, and how many curve points and fraction_fixes agree.
   Target: at least 10x, >= 99% of points and every fraction_fixes equal.
1. The default config (digits, three tasks, four strategies): wall time of our
   evaluation against a naive evaluator that retrains at every budget in one
   process (same classifier, same data, same run), their ratio, and a check
   that every curve point is identical. Target: at least 5x, identical curves.
2. A synthetic 20,000 x 256 run with eval_points 100, one repeat, end to end
   (strategies included). Target: under 5 minutes on this 2-core machine.
3. The default config end to end with its repeats, against the same config
   with one repeat (the baseline, same run): wall times, their ratio, and
   whether knn_shapley is told from random (paired t-test, p < 0.05) on every
   task. Target: under a minute on 2 cores, knn_shapley significant.

Selection track (printed by default; alone with --selection-only):

4. The default selection config (digits, three tasks, four strategies) and a
   sweep of it over three train sizes (50, 100, 200) x three repeats (27
   cells), each run end to end on all cores: the wall time of its evaluate
   stage (the figure asked), of its data preparation and report, and in all.

5. `dataperf-appliance evaluate` on a folder in the official selection layout
   with a 20,000 x 256 pool and three tasks (500-row training sets, 1,000-row
   test sets) against the official Spark evaluator's unchanged main.py on the
   same folder, in the same run (--official-selection CHECKOUT --spark-python
   PY): the whole command (a new process, imports included) and the
   evaluation in this process (modules loaded), each as a ratio to Spark,
   and whether the scores are equal. Targets: >= 6x and >= 30x.

Arena (alone with --arena-only; left out with --skip-arena):

6. The arena preset (`dataperf-appliance render --preset arena`: every method of
   the appliance and of the libraries, DataPerf's four baselines among them,
   on the three default tasks with repeats) end to end on all cores: each
   method's fraction_fixes and AUPRC (mean over the tasks ± half the 95%
   interval over the repeats), its mean seconds on a task, and the run's wall
   time in all. The methods' environments are built first, and their build
   times printed apart (a second run reuses them). No target: figures for the
   README.

Usage: scripts/bench/bench_engine.py [--skip-synthetic] [--skip-official] [--skip-repeats] [--selection-only]
                               [--data-dir DIR] [--official-folder DIR]
                               [--official-selection CHECKOUT --spark-python PY] [--arena-only | --skip-arena]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dataperf_appliance.engine import datasets
from dataperf_appliance.config import catalog
from dataperf_appliance.stages.local_run import run_benchmark
from dataperf_appliance.tracks import apply_overrides, default_params, parse_task_setup, render_task_setup
from dataperf_appliance.engine.debugging import debugging_strategies
from dataperf_appliance.engine.debugging.debugging_task import prepare_data, task_spec
from dataperf_appliance.engine.debugging.debugging_evaluation import budgets_for, evaluate_many, fraction_fixes, naive_fixing_curve


def _load_tasks(setup, data_root: Path) -> list:
    """(task data, {strategy: order}) of every task of `setup`, its data prepared under `data_root`."""
    files = prepare_data(setup, data_root)
    items = []
    for spec in setup.tasks:
        task = datasets.load_debugging_task(files[spec.data_id], task_spec(spec))
        orders = {b.name: debugging_strategies.rank_training_points(b.name, task.X_train, task.y_train, task.X_val,
                                                          task.y_val, seed=setup.seed, model=setup.model)
                  for b in setup.baselines}
        items.append((task, orders))
    return items


def _timed(compute):
    """(compute(), its wall seconds)."""
    started = time.perf_counter()
    result = compute()
    return result, time.perf_counter() - started


def official_procedure_figures(data_root: Path) -> bool:
    from dataperf_appliance.engine import reference_torch

    params = apply_overrides(default_params("debugging"), [
        "dataset=synthetic", "tasks=[synthetic-0, synthetic-1]", "train_size=100", "val_size=100",
        "test_size=500", "dim=2048", "noise_level=0.3", f"model={catalog.DATAPERF_REFERENCE_MODEL}",
    ])
    setup = parse_task_setup(render_task_setup(params))
    items = _load_tasks(setup, data_root)
    budgets = sum(task.train_size * len(orders) for task, orders in items)
    print(f"official procedure: {len(items)} tasks x {len(setup.baselines)} debugging_strategies x "
          f"{setup.tasks[0].train_size} budgets, {items[0][0].X_train.shape[1]}-d, {os.cpu_count()} cores")

    ours, ours_s = _timed(lambda: evaluate_many(items, model=setup.model, seed=setup.seed))
    plain, plain_s = _timed(lambda: [
        {name: reference_torch.fixing_curve(task.X_train, task.y_train, task.y_true, order, task.X_test,
                                            task.y_test, budgets_for(task.train_size), reuse_fits=False)
         for name, order in orders.items()} for task, orders in items])

    points = sum(len(curve) for curves in plain for curve in curves.values())
    equal = sum(int(np.sum(o.curves[name].accuracy == curve)) for o, curves in zip(ours, plain)
                for name, curve in curves.items())
    same_scores = sum(fraction_fixes(o.curves[name].accuracy) == fraction_fixes(curve)
                      for o, curves in zip(ours, plain) for name, curve in curves.items())
    n_curves = sum(len(curves) for curves in plain)
    print(f"  plain PyTorch loop (retrain at every budget, as main.py): {plain_s:8.2f} s  ({budgets} trainings)")
    print(f"  our evaluator (compiled, distinct training sets, all cores): {ours_s:8.2f} s  "
          f"({sum(o.trainings for o in ours)} trainings)")
    print(f"  speed-up: {plain_s / ours_s:.1f}x (target >= 10x)")
    print(f"  curve points equal: {equal} of {points} ({equal / points:.2%}; target >= 99%); "
          f"fraction_fixes equal: {same_scores} of {n_curves}")
    return plain_s / ours_s >= 10 and equal / points >= 0.99 and same_scores == n_curves


def default_evaluation_figures(data_root: Path) -> bool:
    setup = parse_task_setup(render_task_setup(default_params("debugging")))
    items = _load_tasks(setup, data_root)
    n_curves = sum(len(orders) for _, orders in items)
    budgets = sum(task.train_size * len(orders) for task, orders in items)
    print(f"default config: {len(items)} tasks x {len(setup.baselines)} debugging_strategies, model {setup.model}, "
          f"{budgets} budgets to evaluate, {os.cpu_count()} cores")

    fast, fast_s = _timed(lambda: evaluate_many(items, model=setup.model, seed=setup.seed))
    naive, naive_s = _timed(lambda: [{name: naive_fixing_curve(task, order, model=setup.model, seed=setup.seed)
                                      for name, order in orders.items()} for task, orders in items])

    identical = all(np.array_equal(f.curves[name].accuracy, n[name].accuracy)
                    and np.array_equal(f.curves[name].fixes, n[name].fixes)
                    for f, n in zip(fast, naive) for name in n)
    trainings = sum(f.trainings for f in fast)
    print(f"  naive evaluator (retrain at every budget, 1 process): {naive_s:8.2f} s  ({budgets} trainings)")
    print(f"  our evaluator (distinct training sets, all cores):    {fast_s:8.2f} s  ({trainings} trainings)")
    print(f"  speed-up: {naive_s / fast_s:.2f}x (target >= 5x)")
    print(f"  every curve point identical ({n_curves} curves): {identical}")
    return identical and naive_s / fast_s >= 5


def synthetic_figures(data_root: Path) -> bool:
    params = apply_overrides(default_params("debugging"), [
        "dataset=synthetic", "tasks=[synthetic-0]", "train_size=20000", "val_size=1000", "test_size=2000",
        "dim=256", "eval_points=100", "noise_level=0.3", "repeats=1",
    ])
    work = Path(tempfile.mkdtemp(prefix="bench-synthetic-"))
    (work / "task_setup.yml").write_text(render_task_setup(params))
    results, seconds = _timed(lambda: run_benchmark(work / "task_setup.yml", work / "run", data_root=data_root))
    task = results["tasks"]["synthetic-0"]
    print("synthetic 20,000 x 256, eval_points 100, four debugging_strategies, end to end:")
    for name, r in task["strategies"].items():
        print(f"  {name:<20} fraction_fixes {r['fraction_fixes']:.3f}  strategy time {r['time_s']:.1f} s")
    print(f"  {task['trainings']} trainings; wall time {seconds:.1f} s (target < 300 s)")
    return seconds < 300


def repeats_figures(data_root: Path) -> bool:
    default = default_params("debugging")
    _, _, one_s = _timed_run(render_task_setup(apply_overrides(default, ["repeats=1"])), data_root, "one-repeat")
    results, _, seconds = _timed_run(render_task_setup(default), data_root, "repeats")
    print(f"default config with {default['repeats']} repeats, end to end: {seconds:.1f} s (target < 60 s); "
          f"one repeat {one_s:.1f} s; ratio {seconds / one_s:.2f}x")
    told_apart = True
    for place, entries in [*((t, r["strategies"]) for t, r in results["tasks"].items()),
                           ("all tasks", results["overall"])]:
        versus = entries["knn_shapley"]["vs_random"]["fraction_fixes"]
        told_apart = told_apart and bool(versus["significant"])
        print(f"  {place:<10} knn_shapley - random in fraction_fixes: {versus['mean_difference']:+.3f} "
              f"[{versus['ci_low']:+.3f}, {versus['ci_high']:+.3f}], p = {versus['p_value']:.3g}")
    print(f"  knn_shapley told from random everywhere: {told_apart}")
    return told_apart and seconds < 60


def _timed_run(text: str, data_root: Path, name: str) -> tuple[dict, dict, float]:
    """Run `text` end to end into a new folder; (results, the manifest's stage seconds, wall seconds)."""
    work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    (work / "task_setup.yaml").write_text(text)
    results, seconds = _timed(lambda: run_benchmark(work / "task_setup.yaml", work / "run", data_root=data_root))
    stages = json.loads((work / "run" / "manifest.json").read_text())["stages"]
    return results, {stage: entry["seconds"] for stage, entry in stages.items()}, seconds


def selection_figures(data_root: Path) -> None:
    default = default_params("selection")
    print(f"selection track, default config: {len(default['tasks'])} tasks x {len(default['strategies'])} "
          f"strategies, train_size {default['train_size']}, model {default['model']}, {os.cpu_count()} cores")
    results, stages, seconds = _timed_run(render_task_setup(default), data_root, "selection")
    mean = {name: np.mean([t["strategies"][name]["accuracy"] for t in results["tasks"].values()])
            for name in default["strategies"]}
    print("  mean accuracy: " + ", ".join(f"{name} {value:.3f}" for name, value in mean.items()))
    print(f"  evaluate stage {stages['evaluate']:.2f} s; prepare_data {stages['prepare_data']:.2f} s, "
          f"report {stages['report']:.2f} s; end to end {seconds:.2f} s")

    sweep = apply_overrides(default, ["train_size=[50, 100, 200]", "repeats=3"])
    results, stages, seconds = _timed_run(render_task_setup(sweep), data_root, "selection-sweep")
    print(f"selection sweep: train_size [50, 100, 200] x 3 repeats = {results['sweep']['cells']} cells "
          f"({results['sweep']['grid']}), {len(results['sweep']['rows'])} rows")
    print(f"  evaluate stage {stages['evaluate']:.2f} s; prepare_data {stages['prepare_data']:.2f} s, "
          f"report {stages['report']:.2f} s; end to end {seconds:.2f} s")


OFFICIAL_POOL, OFFICIAL_DIM, OFFICIAL_TASKS = 20_000, 256, ("Cupcake", "Hawk", "Sushi")
#: What the official selection evaluator's main.py needs beside it.
SPARK_EVALUATOR_MODULES = ("main.py", "eval.py", "utils.py", "constants.py")
#: Speed targets against the Spark evaluator on that folder (issue 21).
WHOLE_COMMAND_TARGET, IN_PROCESS_TARGET = 6, 30


def write_official_selection_folder(folder: Path, *, pool_size: int = OFFICIAL_POOL, dim: int = OFFICIAL_DIM,
                                    train_size: int = 500, test_size: int = 1000, seed: int = 0) -> None:
    """An official selection folder of Gaussian embeddings: each task's label is the side of a random
    hyperplane; its training set is `train_size` pool points with their labels (the official random_500.csv)."""
    from dataperf_appliance.engine.selection import files

    rng = np.random.default_rng(seed)
    pool = rng.normal(size=(pool_size, dim)).astype(np.float32)
    pool_ids = np.array([f"{i:016x}" for i in rng.choice(2**62, size=pool_size, replace=False)])
    data = folder / "data"
    files.write_pool(data / "embeddings" / f"train_emb_{dim}_dataperf.parquet", pool_ids, pool)
    lines = ["spark_driver_memory: '6g'", "data_dir: 'data'", f"emb_file: 'embeddings/train_emb_{dim}_dataperf.parquet'"]
    for task in OFFICIAL_TASKS:
        direction, offset = rng.normal(size=dim), rng.normal(scale=2.0)
        chosen = rng.choice(pool_size, size=train_size, replace=False)
        files.write_training_set(data / "train_sets" / f"{task}.csv", pool_ids[chosen],
                                 (pool[chosen] @ direction > offset).astype(np.int64))
        test = rng.normal(size=(test_size, dim)).astype(np.float32)
        files.write_test_set(data / "test_sets" / f"alpha_test_set_{task}_{dim}.parquet",
                             [f"t{task}{i}" for i in range(test_size)], test, (test @ direction > offset).astype(int))
        lines.append(f"{task}: ['train_sets/{task}.csv', 'test_sets/alpha_test_set_{task}_{dim}.parquet']")
    (data / "results").mkdir(parents=True, exist_ok=True)
    lines += ["results_dir: 'results'", f"dim: {dim}", f"eval_tasks: {list(OFFICIAL_TASKS)}", "docker_data_dir: 'data'"]
    (folder / "task_setup.yaml").write_text("\n".join(lines) + "\n")


def _spark_evaluator_seconds(folder: Path, official_repo: Path, python: str) -> tuple[float, dict]:
    """Run the official Spark evaluator's main.py unchanged on a copy of `folder` (its .py files beside it, from
    the checkout `official_repo`, never this repository); (wall seconds, its result file's scores)."""
    import shutil
    import subprocess

    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    shutil.copytree(folder, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("result_*.json"))  # ours
    for module in SPARK_EVALUATOR_MODULES:
        shutil.copy(official_repo / module, work / module)
    _, seconds = _timed(lambda: subprocess.run([python, "main.py"], cwd=work, check=True, capture_output=True))
    (result,) = sorted((work / "data" / "results").glob("result_*.json"))
    return seconds, json.loads(result.read_text())


def official_selection_figures(folder: Path | None, official_repo: Path | None, spark_python: str | None) -> bool:
    import subprocess

    from dataperf_appliance.tracks import evaluate_folder

    folder = folder or Path(tempfile.mkdtemp(prefix="bench-official-selection-"))
    write_official_selection_folder(folder)
    print(f"official selection layout: {OFFICIAL_POOL:,} x {OFFICIAL_DIM} pool, {len(OFFICIAL_TASKS)} tasks, "
          f"folder {folder}")
    # The command: a new process, every import included, as a participant types it; the median of three.
    command = [str(Path(sys.executable).with_name("dataperf-appliance")), "evaluate", str(folder), "--quiet"]
    whole = float(np.median([_timed(lambda: subprocess.run(command, check=True, capture_output=True))[1]
                             for _ in range(3)]))
    # In this process: the evaluation itself, its modules already loaded by a first call (as in the appliance).
    evaluate_folder(folder)
    outcome, in_process = _timed(lambda: evaluate_folder(folder))
    print("  accuracy: " + ", ".join(f"{task} {r['accuracy']:.4f}" for task, r in outcome.results.items()))
    print(f"  `dataperf-appliance evaluate` command {whole:.2f} s (median of 3); evaluate in this process "
          f"{in_process:.2f} s (modules loaded)")
    if official_repo is None or spark_python is None:
        print("  (no Spark side: give --official-selection and --spark-python to run the official evaluator)")
        return True
    spark, theirs = _spark_evaluator_seconds(folder, official_repo, spark_python)
    same = all(theirs[task][metric] == outcome.results[task][metric] for task in OFFICIAL_TASKS
               for metric in ("accuracy", "recall", "precision", "f1"))
    print(f"  official Spark evaluator (python main.py): {spark:.2f} s; its scores equal ours: {same}")
    print(f"  whole command: {spark / whole:.1f}x faster (target >= {WHOLE_COMMAND_TARGET}x); "
          f"in process: {spark / in_process:.1f}x (target >= {IN_PROCESS_TARGET}x)")
    return same and spark / whole >= WHOLE_COMMAND_TARGET and spark / in_process >= IN_PROCESS_TARGET


def environment_figures(data_root: Path) -> None:
    """Each library's environment: its build (uv's cache of this machine), then what keeping it in the bucket
    costs: packing it, and unpacking it under another data root (a new instance; the bucket's transfer aside)."""
    from dataperf_appliance.engine.methods import environments, runner

    folders = sorted({runner.library_call(name).requirements for name in catalog.DEBUGGING_LIBRARY_METHODS})
    for requirements in folders:
        seconds = _timed(lambda: environments.ensure_environment(requirements, data_root))[1]
        kept = Path(tempfile.mkdtemp(prefix="bench-kept-"))
        try:
            packed = _timed(lambda: environments.archive_environment(
                requirements, data_root, lambda key, archive: shutil.copy(archive, kept / archive.name)))[1]
            (archive,) = kept.glob(f"*{environments.ARCHIVE_SUFFIX}")
            unpacked = _timed(lambda: environments.restore_environment(
                requirements, kept / "new", lambda key, path: bool(shutil.copy(archive, path))))[1]
            print(f"environment of {requirements.parent.name}: ready in {seconds:.1f} s; packed "
                  f"{archive.stat().st_size / 1e6:.0f} MB in {packed:.1f} s, unpacked in {unpacked:.1f} s")
        finally:
            shutil.rmtree(kept, ignore_errors=True)


def arena_figures(data_root: Path) -> None:
    from dataperf_appliance.engine.stats import COST_OVER_REPEATS, format_estimate, mean_of, summary_of

    print("\n== 6. arena: every method on the default tasks, with repeats ==")
    environment_figures(data_root)
    text = render_task_setup(default_params("debugging", "arena"))
    results, stages, seconds = _timed_run(text, data_root, "arena")
    print(f"{'method':<28} {'fraction_fixes ↓':>18} {'auprc ↑':>18} {'s per task':>11}")
    overall = results["overall"]
    for name in sorted(overall, key=lambda n: mean_of(overall[n], "fraction_fixes") or 9.0):
        entry = overall[name]
        cost = (entry.get(COST_OVER_REPEATS) or {}).get("mean")
        print(f"{name:<28} {format_estimate(mean_of(entry, 'fraction_fixes'), summary_of(entry, 'fraction_fixes')):>18}"
              f" {format_estimate(mean_of(entry, 'auprc'), summary_of(entry, 'auprc')):>18}"
              f" {'-' if cost is None else f'{cost:.2f}':>11}")
    failed = [f"{task}/{name}: {entry['method']['error']}" for task, result in results["tasks"].items()
              for name, entry in result["strategies"].items() if (entry.get("method") or {}).get("error")]
    print(f"arena: {results['repeats']} repeats x {len(results['tasks'])} tasks x {len(overall)} methods in "
          f"{seconds:.0f} s wall (evaluate {stages['evaluate']:.0f} s) on {os.cpu_count()} cores"
          + (f"; failed: {'; '.join(failed)}" if failed else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-official", action="store_true", help="no PyTorch comparison (needs torch)")
    parser.add_argument("--skip-repeats", action="store_true", help="not the default run with its repeats")
    parser.add_argument("--selection-only", action="store_true", help="only the selection track's figures")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--arena-only", action="store_true", help="only the arena's figures")
    parser.add_argument("--skip-arena", action="store_true", help="not the arena (it builds the methods' "
                                                                    "environments and runs for long)")
    parser.add_argument("--environments-only", action="store_true",
                        help="only the libraries' environments: build, pack and unpack")
    parser.add_argument("--official-folder", type=Path, default=None,
                        help="where to write (and keep) the 20,000 x 256 official selection folder")
    parser.add_argument("--official-selection", type=Path, default=None,
                        help="a checkout of CoactiveAI/dataperf-vision-selection (its main.py, eval.py, utils.py, "
                             "constants.py), to time the official Spark evaluator on the same folder")
    parser.add_argument("--spark-python", default=None,
                        help="a Python with pyspark, fire, pyyaml, scikit-learn and pandas for that evaluator")
    args = parser.parse_args()
    data_root = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-data-"))
    ok = True
    if args.arena_only:
        arena_figures(data_root)
        return 0
    if args.environments_only:
        environment_figures(data_root)
        return 0
    if not args.selection_only:
        if not args.skip_official:
            ok = official_procedure_figures(data_root)
        ok = default_evaluation_figures(data_root) and ok
        if not args.skip_synthetic:
            ok = synthetic_figures(data_root) and ok
        if not args.skip_repeats:
            ok = repeats_figures(data_root) and ok
    selection_figures(data_root)  # figures to report, no target
    ok = official_selection_figures(args.official_folder, args.official_selection, args.spark_python) and ok
    if not args.skip_arena and not args.selection_only:
        arena_figures(data_root)  # figures to report, no target
    print("all targets met" if ok else "a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
