"""Methods as code: a participant's DataPerf appraiser or selection class, run in a child process for every
task and repeat, in an environment of its own when it has requirements.

The appraiser below is written anew in the shape of the official `CustomAppraiser` (DS3Lab's
``app/baselines/debugging.py``): ``from appraiser import Appraiser``, a ``name``, ``fit`` that draws a random
order with numpy's global generator, ``propose(budget)``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dataperf_appliance.config import ConfigError
from dataperf_appliance.engine.methods import environments, runner
from dataperf_appliance.tracks import load_task_setup

CLI = [str(Path(sys.executable).with_name("dataperf-appliance"))]

PARTICIPANT_APPRAISER = '''\
import numpy as np
from appraiser import Appraiser


class CustomAppraiser(Appraiser):
    def __init__(self) -> None:
        super().__init__()
        self.name = "my_debug"

    def fit(self, train_X, train_y, val_X, val_y):
        # The official shapes: (N, D) float32 features, (N, 1) labels.
        assert train_X.dtype == np.float32 and train_y.shape == (train_X.shape[0], 1)
        self.shape = train_X.shape[0]
        self.sample = np.random.choice(self.shape, self.shape, replace=False)

    def propose(self, budget):
        return self.sample[:budget]
'''

# Flags the rows whose label disagrees with their nearest validation point: better than random.
NEAREST_LABEL = '''\
import numpy as np


class NearestValidationLabel:
    def fit(self, train_X, train_y, val_X, val_y):
        distances = ((train_X[:, None, :] - val_X[None, :, :]) ** 2).sum(axis=2)
        nearest = val_y[distances.argmin(axis=1), 0]
        self.order = np.argsort(nearest == train_y[:, 0], kind="stable")

    def propose(self, budget):
        return self.order[:budget].tolist()
'''

FAILING = '''\
class Broken:
    def fit(self, train_X, train_y, val_X, val_y):
        raise ValueError("this method cannot fit")

    def propose(self, budget):
        return []
'''

SELECTOR = '''\
import numpy as np


class ClosestToExamples:
    """Buys the labels of the pool points nearest the examples' mean."""

    def select(self, pool_X, examples_X, budget, oracle):
        rows = np.argsort(np.linalg.norm(pool_X - examples_X.mean(axis=0), axis=1))[:budget]
        return rows, oracle.label(rows)
