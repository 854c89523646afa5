"""The benchmark DAG through the real parts: Airflow 3 (api-server, scheduler, DAG processor, LocalExecutor)
on PostgreSQL, started the way the image starts them (tests/airflow_harness.py), and a moto S3 server.

Runs are created with `pipeline.create_run` and triggered with the gateway
(Airflow's local client), as the app does, or triggered directly with Airflow's
client and a task_setup.yml in the conf, as Airflow's own form would.

Reproducibility (same task_setup.yml, same seed -> same results.json) is
compared with the timing fields `time_s`, `fit_s` and `predict_s` (and the
summary of `time_s` over the repeats) removed: they are wall-clock seconds
and differ from run to run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from airflow_harness import TEST_BUCKET, TEST_PREFIX, AirflowStack, airflow_stack  # noqa: F401 - fixture

from dataperf_appliance.orchestration import airflow_gateway as gateway
from dataperf_appliance.stages import pipeline
from dataperf_appliance.engine.stats import COST_OVER_REPEATS
from dataperf_appliance.tracks import apply_overrides, default_params, render_task_setup
from dataperf_appliance.engine.settings import load_run_limits, load_settings

pytestmark = pytest.mark.slow

DAG_ID = gateway.DAG_ID
TIMING_FIELDS = {"time_s", "fit_s", "predict_s", COST_OVER_REPEATS}
# A small setup: the concurrency and outage tests are about orchestration, not about the engine.
SMALL = ["train_size=60", "val_size=20", "test_size=40", "tasks=digit-3,digit-8", "strategies=random,loss",
         "repeats=1"]


# Three benchmark tasks, with a model that needs no compiling: one of the five runs below, two of
# tests/test_scale_out.py's runs on the CeleryExecutor, and (with methods as code and fewer rows) the base of its
# arena. Each evaluate computes for several seconds (gradient boosting; about 9 s a task here), so that two
# workers run two of them at the same time: with logistic regression an evaluate took under a second once the
# modules came compiled (.pyc), and the second worker found the work done before it could take any.
THREE_TASKS = ("seed=4", "tasks=digit-3,digit-8,digit-9", "model=hist_gradient_boosting", "train_size=120",
               "repeats=2")


def small_setup(*overrides: str) -> str:
    return render_task_setup(apply_overrides(default_params("debugging"), [*SMALL, *overrides]))


def wait_for_run(stack: AirflowStack, run_id: str, timeout_s: float = 240) -> gateway.RunStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = gateway.get_run(run_id)
        if status.finished:
            return status
        time.sleep(1)
    tail = "\n".join(stack.process_log("scheduler").splitlines()[-30:])
    raise AssertionError(f"run {run_id} not finished within {timeout_s}s: {gateway.get_run(run_id)}\n{tail}")


def s3_client(moto_server):
    env = moto_server.env()
    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def bucket_files(moto_server, run_id: str) -> dict[str, str]:
    """{path inside the run: sha256} of a run's objects in the bucket."""
    client, prefix = s3_client(moto_server), f"{TEST_PREFIX}runs/{run_id}/"
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=TEST_BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=TEST_BUCKET, Key=obj["Key"])["Body"].read()
            out[obj["Key"][len(prefix):]] = hashlib.sha256(body).hexdigest()
    return out


def disk_files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def assert_published(stack: AirflowStack, moto_server, run_id: str) -> dict:
    """The run is in place on disk with state success, and the bucket holds exactly its files."""
    run_dir = load_settings().runs_dir / run_id
    assert run_dir.is_dir(), f"run {run_id} not published"
    assert not (load_settings().runs_dir / f".{run_id}.partial").exists()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["state"] == "success", manifest.get("error")
    assert (run_dir / "results.json").exists() and list((run_dir / "plots").glob("*.png"))
    assert bucket_files(moto_server, run_id) == disk_files(run_dir)
    return manifest


# ---- the default run, through the gateway --------------------------------------------------------

