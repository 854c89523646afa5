"""Loading and checking task_setup.yml: the bad-file corpus, positions, safety limits, the models."""

from __future__ import annotations

import json
import pickle
import re
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from ruamel.yaml import YAML

from dataperf_appliance.config import (
    MAX_FILE_BYTES,
    Baseline,
    ConfigError,
    ConfigIssue,
    DebuggingTask,
    Paths,
)
from dataperf_appliance.tracks import load_task_setup, parse_task_setup
from dataperf_appliance.tracks.debugging import DebuggingSetup
from dataperf_appliance.config import catalog, loader
from dataperf_appliance.config.loader import MAX_DEPTH, MAX_NODES, load_yaml, read_config_text
from dataperf_appliance.engine.debugging.debugging_strategies import STRATEGY_NAMES
from dataperf_appliance.engine.models import MODEL_NAMES

#: The bad-file corpus of each track: tests/bad_configs/<track>/NN_what_is_wrong.<suffix>.
BAD_CONFIGS = Path(__file__).parent / "bad_configs"
CORPUS_SUFFIX = {"debugging": "yml", "selection": "yaml"}  # the reference's own file names

GOOD = """\
# a comment
track: debugging
dataset: digits
model: logistic_regression
seed: 0
eval_points: null
dim: null
paths:
  embedding_folder: embeddings/
  groundtruth_folder: data/
  submission_folder: submissions/
  results_folder: results/
tasks:
  - data_id: digit-0
    train_size: 200
    noise_level: 0.3
    test_size: 100
    val_size: 40
  - data_id: digit-1
    train_size: 150
    noise_level: 0.1
    test_size: 100
    val_size: 40
baselines:
  - name: random
  - name: loss
submissions: [mine]
"""

# What the DataPerf reference reads: no track, dataset or model (only our baseline names differ).
REFERENCE_STYLE = """\
paths:
  embedding_folder: embeddings/
  groundtruth_folder: data/
  submission_folder: submissions/
  results_folder: results/
tasks:
  - data_id: digit-3
    train_size: 100
    noise_level: 0.3
    test_size: 50
    val_size: 20
baselines:
  - name: random
"""


def errors_of(text: str, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_task_setup(text, **kwargs)
    return caught.value


# --- the corpus of bad files --------------------------------------------------------------

def _corpus(track: str | None = None) -> list[Path]:
    tracks = [track] if track else list(CORPUS_SUFFIX)
    return [path for name in tracks for path in sorted((BAD_CONFIGS / name).glob(f"*.{CORPUS_SUFFIX[name]}"))]


@pytest.mark.parametrize("track", list(CORPUS_SUFFIX))
def test_the_corpus_has_at_least_25_files_each_with_an_expectation(track: str):
    files = _corpus(track)
    assert len(files) >= 25
    assert sorted(p.name for p in (BAD_CONFIGS / track).iterdir() if p.name != "README.md") == [p.name for p in files]
    for path in files:
        assert re.fullmatch(rf"\d\d_[a-z0-9_]+\.{CORPUS_SUFFIX[track]}", path.name), path.name
        assert path.read_bytes().startswith(b"# expect: "), path.name


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_bad_file_is_rejected_with_its_message_and_place(path: Path, tmp_path: Path):
    expected = path.read_bytes().split(b"\n", 1)[0].decode().removeprefix("# expect: ")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ConfigError) as caught:
        load_task_setup(path, data_root=tmp_path)
    message = str(caught.value)
    assert expected in message
    assert re.search(rf"{re.escape(path.name)}:\d+:", message) or any(i.field for i in caught.value.issues), message
    assert sorted(tmp_path.rglob("*")) == before  # a rejected file changes nothing on disk


# --- good files ---------------------------------------------------------------------------

