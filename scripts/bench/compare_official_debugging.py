#!/usr/bin/env python3
"""The official DataPerf debugging evaluator, our yardstick and the appliance, on the same folders.

For every official-layout folder (by default the corpus of
scripts/bench/debugging_corpus.py, written afresh) it scores:

* **official**: the DS3Lab evaluator's own ``main.py``, run unchanged in a copy
  of the folder with the official ``app/*.py`` beside it (a checkout you bring:
  its code is never part of this repository), under ``--official-python`` (an
  environment with torch, pandas, pyarrow, pyyaml, tqdm, loguru, xgboost);
* **yardstick**: ``dataperf_appliance.engine.reference_torch`` (plain PyTorch);
* **appliance**: ``dataperf-appliance evaluate`` (the compiled classifier),

and prints a Markdown table: per folder and in all, the curve points, the
``before_acc`` and the ``fraction_fixes`` on which each of yardstick and
appliance equals the official result. Exit 0 when the yardstick equals the
official on every accuracy and the appliance on every before_acc and
fraction_fixes and at least 99.5% of the points.

Usage:
  git --git-dir <fetched dataperf-vision-debugging> archive HEAD app | tar -x -C /tmp/official-debugging
  scripts/bench/compare_official_debugging.py --official-app /tmp/official-debugging/app \\
      --official-python /tmp/official-venv/bin/python [--corpus DIR] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dataperf_appliance.tracks import evaluate_folder
from debugging_corpus import write_corpus  # beside this script, on sys.path when it runs

OFFICIAL_MODULES = ("main.py", "classifier.py", "utils.py")
#: The share of curve points the appliance must equal (issue 21).
MIN_EQUAL_POINTS = 0.995


def _curves(result: dict) -> dict[str, np.ndarray]:
    """{submission: accuracies by budget 1..n} of an official-format ``{data_id}_evaluation.json``."""
    by_method: dict[str, dict[int, float]] = {}
    for entry in result["submitted_evaluations"]:
        by_method.setdefault(entry["submission"], {})[entry["fixes"]] = entry["accuracy"]
    return {name: np.array([points[b] for b in sorted(points)]) for name, points in by_method.items()}


def run_official(folder: Path, work: Path, official_app: Path, python: str) -> dict:
    target = work / "official" / folder.name
    shutil.copytree(folder, target)
    for module in OFFICIAL_MODULES:
        shutil.copy(official_app / module, target / module)
    subprocess.run([python, "main.py"], cwd=target, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((target / "results" / f"{folder.name}_evaluation.json").read_text())


def run_appliance(folder: Path, work: Path) -> dict:
    target = work / "appliance" / folder.name
    shutil.copytree(folder, target)
    evaluate_folder(target, n_jobs=1)
    return json.loads((target / "results" / f"{folder.name}_evaluation.json").read_text())


def run_yardstick(folder: Path) -> dict:
    """The official result's fields, computed by reference_torch, one thread (the other core is the official's)."""
    import torch

    from dataperf_appliance.engine import reference_torch

    torch.set_num_threads(1)
    (result,) = reference_torch.evaluate_official_folder(folder).values()
    return result


def _agreement(official: dict, curves: dict[str, np.ndarray], before_acc: float,
               scores: dict[str, float]) -> tuple[int, int, int, int]:
    """(points equal, points, fraction_fixes equal, before_acc equal 0/1) against the official result."""
    theirs = _curves(official)
    equal = sum(int(np.sum(curves[name] == curve)) for name, curve in theirs.items())
    points = sum(len(curve) for curve in theirs.values())
    same_scores = sum(scores[name] == score["fraction_fixes"] for name, score in official["auc_score"].items())
    return equal, points, same_scores, int(before_acc == official["before_acc"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-app", type=Path, required=True,
                        help="the app/ folder of a DS3Lab/dataperf-vision-debugging checkout")
    parser.add_argument("--official-python", required=True, help="a Python with the official evaluator's packages")
    parser.add_argument("--corpus", type=Path, help="official folders to compare on (default: the corpus, written)")
    parser.add_argument("--work", type=Path, help="where the copies go (default: a temporary folder)")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="compare-official-"))
    if args.corpus:
        folders = sorted(p for p in args.corpus.iterdir() if (p / "task_setup.yml").is_file())
    else:
        folders = write_corpus(work / "corpus")

    header = ("| folder | points | yardstick = official: points | before_acc | fraction_fixes "
              "| appliance = official: points | before_acc | fraction_fixes |")
    print(header)
    print("|" + " --- |" * 8)
    totals = np.zeros(9, dtype=np.int64)
    started = time.perf_counter()
    for folder in folders:
        official = run_official(folder, work, args.official_app, args.official_python)
        yardstick = run_yardstick(folder)
        appliance = run_appliance(folder, work)
        y_eq, points, y_ff, y_before = _agreement(official, yardstick["curves"], yardstick["before_acc"],
                                                  yardstick["fraction_fixes"])
        a_eq, _, a_ff, a_before = _agreement(
            official, _curves(appliance), appliance["before_acc"],
            {name: score["fraction_fixes"] for name, score in appliance["auc_score"].items()})
        n_methods = len(official["auc_score"])
        totals += [points, y_eq, y_before, y_ff, a_eq, a_before, a_ff, 1, n_methods]
        print(f"| {folder.name} | {points} | {y_eq} | {y_before}/1 | {y_ff}/{n_methods} | {a_eq} | {a_before}/1 "
              f"| {a_ff}/{n_methods} |", flush=True)
    points, y_eq, y_before, y_ff, a_eq, a_before, a_ff, n_folders, n_curves = totals
    print(f"| **all** | {points} | {y_eq} ({y_eq / points:.2%}) | {y_before}/{n_folders} | {y_ff}/{n_curves} "
          f"| {a_eq} ({a_eq / points:.2%}) | {a_before}/{n_folders} | {a_ff}/{n_curves} |")
    print(f"({time.perf_counter() - started:.0f} s; copies in {work})")
    yardstick_ok = y_eq == points and y_before == n_folders and y_ff == n_curves
    appliance_ok = a_eq / points >= MIN_EQUAL_POINTS and a_before == n_folders and a_ff == n_curves
    return 0 if yardstick_ok and appliance_ok else 1


if __name__ == "__main__":
    sys.exit(main())
