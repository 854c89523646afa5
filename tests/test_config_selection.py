"""The selection track's task_setup.yaml: the template, the schema, the dataset checks.

Its bad-file corpus (tests/bad_configs/selection/) is read by tests/test_config.py with the debugging one's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml as pyyaml  # what the DataPerf reference reads task_setup.yaml with (YAML 1.1)
from pydantic import ValidationError

from dataperf_appliance.config import ConfigError, load_yaml, template_parameters
from dataperf_appliance.tracks import (
    TRACKS,
    apply_overrides,
    default_params,
    parse_task_setup,
    render_and_parse,
    render_task_setup,
)
from dataperf_appliance.tracks.selection import SelectionSetup
from dataperf_appliance.engine.selection import data
from test_selection_benchmark import DIM, write_official_folder

# An official folder's setup as the reference writes it, with the pairs grouped under `tasks`.
OFFICIAL = f"""\
track: selection
dataset: tiny
dim: {DIM}
emb_file: embeddings/train_emb_{DIM}_dataperf.parquet
train_size: 16
tasks:
  A: ['train_sets/random_20.csv', 'test_sets/alpha_test_set_A_{DIM}.parquet']
  B: ['train_sets/random_20.csv', 'test_sets/alpha_test_set_B_{DIM}.parquet']
