"""`evaluate` on folders in the official DataPerf layouts, `export` of finished runs, and the Run page's export.

The folders are built here from the digits, as the official repositories lay
them out (their task files written as they ship, comments and keys the
appliance does not use included). The numbers are checked against the
engine's naive evaluator (a retraining at every budget) and against
scikit-learn called directly, and `export` then `evaluate` must give back a
run's own numbers, exactly.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from dataperf_appliance.interface import cli
from dataperf_appliance.config import catalog
from dataperf_appliance.stages.local_run import run_benchmark
from dataperf_appliance.tracks import apply_overrides, default_params, render_task_setup
from dataperf_appliance.engine.datasets import dataset_dir, digits
from dataperf_appliance.engine.datasets.dataperf_files import (
    DebuggingTaskData,
    write_embedding_parquet,
    write_groundtruth_csv,
)
from dataperf_appliance.engine.debugging.debugging_evaluation import fraction_fixes, naive_fixing_curve
from dataperf_appliance.tracks import evaluate_folder
from dataperf_appliance.tracks import export_run
from dataperf_appliance.engine.selection import files as selection_files

CLI = [str(Path(sys.executable).with_name("dataperf-appliance"))]
RESULT_NAME = re.compile(r"result_UTC-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}\.json")
OFFICIAL_EVALUATION_KEYS = ["before_acc", "submitted_evaluations", "auc_score"]


def run_cli(*args: str, data_dir: Path | None = None) -> tuple[int, str, str]:
    """`dataperf-appliance ARGS` in this process: (exit code, stdout, stderr)."""
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    argv = [*args, *(["--data-dir", str(data_dir)] if data_dir else [])]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# ---- an official debugging folder, built from the digits --------------------------------------------

# The official app/task_setup.yml's shape, as it ships (comments, baselines with free text).
DEBUGGING_TASK_SETUP = """\
paths:
  embedding_folder: embeddings/
  groundtruth_folder: data/
  submission_folder: submissions/
  results_folder: results/

tasks:
  - data_id: digit-3
    train_size: 40
    noise_level: 0.3
    test_size: 60
    val_size: 20

  - data_id: digit-8
    train_size: 40
    noise_level: 0.3
    test_size: 60
    val_size: 20

baselines:
  - name: neighbor_shapley (datascope)
  - name: random
  # - name: mc_shapley
