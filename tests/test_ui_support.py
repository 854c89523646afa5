"""The logic behind the Streamlit pages (dataperf_appliance.interface.ui_support), without Streamlit."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import numpy as np
import pytest
from ui_fixtures import small_setup, write_run

from dataperf_appliance.orchestration import airflow_gateway

from dataperf_appliance.stages import pipeline
from dataperf_appliance.interface.launch import launch_run
from dataperf_appliance.tracks import default_params
from dataperf_appliance.engine.settings import load_settings
from dataperf_appliance.interface.ui_support import compare, dataset_upload, form, run_detail, run_list


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("APPLIANCE_S3_BUCKET", raising=False)
    return load_settings()


# ---- form ---------------------------------------------------------------------------------------

def test_fields_follow_the_template_parameters():
    specs = {spec.key: spec for spec in form.field_specs("debugging")}
    # A method's parameters are inputs of their own, under the strategies (`method_parameter_specs`).
    assert set(specs) == set(default_params("debugging")) - form.UPLOADED_PARAMS - {form.METHOD_PARAMS}
    assert list(specs)[:4] == ["track", "dataset", "model", "tasks"]
    assert specs["track"].kind == "track"
    assert specs["model"].kind == "choice" and "knn" in specs["model"].options
    assert specs["strategies"].kind == "multichoice" and "loss" in specs["strategies"].options
    assert specs["tasks"].kind == "multichoice" and "digit-0" in specs["tasks"].options  # digits: known tasks
    assert specs["train_size"].kind == "int" and specs["noise_level"].kind == "float"
    assert specs["eval_points"].kind == "optional_number"
    assert specs["submissions"].kind == "names"
    synthetic = {s.key: s for s in form.field_specs("debugging", dataset="synthetic")}
    assert synthetic["tasks"].kind == "names"  # any synthetic-N


def test_a_chosen_library_method_brings_inputs_of_its_parameters(settings):
    specs = form.method_parameter_specs("debugging", ["random", "data_oob", "influence_function"])
    by_key = {spec.key: spec for spec in specs}
    assert [s.name for s in specs if s.method == "data_oob"] == ["n_estimators", "max_features", "n_jobs"]
    assert {s.method for s in specs} == {"data_oob", "influence_function"}  # random takes none
    trees = by_key["method_params.data_oob.n_estimators"]
    assert (trees.kind, trees.default, trees.help.startswith("trees")) == ("int", 800, True)
    assert by_key["method_params.data_oob.max_features"].kind == "text"
    assert by_key["method_params.influence_function.damping"].kind == "float"
    keys = [form.widget_key(track, spec) for track in ("debugging", "other") for spec in
            form.method_parameter_specs("debugging")]
    assert len(keys) == len(set(keys))  # n_jobs of each method, in each track, is a widget of its own
    assert form.method_parameter_specs("debugging", ["random"]) == []
    params, errors = form.params_from_values("debugging", {
        "strategies": ["random", "data_oob"], "method_params.data_oob.n_estimators": 50.0})
    assert params["method_params"]["data_oob"] == {"n_estimators": 50, "max_features": "sqrt", "n_jobs": 1}
    assert default_params("debugging")["method_params"]["data_oob"]["n_estimators"] == 800  # defaults untouched
    check = form.check_params(params, settings, parse_errors=errors)
    assert check.ok, check.messages
    assert "params: {n_estimators: 50, max_features: sqrt, n_jobs: 1}" in check.text
    params["method_params"]["data_oob"]["n_jobs"] = "two"
    problems = form.check_params(params, settings).field_errors["strategies"]  # under the methods' field
    assert any("n_jobs must be a whole number" in message and "line" in message for message in problems)


def test_a_number_that_may_be_null_takes_a_blank():
    if "selection" not in form.available_tracks():
        pytest.skip("no selection track")
    specs = {s.key: s for s in form.field_specs("selection")}
    assert specs["test_size"].kind == "optional_number" and form.text_of(specs["test_size"], 100) == "100"
    assert form.parse_field(specs["test_size"], " ") is None
    assert specs["seed"].kind == "int"


def test_every_available_track_has_a_form():
    for track in form.available_tracks():
        params, errors = form.params_from_values(track, {}, form.field_specs(track))
        assert params == default_params(track) and not errors


def test_text_fields_are_read_and_bad_ones_named():
    specs = {s.key: s for s in form.field_specs("debugging", dataset="synthetic")}
    assert form.parse_field(specs["tasks"], " synthetic-0, synthetic-1 ,") == ["synthetic-0", "synthetic-1"]
    assert form.parse_field(specs["eval_points"], "") is None
    assert form.parse_field(specs["eval_points"], "12") == 12
    numbers = form.FieldSpec("train_size", "numbers", "Training size", "", [100])
    assert form.parse_field(numbers, "100, 200") == [100, 200]
    assert form.parse_field(numbers, "0.1,0.3") == [0.1, 0.3]
    params, errors = form.params_from_values("debugging", {"eval_points": "ten"}, list(specs.values()))
    assert "eval_points" in errors and "'ten' is not a number" in errors["eval_points"][0]


def test_a_valid_form_renders_a_valid_file(settings):
    params, errors = form.params_from_values("debugging", {"train_size": 60, "tasks": ["digit-3"]})
    check = form.check_params(params, settings, parse_errors=errors)
    assert check.ok, check.messages
    assert "train_size: 60" in check.text and "digit-3" in check.text


def test_an_invalid_value_is_filed_under_its_field_with_its_line(settings):
    params, _ = form.params_from_values("debugging", {"noise_level": 2.0, "train_size": 0})
    check = form.check_params(params, settings)
    assert not check.ok and check.setup is None
    assert set(check.field_errors) >= {"noise_level", "train_size"}
    assert any("line" in message for message in check.field_errors["noise_level"])
    assert check.text is not None and "noise_level: 2.0" in check.text  # the preview still shows the file


def test_an_unknown_strategy_in_yaml_names_the_strategies_field():
    assert form.field_of_issue("baselines[1].name", ["strategies", "tasks"]) == "strategies"
    assert form.field_of_issue("tasks[0].data_id", ["strategies", "tasks"]) == "tasks"
    assert form.field_of_issue("tasks[2].train_size", ["train_size", "tasks"]) == "train_size"
    assert form.field_of_issue("paths.embedding_folder", ["train_size"]) is None
    assert form.field_of_issue(None, ["train_size"]) is None


def test_yaml_mode_reports_lines(settings):
    check = form.check_yaml(small_setup().replace("noise_level: 0.3", "noise_level: 5"), settings)
    assert not check.ok
    assert any("noise_level" in message and "5" in message for message in check.general_errors)
    assert form.check_yaml(small_setup(), settings).ok
    broken = form.check_yaml("tasks: [\n", settings)
    assert not broken.ok and broken.general_errors


def test_submission_files_are_required_and_checked(settings):
    params = {**default_params("debugging"), "train_size": 60, "val_size": 20, "test_size": 40,
              "tasks": ["digit-3", "digit-8"], "submissions": ["mine"]}
    good = "\n".join(str(i) for i in range(10)).encode()
    missing = form.check_params(params, settings, files={"digit-3_mine.txt": good})
    assert not missing.ok and "digit-8_mine.txt" in missing.field_errors["submissions"][0]
    bad = form.check_params(params, settings, files={"digit-3_mine.txt": good, "digit-8_mine.txt": b"1\n1\n"})
    assert not bad.ok and any("duplicate index 1" in m for m in bad.field_errors["submissions"])
    ok = form.check_params(params, settings, files={"digit-3_mine.txt": good, "digit-8_mine.txt": good,
                                                   "time_digit-3_mine.txt": b"1.5\n", "notes.txt": b"x"})
    assert ok.ok, ok.messages
    assert any("notes.txt" in w for w in ok.warnings)
    assert form.run_files(ok.setup, {"digit-3_mine.txt": good}) == {"submissions/digit-3_mine.txt": good}


def test_methods_are_found_in_file_names():
    names = ["digit-3_mine.txt", "time_digit-3_mine.txt", "digit-8_mine.txt", "digit-8_other.v2.txt", "x.png",
             "Hawk_best.csv"]
    assert form.methods_in_files(names, ["digit-3", "digit-8", "Hawk"]) == ["mine", "other.v2", "best"]


def test_uploaded_methods_join_the_typed_ones():
    specs = form.field_specs("debugging")
    values, found = form.with_uploaded_methods({"tasks": ["digit-3"], "submissions": "other"}, specs,
                                               ["digit-3_mine.txt", "time_digit-3_mine.txt"])
    assert found == ["mine"] and values["submissions"] == ["other", "mine"]
    assert form.with_uploaded_methods({"tasks": ["digit-3"]}, specs, []) == ({"tasks": ["digit-3"]}, [])


def test_launch_creates_and_triggers_once_and_a_double_click_adds_nothing(settings):
    calls = []

    def trigger(run_id):
        if run_id in calls:
            raise airflow_gateway.RunAlreadyTriggered(run_id)
        calls.append(run_id)

    text = small_setup()
    first = launch_run(text, "r1", settings=settings, trigger=trigger)
    again = launch_run(text, "r1", settings=settings, trigger=trigger)
    assert first.triggered and again.triggered and calls == ["r1"]
    assert (settings.runs_dir / ".r1.partial" / "task_setup.yml").read_text() == text
    assert pipeline.read_manifest("r1", settings)["state"] == "queued"


def test_launch_when_airflow_is_down_marks_the_run_failed(settings):
    def trigger(run_id):
        raise airflow_gateway.AirflowUnavailable("database down")

    launch = launch_run(small_setup(), "r2", settings=settings, trigger=trigger)
    assert not launch.triggered and "database down" in launch.error
    manifest = pipeline.read_manifest("r2", settings)
    assert manifest["state"] == "failed" and "database down" in manifest["error"]


def test_launch_copies_the_submitted_run_to_s3(settings):
    class FakeStorage:
        uploaded = []
        enabled = True

        def upload_submitted_run(self, run_id):
            self.uploaded.append(run_id)

    with_bucket = type(settings)(settings.data_dir, "bucket", "p/")
    store = FakeStorage()
    launch_run(small_setup(), "r3", settings=with_bucket, trigger=lambda run_id: None, storage=store)
    assert store.uploaded == ["r3"]


# ---- run list -----------------------------------------------------------------------------------------

def test_runs_from_disk_with_headline_and_states(settings):
    write_run(settings.runs_dir, "20261123-080000-aaaaaa", scores={"random": 0.8, "loss": 0.1})
    write_run(settings.runs_dir, "20261123-090000-bbbbbb", state="failed", error="ValueError: boom",
              created="2026-11-23T09:00:00.000+00:00")
    write_run(settings.runs_dir, "20261123-100000-cccccc", state="running", created="2026-11-23T10:00:00.000+00:00")
    collection = run_list.collect_runs(settings, airflow_runs=lambda: [])
    by_id = {row.run_id: row for row in collection.rows}
    assert [r.run_id for r in collection.rows][0] == "20261123-100000-cccccc"  # newest first
    done = by_id["20261123-080000-aaaaaa"]
    assert done.state == "success" and done.published and done.model == "logistic_regression"
    assert done.headline.method == "loss" and done.headline.value == pytest.approx(0.1)
    assert done.duration_s() == pytest.approx(65)
    assert by_id["20261123-090000-bbbbbb"].error == "ValueError: boom"
    assert [r.run_id for r in collection.in_flight] == ["20261123-100000-cccccc"]
    table = run_list.rows_table(collection.rows)
    assert table[-1]["duration"] == "1 min 05 s" and table[-1]["best method"] == "loss"
    assert table[-1]["fraction_fixes ↓"] == pytest.approx(0.1) and table[-1]["sweep"] == ""


def test_airflow_and_s3_refine_the_listing(settings):
    write_run(settings.runs_dir, "running-1", state="running")
    write_run(settings.runs_dir, "done-1")

    class Status:
        def __init__(self, run_id, state):
            self.run_id, self.state, self.start_date = run_id, state, None
            self.end_date = dt.datetime(2026, 11, 23, 9, tzinfo=dt.timezone.utc)

    class Listing:
        def __init__(self, run_id, where, state):
            self.run_id, self.where, self.state = run_id, where, state

    class Store:
        enabled = True

        def list_runs(self, with_state=True):
            return [Listing("done-1", "both", "success"), Listing("elsewhere", "s3", "success"),
                    Listing("half", "s3", None)]

    collection = run_list.collect_runs(settings, storage=Store(), airflow_runs=lambda: [Status("running-1", "failed")])
    by_id = {row.run_id: row for row in collection.rows}
    assert by_id["running-1"].state == "failed" and "Airflow" in by_id["running-1"].error
    assert by_id["done-1"].where == "disk + S3"
    assert by_id["elsewhere"].where == "S3" and by_id["elsewhere"].state == "success"
    assert by_id["half"].state == "incomplete"


def test_airflow_down_still_lists_the_disk(settings):
    write_run(settings.runs_dir, "running-1", state="running")

    def down():
        raise airflow_gateway.AirflowUnavailable("no database")

    collection = run_list.collect_runs(settings, airflow_runs=down)
    assert [r.state for r in collection.rows] == ["running"] and "no database" in collection.notes[0]


def test_filters():
    rows = [run_list.RunRow("a-digits", "success", "disk", True, "debugging", "digits", "knn"),
            run_list.RunRow("b", "failed", "disk", False, "selection", "mine", "mlp")]
    assert [r.run_id for r in run_list.filter_rows(rows, states=["failed"])] == ["b"]
    assert [r.run_id for r in run_list.filter_rows(rows, models=["knn"], tracks=["debugging"])] == ["a-digits"]
    assert [r.run_id for r in run_list.filter_rows(rows, text="MINE")] == ["b"]
    assert len(run_list.filter_rows(rows)) == 2


def test_selection_headline_is_the_best_f1():
    # DataPerf's selection metric is F1: b has the better accuracy, a the better F1.
    results = {"track": "selection",
               "tasks": {"Hawk": {"strategies": {"a": {"accuracy": 0.5, "f1": 0.6}, "b": {"accuracy": 0.7, "f1": 0.4}}},
                         "Sushi": {"strategies": {"a": {"accuracy": 0.6, "f1": 0.8}, "b": {"accuracy": 0.9, "f1": 0.5}}}}}
    best = run_list.headline(results)
    assert best.method == "a" and best.value == pytest.approx(0.7) and best.label == "f1 ↑"


def test_restore_finished_downloads_only_successful_s3_runs():
    class Listing:
        def __init__(self, run_id, where, state):
            self.run_id, self.where, self.state = run_id, where, state

    class Store:
        enabled = True
        downloaded = []

        def list_runs(self, with_state=True):
            return [Listing("a", "s3", "success"), Listing("b", "s3", "publishing"), Listing("c", "both", "success")]

        def download_run(self, run_id):
            self.downloaded.append(run_id)

    store = Store()
    assert run_list.restore_finished(store) == (["a"], [])
    assert store.downloaded == ["a"]


# ---- run detail ----------------------------------------------------------------------------------------

def test_a_published_run_in_detail(settings):
    write_run(settings.runs_dir, "done-1", scores={"random": 0.8, "loss": 0.1})
    detail = run_detail.load_run(settings, "done-1")
    assert detail.published and detail.state == "success" and not detail.in_flight
    assert [p.name for p in detail.charts] == ["digit-3_fixing_curve.png", "digit-8_fixing_curve.png",
                                               "fraction_fixes_vs_time.png"]
    assert [p.name for p in detail.gallery] == ["digit-3_flagged_gallery.png"]
    rows = run_detail.metrics_rows(detail.results)
    assert [(r["task"], r["method"]) for r in rows] == [("digit-3", "loss"), ("digit-3", "random"),
                                                       ("digit-8", "loss"), ("digit-8", "random")]
    # A run written before repeats: its one value per task, no interval, no comparison.
    assert run_detail.method_means(detail.results)[0] == {"method": "loss", "metric": "fraction_fixes", "mean": 0.1,
                                                          "half_width": None, "repeats": 1, "comparison": None,
                                                          "ranked": True, "lower_is_better": True}
    assert run_detail.task_rows(detail.results)[0]["before_acc"] == 0.7
    assert detail.task_ids() == ["digit-3", "digit-8"]


def test_a_failed_run_in_detail(settings):
    write_run(settings.runs_dir, "bad-1", state="failed", error="SubmissionError: mine.txt:3: duplicate index 1")
    detail = run_detail.load_run(settings, "bad-1")
    assert not detail.published and detail.state == "failed" and "duplicate index" in detail.error
    assert detail.task_ids() == ["digit-3", "digit-8"]  # from the task_setup.yml


def test_a_path_in_results_json_is_never_served(settings, tmp_path):
    """results.json is data (it may come from the bucket): only a plain name inside the run folder is read."""
    folder = write_run(settings.runs_dir, "done-1")
    (folder / "sweep.csv").write_text("cell,score\n")
    secret = tmp_path / "outside.txt"
    secret.write_text("not the run's")
    (folder / "link.csv").symlink_to(secret)
    detail = run_detail.load_run(settings, "done-1")
    assert detail.file_bytes("sweep.csv", 100) == b"cell,score\n"
    assert detail.file_bytes("sweep.csv", 5) is None  # over its limit: not read
    for name in (str(secret), "/etc/hostname", "../../outside.txt", "plots/../../../outside.txt", "link.csv",
                 ".", "..", "", ".hidden", 7, None, ["sweep.csv"], "sweep.csv\0"):
        assert detail.file_bytes(name, 100) is None, name


def test_unknown_runs_are_not_found(settings):
    with pytest.raises(run_detail.RunNotFound):
        run_detail.load_run(settings, "nope")
    with pytest.raises(run_detail.RunNotFound):
        run_detail.load_run(settings, "../etc")


def test_progress_from_task_instances():
    TI = airflow_gateway.TaskInstanceStatus
    status = airflow_gateway.RunStatus("r", "running", None, None, None, task_instances=[
        TI("validate", -1, "success", 1, None, None), TI("prepare_data", -1, "success", 1, None, None),
        TI("evaluate", 0, "success", 1, None, None), TI("evaluate", 1, "running", 1, None, None)])
    steps = run_detail.progress_steps(status, ["digit-3", "digit-8"])
    assert [s.label for s in steps] == ["Validate task_setup.yml", "Prepare the data", "Evaluate digit-3",
                                        "Evaluate digit-8", "Report: results and plots", "Publish (and sync to S3)"]
    assert [s.done for s in steps] == [True, True, True, False, False, False]
    assert run_detail.progress_fraction(steps) == pytest.approx(0.5)
    assert run_detail.step_icon(steps[3]) == "🔄"
    early = run_detail.progress_steps(airflow_gateway.RunStatus("r", "queued", None, None, None), [])
    assert [s.label for s in early][2] == "Evaluate" and not any(s.done for s in early)


def test_zip_of_a_run_is_complete_and_stable(settings):
    folder = write_run(settings.runs_dir, "done-1")
    (folder / ".hidden.tmp").write_text("x")
    with run_detail.build_zip(folder) as first, run_detail.build_zip(folder) as second:
        data = first.read()
        assert data == second.read()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "done-1/results.json" in names and "done-1/plots/digit-3_fixing_curve.png" in names
    assert not any(".hidden" in n for n in names)


# ---- files that cannot be used (they may come from the bucket) -----------------------------------------

#: What a bad manifest.json or results.json may hold, each of which must make its run `unreadable`.
NESTED_LISTS = b"[" * 200_000  # the finding's 200 KB of nested `[`: a RecursionError in json.loads
UNUSABLE_JSON = {
    "nested lists": NESTED_LISTS,
    "nested objects": b'{"a":' * 100_000,
    "deep but parseable": (b'{"a":' * 40) + b"1" + (b"}" * 40),
    "a list": b'["state", "success"]',
    "not UTF-8": b'{"state": "\xff\xfe"}',
    "not JSON": b"{state: success",
    "a huge integer": b'{"state": ' + b"9" * 5000 + b"}",
}


def every_page_function(detail):
    """What the Run page and Compare compute from a run (none may raise, whatever the run's files hold)."""
    for function in (run_detail.metrics_rows, run_detail.method_means, run_detail.task_rows,
                     run_detail.comparison_rows, run_detail.sweep_summary, run_detail.method_cost_rows,
                     run_detail.method_failures):
        function(detail.results)
    run_detail.stage_rows(detail.manifest)
    detail.task_ids()


@pytest.mark.parametrize("name", ["manifest.json", "results.json"])
@pytest.mark.parametrize("content", list(UNUSABLE_JSON.values()), ids=list(UNUSABLE_JSON))
def test_a_manifest_or_results_that_cannot_be_used_lists_the_run_as_unreadable(settings, name, content):
    good = write_run(settings.runs_dir, "good", scores={"random": 0.8, "loss": 0.1})
    bad = write_run(settings.runs_dir, "bad", scores={"random": 0.7, "loss": 0.3})
    (bad / name).write_bytes(content)
    rows = {row.run_id: row for row in run_list.collect_runs(settings, airflow_runs=lambda: []).rows}
    assert rows["good"].state == "success"
    assert rows["bad"].state == "unreadable" and str(bad / name) in rows["bad"].error  # the file named
    assert run_list.rows_table(rows.values())  # the Runs table is drawn
    # The Run page and Compare: the run is loaded as unreadable, and nothing computed from it raises.
    detail = run_detail.load_run(settings, "bad")
    assert detail.state == "unreadable" and not detail.in_flight and str(bad / name) in detail.unreadable
    every_page_function(detail)
    runs = [run_detail.load_run(settings, "good"), detail]
    compare.differing_params(runs), compare.headline_pivot(runs), compare.metrics_table(runs)
    compare.curve_points(runs), compare.conditions_rows(runs), compare.metric_bars(runs), compare.common_tasks(runs)
    assert good.is_dir()


@pytest.mark.parametrize("results", [{"tasks": []}, {"tasks": {"digit-3": [1]}},
                                     {"tasks": {"digit-3": {"strategies": {"loss": 0.1}}}},
                                     {"tasks": {}, "overall": {"loss": [0.1]}}, {"sweep": {"settings": {}}},
                                     {"sweep": {"settings": [{"setting": {}, "tasks": {"t": {"loss": 1}}}]}}])
def test_a_results_json_of_another_shape_lists_the_run_as_unreadable(settings, results):
    import json

    folder = write_run(settings.runs_dir, "odd")
    (folder / "results.json").write_text(json.dumps(results))
    row = run_list.collect_runs(settings, airflow_runs=lambda: []).rows[0]
    assert row.state == "unreadable" and "results.json: " in row.error and "not objects" in row.error
    detail = run_detail.load_run(settings, "odd")
    assert (detail.state, detail.results, detail.manifest) == ("unreadable", None, {})  # the reason alone
    every_page_function(detail)


def test_a_manifest_whose_state_is_not_text_lists_the_run_as_unreadable(settings):
    folder = write_run(settings.runs_dir, "odd")
    (folder / "manifest.json").write_text('{"state": ["success"], "track": {"a": 1}}')
    row = run_list.collect_runs(settings, airflow_runs=lambda: []).rows[0]
    assert (row.state, "its state is not text" in row.error) == ("unreadable", True)
    assert run_detail.load_run(settings, "odd").state == "unreadable"


def test_each_file_of_a_run_is_refused_over_its_limit_before_it_is_parsed(settings, monkeypatch):
    folder = write_run(settings.runs_dir, "big")
    size = (folder / "results.json").stat().st_size
    assert run_list.collect_runs(settings, airflow_runs=lambda: []).rows[0].state == "success"
    monkeypatch.setattr(run_list, "MAX_RESULTS_BYTES", size - 1)
    row = run_list.collect_runs(settings, airflow_runs=lambda: []).rows[0]
    assert row.state == "unreadable" and f"results.json is {size:,} bytes, over the {size - 1:,} allowed" in row.error
    monkeypatch.setattr(run_list, "MAX_RESULTS_BYTES", size)
    monkeypatch.setattr(run_list, "MAX_FILE_BYTES", 10)  # task_setup.yml
    assert "task_setup.yml is" in run_list.collect_runs(settings, airflow_runs=lambda: []).rows[0].error
    # A picture is read when it is shown, under its own limit.
    plot = folder / "plots" / "digit-3_fixing_curve.png"
    assert run_detail.plot_bytes(plot) == plot.read_bytes()
    monkeypatch.setattr(run_detail, "MAX_PLOT_BYTES", plot.stat().st_size - 1)
    assert run_detail.plot_bytes(plot) is None


def test_the_safe_json_reader_takes_any_depth_and_shape(tmp_path):
    from dataperf_appliance.engine import bounded

    for label, content in UNUSABLE_JSON.items():
        with pytest.raises(bounded.Unreadable, match="x.json"):
            bounded.json_object(content, "x.json")
    fifo = tmp_path / "fifo.json"
    import os

    os.mkfifo(fifo)
    with pytest.raises(bounded.Unreadable, match="not a regular file"):  # would block a plain read for ever
        bounded.read_json_object(fifo, 100)
    depth_32 = (b'{"a":' * 31) + b"[1]" + (b"}" * 31)
    assert bounded.json_object(depth_32, "x.json")["a"]  # as deep as allowed: read


#: The size of the file a zip is measured with: incompressible, so the zip is as large.
ZIP_BENCH_BYTES = 32 * 2**20


def test_the_whole_run_zip_is_written_to_a_file_not_memory(settings):
    import os
    import tracemalloc

    folder = write_run(settings.runs_dir, "large")
    (folder / "submissions").mkdir()
    (folder / "submissions" / "big.bin").write_bytes(os.urandom(ZIP_BENCH_BYTES))
    tracemalloc.start()
    try:
        with run_detail.build_zip(folder, scratch=settings.data_dir) as zipped:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert isinstance(zipped, io.BufferedReader)  # what Streamlit's download button reads
            with zipfile.ZipFile(zipped) as archive:
                assert archive.getinfo("large/submissions/big.bin").file_size == ZIP_BENCH_BYTES
            assert zipped.seek(0, io.SEEK_END) > ZIP_BENCH_BYTES
    finally:
        tracemalloc.stop()
    # Built in memory (a BytesIO, each file read whole), the peak was over three times the zip: 110 MiB here.
    # Now a few chunks of 1 MiB (3.6 MiB measured).
    assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MiB"
    assert sorted(p.name for p in settings.data_dir.iterdir()) == ["runs"]  # nothing left in the data root
    with pytest.raises(ValueError, match=f"{folder} holds .* bytes of files, over the 1,000,000"):
        run_detail.build_zip(folder, max_bytes=1_000_000)


# ---- compare ------------------------------------------------------------------------------------------

def test_compare_two_runs(settings):
    write_run(settings.runs_dir, "a", model="logistic_regression", scores={"random": 0.8, "loss": 0.1})
    write_run(settings.runs_dir, "b", model="knn", scores={"random": 0.7, "loss": 0.3})
    runs = [run_detail.load_run(settings, "a"), run_detail.load_run(settings, "b")]
    assert compare.differing_params(runs) == [{"parameter": "model", "a": "logistic_regression", "b": "knn"}]
    metric, pivot = compare.headline_pivot(runs)
    assert metric == "fraction_fixes"
    assert pivot[0] == {"task": "digit-3", "method": "loss", "a": 0.1, "b": 0.3, "a ± 95%": None, "b ± 95%": None}
    table = compare.metrics_table(runs)
    assert len(table) == 8 and {r["run"] for r in table} == {"a", "b"}
    points = compare.curve_points(runs, "digit-3")
    assert {p["series"] for p in points} == {"a · random", "a · loss", "b · random", "b · loss"}
    assert points[0]["fraction"] == pytest.approx(1 / 60)
    assert compare.common_tasks(runs) == ["digit-3", "digit-8"]


def test_flatten_keys_tasks_by_id():
    flat = compare.flatten({"tasks": [{"data_id": "d3", "train_size": 5}], "baselines": [{"name": "random"}],
                            "submissions": [], "seed": 1})
    assert flat == {"tasks[d3].train_size": 5, "baselines[random]": "✓", "submissions": "[]", "seed": 1}


# ---- dataset upload --------------------------------------------------------------------------------------

def _zip(files: dict[str, bytes], top: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(f"{top}/{name}" if top else name, content)
    return buffer.getvalue()


def _parquet(rows: int, dim: int = 4, labels=None, prefix="img") -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    table = pa.table({"encoding": [list(rng.normal(size=dim)) for _ in range(rows)],
                      "label": labels if labels is not None else [i % 2 for i in range(rows)],
                      "filename": [f"{prefix}{i}" for i in range(rows)]})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def debugging_dataset() -> dict[str, bytes]:
    truth = "ImageID,hv_label\n" + "".join(f"img{i},{i % 2}\n" for i in range(20))
    return {"embeddings/t1_train_0.3_20.parquet": _parquet(20), "embeddings/t1_val_10.parquet": _parquet(10),
            "embeddings/t1_test_10.parquet": _parquet(10), "data/dataset_t1_train.csv": truth.encode()}


def test_a_good_debugging_dataset_is_stored(settings):
    check = dataset_upload.upload_dataset("mine", _zip(debugging_dataset(), top="mine-folder"), settings)
    assert check.ok, check.problems
    assert check.kind == "debugging" and check.tasks == ["t1"]
    assert (settings.datasets_dir / "mine" / "embeddings" / "t1_train_0.3_20.parquet").exists()
    again = dataset_upload.upload_dataset("mine", _zip(debugging_dataset()), settings)
    assert not again.ok and "exists already" in again.problems[0]
    rows, _ = dataset_upload.dataset_rows(settings)
    assert {"digits", "synthetic", "mine"} <= {r["dataset"] for r in rows}
    # The form offers the dataset's own tasks, never the digits'.
    specs = {s.key: s for s in form.field_specs("debugging", dataset="mine", data_root=settings.data_dir)}
    assert specs["tasks"].kind == "multichoice" and specs["tasks"].options == ("t1",)
    assert specs["tasks"].default == ["t1"]
    # Deleted: only stored folders may be; gone from disk and from the list.
    assert dataset_upload.deletable_datasets(rows) == ["mine"]
    assert "Deleted dataset **mine** on disk" in dataset_upload.delete_dataset("mine", settings)
    assert "mine" not in {r["dataset"] for r in dataset_upload.dataset_rows(settings)[0]}
    assert form.field_specs("debugging", dataset="mine", data_root=settings.data_dir)[3].default == []


def test_the_form_tells_the_largest_train_size_the_digits_allow(settings):
    from dataperf_appliance.engine.datasets import digits

    params = {**default_params("debugging"), "tasks": ["digit-3"], "val_size": 40, "test_size": 100}
    limit = form.train_size_limit(params, settings)
    positives, negatives = digits.class_counts("digit-3")
    assert limit is not None and limit < 2 * min(positives, negatives)  # capped by the smaller class
    assert form.check_params({**params, "train_size": limit}, settings).ok
    assert "train_size" in form.check_params({**params, "train_size": limit + 1}, settings).field_errors
    assert form.train_size_limit({**params, "train_size": [100, 200]}, settings) is None  # a sweep


@pytest.mark.parametrize("change, reason", [
    (lambda f: f.pop("data/dataset_t1_train.csv"), "missing data/dataset_t1_train.csv"),
    (lambda f: f.update({"embeddings/t1_val_10.parquet": _parquet(10, labels=[2] * 10)}), "labels must be 0 or 1"),
    (lambda f: f.update({"data/dataset_t1_train.csv": b"ImageID,hv_label\nimg0,1\n"}), "no hv_label"),
    (lambda f: f.update({"embeddings/t1_test_10.parquet": _parquet(10, dim=3)}), "differ in length"),
    (lambda f: f.update({"embeddings/t1_train_0.3_20.parquet": b"not parquet"}), "t1"),
])
def test_a_bad_debugging_dataset_is_refused_with_the_reason(settings, change, reason):
    files = debugging_dataset()
    change(files)
    check = dataset_upload.upload_dataset("bad", _zip(files), settings)
    assert not check.ok
    assert any(reason in problem for problem in check.problems), check.problems
    assert not (settings.datasets_dir / "bad").exists()
    assert [p.name for p in settings.datasets_dir.iterdir()] == []  # nothing left behind


def test_unsafe_or_odd_archives_are_refused(settings):
    assert "not a zip" in dataset_upload.upload_dataset("x", b"hello", settings).problems[0]
    assert "'..'" in dataset_upload.upload_dataset("x", _zip({"../evil.parquet": b"1"}), settings).problems[0]
    assert "no parquet" in dataset_upload.upload_dataset("x", _zip({"readme.txt": b"1"}), settings).problems[0]
    assert "not usable" in dataset_upload.upload_dataset("../x", _zip({"a": b"1"}), settings).problems[0]
    assert "generated" in dataset_upload.upload_dataset("digits", _zip({"a": b"1"}), settings).problems[0]


def test_a_selection_dataset(settings):
    import pyarrow as pa
    import pyarrow.parquet as pq

    def parquet(table):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return sink.getvalue().to_pybytes()

    ids = [f"p{i}" for i in range(30)]
    pool = parquet(pa.table({"ImageID": ids, "embedding": [[float(i), 1.0] for i in range(30)]}))
    test = parquet(pa.table({"ImageID": ["t0", "t1"], "embedding": [[0.0, 1.0], [1.0, 0.0]], "Confidence": [0, 1]}))
    examples = "LabelName,ImageID,Confidence,OriginalURL,DisplayName\nx,p1,1,u,Hawk\n"
    files = {"embeddings/train_emb_2_dataperf.parquet": pool, "test_sets/alpha_test_set_Hawk_2.parquet": test,
             "examples/alpha_example_set_Hawk.csv": examples.encode(),
             "train_sets/random_2.csv": b"ImageID,Confidence\np1,1\np2,0\n"}
    check = dataset_upload.upload_dataset("sel", _zip(files), settings)
    assert check.ok and check.kind == "selection" and check.tasks == ["Hawk"], check.problems
    files["train_sets/random_2.csv"] = b"ImageID,Confidence\nnot-in-pool,1\n"
    bad = dataset_upload.upload_dataset("sel2", _zip(files), settings)
    assert not bad.ok and any("random_2.csv" in p for p in bad.problems)


# ---- the submitted run in S3 (storage.upload_submitted_run) ------------------------------------------

def test_a_submitted_run_is_copied_to_s3_without_a_manifest(tmp_path, aws_env):
    import boto3

    from dataperf_appliance.engine.settings import Settings
    from dataperf_appliance.engine.storage import open_storage

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="submitted-runs")
    settings = Settings(data_dir=tmp_path, s3_bucket="submitted-runs", s3_prefix="p/")
    order = b"0\n1\n"
    launch = launch_run(small_setup("submissions=[mine]"), "sub-1", settings=settings,
                             files={"submissions/digit-3_mine.txt": order, "submissions/digit-8_mine.txt": order},
                             trigger=lambda run_id: None)
    assert launch.triggered and not launch.warnings
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="submitted-runs", Prefix="p/runs/")["Contents"])
    assert keys == ["p/runs/sub-1/submissions/digit-3_mine.txt", "p/runs/sub-1/submissions/digit-8_mine.txt",
                    "p/runs/sub-1/task_setup.yml"]
    storage = open_storage(settings)
    assert [(r.run_id, r.state) for r in storage.list_runs()] == [("sub-1", None)]  # incomplete to any reader
    assert storage.restore_history().restored == ()
    rows = {r.run_id: r for r in run_list.collect_runs(settings, storage=storage, airflow_runs=lambda: []).rows}
    assert rows["sub-1"].state == "queued" and rows["sub-1"].where == "disk + S3"


def test_a_tile_says_no_test_rather_than_not_significant_when_nothing_was_tested():
    from dataperf_appliance.engine import stats
    from dataperf_appliance.interface.ui_support import run_detail

    one = stats.paired_comparison([0.5], [0.467])
    assert run_detail.headline_delta(one) == "+0.033 vs random, no test: 1 repeat"
    tested = stats.summarize_setting({"t": {"random": [{"m": 0.5}, {"m": 0.52}, {"m": 0.49}],
                                            "a": [{"m": 0.6}, {"m": 0.61}, {"m": 0.62}],
                                            "b": [{"m": 0.51}, {"m": 0.5}, {"m": 0.52}]}}, ["m"])
    for name in ("a", "b"):
        comparison = tested["overall"][name]["vs_random"]["m"]
        delta = run_detail.headline_delta(comparison)
        assert f", p={comparison['p_holm']:.2g}" in delta  # the adjusted p-value, not the raw one
        assert delta.endswith(", n.s.") == (not comparison["significant"])