'''


def _task(n: int = 40, d: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, 2, size=(n, 1))
    return {"train_X": X, "train_y": y, "val_X": X[:8].copy(), "val_y": y[:8].copy()}


def _run(tmp_path: Path, source: str, *, seed: int = 0, **call) -> runner.MethodOutcome:
    path = tmp_path / f"method_{abs(hash(source)) % 10_000}.py"
    path.write_text(source)
    inputs = _task()
    return runner.run_method(runner.MethodCall("m", path, **call), runner.APPRAISER, inputs, budget=len(inputs["train_X"]),
                             seed=seed, data_root=tmp_path / "data")


# ---- the child process --------------------------------------------------------------------------------

def test_a_participants_appraiser_runs_unchanged_and_follows_the_seed(tmp_path):
    first, again, other = (_run(tmp_path, PARTICIPANT_APPRAISER, seed=seed) for seed in (3, 3, 4))
    assert not first.failed, first.traceback
    order = runner.order_of(first, 40)
    assert sorted(order.tolist()) == list(range(40))
    assert np.array_equal(order, runner.order_of(again, 40))  # the repeat's seed makes it repeatable
    assert not np.array_equal(order, runner.order_of(other, 40))  # and another repeat draws anew
    assert first.class_name == "CustomAppraiser" and first.seconds >= 0 and first.cpu_seconds >= 0
    assert first.peak_rss_mib > 0 and first.wall_seconds >= first.seconds
    assert not list((tmp_path / "data" / runner.SCRATCH_FOLDER).iterdir())  # scratch removed


def test_a_failing_method_comes_back_with_its_traceback(tmp_path):
    outcome = _run(tmp_path, FAILING)
    assert outcome.failed and outcome.error == "m: ValueError: this method cannot fit"
    assert "raise ValueError" in outcome.traceback and "method_" in outcome.traceback


@pytest.mark.parametrize(("source", "call", "expected"), [
    ("import numpy as np\nclass A:\n    def fit(self, *a): self.x = np.ones((1 << 30,))\n"
     "    def propose(self, b): return []\n", {"memory_mib": 512}, "over the memory limit of 512 MiB"),
    ("import time\nclass A:\n    def fit(self, *a): time.sleep(60)\n    def propose(self, b): return []\n",
     {"timeout_s": 1.0}, "stopped after its time limit of 1 s"),
    ("class A:\n    def fit(self, *a): pass\n    def propose(self, b): return []\nclass B(A): pass\n", {},
     "defines 2 classes with fit and propose (A, B): name one with class:"),
    ("import os\nclass A:\n    def fit(self, *a): os._exit(7)\n    def propose(self, b): return []\n", {},
     "the method's process exited 7"),
])
def test_limits_and_faults_are_one_line_errors(tmp_path, source, call, expected):
    outcome = _run(tmp_path, source, **call)
    assert outcome.failed and expected in outcome.error


class Stopped(Exception):
    """What stops the test's process while its method runs (in Airflow: a task's time limit, an interrupt)."""


def test_a_method_does_not_outlive_the_process_that_runs_it(tmp_path):
    pid_file = tmp_path / "method.pid"
    source = (f"import os, time\nclass A:\n    def fit(self, *a):\n"
              f"        open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n        time.sleep(60)\n"
              "    def propose(self, b): return []\n")

    def stop_once_the_method_runs(signum, frame):
        if pid_file.exists() and pid_file.read_text():
            signal.setitimer(signal.ITIMER_REAL, 0)
            raise Stopped

    previous = signal.signal(signal.SIGALRM, stop_once_the_method_runs)
    signal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)
    try:
        with pytest.raises(Stopped):
            _run(tmp_path, source, timeout_s=120.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left computing for nobody
        os.kill(int(pid_file.read_text()), 0)


@pytest.mark.parametrize(("answer", "expected"), [
    ("[0, 1, 40]", "propose returned row 40, outside 0..39"),
    ("[3, 3]", "propose returned row 3 twice"),
    ("['a']", "propose must return row indices"),
])
def test_an_answer_that_is_not_an_order_is_refused(tmp_path, answer, expected):
    outcome = _run(tmp_path, f"class A:\n    def fit(self, *a): pass\n    def propose(self, b): return {answer}\n")
    assert not outcome.failed
    assert runner.order_of(outcome, 40) is None and expected in outcome.error


def test_a_short_order_is_completed_in_index_order(tmp_path):
    outcome = _run(tmp_path, "class A:\n    def fit(self, *a): pass\n    def propose(self, b): return [5, 2]\n")
    assert runner.order_of(outcome, 40).tolist()[:4] == [5, 2, 0, 1]


def test_a_class_is_chosen_by_name_and_parameters_reach_the_method(tmp_path):
    source = ("import os, json\nclass A:\n    def fit(self, *a): self.stopped_at = json.loads(os.environ['DATAPERF_PARAM_K'])"
              "\n    def propose(self, b): return list(range(b))\nclass B(A): pass\n")
    outcome = _run(tmp_path, source, class_name="B", parameters={"k": 7})
    assert not outcome.failed and outcome.class_name == "B" and outcome.stopped_at == 7



def test_a_text_parameter_that_looks_like_a_number_reaches_the_method_as_text(tmp_path):
    source = ("from method_parameters import read_parameter\nclass A:\n"
              "    def fit(self, *a): self.stopped_at = [read_parameter('max_features', 'sqrt'), read_parameter('k', 1)]"
              "\n    def propose(self, b): return list(range(b))\n")
    outcome = _run(tmp_path, source, parameters={"max_features": "0.5", "k": 3})
    assert not outcome.failed, outcome.traceback
    assert outcome.stopped_at == ["0.5", 3]

# ---- its own environment ------------------------------------------------------------------------------

def test_a_method_with_requirements_gets_its_own_environment_once(tmp_path):
    """A small real package from PyPI, absent from the appliance's environment, in the method's own."""
    with pytest.raises(ImportError):
        import cowsay  # noqa: F401
    (tmp_path / "requirements.txt").write_text("cowsay==6.1\n")
    outcomes = [_run(tmp_path, COWSAY_METHOD, requirements=tmp_path / "requirements.txt") for _ in range(2)]
    assert [o.error for o in outcomes] == [None, None]
    key = environments.environment_key("cowsay==6.1\n")
    folder = tmp_path / "data" / environments.ENVIRONMENTS_FOLDER / key
    assert all(o.stopped_at.startswith(str(folder)) for o in outcomes)
    log = (tmp_path / "data" / environments.ENVIRONMENTS_FOLDER / f"{key}.log").read_text()
    assert log.count("pip install") == 1  # built once, reused the second time


def test_requirements_that_cannot_be_installed_fail_the_method_only(tmp_path):
    (tmp_path / "requirements.txt").write_text("this-package-does-not-exist-dataperf==0.0.1\n")
    outcome = _run(tmp_path, PARTICIPANT_APPRAISER, requirements=tmp_path / "requirements.txt")
    assert outcome.failed and "building the environment failed" in outcome.error
    key = environments.environment_key("this-package-does-not-exist-dataperf==0.0.1\n")
    assert not (tmp_path / "data" / environments.ENVIRONMENTS_FOLDER / key).exists()  # nothing half-built


COWSAY_METHOD = ("import cowsay\nclass UsesCowsay:\n    def fit(self, *a): self.stopped_at = cowsay.__file__\n"
                 "    def propose(self, b): return list(range(b))\n")
COWSAY_SETUP = """\
track: debugging
dataset: digits
tasks:
  - {data_id: digit-3, train_size: 30, noise_level: 0.3, test_size: 30, val_size: 10}
methods:
  - {name: cow, file: methods/cow.py, requirements: methods/requirements.txt}
"""


def _pack(folder: Path, archive: Path, **members: bytes) -> None:
    import io
    import tarfile

    with tarfile.open(archive, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name.replace("__", "/"))
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


@pytest.mark.parametrize("members", [{"bin__python": b""}, {"ready": b"x", "..__outside": b"x"}],
                         ids=["no ready mark", "a member outside"])
def test_a_kept_environment_that_is_not_whole_or_leaves_its_folder_is_refused_and_leaves_nothing(tmp_path, members):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("cowsay==6.1\n")
    with pytest.raises(environments.EnvironmentBuildError, match="kept environment"):
        environments.restore_environment(requirements, tmp_path / "data",
                                         lambda key, archive: _pack(tmp_path, archive, **members) or True)
    root = tmp_path / "data" / environments.ENVIRONMENTS_FOLDER
    assert sorted(path.name for path in root.iterdir() if not path.name.endswith(".lock")) == []
    assert not (tmp_path / "data" / "outside").exists() and not (root / "outside").exists()


def test_a_methods_environment_is_kept_in_the_bucket_and_a_new_instance_restores_it(tmp_path, aws_env):
    """Through the pipeline's stages on a moto S3 server: the first instance builds the environment and keeps
    it packed in the bucket; a second, with an empty data root on the same bucket, unpacks it, builds nothing,
    and the method runs in it."""
    import boto3

    from dataperf_appliance.stages import pipeline
    from dataperf_appliance.engine.settings import Settings

    bucket = f"envs-{os.getpid()}-{abs(hash(str(tmp_path))) % 10**8}"
    s3 = boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    s3.create_bucket(Bucket=bucket)
    files = {"methods/cow.py": COWSAY_METHOD.encode(), "methods/requirements.txt": b"cowsay==6.1\n"}
    key = environments.environment_key("cowsay==6.1\n")
    stopped_at = {}
    for instance in ("first", "second"):
        settings = Settings(data_dir=tmp_path / instance, s3_bucket=bucket, s3_prefix="appliance/")
        run_id = pipeline.create_run(COWSAY_SETUP, instance, files=files, settings=settings)
        pipeline.validate_run(run_id, settings=settings)
        for unit in pipeline.prepare_run(run_id, settings=settings):
            pipeline.evaluate_run_task(run_id, unit, settings=settings)
        pipeline.report_run(run_id, settings=settings)
        pipeline.publish_run(run_id, settings=settings)
        results = json.loads((settings.runs_dir / run_id / "results.json").read_text())
        entry = results["tasks"]["digit-3"]["strategies"]["cow"]
        assert entry["fraction_fixes"] is not None, entry
        stopped_at[instance] = entry["method"]["stopped_at"]
        kept = s3.list_objects_v2(Bucket=bucket, Prefix=f"appliance/{environments.ENVIRONMENTS_FOLDER}/")
        assert [o["Key"] for o in kept.get("Contents", [])] == [
            f"appliance/{environments.ENVIRONMENTS_FOLDER}/{key}{environments.ARCHIVE_SUFFIX}"]
    second = tmp_path / "second" / environments.ENVIRONMENTS_FOLDER
    assert (second / key / environments.READY_MARK).is_file()
    assert not (second / f"{key}.log").exists()  # unpacked, not built
    assert (tmp_path / "first" / environments.ENVIRONMENTS_FOLDER / f"{key}.log").is_file()
    assert stopped_at["second"].startswith(str(second / key))  # the restored copy ran the method
    assert stopped_at["first"].startswith(str(tmp_path / "first"))


# ---- the task file --------------------------------------------------------------------------------

SETUP = """\
track: debugging
dataset: digits
repeats: 3
tasks:
  - {data_id: digit-3, train_size: 50, noise_level: 0.3, test_size: 50, val_size: 20}
  - {data_id: digit-8, train_size: 50, noise_level: 0.3, test_size: 50, val_size: 20}
baselines: [{name: random}]
methods:
  - name: participant
    file: methods/appraiser.py
  - name: nearest
    file: methods/nearest.py
  - name: broken
    file: methods/broken.py
"""


def _write_methods(folder: Path) -> None:
    (folder / "methods").mkdir(parents=True, exist_ok=True)
    (folder / "methods" / "appraiser.py").write_text(PARTICIPANT_APPRAISER)
    (folder / "methods" / "nearest.py").write_text(NEAREST_LABEL)
    (folder / "methods" / "broken.py").write_text(FAILING)


def test_a_missing_method_file_is_named_with_its_line(tmp_path):
    (tmp_path / "task_setup.yml").write_text(SETUP)
    with pytest.raises(ConfigError) as error:
        load_task_setup(tmp_path / "task_setup.yml")
    text = str(error.value)
    assert "task_setup.yml:10:" in text and "methods[0].file: no file methods/appraiser.py" in text


def test_method_names_must_differ_from_the_baselines(tmp_path):
    _write_methods(tmp_path)
    (tmp_path / "task_setup.yml").write_text(SETUP.replace("name: nearest", "name: random"))
    with pytest.raises(ConfigError, match=r"methods\[1\]\.name: 'random' is also a baseline"):
        load_task_setup(tmp_path / "task_setup.yml")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(cwd / "data")}
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def methods_run(tmp_path_factory) -> tuple[Path, dict, subprocess.CompletedProcess]:
    work = tmp_path_factory.mktemp("methods")
    _write_methods(work)
    (work / "task_setup.yml").write_text(SETUP)
    done = cli("run", "task_setup.yml", "--out", "runs/r", "--quiet", cwd=work)
    assert done.returncode == 0, done.stderr
    return work / "runs" / "r", json.loads((work / "runs" / "r" / "results.json").read_text()), done


def test_a_participants_appraiser_gets_intervals_and_a_paired_test_over_repeats(methods_run):
    run, results, _ = methods_run
    assert results["repeats"] == 3
    for name in ("participant", "nearest"):
        overall = results["overall"][name]
        summary = overall["over_repeats"]["fraction_fixes"]
        assert summary["n"] == 3 and summary["ci_low"] <= summary["mean"] <= summary["ci_high"]
        assert overall["vs_random"]["fraction_fixes"]["n"] == 3
        assert overall["vs_random"]["fraction_fixes"]["p_value"] is not None
        entry = results["tasks"]["digit-3"]["strategies"][name]
        assert entry["kind"] == runner.METHOD_KIND and entry["method"]["cpu_seconds"] >= 0
        assert (run / "submissions" / f"digit-3_{name}.txt").is_file()  # the official layout
        assert (run / "submissions" / f"time_digit-3_{name}.txt").is_file()
    # The nearest validation label finds mislabels better than chance.
    assert results["overall"]["nearest"]["over_repeats"]["auprc"]["mean"] > \
        results["overall"]["random"]["over_repeats"]["auprc"]["mean"]


def test_a_failing_method_leaves_the_other_results_intact(methods_run):
    run, results, done = methods_run
    broken = results["tasks"]["digit-3"]["strategies"]["broken"]
    assert broken["method"]["error"] == "broken: ValueError: this method cannot fit"
    assert "raise ValueError" in broken["method"]["traceback"] and broken["fraction_fixes"] is None
    assert not (run / "submissions" / "digit-3_broken.txt").exists()
    assert results["overall"]["random"]["over_repeats"]["fraction_fixes"]["n"] == 3
    assert "broken: ValueError: this method cannot fit" in done.stdout
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["state"] == "success"


def test_the_run_keeps_the_methods_code(methods_run):
    run, _, _ = methods_run
    assert (run / "methods" / "appraiser.py").read_text() == PARTICIPANT_APPRAISER
    inputs = json.loads((run / "manifest.json").read_text())["inputs"]
    assert any(path.endswith("methods/appraiser.py") for path in json.dumps(inputs).split('"'))


def test_a_selection_method_chooses_a_training_set_with_bought_labels(tmp_path):
    rendered = cli("render", "--set", "track=selection", "--set", "repeats=2", "--set", "strategies=[random]",
                   "--set", "tasks=[digit-3]", cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    (tmp_path / "methods").mkdir()
    (tmp_path / "methods" / "closest.py").write_text(SELECTOR)
    text = "".join("methods: [{name: closest, file: methods/closest.py}]\n" if line.startswith("methods:") else line
                   for line in rendered.stdout.splitlines(keepends=True))
    (tmp_path / "task_setup.yaml").write_text(text)
    done = cli("run", "task_setup.yaml", "--out", "runs/s", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "runs" / "s" / "results.json").read_text())
    entry = results["tasks"]["digit-3"]["strategies"]["closest"]
    assert entry["kind"] == runner.METHOD_KIND and entry["labels_bought"] == entry["train_size"] == 100
    assert entry["wrong_labels"] == 0
    assert results["overall"]["closest"]["vs_random"]["f1"]["n"] == 2
    assert (tmp_path / "runs" / "s" / "submissions" / "digit-3_closest.csv").is_file()


# ---- units of work: the DAG's stages, one process each ---------------------------------------------------

def test_each_method_as_code_is_a_unit_of_its_own_and_the_report_merges_them(methods_run, tmp_path):
    """The DAG maps `evaluate` over (task, method) units; their merge gives the one-call run's numbers."""
    from dataperf_appliance.stages import pipeline
    from dataperf_appliance.engine.settings import Settings

    _, one_call, _ = methods_run
    settings = Settings(data_dir=tmp_path / "data", s3_bucket=None, s3_prefix="")
    files = {"methods/appraiser.py": PARTICIPANT_APPRAISER.encode(), "methods/nearest.py": NEAREST_LABEL.encode(),
             "methods/broken.py": FAILING.encode()}
    run_id = pipeline.create_run(SETUP, "units", files=files, settings=settings)
    pipeline.validate_run(run_id, settings=settings)
    units = pipeline.prepare_run(run_id, settings=settings)
    assert units == [f"{task}{suffix}" for task in ("digit-3", "digit-8")
                     for suffix in ("", "/participant", "/nearest", "/broken")]
    for unit in reversed(units):  # in any order, as workers finish them
        summary = pipeline.evaluate_run_task(run_id, unit, settings=settings)
        assert summary["unit"] == unit
    pipeline.report_run(run_id, settings=settings)
    pipeline.publish_run(run_id, settings=settings)
    run = settings.runs_dir / run_id
    assert not (run / pipeline.UNITS_FOLDER).exists()
    results = json.loads((run / "results.json").read_text())
    for task in ("digit-3", "digit-8"):  # merged in the setup's order, as one process lists them
        assert list(results["tasks"][task]["strategies"]) == list(one_call["tasks"][task]["strategies"])
    for name in ("random", "participant", "nearest"):
        merged, whole = results["overall"][name], one_call["overall"][name]
        assert merged["over_repeats"]["fraction_fixes"] == whole["over_repeats"]["fraction_fixes"]
        if name != "random":
            assert merged["vs_random"]["fraction_fixes"] == whole["vs_random"]["fraction_fixes"]
    assert (run / "submissions" / "digit-8_nearest.txt").is_file()
    assert len(json.loads((run / "manifest.json").read_text())["stages"]["evaluate"]["parts"]) == len(units)