"""


def write_debugging_folder(folder: Path, *, dtype=np.float64) -> dict[str, dict]:
    """The official debugging layout for the tasks of DEBUGGING_TASK_SETUP; {data_id: its arrays and orders}."""
    rng = np.random.default_rng(7)
    ids, embeddings = digits.image_ids(), digits.embeddings()
    tasks = {}
    for data_id in ("digit-3", "digit-8"):
        labels = digits.positive_mask(data_id).astype(np.int64)
        rows = rng.permutation(len(ids))
        train, test, val = rows[:40], rows[40:100], rows[100:120]
        noisy = labels[train].copy()
        flipped = rng.choice(40, size=12, replace=False)
        noisy[flipped] = 1 - noisy[flipped]
        write_embedding_parquet(folder / "embeddings" / f"{data_id}_train_0.3_40.parquet", embeddings[train], noisy,
                                ids[train], dtype=dtype)
        write_embedding_parquet(folder / "embeddings" / f"{data_id}_test_60.parquet", embeddings[test],
                                labels[test], ids[test], dtype=dtype)
        write_embedding_parquet(folder / "embeddings" / f"{data_id}_val_20.parquet", embeddings[val], labels[val],
                                ids[val], dtype=dtype)
        write_groundtruth_csv(folder / "data" / f"dataset_{data_id}_train.csv", ids[train], labels[train])
        wrong_first = np.concatenate([flipped, np.setdiff1d(np.arange(40), flipped)])
        tasks[data_id] = {"X": embeddings[train].astype(dtype), "noisy": noisy, "true": labels[train],
                          "X_test": embeddings[test].astype(dtype), "y_test": labels[test],
                          "orders": {"wrong_first": wrong_first, "my_method": rng.permutation(40)}}
        submissions = folder / "submissions"
        submissions.mkdir(exist_ok=True)
        (submissions / f"{data_id}_wrong_first.txt").write_text("".join(f"{i}\n" for i in wrong_first))
        (submissions / f"{data_id}_my_method.txt").write_text(
            "".join(f"{i}\n" for i in tasks[data_id]["orders"]["my_method"]))
        (submissions / f"time_{data_id}_my_method.txt").write_text("4.69e-05\n")
    (folder / "submissions" / "notes.md").write_text("not a submission\n")
    (folder / "task_setup.yml").write_text(DEBUGGING_TASK_SETUP)
    return tasks


@pytest.fixture
def debugging_folder(tmp_path):
    folder = tmp_path / "debugging"
    return folder, write_debugging_folder(folder)


def test_evaluate_a_debugging_folder_writes_the_official_results(debugging_folder):
    folder, tasks = debugging_folder
    code, out, err = run_cli("evaluate", str(folder), "--model", "logistic_regression", "--jobs", "1", "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in (folder / "results").iterdir()) == ["digit-3_evaluation.json",
                                                                      "digit-8_evaluation.json"]
    for data_id, task in tasks.items():
        result = json.loads((folder / "results" / f"{data_id}_evaluation.json").read_text())
        assert list(result) == OFFICIAL_EVALUATION_KEYS
        assert set(result["auc_score"]) == {"wrong_first", "my_method"}  # not time_..., not notes.md
        for method, order in task["orders"].items():
            points = [e for e in result["submitted_evaluations"] if e["submission"] == method]
            assert [set(e) for e in points[:1]] == [{"submission", "accuracy", "fixes"}]
            assert [e["fixes"] for e in points] == list(range(1, 41))
            # The official procedure, retraining at every budget, with the same classifier.
            data = DebuggingTaskData(data_id, task["X"], task["noisy"], task["true"], np.arange(40).astype(str),
                                     np.empty((0, 128)), np.empty(0), task["X_test"], task["y_test"])
            naive = naive_fixing_curve(data, order, model="logistic_regression")
            assert [e["accuracy"] for e in points] == naive.accuracy.tolist()
            assert result["auc_score"][method]["fraction_fixes"] == fraction_fixes(naive.accuracy)
        assert 0 <= result["before_acc"] <= 1
    assert "digit-3" in out and "wrong_first" in out and "written:" in out


def test_a_partial_order_is_completed_and_said_so(debugging_folder):
    folder, _ = debugging_folder
    (folder / "submissions" / "digit-3_short.txt").write_text("5\n1\n")
    outcome = evaluate_folder(folder, model="logistic_regression", n_jobs=1)
    points = [e for e in outcome.results["digit-3"]["submitted_evaluations"] if e["submission"] == "short"]
    assert len(points) == 40
    assert any("digit-3_short.txt: 2 of 40 rows" in note for note in outcome.notes)


def test_float32_and_float64_embeddings_are_both_read(tmp_path):
    folder = tmp_path / "f32"
    write_debugging_folder(folder, dtype=np.float32)
    assert pq.read_schema(folder / "embeddings" / "digit-3_train_0.3_40.parquet").field("encoding").type == \
        pa.list_(pa.float32())
    outcome = evaluate_folder(folder, model="logistic_regression", n_jobs=1)
    # The digits embeddings are float32 values: the same numbers either way.
    reference = tmp_path / "f64"
    write_debugging_folder(reference)
    assert outcome.results == evaluate_folder(reference, model="logistic_regression", n_jobs=1).results


# ---- an official selection folder, built from the digits --------------------------------------------

SELECTION_TASK_SETUP = """\
# Memory used by Spark driver (recommend > 6g)
spark_driver_memory: '6g'

# Path for data directory.
data_dir: 'data'

emb_file: 'embeddings/train_emb_128_dataperf.parquet'

digit-3: ['train_sets/digit-3.csv', 'test_sets/alpha_test_set_digit-3_128.parquet']
even-odd: ['train_sets/even-odd.csv', 'test_sets/alpha_test_set_even-odd_128.parquet']

results_dir: 'results'
dim: 128
eval_tasks: ['digit-3','even-odd']