@pytest.fixture(scope="module")
def default_run(airflow_stack: AirflowStack) -> dict:
    text = render_task_setup(default_params("debugging"))
    run_id = pipeline.create_run(text)
    started = time.monotonic()
    triggered = gateway.trigger_run(run_id)
    # The default has repeats: every mapped `evaluate` runs its task once per repeat.
    status = wait_for_run(airflow_stack, run_id, timeout_s=900)
    return {"run_id": run_id, "text": text, "triggered": triggered, "status": status,
            "seconds": time.monotonic() - started}


def test_default_run_succeeds_on_disk_and_in_bucket(airflow_stack, default_run, moto_server):
    run_id, status = default_run["run_id"], default_run["status"]
    assert default_run["triggered"]["run_id"] == run_id and not default_run["triggered"]["dag_paused"]
    assert status.state == "success", [(t.task_id, t.map_index, t.state) for t in status.task_instances]
    by_task = {}
    for ti in status.task_instances:
        by_task.setdefault(ti.task_id, []).append(ti)
    setup_tasks = default_params("debugging")["tasks"]
    assert len(by_task["evaluate"]) == len(setup_tasks)  # one mapped instance per benchmark task
    assert sorted(ti.map_index for ti in by_task["evaluate"]) == list(range(len(setup_tasks)))
    # Airflow's grid names each mapped instance by its benchmark task id (the DAG's map_index_template).
    assert sorted(ti.label for ti in by_task["evaluate"]) == sorted(setup_tasks)
    assert all(ti.state == "success" for ti in status.task_instances)
    assert status.progress == (len(status.task_instances), len(status.task_instances))

    manifest = assert_published(airflow_stack, moto_server, run_id)
    run_dir = load_settings().runs_dir / run_id
    assert (run_dir / "task_setup.yml").read_text() == default_run["text"]
    assert manifest["run_id"] == run_id
    assert manifest["task_setup_sha256"] == hashlib.sha256(default_run["text"].encode()).hexdigest()
    assert manifest["seed"] == default_params("debugging")["seed"]
    assert manifest["code_version"]["package"] and "git_commit" in manifest["code_version"]
    assert {"python", "numpy", "scikit-learn", "apache-airflow"} <= set(manifest["packages"])
    assert manifest["inputs"] and all(len(digest) == 64 for digest in manifest["inputs"].values())
    for stage in ("validate", "prepare_data", "evaluate", "report", "publish"):
        assert manifest["stages"][stage]["ok"] is True, stage
        assert manifest["stages"][stage]["started_at"] <= manifest["stages"][stage]["finished_at"]
        assert manifest["stages"][stage]["seconds"] >= 0, stage  # never None once the stage has ended
    evaluate = manifest["stages"]["evaluate"]
    assert evaluate["seconds"] >= max(part["seconds"] for part in evaluate["parts"].values())
    assert set(manifest["stages"]["evaluate"]["parts"]) == set(json.loads(
        (run_dir / "results.json").read_text())["tasks"])
    # The repeats are replicates: every headline figure over them, every strategy against random.
    results = json.loads((run_dir / "results.json").read_text())
    repeats = default_params("debugging")["repeats"]
    assert repeats > 1 and results["repeats"] == repeats and len(results["replicates"]["rows"]) == \
        repeats * len(setup_tasks) * len(default_params("debugging")["strategies"])
    for task in results["tasks"].values():
        for name, entry in task["strategies"].items():
            assert entry["over_repeats"]["fraction_fixes"]["n"] == repeats
            assert (name == "random") == ("vs_random" not in entry)
    assert results["overall"]["knn_shapley"]["vs_random"]["fraction_fixes"]["significant"] is True
    assert (run_dir / "repeats.csv").exists() and (run_dir / "plots" / "vs_random.png").exists()
    # The dataset was generated once and uploaded for the next instance.
    listed = s3_client(moto_server).list_objects_v2(Bucket=TEST_BUCKET, Prefix=f"{TEST_PREFIX}datasets/digits/")
    assert listed.get("KeyCount", 0) > 0

    assert gateway.airflow_ui_url(run_id).endswith(f"/dags/{DAG_ID}/runs/{run_id}")
    assert run_id in [run.run_id for run in gateway.list_recent_runs(limit=50)]
    assert all(component["healthy"] for name, component in gateway.health().items() if name != "triggerer")


