"""The command line end to end, through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataperf_appliance.config import catalog

CLI = [str(Path(sys.executable).with_name("dataperf-appliance"))]


def cli(*args: str, cwd: Path, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(data_dir)}
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """One run of the default config (three digits tasks, four strategies), shared by the tests below."""
    work = tmp_path_factory.mktemp("cli")
    rendered = cli("render", cwd=work, data_dir=work / "data")
    assert rendered.returncode == 0, rendered.stderr
    (work / "task_setup.yml").write_text(rendered.stdout)
    done = cli("run", "task_setup.yml", "--out", "runs/default", cwd=work, data_dir=work / "data")
    assert done.returncode == 0, done.stderr
    return work, work / "runs" / "default", done


def test_render_prints_a_valid_default_file(tmp_path):
    rendered = cli("render", "--set", "noise_level=0.2", "--set", "tasks=[digit-1, even-odd]",
                   cwd=tmp_path, data_dir=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert "noise_level: 0.2" in rendered.stdout and "data_id: even-odd" in rendered.stdout
    (tmp_path / "t.yml").write_text(rendered.stdout)
    checked = cli("validate", "t.yml", cwd=tmp_path, data_dir=tmp_path)
    assert (checked.returncode, checked.stdout.strip()) == (0, "valid")


def test_render_names_an_unknown_key_and_a_bad_value(tmp_path):
    unknown = cli("render", "--set", "noise=0.2", cwd=tmp_path, data_dir=tmp_path)
    assert unknown.returncode == 2 and "noise" in unknown.stderr
    bad = cli("render", "--set", "noise_level=0.95", cwd=tmp_path, data_dir=tmp_path)
    assert bad.returncode == 2 and "noise_level" in bad.stderr


def test_validate_reports_every_error_with_its_line(tmp_path):
    (tmp_path / "bad.yml").write_text(
        "tasks:\n  - data_id: ../etc\n    train_size: -1\n    noise_level: 0.3\n    test_size: 100\n"
        "    val_size: 40\nbaselines:\n  - name: random\nmodle: knn\n")
    checked = cli("validate", "bad.yml", cwd=tmp_path, data_dir=tmp_path)
    assert checked.returncode == 2 and checked.stdout == ""
    assert "bad.yml:2:" in checked.stderr and "tasks[0].data_id" in checked.stderr
    assert "bad.yml:3:" in checked.stderr and "tasks[0].train_size" in checked.stderr
    assert "bad.yml:9:" in checked.stderr and "modle" in checked.stderr


def test_an_invalid_file_never_starts_a_run(tmp_path):
    (tmp_path / "bad.yml").write_text("tasks: [\n")
    done = cli("run", "bad.yml", "--out", "runs/x", cwd=tmp_path, data_dir=tmp_path / "data")
    assert done.returncode == 2 and "bad.yml:" in done.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def test_the_run_layout(default_run):
    work, run, done = default_run
    assert (run / "task_setup.yml").read_text() == (work / "task_setup.yml").read_text()
    assert not list(run.parent.glob(".*partial"))  # published by a rename, nothing left behind
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["state"] == "success" and manifest["run_id"] == "default" and manifest["seed"] == 0
    assert set(manifest["stages"]) == {"validate", "prepare_data", "evaluate", "report", "publish"}
    # 4 files per task and per repeat (each repeat draws its own noisy labels)
    repeats = json.loads((run / "results.json").read_text())["repeats"]
    assert len(manifest["inputs"]) == 12 * repeats and all(len(h) == 64 for h in manifest["inputs"].values())
    assert {"numpy", "scikit-learn", "cleanlab"} <= set(manifest["packages"])
    plots = {p.name for p in (run / "plots").iterdir()}
    for data_id in ("digit-3", "digit-8", "digit-9"):
        assert {f"{data_id}_fixing_curve.png", f"{data_id}_flagged_gallery.png"} <= plots
        reference = json.loads((run / "results" / f"{data_id}_evaluation.json").read_text())
        assert set(reference) == {"before_acc", "submitted_evaluations", "auc_score"}
        assert len(reference["submitted_evaluations"]) == 4 * 200
        for method in ("random", "knn_shapley", "confident_learning", "loss"):
            order = np.loadtxt(run / "submissions" / f"{data_id}_{method}.txt", dtype=int)
            assert sorted(order.tolist()) == list(range(200))
            assert float((run / "submissions" / f"time_{data_id}_{method}.txt").read_text()) >= 0
    assert "fraction_fixes_vs_time.png" in plots
    assert all((run / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in plots)
    assert "knn_shapley" in done.stdout and "run written to" in done.stdout


def test_results_follow_the_schema_and_good_strategies_beat_random(default_run):
    _, run, _ = default_run
    results = json.loads((run / "results.json").read_text())
    assert (results["track"], results["model"], results["seed"], results["dataset"]) == \
        ("debugging", "dataperf_reference", 0, "digits")
    mean = {}
    for task in results["tasks"].values():
        assert 0 <= task["before_acc"] <= 1 and 0 <= task["clean_acc"] <= 1
        for name, r in task["strategies"].items():
            assert set(r) >= {"fraction_fixes", "auc", "time_s", "curve"}
            assert r["curve"]["fixes"] == list(range(1, 201)) and len(r["curve"]["accuracy"]) == 200
            assert r["curve"]["accuracy"][-1] == task["clean_acc"]
            mean.setdefault(name, []).append(r["fraction_fixes"])
    mean = {name: float(np.mean(values)) for name, values in mean.items()}
    assert mean["knn_shapley"] < mean["random"]
    assert mean["confident_learning"] < mean["random"]


def test_the_default_run_reports_intervals_and_tells_knn_shapley_from_random(default_run):
    _, run, done = default_run
    results = json.loads((run / "results.json").read_text())
    repeats = results["repeats"]
    assert repeats == results["replicates"]["repeats"] > 1
    for task in results["tasks"].values():
        for name, entry in task["strategies"].items():
            # The fixing curve's scores and the detection metrics alike: each with its interval and, for every
            # method but random, its paired test against random, Holm-adjusted over the methods.
            for metric in catalog.DEBUGGING_HEADLINE_METRICS:
                assert 0 <= entry[metric] <= 1
                summary = entry["over_repeats"][metric]
                assert summary["n"] == repeats and summary["ci_low"] <= summary["mean"] <= summary["ci_high"]
                if name != "random":
                    versus = entry["vs_random"][metric]
                    assert versus["n"] == repeats and versus["test"] == "paired t-test"
                    assert 0 <= versus["p_value"] <= versus["p_holm"] <= 1
    versus = results["overall"]["knn_shapley"]["vs_random"]["fraction_fixes"]
    assert versus["significant"] is True and versus["p_value"] < 0.05 and versus["ci_high"] < 0
    # knn_shapley finds the flipped labels better than random does, which ranks them by chance (AUROC 0.5).
    auroc = {name: entry["over_repeats"]["auroc"]["mean"] for name, entry in results["overall"].items()}
    assert 0.35 < auroc["random"] < 0.65 < auroc["knn_shapley"]
    assert results["overall"]["knn_shapley"]["vs_random"]["auroc"]["mean_difference"] > 0
    header = next(line for line in done.stdout.splitlines() if line.startswith("task "))
    assert all(catalog.metric_label(metric) in header for metric in catalog.DEBUGGING_HEADLINE_METRICS)
    assert "fraction_fixes ↓" in header and "auroc ↑" in header
    knn_line = next(line for line in done.stdout.splitlines() if line.startswith("(all tasks)  knn_shapley"))
    assert "±" in knn_line and "p=" in knn_line and "not significant" not in knn_line


def test_a_users_own_submission_is_evaluated_like_a_strategy(tmp_path, default_run):
    work, _, _ = default_run
    data = work / "data"
    rendered = cli("render", "--set", "tasks=[digit-3]", "--set", "strategies=[random]",
                   "--set", "submissions=[oracle]", cwd=tmp_path, data_dir=data)
    assert rendered.returncode == 0, rendered.stderr
    (tmp_path / "task_setup.yml").write_text(rendered.stdout)
    # The perfect order, from the files themselves: every wrong label first.
    (train_file,) = (data / "datasets/digits/seed-0").glob("*/embeddings/digit-3_train_0.3_200.parquet")
    train = pd.read_parquet(train_file)
    truth = pd.read_csv(train_file.parents[1] / "data/dataset_digit-3_train.csv").set_index("ImageID")
    wrong = train["label"].to_numpy() != truth.loc[train["filename"], "hv_label"].to_numpy()
    (tmp_path / "submissions").mkdir()
    (tmp_path / "submissions" / "digit-3_oracle.txt").write_text(
        "\n".join(str(i) for i in np.argsort(~wrong, kind="stable")[:wrong.sum()]) + "\n")
    done = cli("run", "task_setup.yml", "--out", "run", cwd=tmp_path, data_dir=data)
    assert done.returncode == 0, done.stderr
    strategies = json.loads((tmp_path / "run" / "results.json").read_text())["tasks"]["digit-3"]["strategies"]
    assert strategies["oracle"]["kind"] == "submission" and strategies["oracle"]["time_s"] is None
    assert strategies["oracle"]["fraction_fixes"] <= strategies["random"]["fraction_fixes"]
    # Every flipped label first: a perfect detection.
    assert all(strategies["oracle"][metric] == 1.0 for metric in catalog.DEBUGGING_DETECTION_METRICS)
    # With repeats the file is evaluated on the first repeat's data only, the data it was made for: not tested.
    assert strategies["random"]["over_repeats"]["fraction_fixes"]["n"] > 1
    assert strategies["oracle"]["over_repeats"]["fraction_fixes"]["n"] == 1
    assert strategies["oracle"]["vs_random"]["fraction_fixes"]["p_value"] is None
    assert "(no test: 1 repeat)" in done.stdout
    assert (tmp_path / "run" / "submissions" / "digit-3_oracle.txt").read_text() == \
        (tmp_path / "submissions" / "digit-3_oracle.txt").read_text()

    (tmp_path / "submissions" / "digit-3_oracle.txt").write_text("3\n7\n3\n")
    refused = cli("run", "task_setup.yml", "--out", "run2", cwd=tmp_path, data_dir=data)
    assert refused.returncode == 2
    assert "digit-3_oracle.txt:3" in refused.stderr and "duplicate" in refused.stderr


def test_datasets_lists_the_embedded_ones(tmp_path):
    listed = cli("datasets", cwd=tmp_path, data_dir=tmp_path)
    assert listed.returncode == 0 and "digits" in listed.stdout and "synthetic" in listed.stdout


# --- the selection track --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def selection_run(tmp_path_factory):
    """One run of the default selection config (digits, three tasks, four strategies)."""
    work = tmp_path_factory.mktemp("cli-selection")
    rendered = cli("render", "--set", "track=selection", cwd=work, data_dir=work / "data")
    assert rendered.returncode == 0, rendered.stderr
    (work / "task_setup.yaml").write_text(rendered.stdout)
    checked = cli("validate", "task_setup.yaml", cwd=work, data_dir=work / "data")
    assert (checked.returncode, checked.stdout.strip()) == (0, "valid"), checked.stderr
    done = cli("run", "task_setup.yaml", "--out", "runs/selection", cwd=work, data_dir=work / "data")
    assert done.returncode == 0, done.stderr
    return work, work / "runs" / "selection", rendered.stdout, done


def test_render_prints_the_default_selection_config(selection_run):
    _, _, text, _ = selection_run
    assert "track: selection\n" in text and "model: logistic_regression" in text
    assert "eval_tasks: [digit-0, digit-3, even-odd]" in text
    assert "strategies: [random, balanced_random, uncertainty, diversity]" in text


def test_the_default_selection_run(selection_run):
    work, run, _, done = selection_run
    assert (run / "task_setup.yml").read_text() == (work / "task_setup.yaml").read_text()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["state"] == "success" and manifest["track"] == "selection"
    results = json.loads((run / "results.json").read_text())
    assert (results["track"], results["model"], results["dataset"]) == ("selection", "logistic_regression", "digits")
    assert list(results["tasks"]) == ["digit-0", "digit-3", "even-odd"]
    for task, task_result in results["tasks"].items():
        for name in ("random", "balanced_random", "uncertainty", "diversity"):
            entry = task_result["strategies"][name]
            assert {"accuracy", "precision", "recall", "f1", "train_size"} <= set(entry)
            assert entry["train_size"] == 100
            assert (run / "submissions" / f"{task}_{name}.csv").read_text().startswith("ImageID,Confidence\n")
    [reference] = (run / "results" / "random").glob("result_UTC-*.json")
    assert set(json.loads(reference.read_text())["digit-3"]) == {"accuracy", "recall", "precision", "f1"}
    assert (run / "plots" / "selection_metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (run / "sweep.csv").exists() and "sweep" not in results  # no lists: no sweep, repeats alone
    # F1 headlines, with an interval and a test by default: the repeats are enough to tell methods apart.
    assert results["repeats"] == 10 and (run / "repeats.csv").exists()
    overall = results["overall"]
    assert all(entry["over_repeats"]["f1"]["ci_low"] is not None for entry in overall.values())
    assert any(entry["vs_random"]["f1"]["significant"] for name, entry in overall.items() if name != "random")
    assert done.stdout.index(" f1 ") < done.stdout.index(" accuracy ")  # the main metric first
    assert "vs random: the paired difference in f1" in done.stdout and "(Holm " in done.stdout


def test_the_default_debugging_run_has_no_sweep_outputs(default_run):
    _, run, _ = default_run
    results = json.loads((run / "results.json").read_text())
    assert not (run / "sweep.csv").exists() and "sweep" not in results  # repeats alone are no sweep
    assert (run / "repeats.csv").exists() and results["replicates"]["table"] == "repeats.csv"


def test_build_environments_refuses_an_unknown_library_naming_the_known_ones(tmp_path):
    done = cli("build-environments", "pydvl", cwd=tmp_path, data_dir=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: no library pydvl (the libraries: official_datascope, official_influence, "
                                   "pydvl_valuation)")
    assert not (tmp_path / "method-envs").exists()
