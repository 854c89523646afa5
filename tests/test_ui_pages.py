"""Each page of the Streamlit app, through Streamlit's AppTest (no browser).

Airflow is replaced by fake gateway functions here (the browser end-to-end
test, test_ui_e2e.py, uses the real one); everything else is real: the
package, the run folders on disk, the password check.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from ui_fixtures import write_run

from conftest import REPO_ROOT
from dataperf_appliance.orchestration import airflow_gateway
from dataperf_appliance.config import catalog, yaml_value
from dataperf_appliance.interface.ui_support import compare as compare_support

APP = str(REPO_ROOT / "ui" / "app.py")
PASSWORD = "correct horse battery staple"
TIMEOUT_S = 60


def use_data_root(monkeypatch, data_root: Path) -> Path:
    """The app on `data_root`, with a known password, no Airflow and no S3 (whatever another test module's
    stack left in the environment)."""
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(data_root))
    monkeypatch.setenv("APPLIANCE_UI_PASSWORD", PASSWORD)
    for name in ("APPLIANCE_S3_BUCKET", "AIRFLOW_HOME", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    return data_root


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """A data root of its own, a known password, no Airflow and no S3."""
    return use_data_root(monkeypatch, tmp_path / "data")


@pytest.fixture
def triggered(monkeypatch):
    """Replace the gateway's trigger (Airflow) by a recorder; the run ids it was given."""
    calls: list[str] = []

    def trigger_run(run_id: str) -> dict:
        if run_id in calls:
            raise airflow_gateway.RunAlreadyTriggered(run_id)
        calls.append(run_id)
        return {"run_id": run_id, "dag_id": airflow_gateway.DAG_ID, "state": "queued", "dag_paused": False}

    monkeypatch.setattr(airflow_gateway, "trigger_run", trigger_run)
    return calls


