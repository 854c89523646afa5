"""Run folders written by hand for the UI tests: as the pipeline writes them, without running the engine."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from dataperf_appliance.tracks import apply_overrides, default_params, render_task_setup

# A 1x1 PNG: the pages show whatever picture a run has.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
SMALL = ["train_size=60", "val_size=20", "test_size=40", "tasks=digit-3,digit-8", "strategies=random,loss",
         "repeats=1"]


def small_setup(*overrides: str) -> str:
    return render_task_setup(apply_overrides(default_params("debugging"), [*SMALL, *overrides]))


def debugging_results(model: str = "logistic_regression", tasks=("digit-3", "digit-8"), train_size: int = 60,
                      scores: dict[str, float] | None = None) -> dict:
    scores = scores or {"random": 0.8, "loss": 0.1}
    out = {}
    for task in tasks:
        strategies = {}
        for name, score in scores.items():
            fixes = list(range(1, train_size + 1, 10))
            strategies[name] = {
                "kind": "baseline", "fraction_fixes": score, "auc": 1 - score, "time_s": 0.01,
                "curve": {"fixes": fixes, "accuracy": [0.7 + 0.2 * i / len(fixes) for i in range(len(fixes))]},
                "first_flagged": [],
            }
        out[task] = {"data_id": task, "train_size": train_size, "mislabeled": 18, "before_acc": 0.7,
                     "clean_acc": 0.9, "trainings": 10, "strategies": strategies}
    return {"track": "debugging", "model": model, "seed": 0, "dataset": "digits", "eval_points": None,
            "tasks": out}


def manifest(run_id: str, state: str, *, error: str | None = None, created: str = "2026-11-23T08:00:00.000+00:00",
             finished: str | None = "2026-11-23T08:01:05.000+00:00") -> dict:
    return {"run_id": run_id, "state": state, "track": "debugging", "created_at": created,
            "started_at": created, "finished_at": finished if state in ("success", "failed") else None,
            "error": error, "traceback": "Traceback (most recent call last):\n  ...\nValueError: boom" if error
            else None, "stages": {"validate": {"started_at": created, "finished_at": created, "seconds": 0.1,
                                               "ok": True}},
            "seed": 0, "code_version": {"package": "0.1.0", "git_commit": None}, "packages": {}, "inputs": {}}


def write_run(runs_dir: Path, run_id: str, *, state: str = "success", model: str = "logistic_regression",
              error: str | None = None, scores: dict[str, float] | None = None, **manifest_args) -> Path:
    """A run folder: published (runs/<id>/) for success, staging (runs/.<id>.partial/) otherwise."""
    folder = runs_dir / (run_id if state == "success" else f".{run_id}.partial")
    folder.mkdir(parents=True)
    (folder / "task_setup.yml").write_text(small_setup(f"model={model}"))
    (folder / "manifest.json").write_text(json.dumps(manifest(run_id, state, error=error, **manifest_args)))
    if state == "success":
        (folder / "results.json").write_text(json.dumps(debugging_results(model, scores=scores)))
        (folder / "plots").mkdir()
        for name in ("digit-3_fixing_curve", "digit-8_fixing_curve", "fraction_fixes_vs_time",
                     "digit-3_flagged_gallery"):
            (folder / "plots" / f"{name}.png").write_bytes(PNG)
    return folder