# DO NOT MODIFY
docker_data_dir: 'data'
"""


def write_selection_folder(folder: Path) -> dict[str, dict]:
    """The official selection layout: pool, a training csv and a test set per task (Confidence as text for
    digit-3, as integers for even-odd: both are accepted)."""
    rng = np.random.default_rng(3)
    ids, embeddings = digits.image_ids(), digits.embeddings()
    rows = rng.permutation(len(ids))
    pool, held = rows[:1200], rows[1200:]
    data = folder / "data"
    selection_files.write_pool(data / "embeddings" / "train_emb_128_dataperf.parquet", ids[pool], embeddings[pool])
    expected = {}
    for task, text_labels in (("digit-3", True), ("even-odd", False)):
        labels = digits.positive_mask(task).astype(np.int64)
        chosen = rng.choice(pool, size=80, replace=False)
        (data / "train_sets").mkdir(exist_ok=True)
        pd.DataFrame({"ImageID": ids[chosen], "Confidence": labels[chosen]}).to_csv(
            data / "train_sets" / f"{task}.csv", index=False)
        test = held[:150] if task == "digit-3" else held[150:300]
        confidence = [str(v) for v in labels[test]] if text_labels else labels[test].tolist()
        (data / "test_sets").mkdir(exist_ok=True)
        pd.DataFrame({"ImageID": ids[test], "embedding": list(embeddings[test]), "Confidence": confidence}) \
            .to_parquet(data / "test_sets" / f"alpha_test_set_{task}_128.parquet")
        predicted = LogisticRegression(random_state=0).fit(embeddings[chosen].astype(np.float64), labels[chosen]) \
            .predict(embeddings[test].astype(np.float64))
        y = labels[test]
        expected[task] = {"accuracy": accuracy_score(y, predicted), "recall": recall_score(y, predicted),
                          "precision": precision_score(y, predicted), "f1": f1_score(y, predicted)}
    (folder / "task_setup.yaml").write_text(SELECTION_TASK_SETUP)
    return expected


def test_evaluate_a_selection_folder_writes_the_official_result_file(tmp_path):
    expected = write_selection_folder(tmp_path)
    code, out, err = run_cli("evaluate", str(tmp_path), "--quiet")
    assert code == 0, err
    written = list((tmp_path / "data" / "results").iterdir())  # created when missing
    assert len(written) == 1 and RESULT_NAME.fullmatch(written[0].name)
    result = json.loads(written[0].read_text())
    assert list(result) == ["digit-3", "even-odd"]
    for task, metrics in result.items():
        assert list(metrics) == ["accuracy", "recall", "precision", "f1"]
        assert max(abs(metrics[k] - expected[task][k]) for k in metrics) <= 1e-12
    assert "digit-3" in out and "logistic_regression" in out


#: What scoring a selection folder never needs: the debugging classifier's compiler, torch, the dataset
#: generators, the other estimators. Each would add its import to every `evaluate` (issue 21: the command's
#: time was mostly imports).
NOT_FOR_SELECTION = ("numba", "torch", "sklearn.datasets", "sklearn.ensemble", "sklearn.neural_network",
                     "sklearn.neighbors", "matplotlib")


def test_evaluating_a_selection_folder_imports_only_what_it_needs(tmp_path):
    write_selection_folder(tmp_path)
    probe = ("import json, sys; from dataperf_appliance.interface import cli; code = cli.main(['evaluate', sys.argv[1], "
             "'--quiet']); print(json.dumps([code, sorted(sys.modules)]))")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=300)
    code, modules = json.loads(done.stdout.splitlines()[-1])
    assert code == 0, done.stderr
    assert "sklearn.linear_model" in modules  # the official classifier: the probe sees imports
    assert [name for name in modules for heavy in NOT_FOR_SELECTION
            if name == heavy or name.startswith(f"{heavy}.")] == []

# ---- bad input: one line naming the file, field and line; exit code 2; nothing written ----------------

def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("spoil, expected", [
    (lambda f: (f / "submissions" / "digit-8_my_method.txt").write_text("3\n77\n"),
     r"digit-8_my_method\.txt:2: index 77 is out of range 0\.\.39"),
    (lambda f: _replace(f / "task_setup.yml", "train_size: 40", "train_size: '40'"),
     r"task_setup\.yml:9:\d+: tasks\[0\]\.train_size: must be a whole number"),
    (lambda f: (f / "embeddings" / "digit-8_test_60.parquet").unlink(),
     r"task_setup\.yml:17:\d+: tasks\[1\]\.test_size: no file embeddings/digit-8_test_60\.parquet"),
    (lambda f: _replace(f / "task_setup.yml", "data_id: digit-8", "data_id: digit_8"),
     r"task_setup\.yml:14:\d+: tasks\[1\]\.data_id: .*'_'"),
    (lambda f: _replace(f / "task_setup.yml", "results_folder: results/", "results_folder: /tmp/results/"),
     r"task_setup\.yml:5:\d+: paths\.results_folder: .*not a safe relative folder"),
    (lambda f: (f / "task_setup.yaml").write_text("dim: 128\n"),
     r"has both of task_setup\.yml .* and task_setup\.yaml"),
])
def test_bad_debugging_input_is_one_line_and_writes_nothing(debugging_folder, spoil, expected):
    folder, _ = debugging_folder
    spoil(folder)
    code, out, err = run_cli("evaluate", str(folder), "--quiet")
    assert code == cli.EXIT_INVALID and out == ""
    assert re.search(expected, one_line(err)), err
    assert not (folder / "results").exists()


@pytest.mark.parametrize("spoil, expected", [
    (lambda f: (f / "data" / "train_sets" / "even-odd.csv").write_text("ImageID,Confidence\ndigits-0001,1\nnope,0\n"),
     r"even-odd\.csv:row 2: ImageID 'nope' is not in the pool"),
    (lambda f: _replace(f / "task_setup.yaml", "eval_tasks: ['digit-3','even-odd']", "eval_tasks: ['digit-3','Hawk']"),
     r"task_setup\.yaml:14:\d+: eval_tasks\[1\]: 'Hawk' has no \[train_csv, test_parquet\] pair"),
    (lambda f: _replace(f / "task_setup.yaml", "dim: 128", "dim: 256"),
     r"train_emb_128_dataperf\.parquet: embeddings must have 256 values"),
    (lambda f: _replace(f / "task_setup.yaml", "'train_sets/digit-3.csv'", "'../digit-3.csv'"),
     r"task_setup\.yaml:9:\d+: digit-3\[0\]: .*not a safe relative file path"),
    (lambda f: _replace(f / "task_setup.yaml", "dim: 128", "dim: 128\nSushi: ['train_sets/Sushi.csv']"),
     r"task_setup\.yaml:14:1: Sushi: must be a pair \[train_csv, test_parquet\] of paths inside data_dir, got a list of 1"),
])
def test_bad_selection_input_is_one_line_and_writes_nothing(tmp_path, spoil, expected):
    write_selection_folder(tmp_path)
    spoil(tmp_path)
    code, out, err = run_cli("evaluate", str(tmp_path), "--quiet")
    assert code == cli.EXIT_INVALID and out == ""
    assert re.search(expected, one_line(err)), err
    assert not (tmp_path / "data" / "results").exists()


def test_a_misspelt_key_is_named_with_the_key_it_replaced(tmp_path):
    write_selection_folder(tmp_path)
    _replace(tmp_path / "task_setup.yaml", "results_dir: 'results'", "result_dir: 'results'")
    code, _, err = run_cli("evaluate", str(tmp_path), "--quiet")
    assert code == cli.EXIT_INVALID
    typo, missing = err.splitlines()
    assert re.search(r"task_setup\.yaml:12:1: result_dir: unknown key .*did you mean 'results_dir'", typo)
    assert missing.endswith("task_setup.yaml: results_dir: required key is missing")


def test_a_folder_without_a_task_file_is_refused(tmp_path):
    code, _, err = run_cli("evaluate", str(tmp_path), "--quiet")
    assert code == cli.EXIT_INVALID and "has neither of task_setup.yml" in one_line(err)


# ---- export, then evaluate: the run's own numbers ----------------------------------------------------

def _debugging_setup(*overrides: str) -> str:
    return render_task_setup(apply_overrides(default_params("debugging"), [
        "train_size=40", "val_size=20", "test_size=60", "tasks=digit-3,digit-8", "strategies=random,loss",
        *overrides]))


@pytest.fixture(scope="module")
def debugging_run(tmp_path_factory):
    """A finished debugging run of the digits with two strategies and a user's partial order."""
    work = tmp_path_factory.mktemp("debugging-run")
    (work / "task_setup.yml").write_text(_debugging_setup("submissions=mine"))
    (work / "submissions").mkdir()
    for data_id in ("digit-3", "digit-8"):
        (work / "submissions" / f"{data_id}_mine.txt").write_text("7\n3\n12\n")
    results = run_benchmark(work / "task_setup.yml", work / "runs" / "dbg", data_root=work / "data", n_jobs=1)
    return work, work / "runs" / "dbg", results