def test_a_participants_appraiser_runs_through_the_dag_with_repeats(airflow_stack, moto_server):
    """Methods as code through Airflow: stored with the run, run by every mapped evaluate, in the bucket."""
    from test_methods import FAILING, PARTICIPANT_APPRAISER

    methods = ("methods:\n  - {name: participant, file: methods/appraiser.py}\n"
               "  - {name: broken, file: methods/broken.py}\n")
    text = "".join(methods if line.startswith("methods:") else line
                   for line in small_setup("repeats=2", "strategies=random").splitlines(keepends=True))
    files = {"methods/appraiser.py": PARTICIPANT_APPRAISER.encode(), "methods/broken.py": FAILING.encode()}
    with pytest.raises(ValueError, match=r"methods\[1\]\.file: no file methods/broken.py"):
        pipeline.create_run(text, files={"methods/appraiser.py": files["methods/appraiser.py"]})
    run_id = pipeline.create_run(text, files=files)
    gateway.trigger_run(run_id)
    assert wait_for_run(airflow_stack, run_id).state == "success"
    assert_published(airflow_stack, moto_server, run_id)
    results = json.loads((load_settings().runs_dir / run_id / "results.json").read_text())
    for task in results["tasks"].values():
        participant = task["strategies"]["participant"]
        assert participant["kind"] == "method" and participant["over_repeats"]["fraction_fixes"]["n"] == 2
        assert participant["vs_random"]["fraction_fixes"]["p_value"] is not None
        assert task["strategies"]["broken"]["method"]["error"] == "broken: ValueError: this method cannot fit"
        assert task["strategies"]["random"]["over_repeats"]["fraction_fixes"]["n"] == 2


def test_trigger_twice_is_refused(default_run):
    with pytest.raises(gateway.RunAlreadyTriggered):
        gateway.trigger_run(default_run["run_id"])


# ---- invalid task_setup.yml: fails at validate, nothing published --------------------------------

NOT_YAML = "tasks:\n  - data_id: digit-3\n    train_size: [60\nbaselines: {\n"
BREAKS_SCHEMA = small_setup().replace("train_size: 60", "train_size: sixty")


def trigger_directly(conf: dict, run_id: str) -> None:
    """As Airflow's own trigger form or `airflow dags trigger` would: no app, no validation before."""
    from airflow.api.client.local_client import Client

    Client().trigger_dag(DAG_ID, run_id=run_id, conf=conf)


@pytest.fixture(scope="module")
def invalid_runs(airflow_stack) -> dict[str, dict]:
    cases = {
        "not-yaml-conf": {"conf": {"task_setup_yml": NOT_YAML}},
        "bad-schema-conf": {"conf": {"task_setup_yml": BREAKS_SCHEMA}},
        "bad-schema-stored": {"stored": BREAKS_SCHEMA},
    }
    stamp = time.strftime("%H%M%S")
    for name, case in cases.items():
        case["airflow_run_id"] = f"invalid-{name}-{stamp}"
        if "stored" in case:
            # A file put in place without the app's check (check=False), triggered by run id.
            run_id = pipeline.create_run(case["stored"], case["airflow_run_id"], check=False)
            trigger_directly({"run_id": run_id}, run_id)
        else:
            trigger_directly(case["conf"], case["airflow_run_id"])
    for case in cases.values():
        case["status"] = wait_for_run(airflow_stack, case["airflow_run_id"], timeout_s=180)
    return cases


