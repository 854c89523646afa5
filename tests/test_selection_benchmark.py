"""The selection track's stages end to end: the digits default, a user's csv, and an official folder."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from dataperf_appliance.engine.selection import selection_task, data, files
from dataperf_appliance.engine.selection.files import TrainingSetError

METRIC_KEYS = {"accuracy", "precision", "recall", "f1", "train_size", "time_s", "fit_s", "predict_s"}
STRATEGIES = ["random", "balanced_random", "uncertainty", "diversity", "centroid"]


def digits_pairs(tasks) -> dict[str, tuple[str, str]]:
    return {t: (data.random_train_file_name(t), data.test_file_name(t, data.DIGITS_DIM)) for t in tasks}


@dataclass
class StandInSetup:
    """The fields of `SelectionSetup` that the engine reads, without its checks (so the engine's own show)."""

    dataset: str = "digits"
    dim: int = 128
    model: str = "logistic_regression"
    seed: int = 0
    train_size: int = 100
    test_size: int = 100
    eval_tasks: list[str] = field(default_factory=lambda: ["digit-0", "digit-3", "even-odd"])
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    submissions: list[str] = field(default_factory=list)
    methods: tuple = ()
    emb_file: str = data.pool_file_name(data.DIGITS_DIM)
    tasks: dict[str, tuple[str | None, str]] = field(
        default_factory=lambda: digits_pairs(data.TASK_IDS))
    results_dir: str = "results"
    track: str = "selection"

    def task_ids(self) -> list[str]:
        return list(self.eval_tasks)

    @property
    def submission_folder(self) -> str:
        return "submissions/"


def test_the_stand_in_has_only_fields_of_the_real_setup():
    from dataperf_appliance.tracks.selection import SelectionSetup

    assert set(StandInSetup.__dataclass_fields__) <= set(SelectionSetup.model_fields)


def write_user_csv(source: Path, task: str, method: str, data_root: Path, seed: int = 0) -> Path:
    """A user's training set: the first 60 points of the dataset's random csv, 5 labels flipped."""
    random_csv = data.dataset_dir(data_root, "digits", seed=seed) / data.random_train_file_name(task)
    frame = pd.read_csv(random_csv, dtype={"ImageID": str}).head(60)
    frame.loc[:4, "Confidence"] = 1 - frame.loc[:4, "Confidence"]
    path = source / "submissions" / f"{task}_{method}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("selection")
    data_root, work_dir, source = root / "data", root / "run", root / "source"
    setup = StandInSetup(submissions=["mine"])
    selection_task.prepare_data(setup, data_root)
    for task in setup.eval_tasks:
        write_user_csv(source, task, "mine", data_root)
    calls = []
    returned = selection_task.evaluate_tasks(setup, data_root, work_dir, source, n_jobs=2,
                                        progress=lambda done, total: calls.append((done, total)))
    results = selection_task.report(setup, work_dir)
    return setup, data_root, work_dir, source, returned, results, calls


def test_prepare_data_gives_the_files_of_every_task(tmp_path):
    setup = StandInSetup()
    found = selection_task.prepare_data(setup, tmp_path)
    assert set(found) == set(setup.eval_tasks)
    for paths in found.values():
        assert {"pool", "test", "examples"} <= set(paths) and all(p.exists() for p in paths.values())
        assert paths["pool"].parent.parent == tmp_path / "datasets" / "digits-selection" / "seed-0"


def test_results_json_has_the_right_keys(digits_run):
    setup, _, work_dir, _, returned, results, calls = digits_run
    on_disk = json.loads((work_dir / "results.json").read_text())
    assert on_disk == results
    assert {"track", "model", "seed", "dataset", "tasks"} <= set(results)
    assert (results["track"], results["model"], results["seed"], results["dataset"]) == (
        "selection", "logistic_regression", 0, "digits")
    assert list(results["tasks"]) == setup.eval_tasks
    for task, task_result in results["tasks"].items():
        assert list(task_result["strategies"]) == [*STRATEGIES, "mine", "train_csv"]
        for name, entry in task_result["strategies"].items():
            assert METRIC_KEYS <= set(entry), name
            assert all(0 <= entry[m] <= 1 for m in ("accuracy", "precision", "recall", "f1"))
        assert task_result["strategies"]["random"]["train_size"] == 100
        assert task_result["strategies"]["random"]["labels_bought"] == 100
        assert task_result["strategies"]["centroid"]["labels_bought"] == 0
        assert task_result["strategies"]["mine"]["kind"] == "submission"
        assert task_result["strategies"]["mine"]["time_s"] is None
        assert task_result["strategies"]["mine"]["wrong_labels"] == 5
        assert task_result["strategies"]["train_csv"]["train_size"] == 500
        assert task_result["test_size"] == 100 and task_result["test_positives"] == 50
        assert json.loads((work_dir / "partial" / f"{task}.json").read_text()) == returned[task]
    assert calls[-1] == (len(calls), len(calls)) == (21, 21)  # 3 tasks x (5 strategies + 1 user csv + train_csv)


def test_training_sets_are_written_in_the_dataperf_format(digits_run):
    setup, data_root, work_dir, source, _, results, _ = digits_run
    pool = files.read_pool(data.dataset_dir(data_root, "digits") / data.pool_file_name(128))
    for task in setup.eval_tasks:
        for name in STRATEGIES:
            path = work_dir / "submissions" / f"{task}_{name}.csv"
            assert results["tasks"][task]["strategies"][name]["file"] == f"submissions/{task}_{name}.csv"
            frame = files.read_training_set(path, set(pool.image_ids), setup.train_size)
            assert len(frame) == 100
        copied = work_dir / "submissions" / f"{task}_mine.csv"
        assert copied.read_bytes() == (source / "submissions" / f"{task}_mine.csv").read_bytes()
        assert results["tasks"][task]["strategies"]["train_csv"]["file"] == data.random_train_file_name(task)


def test_reference_result_files_one_per_method(digits_run):
    setup, _, work_dir, _, _, results, _ = digits_run
    for method in [*STRATEGIES, "mine", "train_csv"]:
        [path] = (work_dir / "results" / method).iterdir()
        assert re.fullmatch(r"result_UTC-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}\.json", path.name)
        assert results["reference_results"][method] == str(path.relative_to(work_dir))
        content = json.loads(path.read_text())
        assert list(content) == setup.eval_tasks
        for task, scores in content.items():
            assert list(scores) == ["accuracy", "recall", "precision", "f1"]
            assert scores["f1"] == results["tasks"][task]["strategies"][method]["f1"]


def test_plots_are_drawn(digits_run):
    _, _, work_dir, _, _, results, _ = digits_run
    assert "plots/selection_metrics.png" in results["plots"]
    for relative in results["plots"]:
        assert (work_dir / relative).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(results["plots"]) == 1 + 3  # the bars, and a gallery per digits task


def test_strategies_do_what_they_should_on_the_digits(digits_run):
    _, _, _, _, _, results, _ = digits_run
    tasks = results["tasks"].values()

    def mean_f1(name):
        return np.mean([t["strategies"][name]["f1"] for t in tasks])

    # Active learning or coverage is not much worse than a random draw of the same budget...
    assert max(mean_f1("uncertainty"), mean_f1("diversity")) >= mean_f1("random") - 0.1
    # ...the reference's baseline labels everything 1, so it finds the positives...
    assert all(t["strategies"]["centroid"]["recall"] > 0 for t in tasks)
    # ...and balancing finds more positives than a random draw on the rare-positive digits.
    for task in ("digit-0", "digit-3"):
        strategies = results["tasks"][task]["strategies"]
        assert strategies["balanced_random"]["positives"] > strategies["random"]["positives"]


def test_report_again_replaces_the_reference_files(digits_run):
    setup, _, work_dir, _, _, _, _ = digits_run
    later = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    results = selection_task.report(setup, work_dir, now=later)
    assert [p.name for p in (work_dir / "results" / "random").iterdir()] == ["result_UTC-2031-01-02-03-04-05.json"]
    assert results["reference_results"]["random"] == "results/random/result_UTC-2031-01-02-03-04-05.json"


def test_one_worker_gives_the_same_numbers(digits_run, tmp_path):
    setup, data_root, work_dir, source, returned, _, _ = digits_run
    again = selection_task.evaluate_tasks(setup, data_root, tmp_path / "run", source, data_ids=["digit-3"], n_jobs=1)
    assert set(again) == {"digit-3"}
    for name, entry in again["digit-3"]["strategies"].items():
        before = returned["digit-3"]["strategies"][name]
        assert {k: entry[k] for k in ("accuracy", "precision", "recall", "f1", "positives")} == {
            k: before[k] for k in ("accuracy", "precision", "recall", "f1", "positives")}
    for name in STRATEGIES:
        assert ((tmp_path / "run" / "submissions" / f"digit-3_{name}.csv").read_bytes()
                == (work_dir / "submissions" / f"digit-3_{name}.csv").read_bytes())


def test_a_bad_user_csv_stops_the_run_before_any_work(tmp_path):
    setup = StandInSetup(eval_tasks=["digit-3"], strategies=["random"], submissions=["mine"])
    selection_task.prepare_data(setup, tmp_path / "data")
    path = tmp_path / "source" / "submissions" / "digit-3_mine.csv"
    path.parent.mkdir(parents=True)
    path.write_text("ImageID,Confidence\ndigits-0000,1\nnot-a-digit,0\n")
    with pytest.raises(TrainingSetError, match=r"digit-3_mine\.csv:row 2: ImageID 'not-a-digit' is not in the pool"):
        selection_task.evaluate_tasks(setup, tmp_path / "data", tmp_path / "run", tmp_path / "source", n_jobs=1)
    assert not (tmp_path / "run").exists()


def test_a_missing_user_csv_is_named(tmp_path):
    setup = StandInSetup(eval_tasks=["digit-3"], strategies=[], submissions=["mine"])
    with pytest.raises(FileNotFoundError, match="digit-3_mine.csv"):
        selection_task.evaluate_tasks(setup, tmp_path / "data", tmp_path / "run", tmp_path / "source", n_jobs=1)


# Names, strategies and duplicates are the setup model's to refuse (tests/test_config_selection.py): the engine
# trusts a validated setup. What it still finds is what only the data can tell.
@pytest.mark.parametrize("change, error, message", [
    ({"eval_tasks": ["cat"], "tasks": digits_pairs(["cat"])}, ValueError, "unknown digits task"),
    ({"eval_tasks": ["cat"]}, ValueError, "tasks names no"),
    ({"dim": 256}, ValueError, "the digits embeddings have 128 values"),
    ({"test_size": 5000}, ValueError, "at most"),
])
def test_setup_problems(tmp_path, change, error, message):
    with pytest.raises(error, match=message):
        selection_task.prepare_data(StandInSetup(**change), tmp_path)


def test_unknown_data_id(tmp_path):
    with pytest.raises(ValueError, match="no task digit-9 in this setup"):
        selection_task.evaluate_tasks(StandInSetup(), tmp_path, tmp_path / "run", tmp_path, data_ids=["digit-9"])


def test_report_without_evaluation(tmp_path):
    with pytest.raises(FileNotFoundError, match="run evaluate_tasks first"):
        selection_task.report(StandInSetup(), tmp_path)


# --- an official folder, written with plain pandas --------------------------------------------------

DIM = 6


def write_official_folder(folder: Path, *, with_labels: bool = True) -> None:
    """Two tasks over one pool of 80 points, files as the reference ships them (Confidence strings in test)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(2, DIM)) * 3
    truth = {"A": rng.integers(0, 2, size=140), "B": None}
    truth["B"] = 1 - truth["A"]
    X = centers[truth["A"]] + rng.normal(size=(140, DIM))
    ids = [f"{i:016x}" for i in rng.integers(0, 2**62, size=140)]
    (folder / "embeddings").mkdir(parents=True)
    (folder / "test_sets").mkdir()
    (folder / "examples").mkdir()
    (folder / "train_sets").mkdir()
    pd.DataFrame({"ImageID": ids[:80], "embedding": [list(row) for row in X[:80]]}).to_parquet(
        folder / "embeddings" / f"train_emb_{DIM}_dataperf.parquet")
    pd.DataFrame({"ImageID": ids[:80][:20], "Confidence": truth["A"][:20]}).to_csv(
        folder / "train_sets" / "random_20.csv", index=False)
    for task in ("A", "B"):
        labels = truth[task]
        pd.DataFrame({"ImageID": ids[80:], "embedding": [list(row) for row in X[80:]],
                      "Confidence": labels[80:].astype(str)}).to_parquet(
            folder / "test_sets" / f"alpha_test_set_{task}_{DIM}.parquet")
        positives = [ids[i] for i in range(80) if labels[i] == 1][:5]
        pd.DataFrame({"LabelName": "/m/x", "ImageID": positives, "Confidence": 1,
                      "OriginalURL": "https://example.org/x.jpg", "DisplayName": task}).to_csv(
            folder / "examples" / f"alpha_example_set_{task}.csv", index=False)
        if with_labels:
            (folder / "labels").mkdir(exist_ok=True)
            pd.DataFrame({"ImageID": ids[:80], "Confidence": labels[:80]}).to_csv(
                folder / "labels" / f"pool_labels_{task}.csv", index=False)


def official_setup(**change) -> StandInSetup:
    fields = dict(dataset="tiny", dim=DIM, eval_tasks=["A", "B"], train_size=16, strategies=["random", "centroid"],
                  emb_file=f"embeddings/train_emb_{DIM}_dataperf.parquet",
                  tasks={t: ("train_sets/random_20.csv", f"test_sets/alpha_test_set_{t}_{DIM}.parquet")
                         for t in ("A", "B")})
    return StandInSetup(**{**fields, **change})


def test_official_folder_end_to_end(tmp_path):
    write_official_folder(tmp_path / "datasets" / "tiny")
    setup = official_setup()
    found = selection_task.prepare_data(setup, tmp_path)
    assert set(found["A"]) == {"pool", "test", "examples", "labels", "train_csv"}

    selection_task.evaluate_tasks(setup, tmp_path, tmp_path / "run", tmp_path, n_jobs=1)
    results = selection_task.report(setup, tmp_path / "run")

    # The task's own train csv gets the reference's numbers, computed the reference's way.
    pool = pd.read_parquet(tmp_path / "datasets" / "tiny" / "embeddings" / f"train_emb_{DIM}_dataperf.parquet")
    train = pd.read_csv(tmp_path / "datasets" / "tiny" / "train_sets" / "random_20.csv", dtype=str).merge(pool)
    test = pd.read_parquet(tmp_path / "datasets" / "tiny" / "test_sets" / f"alpha_test_set_A_{DIM}.parquet")
    model = LogisticRegression(random_state=0).fit(train["embedding"].tolist(), train["Confidence"].tolist())
    y_pred, y = model.predict(test["embedding"].tolist()).tolist(), test["Confidence"].tolist()
    expected = {"accuracy": accuracy_score(y, y_pred), "recall": recall_score(y, y_pred, pos_label="1"),
                "precision": precision_score(y, y_pred, pos_label="1"), "f1": f1_score(y, y_pred, pos_label="1")}
    [reference_file] = (tmp_path / "run" / "results" / "train_csv").iterdir()
    assert json.loads(reference_file.read_text())["A"] == pytest.approx(expected, abs=1e-12)
    entry = results["tasks"]["A"]["strategies"]["train_csv"]
    assert entry["kind"] == "dataset" and entry["train_size"] == 20
    assert results["tasks"]["A"]["strategies"]["random"]["train_size"] == 16
    assert results["tasks"]["A"]["examples"] == 5
    assert results["plots"] == ["plots/selection_metrics.png"]  # no digits gallery for a folder


def test_official_folder_without_pool_labels(tmp_path):
    write_official_folder(tmp_path / "datasets" / "tiny", with_labels=False)
    with pytest.raises(FileNotFoundError, match=r"no pool labels for task A .*strategies random buy"):
        selection_task.prepare_data(official_setup(), tmp_path)
    # The reference's baseline needs no label: it runs.
    setup = official_setup(strategies=["centroid", "closest_furthest"])
    out = selection_task.evaluate_tasks(setup, tmp_path, tmp_path / "run", tmp_path, n_jobs=1)
    assert out["A"]["strategies"]["centroid"]["wrong_labels"] is None
    assert out["A"]["pool_positives"] is None


@pytest.mark.parametrize("change, error, message", [
    ({"dim": 8}, ValueError, rf"train_emb_{DIM}_dataperf\.parquet: embeddings must have 8 values"),
    ({"emb_file": "embeddings/nope.parquet"}, FileNotFoundError, "nope.parquet"),
    ({"emb_file": "../../x.parquet"}, ValueError, "inside the dataset folder"),
    ({"tasks": {}}, ValueError, "tasks names no"),
    ({"dataset": "missing"}, FileNotFoundError, "not found"),
])
def test_official_folder_problems(tmp_path, change, error, message):
    write_official_folder(tmp_path / "datasets" / "tiny")
    with pytest.raises(error, match=message):
        selection_task.evaluate_tasks(official_setup(**change), tmp_path, tmp_path / "run", tmp_path, n_jobs=1)