def test_export_then_evaluate_gives_back_a_debugging_run(debugging_run, tmp_path):
    work, run, results = debugging_run
    code, out, err = run_cli("export", str(run), "--out", str(tmp_path / "official"), data_dir=work / "data")
    assert code == 0, err
    official = tmp_path / "official"
    assert sorted(p.name for p in official.iterdir()) == ["NOTES.md", "data", "embeddings", "results",
                                                          "submissions", "task_setup.yml"]
    assert list((official / "results").iterdir()) == []
    for parquet in (official / "embeddings").iterdir():
        assert pq.read_schema(parquet).field("encoding").type == pa.list_(pa.float32())
    assert sorted(p.name for p in (official / "data").iterdir()) == ["dataset_digit-3_train.csv",
                                                                     "dataset_digit-8_train.csv"]
    assert (official / "submissions" / "time_digit-3_random.txt").is_file()
    assert len((official / "submissions" / "digit-3_mine.txt").read_text().split()) == 40  # completed
    assert "mine.txt: 3 of 40 rows" in err
    assert f"--model {catalog.DEFAULT_DEBUGGING_MODEL} --seed 0" in out

    outcome = evaluate_folder(official, model=results["model"], seed=results["seed"], n_jobs=1)
    for data_id, task in results["tasks"].items():
        evaluation = outcome.results[data_id]
        assert evaluation["before_acc"] == task["before_acc"]
        for method, entry in task["strategies"].items():
            points = [e for e in evaluation["submitted_evaluations"] if e["submission"] == method]
            assert [e["accuracy"] for e in points] == entry["curve"]["accuracy"]
            assert [e["fixes"] for e in points] == entry["curve"]["fixes"]
            assert evaluation["auc_score"][method] == {"auc": entry["auc"], "fraction_fixes": entry["fraction_fixes"]}
        # ... and the run's own reference file says the same (its methods in the run's order, ours by name).
        own = json.loads((run / "results" / f"{data_id}_evaluation.json").read_text())
        own["submitted_evaluations"].sort(key=lambda e: (e["submission"], e["fixes"]))
        assert evaluation == own


