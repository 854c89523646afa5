"""Runs with limits (docs/security.md): a setup whose embeddings or fits exceed what the appliance allows is
refused when its file is validated, with its estimate; every Airflow task has a time limit and the DAG a
run limit, and a run stopped by one is marked failed with the limit named.

The DAG is loaded with Airflow's DagBag in a Python of its own (this file run as a script): Airflow imported
here would hold this process's settings, which the test Airflow stack (tests/airflow_harness.py) sets first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT
from ui_fixtures import small_setup

from dataperf_appliance.interface import cli
from dataperf_appliance.config import ConfigError
from dataperf_appliance.engine.datasets import flipped_count
from dataperf_appliance.engine.datasets.dataperf_files import DebuggingTaskData
from dataperf_appliance.engine.debugging.debugging_evaluation import evaluate_orders, most_trainings
from dataperf_appliance.engine.selection import files
from dataperf_appliance.engine.settings import (
    DEFAULT_MAX_RUN_FITS,
    DEFAULT_RUN_TIMEOUT_S,
    DEFAULT_TASK_TIMEOUT_S,
    MAX_RUN_FITS_ENV,
    MAX_RUN_MEMORY_ENV,
    RUN_MEMORY_SHARE,
    RUN_TIMEOUT_ENV,
    TASK_TIMEOUT_ENV,
    Settings,
    load_run_limits,
    machine_memory_mib,
)
from dataperf_appliance.tracks import default_params, parse_task_setup, render_and_parse
from dataperf_appliance.interface.ui_support import form

# The review's finding: 3 x 100,000 x 2,048 values with 100 repeats and a random forest, about 4.6 GiB of
# embeddings before any training, accepted on a 4 GiB instance.
FINDING = """\
dataset: synthetic
dim: 2048
model: random_forest
repeats: 100
tasks:
  - {data_id: synthetic-0, train_size: 100000, noise_level: 0.3, val_size: 100, test_size: 100}
  - {data_id: synthetic-1, train_size: 100000, noise_level: 0.3, val_size: 100, test_size: 100}
  - {data_id: synthetic-2, train_size: 100000, noise_level: 0.3, val_size: 100, test_size: 100}