@pytest.mark.parametrize("name", ["not-yaml-conf", "bad-schema-conf", "bad-schema-stored"])
def test_invalid_setup_fails_at_validate(airflow_stack, invalid_runs, moto_server, name):
    case = invalid_runs[name]
    status = case["status"]
    assert status.state == "failed"
    states = {(ti.task_id, ti.map_index): ti.state for ti in status.task_instances}
    assert states[("validate", -1)] == "failed"
    assert all(state in ("upstream_failed", None) for (task, _), state in states.items() if task != "validate")
    validate = next(ti for ti in status.task_instances if ti.task_id == "validate")
    assert validate.try_number == 1  # no retry of an invalid file

    log = airflow_stack.task_log(DAG_ID, case["airflow_run_id"], "validate")
    assert "invalid task_setup.yml" in log
    assert "task_setup.yml:" in log  # the issues name the file and line

    run_id = pipeline.safe_run_id(case["airflow_run_id"])
    runs = load_settings().runs_dir
    assert not (runs / run_id).exists()
    assert bucket_files(moto_server, run_id) == {}
    manifest = json.loads((runs / f".{run_id}.partial" / "manifest.json").read_text())
    assert manifest["state"] == "failed" and "task_setup.yml" in manifest["error"]


def test_validate_refuses_missing_or_double_params(airflow_stack):
    run_id = f"no-params-{time.strftime('%H%M%S')}"
    trigger_directly({}, run_id)
    status = wait_for_run(airflow_stack, run_id, timeout_s=120)
    assert status.state == "failed"
    assert "exactly one of the params" in airflow_stack.task_log(DAG_ID, run_id, "validate")


# ---- five runs at once ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def concurrent_runs(airflow_stack) -> list[dict]:
    """Five runs triggered at once: runs 0 and 1 share a setup (seed 1), runs 2-4 have seeds 2-4 (run 4: THREE_TASKS)."""
    texts = [small_setup("seed=1"), small_setup("seed=1"), small_setup("seed=2"), small_setup("seed=3"),
             small_setup(*THREE_TASKS)]
    run_ids = [pipeline.create_run(text) for text in texts]
    with ThreadPoolExecutor(len(run_ids)) as pool:
        list(pool.map(gateway.trigger_run, run_ids))
    statuses = [wait_for_run(airflow_stack, run_id, timeout_s=420) for run_id in run_ids]
    return [{"run_id": r, "text": t, "status": s} for r, t, s in zip(run_ids, texts, statuses)]


def test_five_runs_at_once_all_succeed(airflow_stack, concurrent_runs, moto_server):
    for run in concurrent_runs:
        assert run["status"].state == "success", (run["run_id"], run["status"].failed_tasks())
        manifest = assert_published(airflow_stack, moto_server, run["run_id"])
        assert manifest["task_setup_sha256"] == hashlib.sha256(run["text"].encode()).hexdigest()
    results = [json.loads((load_settings().runs_dir / r["run_id"] / "results.json").read_text())
               for r in concurrent_runs]
    assert [r["seed"] for r in results] == [1, 1, 2, 3, 4]
    # Different seeds: different noisy labels, so different curves.
    curves = [json.dumps(without_timings(r["tasks"]), sort_keys=True) for r in results[1:]]
    assert len(set(curves)) == len(curves)


def test_same_setup_and_seed_give_same_results(concurrent_runs):
    """results.json of two runs of one task_setup.yml are identical, the timing fields removed."""
    first, second = (json.loads((load_settings().runs_dir / r["run_id"] / "results.json").read_text())
                     for r in concurrent_runs[:2])
    assert without_timings(first) == without_timings(second)


# ---- a new instance sees every earlier run -------------------------------------------------------

def test_fresh_data_root_lists_and_opens_every_run(tmp_path, default_run, concurrent_runs, invalid_runs):
    from dataperf_appliance.engine.storage import Storage

    settings = load_settings({**os.environ, "APPLIANCE_DATA_DIR": str(tmp_path / "fresh")})
    storage = Storage.from_settings(settings)
    published = [default_run["run_id"], *(r["run_id"] for r in concurrent_runs)]
    listed = {listing.run_id: listing for listing in storage.list_runs()}
    assert set(published) <= set(listed)
    assert all(listed[run_id].where == "s3" and listed[run_id].state == "success" for run_id in published)
    for case in invalid_runs.values():  # failed runs were never published
        assert pipeline.safe_run_id(case["airflow_run_id"]) not in listed
    for run_id in published:
        run_dir = storage.download_run(run_id)
        assert run_dir == settings.runs_dir / run_id
        assert json.loads((run_dir / "manifest.json").read_text())["state"] == "success"
        assert disk_files(run_dir) == disk_files(load_settings().runs_dir / run_id)