def test_export_refuses_a_folder_that_holds_something(debugging_run, tmp_path):
    work, run, _ = debugging_run
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    code, _, err = run_cli("export", str(run), "--out", str(tmp_path / "out"), data_dir=work / "data")
    assert code == cli.EXIT_INVALID and "is not an empty folder" in one_line(err)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_export_refuses_changed_data_and_leaves_nothing(debugging_run, tmp_path):
    work, run, _ = debugging_run
    data_root = tmp_path / "data"
    shutil.copytree(work / "data", data_root)
    # The files of the repeat the export writes (the first: the setup's seed), not another repeat's.
    first_repeat = dataset_dir(data_root, "digits", seed=0)
    groundtruth = next(first_repeat.rglob("dataset_digit-8_train.csv"))
    groundtruth.write_text(groundtruth.read_text().replace(",0\n", ",1\n", 1))
    code, _, err = run_cli("export", str(run), "--out", str(tmp_path / "out"), data_dir=data_root)
    assert code == cli.EXIT_INVALID
    assert "dataset_digit-8_train.csv: changed since the run read it" in one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no export, no hidden staging folder


def test_export_refuses_an_unfinished_run(debugging_run, tmp_path):
    work, run, _ = debugging_run
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    (unfinished / "results.json").unlink()
    code, _, err = run_cli("export", str(unfinished), "--out", str(tmp_path / "out"), data_dir=work / "data")
    assert code == cli.EXIT_INVALID and "not finished" in one_line(err)
    assert not (tmp_path / "out").exists()


def test_export_refuses_a_run_whose_manifest_cannot_be_read(debugging_run, tmp_path):
    work, run, _ = debugging_run
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "manifest.json").write_bytes(b"[" * 200_000)  # a RecursionError in json.loads
    code, _, err = run_cli("export", str(broken), "--out", str(tmp_path / "out"), data_dir=work / "data")
    assert code == cli.EXIT_INVALID and "manifest.json is nested too deep to read" in one_line(err)
    assert not (tmp_path / "out").exists()


def _selection_setup(*overrides: str) -> str:
    return render_task_setup(apply_overrides(default_params("selection"), [
        "tasks=digit-3,even-odd", "strategies=random,centroid", "train_size=50", "test_size=80", *overrides]))


@pytest.fixture(scope="module")
def selection_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("selection-run")
    (work / "task_setup.yaml").write_text(_selection_setup())
    results = run_benchmark(work / "task_setup.yaml", work / "runs" / "sel", data_root=work / "data", n_jobs=1)
    return work, work / "runs" / "sel", results