baselines: [{name: random}, {name: knn_shapley}, {name: confident_learning}, {name: loss}]
"""
#: What a 4 GiB instance allows by default (half of its memory).
FOUR_GIB_INSTANCE_MIB = "2048"
FINDING_MEMORY = ("this setup needs about 4.6 GiB of embeddings at once (3 tasks x 100,200 rows x 2,048 values, "
                  "float64), above the 2.0 GiB this appliance allows (APPLIANCE_MAX_RUN_MEMORY_MIB)")


@pytest.fixture
def four_gib_instance(monkeypatch):
    """The limits of a 4 GiB instance, whatever this machine has; the fits limit at its default."""
    monkeypatch.setenv(MAX_RUN_MEMORY_ENV, FOUR_GIB_INSTANCE_MIB)
    monkeypatch.delenv(MAX_RUN_FITS_ENV, raising=False)


def issues_of(text: str, **kwargs) -> dict[str, tuple[int, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_task_setup(text, **kwargs)
    return {issue.field: (issue.line, issue.message) for issue in caught.value.issues}


# --- validation ------------------------------------------------------------------------------------

def test_the_setup_of_the_finding_is_refused_with_its_estimates(four_gib_instance):
    with pytest.raises(ConfigError) as caught:
        parse_task_setup(FINDING)
    assert f"task_setup.yml:5:1: tasks: {FINDING_MEMORY}" in str(caught.value)
    issues = {issue.field: (issue.line, issue.message) for issue in caught.value.issues}
    assert set(issues) == {"tasks", "repeats"}
    # 300 cells, each with up to 2 + 4 methods x 30,001 distinct training sets (30,000 labels flipped).
    line, message = issues["repeats"]
    assert line == 4 and message.startswith("this setup needs up to 36,001,800 fits of the classifier (300 cells")
    assert f"above the {DEFAULT_MAX_RUN_FITS:,} this appliance allows (APPLIANCE_MAX_RUN_FITS)" in message


def test_the_cli_and_the_form_show_the_refusal(four_gib_instance, tmp_path, capsys):
    path = tmp_path / "task_setup.yml"
    path.write_text(FINDING)
    assert cli.main(["validate", str(path), "--data-dir", str(tmp_path)]) == cli.EXIT_INVALID
    assert f"{path}:5:1: tasks: {FINDING_MEMORY}" in capsys.readouterr().err

    settings = Settings(data_dir=tmp_path, s3_bucket=None, s3_prefix="p/")
    written = form.check_yaml(FINDING, settings)
    assert written.setup is None and any(FINDING_MEMORY in message for message in written.general_errors)
    params = {**default_params(), "dataset": "synthetic", "dim": 2048, "train_size": 100_000, "val_size": 100,
              "test_size": 100, "tasks": ["synthetic-0", "synthetic-1", "synthetic-2"], "repeats": 100}
    filled = form.check_params(params, settings)
    assert filled.setup is None and any(FINDING_MEMORY in message for message in filled.field_errors["tasks"])


def test_a_setup_within_the_limits_passes_and_the_limits_are_the_settings(monkeypatch):
    monkeypatch.setenv(MAX_RUN_MEMORY_ENV, "5000")  # above the finding's 4.6 GiB (4,700 MiB)
    monkeypatch.setenv(MAX_RUN_FITS_ENV, "36001800")  # exactly its fits
    assert parse_task_setup(FINDING).repeats == 100
    monkeypatch.setenv(MAX_RUN_FITS_ENV, "36001799")
    assert set(issues_of(FINDING)) == {"repeats"}
    # Fewer curve points: eval_points bounds the fits of each task whatever its size.
    assert parse_task_setup(FINDING.replace("repeats: 100", "repeats: 100\neval_points: 10")).eval_points == 10


@pytest.mark.parametrize(("track", "preset"), [("debugging", None), ("debugging", "arena"), ("selection", None)])
def test_the_default_runs_and_the_arena_pass_on_a_small_instance(four_gib_instance, track, preset):
    assert render_and_parse(default_params(track, preset))[1].track == track


def test_the_selection_tracks_fits_are_counted_per_cell_and_method(monkeypatch):
    # The default: 3 tasks x 10 repeats, each cell 4 strategies and the task's own train csv.
    text = render_and_parse(default_params("selection"))[0]
    monkeypatch.setenv(MAX_RUN_FITS_ENV, "149")
    line, message = issues_of(text)["repeats"]
    assert text.splitlines()[line - 1].startswith("repeats:")
    assert message.startswith("this setup needs up to 150 fits of the classifier (30 cells: 3 task(s) x ")


def test_a_selection_pool_too_large_is_refused_from_its_footer(monkeypatch, tmp_path):
    from test_config_selection import OFFICIAL
    from test_selection_benchmark import DIM, write_official_folder

    folder = tmp_path / "datasets" / "tiny"
    write_official_folder(folder)
    monkeypatch.setenv(MAX_RUN_MEMORY_ENV, "1")
    assert parse_task_setup(OFFICIAL, data_root=tmp_path).dataset == "tiny"  # 80 points fit in 1 MiB
    rows = 2 * 2**20 // (DIM * 8)  # 2 MiB of float64
    files.write_pool(folder / f"embeddings/train_emb_{DIM}_dataperf.parquet", [f"img-{i}" for i in range(rows)],
                     np.zeros((rows, DIM)))
    line, message = issues_of(OFFICIAL, data_root=tmp_path)["emb_file"]
    assert line == 4 and message.startswith(
        f"this setup needs about 2 MiB of embeddings at once (a pool of {rows:,} rows ({rows * DIM:,} values, "
        "float64) and 2 test sets of 120 rows in all), above the 1 MiB this appliance allows")
    assert parse_task_setup(OFFICIAL).dataset == "tiny"  # without the data root the pool is not looked at


def test_the_fits_bound_holds_and_is_tight():
    rng = np.random.default_rng(0)
    rows, flipped = 60, flipped_count(0.3, 60)
    y_true = rng.integers(0, 2, size=rows)
    y_train = y_true.copy()
    wrong = rng.choice(rows, size=flipped, replace=False)
    y_train[wrong] = 1 - y_train[wrong]
    X = rng.normal(size=(rows, 4))
    task = DebuggingTaskData("t", X, y_train, y_true, np.arange(rows).astype(str), X[:10], y_true[:10], X, y_true)
    wrong_first = np.argsort(y_train == y_true, kind="stable")
    orders = {"wrong_first": wrong_first, "random": rng.permutation(rows), "reversed": wrong_first[::-1].copy()}
    for eval_points in (None, 7):
        evaluation = evaluate_orders(task, orders, eval_points=eval_points, n_jobs=1)
        assert evaluation.trainings <= most_trainings(rows, flipped, eval_points, len(orders))
    # One order that fixes a flipped row at every budget until none is left: within 2 of the bound.
    exact = evaluate_orders(task, {"wrong_first": wrong_first}, n_jobs=1).trainings
    assert exact == flipped + 1 and most_trainings(rows, flipped, None, 1) - exact == 2


# --- the settings ----------------------------------------------------------------------------------

def test_the_limits_default_to_half_the_machine_and_the_documented_figures():
    limits = load_run_limits({})
    assert limits.max_memory_mib == int(machine_memory_mib() * RUN_MEMORY_SHARE) > 0
    assert (limits.max_fits, limits.task_timeout_s, limits.run_timeout_s) == (
        DEFAULT_MAX_RUN_FITS, DEFAULT_TASK_TIMEOUT_S, DEFAULT_RUN_TIMEOUT_S)
    assert load_run_limits({MAX_RUN_MEMORY_ENV: " 512 ", TASK_TIMEOUT_ENV: "5"}).max_memory_mib == 512


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "lots", "١٢"])
def test_a_limit_that_is_not_a_whole_number_is_named(value):
    with pytest.raises(ValueError, match=f"{RUN_TIMEOUT_ENV} must be a whole number of at least 1"):
        load_run_limits({RUN_TIMEOUT_ENV: value})


# --- the DAG's time limits -------------------------------------------------------------------------

DAG_FILE_ENV = {TASK_TIMEOUT_ENV: "5", RUN_TIMEOUT_ENV: "60"}


@pytest.fixture(scope="module")
def dag_facts(tmp_path_factory) -> dict:
    """What the DAG file gives with DAG_FILE_ENV, and the manifests of four runs after a task ran past its limit
    (runs[0]), the run past its limit (runs[1]), publish past its own (runs[2]); runs[3] is left alone."""
    root = tmp_path_factory.mktemp("dag")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}, **DAG_FILE_ENV,
           "AIRFLOW_HOME": str(root / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "APPLIANCE_DATA_DIR": str(root / "data")}
    env.pop("APPLIANCE_S3_BUCKET", None)
    done = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_task_and_the_dag_have_the_time_limits_of_the_settings(dag_facts):
    limits = load_run_limits(DAG_FILE_ENV)
    assert dag_facts["dagrun_timeout"] == limits.run_timeout_s == 60
    assert set(dag_facts["execution_timeout"]) == {"validate", "prepare_data", "evaluate", "report", "publish"}
    # publish's own bound is half an hour per try, never above the task limit.
    assert set(dag_facts["execution_timeout"].values()) == {limits.task_timeout_s}
    assert dag_facts["failure_callbacks"] == ["_mark_failed"]  # the path the test below takes


def test_a_run_past_a_limit_is_failed_with_the_limit_named_and_the_others_go_on(dag_facts):
    task_stopped, run_stopped, publish_stopped, untouched = dag_facts["manifests"]
    assert task_stopped["state"] == "failed" and task_stopped["error"] == (
        "AirflowFailException: evaluate digit-3 took longer than its limit of 5 s (APPLIANCE_TASK_TIMEOUT_S) and "
        "was stopped")
    assert dag_facts["retried"] is False  # a task past its limit is not tried again
    assert run_stopped["state"] == "failed" and run_stopped["error"] == (
        "the run took longer than its limit of 1 min (APPLIANCE_RUN_TIMEOUT_S) and was stopped (task evaluate)")
    assert publish_stopped["error"] == ("task publish took longer than its limit of 5 s (APPLIANCE_TASK_TIMEOUT_S) "
                                        "and was stopped")
    assert (untouched["state"], untouched["error"]) == ("queued", None)


def test_a_task_stopped_by_airflow_unwinds_at_once(dag_facts):
    assert dag_facts["terminated"] == "evaluate digit-8 was stopped by Airflow (signal SIGTERM)"
    assert dag_facts["sigterm_handler_restored"]


@dataclass
class _Task:
    execution_timeout: object


@dataclass
class _TaskInstance:
    task_id: str
    task: _Task


def _callback_names(callbacks) -> str:
    return ",".join(c.__name__ for c in (callbacks if isinstance(callbacks, list) else [callbacks]))


def _dag_file_facts() -> dict:
    """Run as a script: load the DAG, stop a task at a real execution timeout, and mark runs failed as the
    DAG's callbacks do."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowFailException, AirflowTaskTerminated, AirflowTaskTimeout
    from airflow.sdk.execution_time.timeout import timeout

    from dataperf_appliance.stages import pipeline
    from dataperf_appliance.orchestration.airflow_gateway import DAG_ID

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[DAG_ID]
    tasks = {task.task_id: task for task in dag.tasks}
    module = sys.modules[dag.on_failure_callback.__module__]
    mark_failed = module._mark_failed  # every task's on_failure_callback and the DAG's
    runs = [pipeline.create_run(small_setup()) for _ in range(4)]

    stopped = None
    try:
        with timeout(1), module._within_the_limits("evaluate digit-3"):
            time.sleep(30)
    except AirflowFailException as error:  # Airflow retries a timeout, but not this
        stopped = error
    terminated = None
    try:  # Airflow's SIGTERM (the run past its limit): the task unwinds at once, killing its methods' processes
        with module._within_the_limits("evaluate digit-8"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
    except AirflowTaskTerminated as error:
        terminated = str(error)
    evaluate = _TaskInstance("evaluate", tasks["evaluate"])
    mark_failed({"params": {"run_id": runs[0]}, "exception": stopped, "task_instance": evaluate})
    mark_failed({"params": {"run_id": runs[1]}, "reason": "timed_out", "task_instance": evaluate})
    mark_failed({"params": {"run_id": runs[2]}, "exception": AirflowTaskTimeout("Timeout, PID: 1"),
                 "task_instance": _TaskInstance("publish", tasks["publish"])})
    return {"dagrun_timeout": dag.dagrun_timeout.total_seconds(),
            "execution_timeout": {name: task.execution_timeout.total_seconds() for name, task in tasks.items()},
            "failure_callbacks": sorted({_callback_names(task.on_failure_callback) for task in [dag, *tasks.values()]}),
            "retried": not isinstance(stopped, AirflowFailException),
            "terminated": terminated, "sigterm_handler_restored": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
            "manifests": [{key: pipeline.read_manifest(run).get(key) for key in ("state", "error")} for run in runs]}


if __name__ == "__main__":
    print(json.dumps(_dag_file_facts()))