def app(page: str | None = None, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["authenticated"] = True
    at.run()
    if page:
        for key, value in query.items():
            at.query_params[key] = value
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


# ---- access -------------------------------------------------------------------------------------

def test_the_app_asks_for_the_password_and_never_shows_it(app_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["DataPerf Appliance"]
    assert not any(b.key == "nb.run" for b in at.button)  # no page before the password
    at.text_input(key="login.password").input("wrong")
    at.form_submit_button[0].click().run()
    assert "Wrong password." in texts(at.error)
    assert "authenticated" not in at.session_state
    at.text_input(key="login.password").input(PASSWORD)
    at.form_submit_button[0].click().run()
    assert at.session_state["authenticated"]
    assert [t.value for t in at.title] == ["New benchmark"]
    everything = "\n".join(str(getattr(e, "value", "")) for e in at.main) + str(at.sidebar)
    assert PASSWORD not in everything


# ---- New benchmark ----------------------------------------------------------------------------------

def test_an_invalid_value_keeps_run_disabled_and_names_the_field(app_env, triggered):
    at = app()
    assert [t.value for t in at.title] == ["New benchmark"]
    assert not at.button(key="nb.run").disabled  # the defaults are valid
    at.number_input(key="nb.debugging.noise_level.float").set_value(2.0).run()
    assert at.button(key="nb.run").disabled
    errors = texts(at.error)
    assert "Noise level" in errors and "noise_level" in errors and "line" in errors
    assert "noise_level: 2.0" in at.code[0].value  # the live preview shows the file as it stands
    at.number_input(key="nb.debugging.noise_level.float").set_value(0.2).run()
    assert not at.button(key="nb.run").disabled
    assert triggered == []


def test_the_same_problem_of_every_task_is_said_once(app_env):
    at = app()
    at.number_input(key="nb.debugging.noise_level.float").set_value(2.0).run()
    messages = [e.value for e in at.error if "noise_level" in e.value]
    assert len(messages) == 1 and "lines 17, 22, 27" in messages[0]


def test_the_form_keeps_its_values_while_other_pages_are_open(app_env):
    at = app()
    at.number_input(key="nb.debugging.train_size.int").set_value(60).run()
    at.switch_page("views/runs.py").run()
    assert [t.value for t in at.title] == ["Runs"]
    at.switch_page("views/new_benchmark.py").run()
    assert at.number_input(key="nb.debugging.train_size.int").value == 60
    assert not at.exception and not at.main.warning  # (Streamlit warns of a value set twice)


def test_a_valid_form_triggers_exactly_one_run(app_env, triggered):
    at = app()
    at.number_input(key="nb.debugging.train_size.int").set_value(60).run()
    at.multiselect(key="nb.debugging.tasks.multichoice").set_value(["digit-3"]).run()
    at.multiselect(key="nb.debugging.strategies.multichoice").set_value(["random", "loss"]).run()
    assert "repeats: 6" in at.code[0].value  # the default: replicates, for intervals and the test against random
    at.number_input(key="nb.debugging.repeats.int").set_value(3).run()
    preview = at.code[0].value
    assert "train_size: 60" in preview and "- name: loss" in preview and "repeats: 3" in preview
    at.button(key="nb.run").click().run()
    assert not at.exception, at.exception
    assert len(triggered) == 1
    run_id = triggered[0]
    staging = app_env / "runs" / f".{run_id}.partial"
    assert (staging / "task_setup.yml").read_text().rstrip("\n") == preview
    assert [t.value for t in at.title] == [f"Run {run_id}"]  # taken to the run's page
    assert len(list((app_env / "runs").iterdir())) == 1


def test_every_track_and_a_sweep_from_the_form(app_env, triggered):
    from dataperf_appliance.interface.ui_support import form

    at = app()
    for track in form.available_tracks():
        at.selectbox(key="nb.track").set_value(track).run()
        assert not at.exception, at.exception
        assert f"track: {track}" in at.code[0].value and not at.button(key="nb.run").disabled
    at.selectbox(key="nb.track").set_value("debugging").run()
    at.toggle(key="nb.debugging.sweep").set_value(True).run()
    at.text_input(key="nb.debugging.train_size.numbers").input("50, 100").run()
    at.multiselect(key="nb.debugging.model.multichoice").set_value(["knn", "logistic_regression"]).run()
    assert "train_size: [50, 100]" in at.code[0].value and "model: [knn, logistic_regression]" in at.code[0].value
    assert not at.button(key="nb.run").disabled
    at.text_input(key="nb.debugging.train_size.numbers").input("50, fifty").run()
    assert at.button(key="nb.run").disabled and "'fifty' is not a number" in texts(at.error)


def test_own_submission_files_are_uploaded_with_the_run(app_env, triggered):
    at = app()
    at.number_input(key="nb.debugging.train_size.int").set_value(60).run()
    at.multiselect(key="nb.debugging.tasks.multichoice").set_value(["digit-3"]).run()
    order = "\n".join(str(i) for i in range(60)).encode()
    at.file_uploader(key="nb.uploads.debugging").set_value(("digit-3_mine.txt", order, "text/plain")).run()
    assert "Methods found in the uploaded files: mine" in texts(at.caption)
    assert "submissions: [mine]" in at.code[0].value
    at.button(key="nb.run").click().run()
    assert len(triggered) == 1
    stored = app_env / "runs" / f".{triggered[0]}.partial" / "submissions" / "digit-3_mine.txt"
    assert stored.read_bytes() == order


def test_an_uploader_holding_more_files_than_it_takes_uses_none_and_says_why(app_env):
    from dataperf_appliance.engine.upload_limits import MAX_FILES_PER_UPLOADER

    at = app()
    at.multiselect(key="nb.debugging.tasks.multichoice").set_value(["digit-3"]).run()
    files = [(f"digit-3_m{index}.txt", b"3\n", "text/plain") for index in range(MAX_FILES_PER_UPLOADER + 1)]
    at.file_uploader(key="nb.uploads.debugging").set_value(files).run()
    assert f"{MAX_FILES_PER_UPLOADER + 1} files chosen" in texts(at.error)
    assert "Methods found in the uploaded files" not in texts(at.caption)
    at.file_uploader(key="nb.uploads.debugging").set_value(files[:1]).run()
    assert "files chosen" not in texts(at.error) and "Methods found in the uploaded files: m0" in texts(at.caption)


def test_methods_as_code_are_uploaded_with_the_run(app_env, triggered):
    from test_methods import PARTICIPANT_APPRAISER

    at = app()
    at.multiselect(key="nb.debugging.tasks.multichoice").set_value(["digit-3"]).run()
    at.file_uploader(key="nb.method_uploads.debugging").set_value([
        ("mine.py", PARTICIPANT_APPRAISER.encode(), "text/x-python"),
        ("requirements.txt", b"cowsay==6.1\n", "text/plain")]).run()
    text = at.code[0].value
    assert "name: mine" in text and "file: methods/mine.py" in text and "requirements: methods/requirements.txt" in text
    assert not at.button(key="nb.run").disabled
    at.button(key="nb.run").click().run()
    assert len(triggered) == 1
    stored = app_env / "runs" / f".{triggered[0]}.partial" / "methods"
    assert (stored / "mine.py").read_text() == PARTICIPANT_APPRAISER
    assert (stored / "requirements.txt").read_bytes() == b"cowsay==6.1\n"


def test_the_arena_preset_sets_every_method(app_env, triggered):
    from dataperf_appliance.tracks.debugging import ARENA

    at = app()
    at.button(key="nb.debugging.preset.arena").click().run()
    text = at.code[0].value
    for name in catalog.DEBUGGING_BASELINES:
        assert f"- name: {name}\n" in text
    for name in catalog.DEBUGGING_LIBRARY_METHODS:  # each with its parameters' defaults, and their inputs
        defaults = catalog.library_method_parameters(name)
        if defaults:
            assert f"- name: {name}\n    params: {yaml_value(defaults)}\n" in text
    assert at.number_input(key="nb.debugging.method_params.influence_function.epochs.int").value == 20
    assert f"repeats: {ARENA['repeats']}" in text and f"train_size: {ARENA['train_size']}" in text
    assert not at.button(key="nb.run").disabled


def test_a_library_method_shows_its_parameters_and_the_run_gets_them(app_env, triggered):
    at = app()
    at.multiselect(key="nb.debugging.tasks.multichoice").set_value(["digit-3"]).run()
    assert not [w for w in at.number_input if ".method_params." in w.key]  # the default strategies take none
    at.multiselect(key="nb.debugging.strategies.multichoice").set_value(["random", "data_oob"]).run()
    n_estimators = "nb.debugging.method_params.data_oob.n_estimators.int"
    assert at.number_input(key=n_estimators).value == 800
    assert at.text_input(key="nb.debugging.method_params.data_oob.max_features.text").value == "sqrt"
    assert "  - name: data_oob\n    params: {n_estimators: 800, max_features: sqrt, n_jobs: 1}\n" in at.code[0].value
    at.number_input(key=n_estimators).set_value(50).run()
    preview = at.code[0].value
    assert "  - name: data_oob\n    params: {n_estimators: 50, max_features: sqrt, n_jobs: 1}\n" in preview
    assert "  - name: random\n  - name: data_oob\n" in preview  # the appliance's own strategy: no params
    at.switch_page("views/runs.py").run()
    at.switch_page("views/new_benchmark.py").run()
    assert at.number_input(key=n_estimators).value == 50 and at.code[0].value == preview  # kept, as every field
    assert not at.main.warning  # (Streamlit warns of a value set twice)
    at.button(key="nb.run").click().run()
    assert not at.exception, at.exception
    assert len(triggered) == 1
    stored = app_env / "runs" / f".{triggered[0]}.partial" / "task_setup.yml"
    assert stored.read_text().rstrip("\n") == preview


def test_a_method_file_with_an_unsafe_name_keeps_run_disabled(app_env, triggered):
    at = app()
    at.file_uploader(key="nb.method_uploads.debugging").set_value([("my method.py", b"x = 1\n", "text/x-python")]).run()
    assert at.button(key="nb.run").disabled and "the file name is the method's name" in texts(at.error)


def test_a_bad_submission_file_keeps_run_disabled(app_env, triggered):
    at = app()
    at.number_input(key="nb.debugging.train_size.int").set_value(60).run()
    at.multiselect(key="nb.debugging.tasks.multichoice").set_value(["digit-3"]).run()
    at.file_uploader(key="nb.uploads.debugging").set_value(("digit-3_mine.txt", b"3\n3\n", "text/plain")).run()
    assert at.button(key="nb.run").disabled
    assert "duplicate index 3" in texts(at.error)


def test_advanced_yaml_mode_checks_the_same_way(app_env, triggered):
    at = app()
    at.toggle(key="nb.advanced").set_value(True).run()
    area = at.text_area(key="nb.yaml")
    assert "track: debugging" in area.value  # starts from the form's file
    area.input(area.value.replace("noise_level: 0.3", "noise_level: 7")).run()
    assert at.button(key="nb.run").disabled
    assert "noise_level" in texts(at.error)
    at.text_area(key="nb.yaml").input("tasks: [digit-3\n").run()
    assert at.button(key="nb.run").disabled and "line" in texts(at.error)
    assert triggered == []


def test_airflow_down_at_run_is_said_plainly(app_env, monkeypatch):
    def down(run_id):
        raise airflow_gateway.AirflowUnavailable("the metadata database cannot be reached")

    monkeypatch.setattr(airflow_gateway, "trigger_run", down)
    at = app()
    at.number_input(key="nb.debugging.train_size.int").set_value(60).run()
    at.button(key="nb.run").click().run()
    assert "Airflow could not start the run" in texts(at.error)


# ---- Runs -------------------------------------------------------------------------------------------

def test_runs_page_empty_state(app_env):
    at = app("views/runs.py")
    assert "No runs yet" in texts(at.info)


def test_runs_page_lists_every_run(app_env, monkeypatch):
    monkeypatch.setattr(airflow_gateway, "list_recent_runs", lambda limit=50: [])
    write_run(app_env / "runs", "20261123-080000-aaaaaa")
    write_run(app_env / "runs", "20261123-090000-bbbbbb", state="failed", error="ValueError: boom")
    write_run(app_env / "runs", "20261123-100000-cccccc", state="running")
    at = app("views/runs.py")
    table = at.dataframe[0].value
    assert list(table["run"]) == ["20261123-100000-cccccc", "20261123-090000-bbbbbb", "20261123-080000-aaaaaa"]
    assert list(table["best method"])[-1] == "loss"
    assert list(table["fraction_fixes ↓"])[-1] == pytest.approx(0.1)  # the metric named with its direction
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Runs": "3", "In flight": "1", "Succeeded": "1", "Failed": "1"}
    assert "refreshes every" in texts(at.caption)
    at.multiselect(key="runs.states").set_value(["failed"]).run()
    assert list(at.dataframe[0].value["run"]) == ["20261123-090000-bbbbbb"]


# ---- Run ----------------------------------------------------------------------------------------------

def test_a_failed_run_shows_its_error(app_env, monkeypatch):
    def not_found(run_id):
        raise airflow_gateway.RunNotFound(run_id)

    monkeypatch.setattr(airflow_gateway, "get_run", not_found)
    write_run(app_env / "runs", "bad-run", state="failed",
              error="SubmissionError: digit-3_mine.txt:2: duplicate index 3 (first on line 1)")
    at = app("views/run.py", run="bad-run")
    errors = texts(at.error)
    assert "This run failed" in errors
    assert "digit-3_mine.txt:2: duplicate index 3" in errors
    assert any("track: debugging" in c.value for c in at.code)  # its task_setup.yml


def test_a_finished_run_shows_metrics_plots_and_downloads(app_env):
    write_run(app_env / "runs", "good-run", scores={"random": 0.8, "loss": 0.1})
    at = app("views/run.py", run="good-run")
    assert [t.value for t in at.title] == ["Run good-run"]
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["task", "method", "fraction_fixes"]
    assert list(table["method"])[:2] == ["loss", "random"]
    assert {m.label for m in at.metric} == {"loss", "random"}  # every method, best first
    assert "**fraction_fixes ↓** (lower is better)" in texts(at.markdown)
    # Only the open tab's pictures are read and shown: the two fixing curves, and the one gallery.
    assert len(at.image) == 3
    labels = [b.label for b in at.get("download_button")]
    files = [p for p in (app_env / "runs" / "good-run").rglob("*") if p.is_file()]
    # The run's two downloads, one per picture shown, one per file of the Files tab.
    assert labels[:2] == ["results.json", "Whole run (.zip)"]
    assert sorted(label[len("Download "):] for label in labels if label.startswith("Download ")) == \
        ["digit-3_fixing_curve.png", "digit-3_flagged_gallery.png", "digit-8_fixing_curve.png"]
    assert labels.count("Download") == len(files)
    assert any("track: debugging" in c.value for c in at.code)
    at.session_state["run.plots"] = "Cost"  # the user opens the Cost tab
    at.run()
    assert len(at.image) == 2 and "Download fraction_fixes_vs_time.png" in [b.label for b in at.get("download_button")]


def test_a_run_whose_manifest_cannot_be_read_breaks_no_page(app_env, monkeypatch):
    monkeypatch.setattr(airflow_gateway, "list_recent_runs", lambda limit=50: [])
    write_run(app_env / "runs", "20261123-080000-aaaaaa", scores={"random": 0.8, "loss": 0.1})
    write_run(app_env / "runs", "20261123-090000-bbbbbb", scores={"random": 0.7, "loss": 0.2})
    bad = write_run(app_env / "runs", "20261123-100000-cccccc")
    (bad / "manifest.json").write_bytes(b"[" * 200_000)  # a RecursionError in json.loads
    table = app("views/runs.py").dataframe[0].value
    assert dict(zip(table["run"], table["state"])) == {"20261123-080000-aaaaaa": "✅ success",
                                                      "20261123-090000-bbbbbb": "✅ success",
                                                      "20261123-100000-cccccc": "⚠️ unreadable"}
    at = app("views/run.py", run="20261123-100000-cccccc")
    assert "This run cannot be read" in texts(at.error) and "manifest.json is nested too deep" in texts(at.error)
    assert labels_of(at).count("Download") == len([p for p in bad.rglob("*") if p.is_file()])  # its files still
    assert len(app("views/compare.py").dataframe) >= 2  # the two readable runs compared


def labels_of(at) -> list[str]:
    return [b.label for b in at.get("download_button")]


def test_a_run_in_flight_shows_progress(app_env, monkeypatch):
    TI = airflow_gateway.TaskInstanceStatus
    status = airflow_gateway.RunStatus("live-run", "running", None, None, None, task_instances=[
        TI("validate", -1, "success", 1, None, None), TI("prepare_data", -1, "running", 1, None, None)])
    monkeypatch.setattr(airflow_gateway, "get_run", lambda run_id: status)
    write_run(app_env / "runs", "live-run", state="running")
    at = app("views/run.py", run="live-run")
    assert at.status[0].label.startswith("Running: 1 of 6 steps done")
    assert "Evaluate digit-3" in texts(at.markdown)


def test_an_unknown_run_is_said_so(app_env):
    at = app("views/run.py", run="nope")
    assert "Run not found" in texts(at.error)


def real_runs(data: Path, models: dict[str, str], repeats: int, tasks: str = "digit-3") -> Path:
    """Real small debugging runs (three strategies) in the data root `data`: {run id: model}."""
    from ui_fixtures import small_setup

    from dataperf_appliance.stages.local_run import run_benchmark

    for run_id, model in models.items():
        source = data.parent / run_id
        source.mkdir()
        (source / "task_setup.yml").write_text(small_setup(
            f"model={model}", f"repeats={repeats}", f"tasks={tasks}", "strategies=random,knn_shapley,loss",
            "eval_points=6"))
        run_benchmark(source / "task_setup.yml", data / "runs" / run_id, data_root=data, n_jobs=2)
    return data


@pytest.fixture(scope="module")
def repeated_runs(tmp_path_factory):
    """Two real debugging runs with 3 repeats each (small), in a data root of their own."""
    return real_runs(tmp_path_factory.mktemp("repeated") / "data", {"rep-a": "logistic_regression",
                                                                     "rep-b": "knn"}, repeats=3)


def test_a_run_with_repeats_shows_intervals_and_the_comparison_with_random(repeated_runs, monkeypatch):

    use_data_root(monkeypatch, repeated_runs)
    results = json.loads((repeated_runs / "runs" / "rep-a" / "results.json").read_text())
    at = app("views/run.py", run="rep-a")
    values = {m.label: m.value for m in at.metric}
    assert set(values) == {"knn_shapley", "loss", "random"}
    # The paired difference with random and the test's Holm-adjusted p-value in the headline (random's own tile
    # has none); "n.s." exactly where the adjusted p is 0.05 or more.
    assert all(not m.delta or (" vs random" in m.delta and ", p=" in m.delta) for m in at.metric)
    for m in at.metric:
        if m.delta:
            comparison = results["overall"][m.label]["vs_random"]["fraction_fixes"]
            assert f", p={comparison['p_holm']:.2g}" in m.delta
            assert m.delta.endswith(", n.s.") == (comparison["p_holm"] >= 0.05)
    assert sum(bool(m.delta) for m in at.metric) == 2
    assert all(" ± " in value for value in values.values())  # mean ± half width of the 95% interval
    frames = [frame.value for frame in at.dataframe]
    metrics = next(frame for frame in frames if "vs random (paired)" in frame.columns)
    assert {"± 95%", "vs random (paired)"} <= set(metrics.columns)
    knn = metrics[metrics["method"] == "knn_shapley"].iloc[0]
    summary = results["tasks"]["digit-3"]["strategies"]["knn_shapley"]["over_repeats"]["fraction_fixes"]
    assert knn["fraction_fixes"] == pytest.approx(summary["mean"])
    assert knn["± 95%"] == pytest.approx((summary["ci_high"] - summary["ci_low"]) / 2)
    # The detection metrics beside the fixing curve's: each in the table with its mean, and against random.
    assert set(catalog.DEBUGGING_DETECTION_METRICS) <= set(metrics.columns)
    auroc = results["tasks"]["digit-3"]["strategies"]["knn_shapley"]["over_repeats"]["auroc"]
    assert knn["auroc"] == pytest.approx(auroc["mean"])
    comparisons = next(frame for frame in frames if "difference" in frame.columns)
    assert set(comparisons["method"]) == {"knn_shapley", "loss"}
    assert set(comparisons["metric"]) == set(catalog.DEBUGGING_HEADLINE_METRICS)
    # Each difference says which way is better: only fraction_fixes gains by going down.
    assert {(row["metric"], row["better"]) for _, row in comparisons.iterrows()} == \
        {(metric, "lower" if metric == "fraction_fixes" else "higher") for metric in catalog.DEBUGGING_HEADLINE_METRICS}
    weak = comparisons[~comparisons["significant"].astype(bool)]
    warning = texts(at.warning)
    # Every difference that is not significant is said so, and only those.
    assert (f"{len(weak)} of {len(comparisons)} differences are not significant" in warning) == (len(weak) > 0)
    def named(rows) -> list[str]:
        return sorted(f"{row['method']} ({row['task']}, {row['metric']})" for _, row in rows.iterrows())

    # The first ones by name, the rest counted (six metrics make too many differences to name them all).
    shown = [name for name in named(weak) if name in warning]
    assert shown == named(weak)[:len(shown)] and bool(shown) == (len(weak) > 0)
    assert len(shown) == len(weak) or f", and {len(weak) - len(shown)} more" in warning
    assert not any(name in warning for name in named(comparisons[comparisons["significant"].astype(bool)]))
    plots = sorted((repeated_runs / "runs" / "rep-a" / "plots").glob("*.png"))
    assert "vs_random.png" in [p.name for p in plots] and 0 < len(at.image) < len(plots)  # the open tabs' only
    assert "repeats.csv" in " ".join(b.label for b in at.get("download_button"))
    # Files: the stages' hand-over files folded away under their own label, a short file's size in bytes.
    partials = sorted((repeated_runs / "runs" / "rep-a" / "partial").glob("*.json"))
    internal = next(e for e in at.expander if e.label.startswith("Internal: the stages' hand-over"))
    assert internal.label.endswith(f"({len(partials)})") and len(partials) >= 2
    assert {f"`partial/{p.name}`" for p in partials} <= {m.value for m in internal.markdown}
    sizes = [c.value for c in at.caption if c.value.endswith(" B") or c.value.endswith("KiB")]
    assert sizes and not any(size == "0.0 KiB" for size in sizes)
    at.session_state["run.plots"] = "vs random"  # the paired plot, shown when its tab is opened
    at.run()
    assert "Download vs_random.png" in [b.label for b in at.get("download_button")]


def test_a_run_with_methods_shows_their_failures_and_cost(monkeypatch, tmp_path):
    from test_methods import SETUP, _write_methods

    from dataperf_appliance.stages.local_run import run_benchmark

    data = use_data_root(monkeypatch, tmp_path / "data")
    _write_methods(tmp_path)
    (tmp_path / "task_setup.yml").write_text(SETUP.replace("repeats: 3", "repeats: 2"))
    run_benchmark(tmp_path / "task_setup.yml", data / "runs" / "with-methods", data_root=data, n_jobs=1)
    at = app("views/run.py", run="with-methods")
    errors = texts(at.error)
    assert "**broken** failed on digit-3: broken: ValueError: this method cannot fit" in errors
    assert "The other methods' results are complete." in errors
    assert any("raise ValueError" in block.value for block in at.code)
    cost = next(frame.value for frame in at.dataframe if "cpu_seconds" in frame.value.columns)
    assert set(cost["method"]) == {"participant", "nearest"} and (cost["cpu_seconds"] >= 0).all()


def test_runs_and_compare_show_the_intervals(repeated_runs, monkeypatch):
    use_data_root(monkeypatch, repeated_runs)
    monkeypatch.setattr(airflow_gateway, "list_recent_runs", lambda limit=50: [])
    runs = app("views/runs.py").dataframe[0].value
    assert runs["± 95%"].notna().all() and (runs["± 95%"] > 0).all()
    compared = app("views/compare.py")
    pivot = frame_with(compared, "rep-a ± 95%")
    assert pivot[["rep-a ± 95%", "rep-b ± 95%"]].notna().all().all()
    # Every metric of every run, the detection metrics among them.
    every = frame_with(compared, "run")
    assert set(catalog.DEBUGGING_HEADLINE_METRICS) <= set(every.columns) and every["auroc"].notna().all()


def frame_with(at, column: str):
    """The first table of the page that has `column`."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


@pytest.fixture(scope="module")
def sweep_and_plain_runs(tmp_path_factory):
    """A real sweep over two models and a plain run at the sweep's second model, 3 repeats and 2 tasks each, in
    a data root of their own."""
    return real_runs(tmp_path_factory.mktemp("sweep-ui") / "data",
                     {"20260101-000000-plain1": "knn",
                      "20260102-000000-sweep1": "[logistic_regression, knn]"}, repeats=3, tasks="digit-3,digit-8")


def test_a_sweeps_setting_shows_exactly_what_the_plain_run_of_it_shows(sweep_and_plain_runs, monkeypatch):
    from dataperf_appliance.interface.ui_support import settings_view

    use_data_root(monkeypatch, sweep_and_plain_runs)
    monkeypatch.setattr(airflow_gateway, "list_recent_runs", lambda limit=50: [])
    sweep_id, plain_id = "20260102-000000-sweep1", "20260101-000000-plain1"
    runs = sweep_and_plain_runs / "runs"
    results = json.loads((runs / sweep_id / "results.json").read_text())
    plain = json.loads((runs / plain_id / "results.json").read_text())
    knn = next(s for s in settings_view.settings(results) if "knn" in s)
    # results.json: the same cells give the same intervals, tests and adjusted p-values, to the last bit.
    at_knn = next(r for r in results["sweep"]["settings"] if r["setting"]["model"] == "knn")
    for name, entry in plain["overall"].items():
        assert at_knn["overall"][name]["over_repeats"] == entry["over_repeats"]
        assert at_knn["overall"][name].get("vs_random") == entry.get("vs_random")
    for task, task_result in plain["tasks"].items():
        for name, entry in task_result["strategies"].items():
            assert at_knn["tasks"][task][name]["vs_random" if name != "random" else "over_repeats"] == \
                entry["vs_random" if name != "random" else "over_repeats"]
    assert any(c["p_holm"] > c["p_value"] for e in plain["overall"].values()
               for c in (e.get("vs_random") or {}).values())  # the adjustment is there, and not a no-op
    # The pages: the plain run's tiles, tables and tests, and the sweep's at the same setting, are the same.
    page = app("views/run.py", run=plain_id)
    sweep_page = app("views/run.py", run=sweep_id)
    assert sweep_page.selectbox(key="run.setting").value == settings_view.settings(results)[0]
    sweep_page.selectbox(key="run.setting").set_value(knn).run()
    assert "Conditions: train size 60 · noise level 0.3 · evaluation model knn." in texts(sweep_page.caption)
    tiles = [(m.label, m.value, m.delta) for m in page.metric]
    assert tiles == [(m.label, m.value, m.delta) for m in sweep_page.metric]
    assert sum(bool(d) for _, _, d in tiles) == 2
    for label, _, delta in tiles:  # the p of a tile is the Holm-adjusted one
        if delta:
            assert f", p={plain['overall'][label]['vs_random']['fraction_fixes']['p_holm']:.2g}" in delta
    assert frame_with(page, "p (Holm)").equals(frame_with(sweep_page, "p (Holm)"))
    assert "mean over 2 tasks and 3 repeats" in texts(page.markdown) and \
        "mean over 2 tasks and 3 repeats" in texts(sweep_page.markdown)
    assert "Sweep: 2 settings × 2 tasks × 3 repeats = 12 cells" in texts(sweep_page.subheader)
    listed = app("views/runs.py").dataframe[0].value
    assert list(listed["sweep"]) == ["sweep · 2 settings", ""] and "fraction_fixes ↓" in listed.columns
    # Compare starts the sweep at the plain run's conditions, and the two columns agree.
    compare = app("views/compare.py")
    assert compare.multiselect(key="compare.runs").value == [sweep_id, plain_id]
    assert compare.selectbox(key=f"compare.setting.{sweep_id}").value == knn
    assert frame_with(compare, "condition")["same"].all()
    pivot = frame_with(compare, f"{sweep_id} ± 95%")
    assert list(pivot[sweep_id]) == list(pivot[plain_id])
    assert list(pivot[f"{sweep_id} ± 95%"]) == list(pivot[f"{plain_id} ± 95%"])
    assert len(compare.get("vega_lite_chart")) == 1  # the curves of both, the sweep's at its setting


def test_compare_draws_a_sweeps_curves_at_the_chosen_setting(sweep_and_plain_runs):
    from dataperf_appliance.engine.settings import load_settings
    from dataperf_appliance.interface.ui_support import compare as compare_support, run_detail, settings_view

    settings = load_settings({"APPLIANCE_DATA_DIR": str(sweep_and_plain_runs)})
    sweep = run_detail.load_run(settings, "20260102-000000-sweep1")
    points = {}
    for choice in settings_view.settings(sweep.results):
        shown = dataclasses.replace(sweep, results=settings_view.view(sweep.results, choice))
        points[choice] = compare_support.curve_points([shown], "digit-3")
        assert {p["method"] for p in points[choice]} == {"random", "knn_shapley", "loss"}
        assert all(p["ci_low"] is not None for p in points[choice])  # 3 repeats: a band
    first, second = points.values()
    assert [p["accuracy"] for p in first] != [p["accuracy"] for p in second]  # each setting its own curves


# ---- Compare -------------------------------------------------------------------------------------------

def test_compare_two_runs(app_env):
    write_run(app_env / "runs", "run-a", model="logistic_regression")
    write_run(app_env / "runs", "run-b", model="knn", scores={"random": 0.5, "loss": 0.3})
    at = app("views/compare.py")
    differing = frame_with(at, "parameter")
    assert list(differing["parameter"]) == ["model"]
    conditions = frame_with(at, "condition")
    assert list(conditions[conditions["condition"] == "model"]["same"]) == [False]
    assert "differ in model" in texts(at.warning)
    pivot = frame_with(at, "run-a ± 95%")
    assert set(pivot.columns) == {"task", "method", "run-a", "run-b", "run-a ± 95%", "run-b ± 95%"}
    assert len(at.get("vega_lite_chart")) == 1


def test_compare_starts_with_the_two_newest_runs_of_one_track():
    from dataperf_appliance.interface.ui_support.run_list import RunRow

    rows = [RunRow("s2", "success", "disk", True, track="selection"),
            RunRow("d2", "success", "disk", True, track="debugging"),
            RunRow("d1", "success", "disk", True, track="debugging")]
    assert compare_support.default_runs(rows) == ["d2", "d1"]  # not the newest selection with a debugging one
    assert compare_support.default_runs(rows[:2]) == ["s2", "d2"]  # no track has two


def test_compare_needs_two_runs(app_env):
    write_run(app_env / "runs", "run-a")
    at = app("views/compare.py")
    assert "needs two finished runs" in texts(at.info)


# ---- Datasets ------------------------------------------------------------------------------------------

def test_datasets_page_refuses_a_bad_file_with_the_reason(app_env):
    at = app("views/datasets.py")
    assert {"digits", "synthetic"} <= set(at.table[0].value["dataset"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("embeddings/t1_train_0.3_20.parquet", b"not a parquet file")
    at.text_input(key="dataset.name").input("mine")
    at.file_uploader(key="dataset.zip").set_value(("mine.zip", buffer.getvalue(), "application/zip"))
    at.form_submit_button[0].click().run()
    errors = texts(at.error)
    assert "Refused" in errors and "missing" in errors
    assert not (app_env / "datasets" / "mine").exists()
