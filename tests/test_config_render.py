"""Rendering task_setup.yml: defaults, --set overrides, the template, YAML-safe values."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from unittest import mock

import pytest
import yaml as pyyaml  # what the DataPerf reference reads task_setup.yml with (YAML 1.1)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataperf_appliance.config import (
    ConfigError,
    catalog,
    load_yaml,
    template_parameters,
    templates_dir,
    yaml_value,
)
from dataperf_appliance.tracks import (
    TRACKS,
    apply_overrides,
    default_params,
    parse_task_setup,
    render_and_parse,
    render_task_setup,
)
from dataperf_appliance.engine.models import MODEL_NAMES
from dataperf_appliance.engine.settings import MAX_RUN_FITS_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]
INJECTION = 'x": \n- evil: 1\n  ": "'


def test_the_defaults():
    assert default_params("debugging") == {
        "track": "debugging", "dataset": "digits", "model": "dataperf_reference", "seed": 0, "repeats": 6,
        "eval_points": None, "dim": None, "tasks": ["digit-3", "digit-8", "digit-9"],
        "train_size": 200, "val_size": 40, "test_size": 100, "noise_level": 0.3,
        "strategies": ["random", "knn_shapley", "confident_learning", "loss"], "submissions": [], "methods": [],
        "method_params": catalog.library_method_defaults(),
    }
    assert default_params()["method_params"]["data_oob"] == {"n_estimators": 800, "max_features": "sqrt",
                                                             "n_jobs": 1}
    assert default_params() == default_params("debugging")
    assert default_params() is not default_params()
    with pytest.raises(ValueError, match="unknown track 'vision'"):
        default_params("vision")


def test_the_template_uses_exactly_the_default_parameters():
    assert template_parameters(TRACKS["debugging"].template) == set(default_params("debugging"))
    assert templates_dir() == REPO_ROOT / "templates"


def test_the_default_render_validates_and_round_trips():
    text, setup = render_and_parse(default_params())
    assert text == render_task_setup(default_params())
    assert text.startswith("# DataPerf debugging benchmark: rendered by the DataPerf Appliance.\n")
    assert text.endswith("\n") and "\n\n" not in text
    assert parse_task_setup(text) == setup
    assert [t.data_id for t in setup.tasks] == ["digit-3", "digit-8", "digit-9"]
    assert {(t.train_size, t.val_size, t.test_size, t.noise_level) for t in setup.tasks} == {(200, 40, 100, 0.3)}
    assert [b.name for b in setup.baselines] == ["random", "knn_shapley", "confident_learning", "loss"]
    assert (setup.model, setup.seed, setup.eval_points, setup.dim, setup.submissions) == (
        "dataperf_reference", 0, None, None, ())


def test_the_rendered_file_has_every_key_of_the_dataperf_reference():
    data = pyyaml.safe_load(render_task_setup(default_params()))
    assert data["paths"] == {"embedding_folder": "embeddings/", "groundtruth_folder": "data/",
                             "submission_folder": "submissions/", "results_folder": "results/"}
    for task in data["tasks"]:
        assert list(task) == ["data_id", "train_size", "noise_level", "test_size", "val_size"]
    assert data["baselines"] == [{"name": name} for name in default_params()["strategies"]]


def test_pyyaml_and_ruamel_read_the_rendered_file_alike():
    text = render_task_setup(apply_overrides(default_params(), ["noise_level=0.00001", "eval_points=7",
                                                                "submissions=[yes, on, 'null', n]"]))
    assert pyyaml.safe_load(text) == load_yaml(text).data == parse_task_setup(text).to_yaml_dict()
    assert "noise_level: 1.0e-05" in text


def test_a_missing_parameter_is_named():
    params = default_params()
    del params["noise_level"], params["seed"]
    with pytest.raises(ValueError, match="missing template parameter.*: noise_level, seed"):
        render_task_setup(params)


def test_an_unknown_parameter_is_named():
    with pytest.raises(ValueError, match="unknown template parameter.*: trian_size"):
        render_task_setup({**default_params(), "trian_size": 10})


def test_strict_undefined_names_what_the_template_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    template = (REPO_ROOT / "templates" / "debugging_task_setup.yml.j2").read_text()
    (tmp_path / "debugging_task_setup.yml.j2").write_text(template.replace("{{ seed }}", "{{ seed.value }}"))
    monkeypatch.setenv("APPLIANCE_TEMPLATES_DIR", str(tmp_path))
    assert templates_dir() == tmp_path
    with pytest.raises(ValueError, match="'int object' has no attribute 'value'"):
        render_task_setup(default_params())


def test_a_list_parameter_must_be_a_list():
    with pytest.raises(ValueError, match="'tasks' must be a list"):
        render_task_setup({**default_params(), "tasks": "digit-0"})


def test_render_never_returns_an_invalid_file():
    with pytest.raises(ConfigError) as caught:
        render_task_setup({**default_params(), "noise_level": 2, "model": "xgboost"})
    assert [issue.field for issue in caught.value.issues] == [
        "model", "tasks[0].noise_level", "tasks[1].noise_level", "tasks[2].noise_level"]
    with pytest.raises(ConfigError, match="must not be empty"):
        render_task_setup({**default_params(), "tasks": []})
    with pytest.raises(ConfigError, match="nothing to evaluate"):
        render_task_setup({**default_params(), "strategies": []})


def test_render_checks_the_dataset(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"tasks\[0\].train_size: task digit-3 has"):
        render_task_setup({**default_params(), "train_size": 1000})
    params = {**default_params(), "dataset": "official"}
    assert render_task_setup(params)  # no data root: an official folder is not looked for
    with pytest.raises(ConfigError, match="'official' not found"):
        render_task_setup(params, data_root=tmp_path)


@pytest.mark.parametrize("key", ["dataset", "model"])
def test_a_value_cannot_inject_yaml_structure(key: str):
    with pytest.raises(ConfigError) as caught:
        render_task_setup({**default_params(), key: INJECTION})
    [issue] = caught.value.issues
    assert issue.field == key  # the whole text stayed one value of its key
    assert repr(INJECTION)[1:-1][:40] in issue.message


@pytest.mark.parametrize("key", ["tasks", "strategies", "submissions"])
def test_a_list_item_cannot_inject_yaml_structure(key: str):
    with pytest.raises(ConfigError) as caught:
        render_task_setup({**default_params(), key: ["random", INJECTION]})
    assert {issue.field.split(".")[0] for issue in caught.value.issues} <= {f"{key}[1]", "tasks[1]", "baselines[1]"}
    assert all("evil" not in (issue.field or "") for issue in caught.value.issues)


@pytest.mark.parametrize("value", [
    INJECTION, "# comment", "a: b", "- x", "[1, 2]", "{a: 1}", "&anchor", "*alias", "!!python/object:os.system",
    "yes", "No", "ON", "null", "~", "", " ", "1.5", "0x1F", "1e3", "2024-01-01", ".inf", "'", '"', "\\",
    "line\nbreak", "tab\there", "\u2028", "\x00", "\x85", "ünïcödé", "emoji 🙂", "%TAG", "@at", "`tick`", "key:",
])
def test_yaml_value_of_a_text_reads_back_as_that_text(value: str):
    written = yaml_value(value)
    assert "\n" not in written
    assert load_yaml(f"k: {written}\n").data == {"k": value}
    assert pyyaml.safe_load(f"k: {written}\n") == {"k": value}


def test_yaml_value_of_other_values():
    assert [yaml_value(v) for v in (None, True, False, 3, 0.3, 1e-5, 1e16, [1, "a b"], ("x",), {"k": None})] == [
        "null", "true", "false", "3", "0.3", "1.0e-05", "1.0e+16", '[1, "a b"]', "[x]", "{k: null}"]
    assert [yaml_value(v) for v in (math.inf, -math.inf)] == [".inf", "-.inf"]
    assert math.isnan(load_yaml(f"k: {yaml_value(math.nan)}").data["k"])
    with pytest.raises(TypeError, match="cannot write a value of type object"):
        yaml_value(object())
    with pytest.raises(TypeError, match="mapping key of type int"):
        yaml_value({1: 2})


# --- a library method's parameters ----------------------------------------------------------------

def test_a_library_baseline_is_written_with_its_parameters_and_the_appliances_without():
    params = {**default_params(), "strategies": ["random", "data_oob", "neighbor_shapley_datascope"]}
    text, setup = render_and_parse(params)
    assert ("baselines:\n  - name: random\n  - name: data_oob\n"
            "    params: {n_estimators: 800, max_features: sqrt, n_jobs: 1}\n"
            "  - name: neighbor_shapley_datascope\nsubmissions:") in text  # a method without parameters: none
    assert dict(setup.baselines[1].params) == catalog.library_method_parameters("data_oob")
    assert "params:" not in render_task_setup(default_params())  # the default run's file is as it was


def test_a_parameter_value_cannot_inject_yaml_structure():
    params = default_params()
    params["strategies"] = ["data_oob"]
    params["method_params"]["data_oob"]["max_features"] = INJECTION
    text, setup = render_and_parse(params)
    assert setup.baselines[0].params["max_features"] == INJECTION
    assert "evil" not in pyyaml.safe_load(text) and len(setup.baselines) == 1


def test_parameters_are_set_by_their_dotted_path_or_a_mapping():
    params = apply_overrides(default_params(), [
        "strategies=[random, data_oob, beta_shapley]", "method_params.data_oob.n_estimators=50",
        "method_params.data_oob.max_features=0.5", "method_params={beta_shapley: {alpha: 2.5}}"])
    assert params["method_params"]["data_oob"] == {"n_estimators": 50, "max_features": "0.5", "n_jobs": 1}
    assert params["method_params"]["beta_shapley"] == {**catalog.library_method_parameters("beta_shapley"),
                                                       "alpha": 2.5}  # the others keep their defaults
    text = render_task_setup(params)
    assert "params: {n_estimators: 50, max_features: \"0.5\", n_jobs: 1}" in text  # text stays text
    assert "params: {alpha: 2.5, beta: 1.0, max_permutations: 50," in text


@pytest.mark.parametrize(("assignment", "message"), [
    ("method_params.data_ob.n_jobs=2", "unknown key 'data_ob' in method_params; known keys: "
                                       "neighbor_shapley_datascope, mc_shapley"),
    ("method_params.data_oob.trees=2", "unknown key 'trees' in method_params.data_oob; known keys: n_estimators, "
                                       "max_features, n_jobs"),
    ("method_params={data_oob: {trees: 2}}", "unknown key 'trees' in method_params.data_oob"),
    ("method_params.data_oob.n_jobs.x=2", "method_params.data_oob.n_jobs is not a mapping"),
    ("method_params=5", "method_params is a mapping: give a mapping"),
    ("seed.x=1", "seed is not a mapping"),
])
def test_bad_parameter_overrides_are_refused_clearly(assignment: str, message: str):
    with pytest.raises(ValueError, match=re.escape(message)):
        apply_overrides(default_params(), [assignment])


def test_a_wrong_parameter_type_is_caught_at_render_at_its_field():
    params = apply_overrides(default_params(), ["strategies=[data_oob]", "method_params.data_oob.n_jobs=two"])
    with pytest.raises(ConfigError) as caught:
        render_task_setup(params)
    [issue] = caught.value.issues
    assert issue.field == "baselines[0].params.n_jobs" and "must be a whole number" in issue.message
    with pytest.raises(ValueError, match="parameter 'method_params' must be a mapping"):
        render_task_setup({**default_params(), "method_params": [1]})


# --- overrides --------------------------------------------------------------------------------

def test_overrides_of_the_brief():
    params = apply_overrides(default_params(), [
        "seed=3", "noise_level=0.2", "model=knn", "tasks=[digit-3, digit-4]", "strategies=[random, loss]",
        "train_size=150", "eval_points=50"])
    assert params == {**default_params(), "seed": 3, "noise_level": 0.2, "model": "knn",
                      "tasks": ["digit-3", "digit-4"], "strategies": ["random", "loss"], "train_size": 150,
                      "eval_points": 50}
    setup = parse_task_setup(render_task_setup(params))
    assert [t.train_size for t in setup.tasks] == [150, 150]  # train_size applies to every task
    assert setup.eval_points == 50 and setup.model == "knn"


def test_override_value_forms():
    params = apply_overrides(default_params(), [
        "tasks=digit-3,digit-4", "submissions=mine", "dataset=2023", "eval_points=", "dim=null", "seed = 7 "])
    assert params["tasks"] == ["digit-3", "digit-4"]
    assert params["submissions"] == ["mine"]
    assert params["dataset"] == "2023"  # a text parameter keeps what was typed
    assert params["eval_points"] is None and params["dim"] is None and params["seed"] == 7
    assert apply_overrides(default_params(), ["tasks=digit-5"])["tasks"] == ["digit-5"]
    assert apply_overrides(default_params(), ["submissions=[]"])["submissions"] == []


def test_a_synthetic_setup_from_overrides():
    params = apply_overrides(default_params(), ["dataset=synthetic", "tasks=[synthetic-0]", "train_size=20000",
                                                "val_size=1000", "test_size=2000", "dim=256", "eval_points=100"])
    setup = parse_task_setup(render_task_setup(params))
    assert (setup.dataset, setup.dim, setup.eval_points, setup.tasks[0].train_size) == ("synthetic", 256, 100, 20000)


def test_overrides_do_not_change_their_input():
    params = default_params()
    apply_overrides(params, ["tasks=[digit-9]", "seed=1"])
    assert params == default_params()


@pytest.mark.parametrize(("assignment", "message"), [
    ("sed=3", "unknown parameter 'sed' in 'sed=3'; known parameters: track, dataset"),
    ("baselines=[random]", "unknown parameter 'baselines'"),
    ("seed", "'seed' is not KEY=VALUE"),
    ("=3", "'=3' is not KEY=VALUE"),
    ("tasks=[digit-1", "'tasks=[digit-1': the value is not valid YAML"),
    ("seed=!!python/object:os.system 1", "is not allowed"),
    ("dataset=[a, b]", "expected a single value, got a list"),
    ("track=selection", "the track cannot be changed by an override"),
])
def test_bad_overrides_are_refused_clearly(assignment: str, message: str):
    with pytest.raises(ValueError, match=re.escape(message)):
        apply_overrides(default_params(), [assignment])


def test_overrides_with_bad_values_are_caught_at_render():
    params = apply_overrides(default_params(), ["seed=-1", "train_size='150'", "model=xgboost"])
    with pytest.raises(ConfigError) as caught:
        render_task_setup(params)
    assert {issue.field for issue in caught.value.issues} == {
        "seed", "model", "tasks[0].train_size", "tasks[1].train_size", "tasks[2].train_size"}


# --- properties -----------------------------------------------------------------------------

_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,15}", fullmatch=True)


@st.composite
def valid_params(draw) -> dict:
    train_size = draw(st.integers(1, 100_000))
    repeats = draw(st.integers(1, 100))
    strategies = draw(st.lists(st.sampled_from(catalog.DEBUGGING_BASELINES), unique=True, max_size=6))
    submissions = draw(st.lists(_names.filter(lambda n: n not in catalog.DEBUGGING_BASELINES), unique=True,
                                min_size=0 if strategies else 1, max_size=3))
    return {
        "track": "debugging",
        # Any folder name but the generated datasets: without a data root it is not looked for.
        "dataset": draw(_names.filter(lambda n: n not in ("digits", "synthetic"))),
        "model": draw(st.sampled_from(MODEL_NAMES)),
        "seed": draw(st.integers(0, 2**32 - repeats)),  # the last repeat's seed, seed + repeats - 1, is 32-bit
        "repeats": repeats,
        "eval_points": draw(st.none() | st.integers(2, max(2, train_size)).filter(lambda n: n <= train_size)),
        "dim": None,
        "tasks": draw(st.lists(_names, unique=True, min_size=1, max_size=5)),
        "train_size": train_size,
        "val_size": draw(st.integers(1, 1_000_000)),
        "test_size": draw(st.integers(1, 1_000_000)),
        "noise_level": draw(st.floats(0, 0.9, allow_nan=False)),
        "strategies": strategies,
        "submissions": submissions,
        "methods": draw(st.lists(_names.filter(lambda n: n not in catalog.DEBUGGING_BASELINES
                                                 and n not in submissions),
                                 unique=True, max_size=2).flatmap(lambda names: st.tuples(*(
                                     st.fixed_dictionaries({"name": st.just(name), "file": st.just(f"m/{name}.py")},
                                                           optional={"requirements": st.just("m/req.txt")})
                                     for name in names)).map(list))),
        "method_params": catalog.library_method_defaults(),
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_params())
def test_any_valid_params_render_to_a_file_that_parses_back_to_them(params: dict):
    # Valid as a file: the drawn sizes and repeats may need more fits than an appliance allows by default.
    with mock.patch.dict(os.environ, {MAX_RUN_FITS_ENV: str(10**12)}):
        text, setup = render_and_parse(params)
    assert (setup.dataset, setup.model, setup.seed, setup.repeats, setup.eval_points, setup.dim) == (
        params["dataset"], params["model"], params["seed"], params["repeats"], params["eval_points"], params["dim"])
    assert [t.data_id for t in setup.tasks] == params["tasks"]
    for task in setup.tasks:
        assert (task.train_size, task.val_size, task.test_size, task.noise_level) == (
            params["train_size"], params["val_size"], params["test_size"], params["noise_level"])
    assert [b.name for b in setup.baselines] == params["strategies"]
    assert [dict(b.params) for b in setup.baselines] == [params["method_params"].get(name, {})
                                                         for name in params["strategies"]]
    assert list(setup.submissions) == params["submissions"]
    assert [(m.name, m.file, m.requirements) for m in setup.methods] == [
        (m["name"], m["file"], m.get("requirements")) for m in params["methods"]]
    assert pyyaml.safe_load(text) == setup.to_yaml_dict()  # the reference's reader agrees


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40) | st.floats() | st.integers() | st.booleans() | st.none())
def test_yaml_value_always_reads_back_equal(value):
    written = yaml_value(value)
    assert "\n" not in written
    read = load_yaml(f"k: {written}\n").data["k"]
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(read)
    else:
        assert read == value and type(read) is type(value)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=30))
def test_any_text_in_any_parameter_either_renders_as_itself_or_is_refused_at_that_field(text: str):
    for key in ("dataset", "model"):
        try:
            setup = render_and_parse({**default_params(), key: text})[1]
        except ConfigError as error:
            assert {issue.field for issue in error.issues} <= {key, "tasks[0].data_id", "tasks[1].data_id",
                                                                "tasks[2].data_id"}
        else:
            assert getattr(setup, key) == text