# ---- S3 stops answering during publish -----------------------------------------------------------

def test_s3_outage_during_publish_is_retried(airflow_stack, moto_server):
    run_id = pipeline.create_run(small_setup("seed=7", "tasks=digit-3"))
    gateway.trigger_run(run_id)
    # Pause S3 while `report` runs, so that `publish` starts against an endpoint that does not answer.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        states = {ti.task_id: ti.state for ti in gateway.get_run(run_id).task_instances}
        if states.get("report") in ("running", "success") or states.get("publish"):
            break
        time.sleep(0.2)
    assert states.get("publish") in (None, "scheduled", "queued"), f"publish already ran: {states}"
    moto_server.process.send_signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            publish = [ti for ti in gateway.get_run(run_id).task_instances if ti.task_id == "publish"]
            if publish and (publish[0].try_number >= 2 or publish[0].state == "up_for_retry"):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"publish was not retried while S3 was down: {gateway.get_run(run_id)}")
        # Meanwhile the run is not shown as finished anywhere.
        assert pipeline.run_state(run_id)["state"] != "success"
    finally:
        moto_server.process.send_signal(signal.SIGCONT)
    status = wait_for_run(airflow_stack, run_id, timeout_s=300)
    assert status.state == "success", status.failed_tasks()
    publish = next(ti for ti in status.task_instances if ti.task_id == "publish")
    assert publish.try_number >= 2
    assert_published(airflow_stack, moto_server, run_id)


# ---- the gateway's one error ---------------------------------------------------------------------

def _gateway_in(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = ("from dataperf_appliance.orchestration import airflow_gateway as g\n"
            "try:\n    g.list_recent_runs()\nexcept g.AirflowUnavailable as e:\n    print('UNAVAILABLE', e)\n")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_gateway_raises_one_clear_error(tmp_path, airflow_stack):
    from conftest import free_port

    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    base["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    not_configured = _gateway_in(base)
    assert "UNAVAILABLE" in not_configured.stdout and "AIRFLOW_HOME" in not_configured.stdout

    down = _gateway_in({**base, "AIRFLOW_HOME": str(tmp_path / "home-down"),
                        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                            f"postgresql+psycopg://airflow:x@127.0.0.1:{free_port()}/airflow?connect_timeout=3",
                        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC":
                            f"postgresql+psycopg_async://airflow:x@127.0.0.1:{free_port()}/airflow"})
    assert "UNAVAILABLE" in down.stdout and "cannot be reached" in down.stdout, down.stderr[-2000:]

    empty = _gateway_in({**base, "AIRFLOW_HOME": str(tmp_path / "home-empty"),
                         "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'empty.db'}"})
    assert "UNAVAILABLE" in empty.stdout and "not initialized" in empty.stdout, empty.stderr[-2000:]


def test_dag_definition(airflow_stack):
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(DAG_ID, session=session)
    assert dag.timetable.summary in ("None", "Never, external triggers only") or dag.timetable.__class__.__name__ \
        == "NullTimetable"
    assert set(dag.params) == {"run_id", "task_setup_yml"}
    tasks = {task.task_id: task for task in dag.tasks}
    assert set(tasks) == {"validate", "prepare_data", "evaluate", "report", "publish"}
    assert tasks["validate"].retries == 0
    assert tasks["publish"].retries >= 3 and tasks["publish"].retry_exponential_backoff
    assert dag.doc_md
    # The limits of the settings, as the DAG processor read them (the same environment as this process's).
    limits = load_run_limits()
    assert dag.dagrun_timeout == dt.timedelta(seconds=limits.run_timeout_s)
    task_limit = dt.timedelta(seconds=limits.task_timeout_s)
    assert {name: task.execution_timeout for name, task in tasks.items() if name != "publish"} == {
        name: task_limit for name in ("validate", "prepare_data", "evaluate", "report")}
    assert tasks["publish"].execution_timeout <= task_limit