def test_a_good_file_gives_the_setup_it_describes():
    setup = parse_task_setup(GOOD)
    assert isinstance(setup, DebuggingSetup)
    assert (setup.track, setup.dataset, setup.model, setup.seed) == ("debugging", "digits", "logistic_regression", 0)
    assert setup.eval_points is None and setup.dim is None
    assert setup.paths == Paths()
    assert setup.tasks[1] == DebuggingTask(data_id="digit-1", train_size=150, noise_level=0.1, test_size=100,
                                           val_size=40)
    assert setup.baselines == (Baseline(name="random"), Baseline(name="loss"))
    assert setup.submissions == ("mine",)
    assert type(setup.seed) is int and type(setup.tasks[0].noise_level) is float


def test_a_reference_style_file_without_track_is_the_debugging_track():
    setup = parse_task_setup(REFERENCE_STYLE)
    # Without a model, the official DataPerf classifier: a reference file gives DataPerf's numbers.
    assert setup.track == "debugging" and setup.dataset == "digits" and setup.model == "dataperf_reference"


def test_to_yaml_dict_round_trips():
    setup = parse_task_setup(GOOD)
    data = setup.to_yaml_dict()
    assert list(data) == ["track", "dataset", "model", "seed", "repeats", "eval_points", "dim", "paths", "tasks", "baselines",
                          "submissions", "methods"]
    assert list(data["tasks"][0]) == ["data_id", "train_size", "noise_level", "test_size", "val_size"]
    assert DebuggingSetup.model_validate(data) == setup


def test_the_setup_is_frozen():
    setup = parse_task_setup(GOOD)
    with pytest.raises(ValidationError):
        setup.seed = 3
    with pytest.raises(ValidationError):
        setup.tasks[0].train_size = 3


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_model_name_is_accepted(model: str):
    assert parse_task_setup(GOOD.replace("model: logistic_regression", f"model: {model}")).model == model


def test_every_strategy_is_accepted_as_a_baseline():
    names = "\n".join(f"  - name: {name}" for name in STRATEGY_NAMES)
    text = GOOD.replace("  - name: random\n  - name: loss", names)
    assert [b.name for b in parse_task_setup(text).baselines] == list(STRATEGY_NAMES)


def test_standard_tags_merge_keys_and_a_few_aliases_are_fine():
    text = GOOD.replace("  - data_id: digit-1\n    train_size: 150\n    noise_level: 0.1\n"
                        "    test_size: 100\n    val_size: 40\n",
                        "  - <<: *first\n    data_id: !!str digit-1\n")
    text = text.replace("  - data_id: digit-0", "  - &first\n    data_id: digit-0")
    setup = parse_task_setup(text)
    assert setup.tasks[1] == setup.tasks[0].model_copy(update={"data_id": "digit-1"})


def test_folders_may_omit_the_trailing_slash_and_have_several_parts():
    setup = parse_task_setup(GOOD.replace("embedding_folder: embeddings/", "embedding_folder: emb/v2.1_x")
                             .replace("results_folder: results/", "results_folder: out/results/"))
    assert setup.paths.embedding_folder == "emb/v2.1_x" and setup.paths.results_folder == "out/results/"


def test_a_synthetic_dataset_takes_dim():
    text = (GOOD.replace("dataset: digits", "dataset: synthetic").replace("dim: null", "dim: 64")
            .replace("digit-0", "synthetic-0").replace("digit-1", "synthetic-1"))
    setup = parse_task_setup(text)
    assert setup.dim == 64 and setup.dataset == "synthetic"


def test_an_official_folder_is_checked_only_when_a_data_root_is_given(tmp_path: Path):
    text = GOOD.replace("dataset: digits", "dataset: my-folder")
    assert parse_task_setup(text).dataset == "my-folder"  # no data root: nothing to look at
    error = errors_of(text, data_root=tmp_path)
    assert "'my-folder' not found" in str(error)
    assert {issue.field for issue in error.issues} == {"tasks[0].data_id", "tasks[1].data_id"}