eval_tasks: ['A', 'B']
strategies: [random, centroid]
results_dir: 'results'
"""


def errors_of(text: str, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_task_setup(text, **kwargs)
    return caught.value


# --- the template and its defaults ------------------------------------------------------------------

def test_the_default_selection_config():
    assert template_parameters(TRACKS["selection"].template) == set(default_params("selection"))
    text, setup = render_and_parse(default_params("selection"))
    assert isinstance(setup, SelectionSetup)
    assert text.startswith("# DataPerf selection benchmark: rendered by the DataPerf Appliance.\n")
    # Enough repeats by default for an interval and a test of every method (issue 22).
    assert (setup.track, setup.dataset, setup.model, setup.seed, setup.repeats) == (
        "selection", "digits", "logistic_regression", 0, 10)
    assert setup.eval_tasks == ("digit-0", "digit-3", "even-odd")
    assert setup.strategies == ("random", "balanced_random", "uncertainty", "diversity")
    assert setup.tasks["digit-3"] == (data.random_train_file_name("digit-3"), data.test_file_name("digit-3", 128))
    assert setup.emb_file == data.pool_file_name(128) and setup.dim == 128


def test_the_rendered_file_keeps_the_reference_keys_and_reads_alike_in_pyyaml():
    text = render_task_setup(default_params("selection"))
    reference = pyyaml.safe_load(text)
    assert {"dim", "emb_file", "eval_tasks", "results_dir"} <= set(reference)
    assert all(isinstance(pair, list) and len(pair) == 2 for pair in reference["tasks"].values())
    assert reference == load_yaml(text).data == parse_task_setup(text).to_yaml_dict()


def test_overrides_make_an_official_folder_setup():
    params = apply_overrides(default_params("selection"), [
        "dataset=dataperf", "dim=256", "tasks=Cupcake,Hawk", "train_csv=train_sets/random_500.csv",
        "test_size=", "emb_file=embeddings/train_emb_{dim}_dataperf.parquet", "strategies=[random, centroid]"])
    setup = parse_task_setup(render_task_setup(params))
    assert setup.tasks["Hawk"] == ("train_sets/random_500.csv", "test_sets/alpha_test_set_Hawk_256.parquet")
    assert setup.emb_file == "embeddings/train_emb_256_dataperf.parquet" and setup.test_size is None
    setup = parse_task_setup(render_task_setup(apply_overrides(params, ["train_csv=null"])))
    assert setup.tasks["Cupcake"][0] is None  # no train csv of the dataset's own to score


@pytest.mark.parametrize(("track", "assignments", "expected"), [
    ("selection", ["train_size=[50, 100]", "model=knn,mlp", "repeats=3"],
     {"train_size": (50, 100), "model": ("knn", "mlp"), "repeats": 3}),
    ("selection", ["train_size=50,100"], {"train_size": (50, 100), "model": "logistic_regression"}),
    ("debugging", ["noise_level=0.1,0.3", "model=[knn]"], {"model": ("knn",)}),
])
def test_sweep_overrides(track, assignments, expected):
    setup = parse_task_setup(render_task_setup(apply_overrides(default_params(track), assignments)))
    assert {key: getattr(setup, key) for key in expected} == expected
    if track == "debugging":
        assert {task.noise_level for task in setup.tasks} == {(0.1, 0.3)}


# --- the schema -------------------------------------------------------------------------------------

def test_a_file_in_another_key_order_with_null_train_csv_is_fine():
    text = ("eval_tasks: [digit-3]\ntrack: selection\ndim: 128\ntrain_size: [20, 40]\ntest_size: 50\n"
            "emb_file: embeddings/train_emb_128_dataperf.parquet\n"
            "tasks: {digit-3: [null, test_sets/alpha_test_set_digit-3_128.parquet]}\nstrategies: [random]\n")
    setup = parse_task_setup(text)
    assert setup.train_size == (20, 40) and setup.tasks["digit-3"][0] is None
    assert SelectionSetup.model_validate(setup.to_yaml_dict()) == setup


def test_every_problem_is_reported_at_its_line():
    text = render_task_setup(default_params("selection"))
    text = text.replace("seed: 0", "seed: -3").replace("eval_tasks: [digit-0", "eval_tasks: [digit-9")
    error = errors_of(text)
    assert [(issue.line, issue.field) for issue in error.issues] == [(5, "seed")]  # the field errors come first
    error = errors_of(text.replace("seed: -3", "seed: 0"))
    assert [(issue.line, issue.field) for issue in error.issues] == [(15, "eval_tasks[0]")]


def test_the_model_checks_across_fields_when_built_directly():
    fields = dict(dim=128, emb_file=data.pool_file_name(128), train_size=10, test_size=50,
                  tasks={"digit-3": (None, data.test_file_name("digit-3", 128))}, eval_tasks=["digit-3"],
                  strategies=["random"])
    assert SelectionSetup(**fields).track == "selection"
    with pytest.raises(ValidationError, match=r"submissions\[0\]: 'random' is also a strategy"):
        SelectionSetup(**{**fields, "submissions": ["random"]})
    with pytest.raises(ValidationError, match="train_size"):
        SelectionSetup(**{**fields, "train_size": "10"})


# --- an official folder: checked against its files at validation ----------------------------------

def test_an_official_folder_with_its_files_passes(tmp_path: Path):
    write_official_folder(tmp_path / "datasets" / "tiny")
    assert parse_task_setup(OFFICIAL, data_root=tmp_path).eval_tasks == ("A", "B")
    assert parse_task_setup(OFFICIAL).dataset == "tiny"  # no data root: nothing to look at


def test_an_official_folder_is_checked_against_its_files(tmp_path: Path):
    folder = tmp_path / "datasets" / "tiny"
    write_official_folder(folder, with_labels=False)
    (folder / "test_sets" / f"alpha_test_set_B_{DIM}.parquet").unlink()
    text = OFFICIAL.replace("train_size: 16", "train_size: [16, 200]")
    error = errors_of(text, data_root=tmp_path)
    found = {(issue.field, issue.message.split(" (")[0]) for issue in error.issues}
    assert ("train_size[1]", f"200 is more than the 80 images of the pool embeddings/train_emb_{DIM}_dataperf.parquet"
            ) in found
    assert ("tasks.B[1]", f"dataset 'tiny' has no file test_sets/alpha_test_set_B_{DIM}.parquet") in found
    assert ("eval_tasks[0]", "dataset 'tiny' has no file labels/pool_labels_A.csv") in found
    # Strategies that buy no label need no pool labels.
    error = errors_of(OFFICIAL.replace("[random, centroid]", "[centroid]"), data_root=tmp_path)
    assert [issue.field for issue in error.issues] == ["tasks.B[1]"]


def test_a_dim_that_does_not_match_the_files_is_named_at_run_time(tmp_path: Path):
    from dataperf_appliance.engine.selection import selection_task

    write_official_folder(tmp_path / "datasets" / "tiny")
    setup = parse_task_setup(OFFICIAL.replace(f"dim: {DIM}", "dim: 8"), data_root=tmp_path)  # valid: dim is read late
    with pytest.raises(ValueError, match=rf"train_emb_{DIM}_dataperf\.parquet: embeddings must have 8 values"):
        selection_task.evaluate_tasks(setup, tmp_path, tmp_path / "run", tmp_path, n_jobs=1)
