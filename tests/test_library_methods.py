"""The libraries' methods: DataPerf's official baselines (datascope's neighbor_shapley and mc_shapley, the
influence function) and pyDVL's data valuation methods, each in the environment of its folder's requirements,
run through the CLI on a small task with repeats. The environments are built once per machine
(conftest.library_environments); the slow methods get few iterations here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dataperf_appliance.config import catalog

pytestmark = pytest.mark.slow

CLI = [str(Path(sys.executable).with_name("dataperf-appliance"))]
# Few iterations: the test is about running each method the DataPerf way, not about its estimate.
QUICK = {"mc_shapley": {"mc_iterations": 3}, "tmc_shapley": {"max_permutations": 10},
         "beta_shapley": {"max_permutations": 10}, "data_banzhaf": {"max_samples": 100},
         "data_oob": {"n_estimators": 50}}


@pytest.fixture(scope="module")
def library_run(tmp_path_factory, library_environments) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("library")
    baselines = "".join(f"  - {{name: {name}" + (f", params: {json.dumps(QUICK[name])}" if name in QUICK else "")
                        + "}\n" for name in ("random", "knn_shapley", "neighbor_shapley", *catalog.DEBUGGING_LIBRARY_METHODS))
    (work / "task_setup.yml").write_text(
        "track: debugging\ndataset: digits\nrepeats: 2\ntasks:\n"
        "  - {data_id: digit-3, train_size: 50, noise_level: 0.3, test_size: 50, val_size: 20}\n"
        f"baselines:\n{baselines}")
    done = subprocess.run([*CLI, "run", "task_setup.yml", "--out", "run", "--quiet", "--jobs", "2"], cwd=work,
                          env={**os.environ, "APPLIANCE_DATA_DIR": str(work / "data")}, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    return work / "run", json.loads((work / "run" / "results.json").read_text())


@pytest.mark.parametrize("name", list(catalog.DEBUGGING_LIBRARY_METHODS))
def test_each_library_method_runs_in_its_environment_over_the_repeats(library_run, name):
    run, results = library_run
    entry = results["tasks"]["digit-3"]["strategies"][name]
    assert "error" not in entry["method"], entry["method"].get("traceback")
    assert entry["kind"] == "baseline" and entry["method"]["seconds"] > 0
    assert entry["over_repeats"]["fraction_fixes"]["n"] == 2 and entry["over_repeats"]["auprc"]["n"] == 2
    assert entry["vs_random"]["fraction_fixes"]["n"] == 2
    assert (run / "submissions" / f"digit-3_{name}.txt").is_file()


def test_the_methods_with_a_stopping_rule_say_where_they_stopped(library_run):
    _, results = library_run
    strategies = results["tasks"]["digit-3"]["strategies"]
    assert strategies["mc_shapley"]["method"]["stopped_at"]["permutations"] == 3
    assert strategies["tmc_shapley"]["method"]["stopped_at"]["permutations"] <= 10


def test_pydvls_exact_knn_shapley_gives_the_appliances_order(library_run):
    run, _ = library_run
    ours = (run / "submissions" / "digit-3_knn_shapley.txt").read_text()
    assert (run / "submissions" / "digit-3_knn_shapley_pydvl.txt").read_text() == ours



def test_the_references_neighbor_shapley_ranks_as_datascopes(library_run):
    """The name DataPerf's files use, run in-process with K = 1, against datascope 0.0.8's own run: the same
    game, so the same ranking up to rows whose values datascope's float32 sums leave near-equal."""
    from scipy.stats import spearmanr

    run, _ = library_run
    orders = [np.loadtxt(run / "submissions" / f"digit-3_{name}.txt", dtype=np.int64)
              for name in ("neighbor_shapley", "neighbor_shapley_datascope")]
    positions = [np.argsort(order) for order in orders]
    correlation = spearmanr(*positions).statistic
    print(f"neighbor_shapley (K = 1, in-process) vs datascope's: Spearman {correlation:.4f}, "
          f"{int((orders[0] == orders[1]).sum())} of {len(orders[0])} positions equal")
    assert correlation > 0.99

def test_build_environments_builds_a_library_in_advance_where_the_runner_then_finds_it(tmp_path, library_environments,
                                                                                      monkeypatch):
    """What the image does (Dockerfile: build-environments --into /opt/method-envs): the runner then uses that
    environment and builds none under the data root."""
    from dataperf_appliance.engine.methods import environments, runner

    done = subprocess.run([*CLI, "build-environments", "--into", str(tmp_path / "prebuilt"), "pydvl_valuation"],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    requirements = runner.library_call("data_oob").requirements
    folder = tmp_path / "prebuilt" / environments.key_of(requirements)
    assert done.stdout.startswith(f"pydvl_valuation: {folder} (")
    monkeypatch.setenv(environments.PREBUILT_VARIABLE, str(tmp_path / "prebuilt"))
    assert environments.ensure_environment(requirements, tmp_path / "data") == environments.python_of(folder)
    assert not (tmp_path / "data").exists()
