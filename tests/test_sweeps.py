"""Sweeps over train sizes, noise levels, models and seeds, in both tracks: the grid, the runs, the outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from dataperf_appliance.stages import pipeline, sweeps
from dataperf_appliance.config import catalog
from dataperf_appliance.stages.local_run import run_benchmark
from dataperf_appliance.config import ConfigError
from dataperf_appliance.tracks import apply_overrides, default_params, parse_task_setup, render_task_setup
from dataperf_appliance.engine.settings import Settings
from dataperf_appliance.interface.ui_support import run_list, settings_view

PNG = b"\x89PNG\r\n\x1a\n"
# Small grids: 8 cells each, a few seconds on two cores.
SELECTION_SWEEP = ["tasks=[digit-3, even-odd]", "strategies=[random, uncertainty]", "train_size=[20, 40]",
                   "repeats=2", "test_size=50"]
DEBUGGING_SWEEP = ["tasks=[digit-3]", "strategies=[random, loss]", "train_size=[20, 40]",
                   "model=[logistic_regression, knn]", "eval_points=4", "val_size=20", "test_size=60"]
TIMING = {"time_s", "fit_s", "predict_s"}


def sweep_text(track: str, assignments: list[str], *, repeats: int = 1) -> str:
    return render_task_setup(apply_overrides(default_params(track), [f"repeats={repeats}", *assignments]))


def read_table(path: Path) -> list[dict]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


def without_timing(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key not in TIMING} for row in rows]


def run(text: str, folder: Path, data_root: Path, n_jobs: int) -> tuple[Path, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task_setup.yml").write_text(text)
    results = run_benchmark(folder / "task_setup.yml", folder / "run", data_root=data_root, n_jobs=n_jobs)
    return folder / "run", results


# --- the grid ---------------------------------------------------------------------------------------

def test_the_grid_of_a_selection_sweep():
    setup = parse_task_setup(sweep_text("selection", SELECTION_SWEEP + ["model=[logistic_regression, knn]"]))
    assert sweeps.is_sweep(setup) and sweeps.swept_fields(setup) == [("model",), ("repeats",), ("train_size",)]
    grid = sweeps.cells(setup)
    assert len(grid) == sweeps.grid_size(setup) == 2 * 2 * 2 * 2
    at = lambda size, model: (("train_size", size), ("model", model))  # noqa: E731 - a setting, briefly
    assert grid[:3] == [sweeps.Cell("digit-3", at(20, "logistic_regression"), 0, 0),
                        sweeps.Cell("digit-3", at(20, "logistic_regression"), 1, 1),
                        sweeps.Cell("digit-3", at(20, "knn"), 0, 0)]
    assert [a.name for a in sweeps.setting_axes(setup)] == ["train_size", "model"]
    one = sweeps.cell_setup(setup, grid[-1])
    assert (one.eval_tasks, one.train_size, one.model, one.seed, one.repeats) == (("even-odd",), 40, "knn", 1, 1)
    primary = sweeps.primary_setup(setup)
    assert not sweeps.is_sweep(primary) and (primary.train_size, primary.model) == (20, "logistic_regression")


def test_the_grid_of_a_debugging_sweep_is_per_task():
    text = sweep_text("debugging", ["tasks=[digit-3, digit-8]", "noise_level=[0.1, 0.3]"], repeats=3)
    text = text.replace("train_size: 200", "train_size: [50, 100]", 1)  # the first task only
    setup = parse_task_setup(text)
    assert sweeps.grid_size(setup) == (2 * 2 + 1 * 2) * 1 * 3
    cell = sweeps.cells(setup, ["digit-8"])[-1]
    assert cell == sweeps.Cell("digit-8", (("train_size", 200), ("noise_level", 0.3),
                                           ("model", catalog.DEFAULT_DEBUGGING_MODEL)), 2, 2)
    assert sweeps.setting_of(setup, cell) == (200, 0.3, catalog.DEFAULT_DEBUGGING_MODEL)
    task = sweeps.cell_setup(setup, cell).tasks
    assert len(task) == 1 and (task[0].train_size, task[0].noise_level) == (200, 0.3)


def test_a_config_without_lists_or_repeats_is_no_sweep():
    for track in ("debugging", "selection"):
        assert not sweeps.is_sweep(parse_task_setup(sweep_text(track, [])))
        assert not sweeps.is_grid(parse_task_setup(render_task_setup(default_params(track))))
    repeated = parse_task_setup(sweep_text("debugging", [], repeats=2))
    assert sweeps.is_sweep(repeated) and not sweeps.is_grid(repeated)  # replicates of one setting: no grid
    # The default debugging run has repeats, so its scores come with intervals.
    assert parse_task_setup(render_task_setup(default_params("debugging"))).repeats > 1


def test_the_grid_bound_is_checked_at_validation():
    with pytest.raises(ConfigError) as caught:
        parse_task_setup(sweep_text("selection", ["train_size=[10, 20, 30, 40, 50, 60]", "repeats=30"]))
    [issue] = caught.value.issues
    assert issue.field == "repeats" and issue.line == 6
    assert "the sweep has 540 cells (3 task(s) x 6 train size(s) x 1 model(s) x 30 repeat(s)); at most 500" \
        in issue.message
    exactly = sweep_text("selection", ["tasks=[digit-0, digit-3]", "train_size=[10, 20, 30, 40, 50]", "repeats=50"])
    assert sweeps.grid_size(parse_task_setup(exactly)) == 500


# --- runs -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def selection_sweep(tmp_path_factory):
    work = tmp_path_factory.mktemp("selection-sweep")
    run_dir, results = run(sweep_text("selection", SELECTION_SWEEP), work, work / "data", n_jobs=2)
    return work, run_dir, results


def test_a_selection_sweep_writes_the_table_the_plots_and_the_primary_run(selection_sweep):
    _, run_dir, results = selection_sweep
    rows = read_table(run_dir / "sweep.csv")
    assert list(rows[0]) == ["task", "train_size", "model", "repeat", "seed", "strategy", "kind", "accuracy",
                             "precision", "recall", "f1", "rows", "positives", "time_s", "fit_s", "predict_s"]
    assert len(rows) == 8 * 3  # cells x (two strategies and the dataset's own train csv)
    assert {(r["train_size"], r["repeat"], r["seed"]) for r in rows} == {
        ("20", "0", "0"), ("20", "1", "1"), ("40", "0", "0"), ("40", "1", "1")}
    assert all(float(r["fit_s"]) > 0 and float(r["predict_s"]) > 0 for r in rows)
    sweep = results["sweep"]
    assert sweep["cells"] == 8 and sweep["table"] == "sweep.csv"
    assert [{k: "" if v is None else str(v) for k, v in row.items()} for row in sweep["rows"]] == rows  # same table
    assert json.loads((run_dir / "results.json").read_text())["sweep"] == sweep
    assert sweep["parameters"] == {"model": ["logistic_regression"], "repeats": 2, "seeds": [0, 1],
                                   "train_size": [20, 40]}
    means = {(s["task"], s["strategy"], s["train_size"]): s for s in sweep["summary"]}
    assert means["digit-3", "random", 40]["n"] == 2 and means["digit-3", "random", 40]["sem"] >= 0
    uncertain = means["digit-3", "uncertainty", 40]
    assert uncertain["ci_low"] <= uncertain["mean"] <= uncertain["ci_high"]
    assert uncertain["vs_random"]["n"] == 2 and "vs_random" not in means["digit-3", "random", 40]
    # The primary setting (train size 20) is summarized over its two repeats in tasks and overall.
    entry = results["tasks"]["digit-3"]["strategies"]["uncertainty"]
    at_20 = [float(r["accuracy"]) for r in rows if (r["task"], r["train_size"], r["strategy"]) ==
             ("digit-3", "20", "uncertainty")]
    assert entry["over_repeats"]["accuracy"]["mean"] == pytest.approx(sum(at_20) / 2)
    assert results["repeats"] == 2 and set(results["overall"]) == {"random", "uncertainty", "train_csv"}
    assert sweep["plots"] == ["plots/sweep_f1_vs_train_size.png", "plots/sweep_latency.png"]
    assert all((run_dir / p).read_bytes()[:8] == PNG for p in sweep["plots"])
    # The primary cell (first size, repeat 0) is the ordinary run: tasks, training sets, reference files.
    assert results["train_size"] == 20 and list(results["tasks"]) == ["digit-3", "even-odd"]
    primary = [r for r in rows if (r["task"], r["train_size"], r["repeat"], r["strategy"]) ==
               ("digit-3", "20", "0", "random")]
    assert float(primary[0]["accuracy"]) == results["tasks"]["digit-3"]["strategies"]["random"]["accuracy"]
    assert sorted(p.name for p in (run_dir / "submissions").iterdir()) == [
        f"{t}_{s}.csv" for t in ("digit-3", "even-odd") for s in ("random", "uncertainty")]
    assert len(list((run_dir / "results" / "random").glob("result_UTC-*.json"))) == 1


def test_a_sweep_through_the_dag_stages_gives_the_same_table(selection_sweep, tmp_path):
    """The DAG runs one `evaluate` per task (one process each); the numbers are those of the one-call run."""
    work, run_dir, _ = selection_sweep
    settings = Settings(data_dir=work / "data", s3_bucket=None, s3_prefix="")
    run_id = pipeline.create_run(sweep_text("selection", SELECTION_SWEEP), "dag-sweep", settings=settings)
    task_ids = pipeline.validate_run(run_id, settings=settings)
    assert pipeline.prepare_run(run_id, settings=settings) == task_ids == ["digit-3", "even-odd"]
    summaries = [pipeline.evaluate_run_task(run_id, task, n_jobs=1, settings=settings) for task in task_ids]
    assert summaries[0]["cells"] == 4 and set(summaries[0]["strategies"]) == {"random", "uncertainty", "train_csv"}
    assert pipeline.report_run(run_id, settings=settings)["tasks"] == task_ids
    pipeline.publish_run(run_id, settings=settings)
    published = settings.runs_dir / run_id
    assert without_timing(read_table(published / "sweep.csv")) == without_timing(read_table(run_dir / "sweep.csv"))
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["state"] == "success" and set(manifest["stages"]["evaluate"]["parts"]) == set(task_ids)
    evaluate = manifest["stages"]["evaluate"]  # parts in turn: the stage's wall time spans them all
    assert evaluate["seconds"] >= sum(part["seconds"] for part in evaluate["parts"].values()) - 0.01


def test_a_debugging_sweep_is_reproducible_and_independent_of_the_workers(tmp_path):
    text = sweep_text("debugging", DEBUGGING_SWEEP, repeats=2)
    first, results = run(text, tmp_path / "a", tmp_path / "data", n_jobs=2)
    again, _ = run(text, tmp_path / "b", tmp_path / "data", n_jobs=1)
    rows = read_table(first / "sweep.csv")
    assert len(rows) == 8 * 2  # cells x strategies
    assert list(rows[0])[:8] == ["task", "train_size", "noise_level", "model", "repeat", "seed", "strategy", "kind"]
    assert {r["model"] for r in rows} == {"logistic_regression", "knn"}
    assert without_timing(rows) == without_timing(read_table(again / "sweep.csv"))
    # The metric against each swept axis (train size, model), then the timings.
    assert results["sweep"]["plots"] == ["plots/sweep_fraction_fixes_vs_train_size.png",
                                         "plots/sweep_fraction_fixes_vs_model.png", "plots/sweep_latency.png"]
    assert all((first / p).read_bytes()[:8] == PNG for p in results["sweep"]["plots"])
    # The primary cell is the ordinary run of the first values: its curves, orders and reference file.
    task = results["tasks"]["digit-3"]
    assert (results["model"], task["train_size"]) == ("logistic_regression", 20)
    assert (first / "submissions" / "digit-3_loss.txt").exists()
    assert (first / "results" / "digit-3_evaluation.json").exists()


def test_the_cli_refuses_a_grid_over_the_bound(tmp_path):
    import subprocess
    import sys

    text = sweep_text("selection", ["train_size=[10, 20, 30, 40, 50, 60]"]).replace("repeats: 1", "repeats: 30")
    (tmp_path / "big.yaml").write_text(text)
    cli = Path(sys.executable).with_name("dataperf-appliance")
    done = subprocess.run([str(cli), "validate", "big.yaml", "--data-dir", str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "big.yaml:6:1: repeats: the sweep has 540 cells" in done.stderr


# --- repeats: replicates of one setting ----------------------------------------------------------

REPLICATED = ["tasks=[digit-3, digit-9]", "strategies=[random, knn_shapley]", "train_size=60", "eval_points=6",
              "val_size=20", "test_size=60"]


def test_each_repeat_draws_new_noise_and_a_new_random_order(tmp_path):
    from dataperf_appliance.engine import datasets
    from dataperf_appliance.engine.debugging import debugging_task, debugging_strategies

    setup = parse_task_setup(sweep_text("debugging", REPLICATED, repeats=2))
    first, second = (sweeps.cell_setup(setup, cell) for cell in sweeps.cells(setup, ["digit-3"]))
    assert (first.seed, second.seed) == (setup.seed, setup.seed + 1)
    loaded = []
    for one in (first, second):
        spec = one.tasks[0]
        task = datasets.load_debugging_task(debugging_task.prepare_data(one, tmp_path)[spec.data_id],
                                            debugging_task.task_spec(spec))
        order = debugging_strategies.rank_training_points("random", task.X_train, task.y_train, task.X_val, task.y_val,
                                                seed=one.seed)
        loaded.append((task.mislabeled, order))
    assert not (loaded[0][0] == loaded[1][0]).all()  # other labels flipped
    assert not (loaded[0][1] == loaded[1][1]).all()  # another random order


def test_repeats_alone_are_replicates_with_intervals_and_a_paired_test(tmp_path):
    from dataperf_appliance.engine import stats

    run_dir, results = run(sweep_text("debugging", REPLICATED, repeats=3), tmp_path, tmp_path / "data", n_jobs=2)
    assert "sweep" not in results and not (run_dir / "sweep.csv").exists()  # one setting: no sweep
    table = read_table(run_dir / "repeats.csv")
    assert results["replicates"]["table"] == "repeats.csv" and len(table) == 2 * 3 * 2  # tasks x repeats x methods
    assert results["replicates"]["seeds"] == [0, 1, 2] and results["repeats"] == 3
    for task in ("digit-3", "digit-9"):
        per_repeat = {name: [float(r["fraction_fixes"]) for r in table
                             if (r["task"], r["strategy"]) == (task, name)] for name in ("random", "knn_shapley")}
        knn = results["tasks"][task]["strategies"]["knn_shapley"]
        assert knn["over_repeats"]["fraction_fixes"] == pytest.approx(stats.describe(per_repeat["knn_shapley"]))
        assert knn["vs_random"]["fraction_fixes"] == pytest.approx(
            stats.paired_comparison(per_repeat["knn_shapley"], per_repeat["random"]))
        assert knn["vs_random"]["fraction_fixes"]["test"] == "paired t-test"
        assert "vs_random" not in results["tasks"][task]["strategies"]["random"]
        band = knn["curve_over_repeats"]
        assert band["n"] == 3 and len(band["mean"]) == len(knn["curve"]["fixes"]) == 6
        assert all(low <= mean <= high for low, mean, high in zip(band["ci_low"], band["mean"], band["ci_high"]))
        # The first repeat is the ordinary run: its curve and its reference file.
        assert knn["fraction_fixes"] == per_repeat["knn_shapley"][0]
    overall = results["overall"]["knn_shapley"]["over_repeats"]["auc"]
    assert overall["n"] == 3 and overall["ci_low"] <= overall["mean"] <= overall["ci_high"]
    assert json.loads((run_dir / "results.json").read_text())["overall"] == results["overall"]
    assert (run_dir / "plots" / "vs_random.png").read_bytes()[:8] == PNG
    assert (run_dir / "results" / "digit-3_evaluation.json").exists()


def test_a_selection_method_over_the_budget_is_marked_and_not_ranked(tmp_path):
    from dataperf_appliance.interface.cli import _summary
    from dataperf_appliance.interface.ui_support import run_detail, run_list

    text = sweep_text("selection", ["tasks=[digit-3]", "strategies=[random, centroid]", "train_size=40",
                                    "test_size=60"], repeats=2)
    _, results = run(text, tmp_path, tmp_path / "data", n_jobs=2)
    entries = results["tasks"]["digit-3"]["strategies"]
    assert entries["train_csv"]["over_budget"] is True and entries["train_csv"]["train_size"] > 40
    assert entries["random"]["over_budget"] is False and entries["centroid"]["over_budget"] is False
    assert results["overall"]["train_csv"]["ranked"] is False and results["overall"]["random"]["ranked"] is True
    assert run_list.headline(results).method != "train_csv"
    means = run_detail.method_means(results)
    assert means[-1]["method"] == "train_csv" and not means[-1]["ranked"]
    rows = run_detail.metrics_rows(results)
    assert rows[-1]["method"] == "train_csv" and rows[-1]["over budget"] is True
    task_lines = [line for line in _summary(results).splitlines() if line.startswith("digit-3")]
    assert "train_csv" in task_lines[-1] and "over the budget: not ranked" in task_lines[-1]


def test_a_sweep_is_read_at_a_chosen_setting_as_the_plain_run_of_it(selection_sweep):
    _, run_dir, results = selection_sweep
    summary = results["sweep"]["summary"]
    assert [a["name"] for a in results["sweep"]["axes"]] == ["train_size", "model"]
    assert {a["kind"] for a in results["sweep"]["axes"]} == {"condition"}
    assert settings_view.settings(results) == [(20, "logistic_regression"), (40, "logistic_regression")]
    chosen = settings_view.view(results, (40, "logistic_regression"))
    at_40 = {(r["task"], r["strategy"]): r for r in summary if r["train_size"] == 40}
    entry = chosen["tasks"]["digit-3"]["strategies"]["uncertainty"]
    assert entry["f1"] == at_40["digit-3", "uncertainty"]["mean"]
    assert entry["vs_random"]["f1"] == at_40["digit-3", "uncertainty"]["vs_random"]
    overall = chosen["overall"]["uncertainty"]
    assert overall["f1"] == pytest.approx((at_40["digit-3", "uncertainty"]["mean"]
                                           + at_40["even-odd", "uncertainty"]["mean"]) / 2)
    assert chosen["setting"] == "train size 40 · evaluation model logistic_regression"
    assert chosen["conditions"] == {"train_size": 40, "model": "logistic_regression"}
    # The first setting is the primary one: its view holds exactly the figures of results.json's own.
    first = settings_view.view(results)
    for name, record in results["overall"].items():
        assert first["overall"][name]["over_repeats"] == record["over_repeats"]
        assert first["overall"][name].get("vs_random") == record.get("vs_random")
    # The CLI prints each setting apart, with the same figures as the view of it (conditions never averaged).
    from dataperf_appliance.interface.cli import _summary
    from dataperf_appliance.engine.stats import format_comparison, format_estimate

    printed = _summary(results)
    for setting in settings_view.settings(results):
        label = settings_view.setting_label(results, setting)
        block = printed.split(f"  {label}:\n", 1)[1].split("\n  train size", 1)[0]
        for name, entry in settings_view.view(results, setting)["overall"].items():
            shown = format_estimate(entry["f1"], entry["over_repeats"]["f1"])
            assert f"{name:<24} {shown:>17}  {format_comparison(entry.get('vs_random', {}).get('f1'))}" in block
    # The Runs list marks the sweep and scores it at its first setting.
    row = run_list.read_run_folder(run_dir, run_dir.name, published=True)
    best = max(first["overall"].items(), key=lambda item: (item[1]["f1"], item[0]))
    assert row.sweep_settings == 2 and (row.headline.method, row.headline.value) == (best[0], best[1]["f1"])
    assert run_list.rows_table([row])[0]["sweep"] == "sweep · 2 settings"