def test_an_official_folder_with_its_files_passes(tmp_path: Path):
    from dataperf_appliance.engine.datasets.dataperf_files import task_file_paths

    folder = tmp_path / "datasets" / "official"
    for path in task_file_paths(folder, "embeddings/", "data/", "01g317", 300, 0.3, 100, 500).values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    text = ("dataset: official\ntasks:\n  - {data_id: 01g317, train_size: 300, noise_level: 0.3, test_size: 500, "
            "val_size: 100}\nbaselines: [{name: random}]\n")
    assert parse_task_setup(text, data_root=tmp_path).tasks[0].data_id == "01g317"
    error = errors_of(text.replace("test_size: 500", "test_size: 400"), data_root=tmp_path)
    assert error.issues[0].field == "tasks[0].test_size" and "has no file" in error.issues[0].message


# --- positions and collecting every problem -------------------------------------------------

def test_each_problem_is_reported_at_the_line_and_column_of_its_key():
    text = GOOD.replace("    train_size: 150", "    train_size: 0").replace("seed: 0", "seed: -1")
    error = errors_of(text)
    assert [str(issue) for issue in error.issues] == [
        "task_setup.yml:5:1: seed: must be greater than or equal to 0",
        "task_setup.yml:20:5: tasks[1].train_size: must be greater than 0",
    ]
    assert error.issues[1] == ConfigIssue("task_setup.yml", 20, 5, "tasks[1].train_size", "must be greater than 0")


def test_all_problems_are_collected_in_file_order():
    text = (GOOD.replace("model: logistic_regression", "model: xgboost")
            .replace("    noise_level: 0.1", "    noise_level: 1.5")
            .replace("  - name: loss", "  - name: bruteforce_shapley")
            .replace("submissions: [mine]", "submissions: [mine, ../x]\nextra: 1"))
    error = errors_of(text)
    assert [issue.field for issue in error.issues] == [
        "model", "tasks[1].noise_level", "baselines[1].name", "submissions[1]", "extra"]
    assert [issue.line for issue in error.issues] == sorted(issue.line for issue in error.issues)
    assert str(error).count("\n") == len(error.issues) - 1


def test_flow_style_items_have_their_own_columns():
    error = errors_of("tasks: [{data_id: a, train_size: 1, noise_level: 0, test_size: 1, val_size: 1}]\n"
                      "baselines: [{name: random}, {name: nope}]\n")
    assert str(error.issues[-1]).startswith("task_setup.yml:2:30: baselines[1].name: unknown baseline 'nope'")


def test_a_missing_key_is_reported_at_its_mapping():
    error = errors_of("tasks:\n  - data_id: digit-0\n    train_size: 10\nbaselines: [{name: random}]\n")
    assert [str(i) for i in error.issues] == [
        "task_setup.yml:2:5: tasks[0].noise_level: required key is missing",
        "task_setup.yml:2:5: tasks[0].test_size: required key is missing",
        "task_setup.yml:2:5: tasks[0].val_size: required key is missing",
    ]


def test_an_unknown_key_suggests_the_close_one():
    error = errors_of(GOOD.replace("    val_size: 40\n  - data_id: digit-1", "    vals_size: 40\n  - data_id: digit-1"))
    assert "tasks[0].vals_size: unknown key 'vals_size'" in str(error)
    assert "(did you mean 'val_size'?)" in str(error)


def test_dataset_problems_come_with_the_line_of_the_task_field():
    error = errors_of(GOOD.replace("    train_size: 150", "    train_size: 900"))
    [issue] = error.issues
    assert (issue.line, issue.column, issue.field) == (20, 5, "tasks[1].train_size")
    assert "balanced splits" in issue.message


# --- the issue and error types ----------------------------------------------------------------

@pytest.mark.parametrize(("issue", "text"), [
    (ConfigIssue("task_setup.yml", 12, 5, "tasks[0].train_size", "must be greater than 0"),
     "task_setup.yml:12:5: tasks[0].train_size: must be greater than 0"),
    (ConfigIssue("f.yml", 3, None, None, "bad"), "f.yml:3: bad"),
    (ConfigIssue("f.yml", None, None, "tasks", "required key is missing"), "f.yml: tasks: required key is missing"),
    (ConfigIssue("f.yml", None, None, None, "too large"), "f.yml: too large"),
])
def test_an_issue_reads_like_a_compiler_message(issue: ConfigIssue, text: str):
    assert str(issue) == text