def test_export_then_evaluate_gives_back_a_selection_run(selection_run, tmp_path):
    work, run, results = selection_run
    official = tmp_path / "official"
    export = export_run(run, official, data_root=work / "data")
    methods = ["random", "centroid", "train_csv"]
    assert sorted(p.name for p in official.iterdir()) == sorted(["NOTES.md", *methods])
    assert any("train_csv: its training set" in note for note in export.notes)  # 500 rows over budget 50
    # The notes travel with the folders, one line each.
    assert [f"- {note}" for note in export.notes] == \
        [line for line in (official / "NOTES.md").read_text().splitlines() if line.startswith("- ")]
    for method in methods:
        folder = official / method
        setup_text = (folder / "task_setup.yaml").read_text()
        for key in ("spark_driver_memory:", "data_dir: data", "emb_file: embeddings/train_emb_128_dataperf.parquet",
                    "results_dir: results", "dim: 128", "eval_tasks: [digit-3, even-odd]", "docker_data_dir: data"):
            assert key in setup_text
        assert list((folder / "data" / "results").iterdir()) == []
        test = pq.read_table(folder / "data" / "test_sets" / "alpha_test_set_digit-3_128.parquet")
        assert test.schema.field("Confidence").type == pa.string()
        assert set(test.column("Confidence").to_pylist()) == {"0", "1"}
        outcome = evaluate_folder(folder)
        assert RESULT_NAME.fullmatch(outcome.written[0].name)
        for task in ("digit-3", "even-odd"):
            entry = results["tasks"][task]["strategies"][method]
            assert outcome.results[task] == {k: entry[k] for k in ("accuracy", "recall", "precision", "f1")}


def test_the_console_script_exports_and_evaluates(selection_run, tmp_path):
    work, run, results = selection_run
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(work / "data")}
    exported = subprocess.run([*CLI, "export", "sel", "--out", str(tmp_path / "o")], env=env, capture_output=True,
                              text=True, timeout=300)  # the run by its id under <data root>/runs: not there
    assert exported.returncode == 2 and "no run of that id" in exported.stderr
    exported = subprocess.run([*CLI, "export", str(run), "--out", str(tmp_path / "o")], env=env,
                              capture_output=True, text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr
    evaluated = subprocess.run([*CLI, "evaluate", str(tmp_path / "o" / "centroid")], capture_output=True, text=True,
                               timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"{results['tasks']['digit-3']['strategies']['centroid']['accuracy']:.4f}" in evaluated.stdout


# ---- the Run page offers the export as a zip --------------------------------------------------------

def test_the_run_page_offers_the_official_export(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO_ROOT

    data_root = tmp_path / "data"
    (tmp_path / "task_setup.yml").write_text(_debugging_setup("strategies=random"))
    run_benchmark(tmp_path / "task_setup.yml", data_root / "runs" / "ui-run", data_root=data_root, n_jobs=1)
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(data_root))
    monkeypatch.setenv("APPLIANCE_UI_PASSWORD", "not used: the session is signed in")
    for name in ("APPLIANCE_S3_BUCKET", "AIRFLOW_HOME", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    at = AppTest.from_file(str(REPO_ROOT / "ui" / "app.py"), default_timeout=60)
    at.session_state["authenticated"] = True
    at.run()
    at.query_params["run"] = "ui-run"
    at.switch_page("views/run.py").run()
    assert not at.exception, at.exception
    assert "Official format (.zip)" not in [b.label for b in at.get("download_button")]  # built on request
    at.button(key="run.official_export").click().run()
    assert not at.exception, at.exception
    assert "Official format (.zip)" in [b.label for b in at.get("download_button")]
    data, notes = at.session_state["official_export.ui-run"]  # a file, not bytes in the session
    with zipfile.ZipFile(data) as archive:
        names = set(archive.namelist())
    assert {"ui-run-official/results/","ui-run-official/task_setup.yml", "ui-run-official/data/dataset_digit-3_train.csv",
            "ui-run-official/embeddings/digit-3_train_0.3_40.parquet",
            "ui-run-official/submissions/digit-3_random.txt",
            "ui-run-official/submissions/time_digit-3_random.txt"} <= names
    assert notes == ["the run has 6 repeats: exported the first (seed 0), the one whose curves and files the run "
                     "keeps; its intervals come from all of them",
                     "task digit-3: its embeddings have 128 values; the official main.py's classifier takes exactly "
                     "2048 and stops at its first fit (`evaluate` takes any length)",
                     "task digit-8: its embeddings have 128 values; the official main.py's classifier takes exactly "
                     "2048 and stops at its first fit (`evaluate` takes any length)"]
    assert "ui-run-official/NOTES.md" in names
    # The notes stand folded across the page, not in the download's column.
    folded = next(e for e in at.expander if e.label.startswith("Notes on the official-format export (3"))
    assert all(note in folded.markdown[0].value for note in notes)