def test_a_config_error_is_a_value_error_that_pickles():
    error = errors_of("seed: x\ntasks: []\n")
    assert isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))
    assert again.issues == error.issues and str(again) == str(error)


# --- safety limits ----------------------------------------------------------------------------

def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch):
    path = tmp_path / "task_setup.yml"
    with path.open("wb") as stream:
        stream.truncate(2**31)  # a sparse 2 GiB file: reading it would take long and use memory
    opened = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *args, **kwargs: opened.append(self) or real_open(self, *args,
                                                                                                         **kwargs))
    with pytest.raises(ConfigError, match="larger than 1,048,576 bytes"):
        load_task_setup(path)
    assert path not in opened  # refused on its size alone: not a byte read


def test_a_file_just_over_one_megabyte_is_refused(tmp_path: Path):
    path = tmp_path / "task_setup.yml"
    path.write_text(GOOD + "#" * (MAX_FILE_BYTES - len(GOOD) + 1))
    with pytest.raises(ConfigError) as caught:
        load_task_setup(path)
    assert str(caught.value) == f"{path}: the file is larger than 1,048,576 bytes; a task setup is a few kilobytes"
    path.write_text(GOOD + "#" * (MAX_FILE_BYTES - len(GOOD)))  # exactly at the limit: read
    assert read_config_text(path).startswith(GOOD)


def test_loading_changes_nothing_on_disk(tmp_path: Path):
    good, bad = tmp_path / "good.yml", tmp_path / "bad.yml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("seed: 0", "seed: -5"))
    stats = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (good, bad)}
    load_task_setup(good, data_root=tmp_path)
    with pytest.raises(ConfigError):
        load_task_setup(bad, data_root=tmp_path)
    assert sorted(tmp_path.iterdir()) == [bad, good]
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (good, bad)} == stats


def test_a_missing_file_is_an_os_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        load_task_setup(tmp_path / "nope.yml")


def _billion_laughs(levels: int) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


class _CountingYAML(YAML):
    """ruamel's YAML, counting the characters its parser reads and the events it gives: the work done,
    which a busy machine cannot change (a time could)."""

    characters_read = 0
    events = 0

    def parse(self, stream):
        read = stream.read

        def counted_read(size=-1):
            chunk = read(size)
            _CountingYAML.characters_read += len(chunk)
            return chunk

        stream.read = counted_read
        for event in super().parse(stream):
            _CountingYAML.events += 1
            yield event


@pytest.fixture
def counting_yaml(monkeypatch):
    monkeypatch.setattr(loader, "YAML", _CountingYAML)
    _CountingYAML.characters_read = _CountingYAML.events = 0
    return _CountingYAML


def test_an_alias_bomb_fails_fast_and_small(counting_yaml):
    text = _billion_laughs(levels=30)  # 10**30 values if expanded
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="alias bomb"):
            parse_task_setup(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Refused within the first 5 of its 30 lines (13 events a line), no alias expanded, nothing built.
    assert counting_yaml.events < 13 * 5
    assert peak < 20 * 2**20


def test_a_small_expansion_of_aliases_is_allowed():
    text = _billion_laughs(levels=3) + GOOD  # 1 + 10 + 100 values of a2, about 1,200 in all
    error = errors_of(text)
    assert [issue.field for issue in error.issues] == ["a0", "a1", "a2"]  # unknown keys, nothing else


@pytest.mark.parametrize("text", [
    "a: " + "[" * 200_000,                        # ruamel.yaml's scanner is quadratic in flow depth
    "a:\n" + "  - x\n" * 150_000,                # many values
], ids=["deep", "wide"])
def test_huge_or_deep_documents_fail_fast(text: str, counting_yaml):
    with pytest.raises(ConfigError, match="nested more than|more than 10,000 values"):
        parse_task_setup(text)
    # Refused after reading a fraction of the text: the values up to the limit and one buffer of the reader.
    assert counting_yaml.characters_read < len(text) / 3
    assert counting_yaml.events <= MAX_NODES + MAX_DEPTH + 4


def test_no_python_object_is_ever_built(tmp_path: Path):
    marker = tmp_path / "owned"
    for payload in (f"!!python/object/apply:os.system ['touch {marker}']",
                    f"!!python/object/new:os.system ['touch {marker}']",
                    "!!python/name:os.system ''"):
        with pytest.raises(ConfigError, match="is not allowed"):
            parse_task_setup(f"seed: {payload}\n")
    assert not marker.exists()


def test_an_explicit_str_tag_gives_text():
    assert load_yaml("a: !!str 123\nb: !!int 4\n").data == {"a": "123", "b": 4}


def test_values_are_plain_python_types():
    data = load_yaml("a: 0x10\nb: 1_000\nc: 1.5e3\nd: [x, {y: true}]\ne: ~\nf: &t true\ng: *t\nh: &s text\n").data
    assert data == {"a": 16, "b": 1000, "c": 1500.0, "d": ["x", {"y": True}], "e": None, "f": True, "g": True,
                    "h": "text"}
    assert [type(v) for v in data.values()] == [int, int, float, list, type(None), bool, bool, str]


def test_an_anchored_boolean_is_still_not_a_number():
    error = errors_of(GOOD.replace("seed: 0", "seed: &yes true"))
    assert str(error) == "task_setup.yml:5:1: seed: must be a whole number, got true"


_YAMLISH = st.sampled_from(list("ab:- \n[]{},#&*!|>'\"?%@`\t0.~") + [
    "tasks", "seed", "<<", "!!str", "---", "...", "  ", "\n  - ", ": ", "&a ", "*a", "data_id"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_YAMLISH, max_size=40).map("".join))
def test_any_text_is_either_a_setup_or_a_config_error(text: str):
    try:
        parse_task_setup(text)
    except ConfigError as error:
        assert error.issues and all(isinstance(issue, ConfigIssue) for issue in error.issues)


# --- the models used directly from Python ------------------------------------------------------

def test_the_models_check_across_fields_when_built_directly():
    task = DebuggingTask(data_id="digit-0", train_size=10, noise_level=0.2, test_size=5, val_size=5)
    with pytest.raises(ValidationError, match=r"tasks\[1\]\.data_id: 'digit-0' is listed twice"):
        DebuggingSetup(tasks=[task, task], baselines=[Baseline(name="random")])
    with pytest.raises(ValidationError, match="eval_points: 11 is more than the train_size 10"):
        DebuggingSetup(tasks=[task], baselines=[Baseline(name="random")], eval_points=11)


def test_the_models_refuse_lax_types():
    with pytest.raises(ValidationError):
        DebuggingTask(data_id="a", train_size="10", noise_level=0.2, test_size=5, val_size=5)
    with pytest.raises(ValidationError):
        DebuggingTask(data_id="a", train_size=10.0, noise_level=0.2, test_size=5, val_size=5)
    assert DebuggingTask(data_id="a", train_size=10, noise_level=0, test_size=5, val_size=5).noise_level == 0.0


# --- a library method's parameters: its constructor's, checked in the file ----------------------------------

LIBRARY_BASELINES = """\
tasks:
  - {data_id: digit-3, train_size: 50, noise_level: 0.3, test_size: 50, val_size: 20}
baselines:
  - name: random
  - name: loss
  - name: data_oob
    params: {n_estimators: 50, foo: 1}
  - name: beta_shapley
    params:
      alpha: 16
      max_permutations: many
      n_jobs: true
"""


def test_a_library_method_takes_the_keyword_parameters_of_its_constructor():
    assert catalog.library_method_parameters("data_oob") == {"n_estimators": 800, "max_features": "sqrt",
                                                             "n_jobs": 1}
    assert catalog.library_method_parameters("neighbor_shapley_datascope") == {}  # an __init__ of self alone
    described = catalog.library_parameter_descriptions("beta_shapley")
    assert described["max_permutations"].startswith("the permutations to draw")
    assert described["alpha"] == described["beta"] == "the Beta distribution's."  # one line for both
    assert catalog.library_method_defaults()["data_oob"] == catalog.library_method_parameters("data_oob")


@pytest.mark.parametrize("name", list(catalog.DEBUGGING_LIBRARY_METHODS))
def test_each_library_file_documents_every_parameter_with_its_constructors_default(name: str):
    from dataperf_appliance.engine.methods import runner

    entry = catalog.DEBUGGING_LIBRARY_METHODS[name]
    assert runner.library_call(name).file == entry.path  # the runner runs the file the parameters come from
    docstring = " ".join(entry.path.read_text().split())
    for parameter in catalog.library_parameters(name):
        default = json.dumps(parameter.default) if isinstance(parameter.default, str) else repr(parameter.default)
        assert f"{parameter.name} ({type(parameter.default).__name__}, {default})" in docstring
        assert parameter.description, f"{entry.file}: {parameter.name} has no description"


def test_the_parameters_are_read_from_the_source_without_importing_it(tmp_path, monkeypatch):
    folder = tmp_path / "made_up"
    folder.mkdir()
    (folder / "method.py").write_text(
        '"""made_up.\n\nParameters (constructor defaults):\n    a (int, 1): first.\n    b (bool, True), c (float, '
        '-2.5) and d (str, "x"):\n        the rest.\n\nEnvironment: none.\n"""\n'
        "import a_library_that_is_not_installed\n\n\nclass Helper:\n    def __init__(self, unused=object()):\n"
        "        pass\n\n\nclass MadeUp:\n    def __init__(self, a=1, b=True, *, c=-2.5, d='x'):\n        pass\n\n"
        "    def propose(self, budget):\n        return []\n")
    (folder / "broken.py").write_text("class Broken:\n    def __init__(self, n=len('ab')):\n        pass\n\n"
                                      "    def propose(self, budget):\n        return []\n")
    monkeypatch.setattr(catalog, "LIBRARY_METHODS_FOLDER", tmp_path)
    monkeypatch.setitem(catalog.DEBUGGING_LIBRARY_METHODS, "made_up", catalog.LibraryMethod("made_up", "method.py", ""))
    monkeypatch.setitem(catalog.DEBUGGING_LIBRARY_METHODS, "broken", catalog.LibraryMethod("made_up", "broken.py", ""))
    try:
        assert catalog.library_method_parameters("made_up") == {"a": 1, "b": True, "c": -2.5, "d": "x"}
        assert catalog.library_parameter_descriptions("made_up") == {"a": "first.", "b": "the rest.",
                                                                    "c": "the rest.", "d": "the rest."}
        with pytest.raises(RuntimeError, match=r"broken\.py:2: the default of n is not a literal"):
            catalog.library_parameters("broken")
    finally:
        catalog.library_parameters.cache_clear()  # nothing of the made-up files stays for the other tests


def test_a_parameter_the_method_does_not_take_or_of_the_wrong_type_is_named_at_its_line():
    error = errors_of(LIBRARY_BASELINES)
    assert [str(issue) for issue in error.issues] == [
        "task_setup.yml:7:32: baselines[2].params.foo: data_oob takes no parameter 'foo' (it takes n_estimators, "
        "max_features, n_jobs)",
        "task_setup.yml:11:7: baselines[3].params.max_permutations: beta_shapley's max_permutations must be a whole "
        "number, like its default 50; got the text 'many'",
        "task_setup.yml:12:7: baselines[3].params.n_jobs: beta_shapley's n_jobs must be a whole number, like its "
        "default 1; got true",
    ]
    error = errors_of(LIBRARY_BASELINES.replace("  - name: loss\n", "  - name: loss\n    params: {k: 5}\n"))
    assert error.issues[0].field == "baselines[1].params.k"
    assert "loss takes no parameter 'k' (it takes none: params are for the libraries' methods)" in str(error)


def test_valid_parameters_are_kept_as_given():
    setup = parse_task_setup(LIBRARY_BASELINES.replace(", foo: 1", "").replace("many", "20").replace("true", "2"))
    assert [dict(b.params) for b in setup.baselines] == [
        {}, {}, {"n_estimators": 50}, {"alpha": 16, "max_permutations": 20, "n_jobs": 2}]  # an int for a float
