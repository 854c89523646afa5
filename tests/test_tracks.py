"""The tracks behind one registry: a third track is one record and one registry line.

`TINY` is a made-up track (flip coins, score the fraction of heads): a `Track`
record whose stages are this module's functions. Nothing else of the appliance
is changed to run it: the template, the schema check with its line numbers,
the data check, the CLI's run, repeats and sweeps, the run list's metric
direction, the form.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from pydantic import Field

from dataperf_appliance.interface import cli

from dataperf_appliance.engine import stats

from dataperf_appliance import tracks
from dataperf_appliance.stages.local_run import run_benchmark
from dataperf_appliance.config import ConfigError, MethodFile, TaskSetup, templates_dir, values
from dataperf_appliance.config.loader import Loc
from dataperf_appliance.config.types import ModelName, Repeats, SafeName, Seed, TrainSize, sweepable
from dataperf_appliance.engine.runs import PARTIAL, RESULTS, read_json, write_json
from dataperf_appliance.tracks import POINT, TRACKS, Track
from dataperf_appliance.tracks.engine import Stages
from dataperf_appliance.interface.ui_support import form, run_list

#: Most coins a tiny task may flip: the tiny data check.
MAX_COINS = 1000


class TinySetup(TaskSetup):
    track: Literal["tiny"] = "tiny"
    dataset: SafeName = "coins"
    model: sweepable(ModelName) = "logistic_regression"
    seed: Seed = 0
    repeats: Repeats = 1
    train_size: sweepable(TrainSize) = Field(10, description="coins flipped per task")
    tasks: tuple[SafeName, ...] = ("heads", "tails")
    submissions: tuple[SafeName, ...] = ()
    methods: tuple[MethodFile, ...] = ()

    @property
    def submission_folder(self) -> str:
        return "submissions/"

    def task_ids(self) -> list[str]:
        return list(self.tasks)

    def method_names(self) -> list[str]:
        return [*self.submissions, *(m.name for m in self.methods)]

    def axis_values(self) -> list[tuple[str, dict[str, tuple]]]:
        return [(task, {"train_size": values(self.train_size), "model": values(self.model)}) for task in self.tasks]

    def swept_task_fields(self) -> list[Loc]:
        return [("train_size",)] if isinstance(self.train_size, tuple) else []

    def describe_task_axes(self) -> str:
        return f"{len(self.tasks)} task(s) x {len(values(self.train_size))} size(s)"

    def swept_values(self) -> dict[str, Any]:
        return {"train_size": list(values(self.train_size))}

    def primary(self) -> TinySetup:
        return self.model_copy(update={"model": values(self.model)[0], "repeats": 1,
                                       "train_size": values(self.train_size)[0]})

    def for_cell(self, cell) -> TinySetup:
        return self.model_copy(update={**self._cell_update(cell), "tasks": (cell.task,),
                                       "train_size": cell.value("train_size")})


def tiny_data_problems(setup: TinySetup, data_root: Path | None) -> list[tuple[Loc, str]]:
    return [(("train_size",), f"{size} is more than the {MAX_COINS} coins of the dataset")
            for size in values(setup.train_size) if size > MAX_COINS]


# The tiny track's stages: this module's functions (`Track.stages` returns the module).

def prepare_data(setup: TinySetup, data_root: Path) -> dict[str, dict[str, Path]]:
    out = {}
    for task in setup.tasks:
        path = Path(data_root) / "datasets" / setup.dataset / f"{task}_{setup.train_size}_{setup.seed}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        flips = np.random.default_rng([setup.seed, len(task)]).integers(0, 2, setup.train_size)
        path.write_text(" ".join(map(str, flips)))
        out[task] = {"coins": path}
    return out


def run_tasks(setup, data_root, source_dir, *, data_ids=None, n_jobs=-1, progress=None) -> list[Any]:
    files = prepare_data(setup, data_root)
    wanted = [task for task in setup.tasks if data_ids is None or task in data_ids]
    return [{"task": task, "heads": float(np.mean([int(x) for x in files[task]["coins"].read_text().split()]))}
            for task in wanted]


def write_task_run(setup, run, work_dir, source_dir) -> dict:
    result = {"strategies": {"random": {"kind": "strategy", "heads": run["heads"], "time_s": 0.0}}}
    write_json(Path(work_dir) / PARTIAL / f"{run['task']}.json", result)
    return result


def sweep_rows(run) -> dict[str, dict]:
    return {"random": {"kind": "strategy", "heads": run["heads"], "time_s": 0.0, "fit_s": 0.0, "predict_s": 0.0}}


def report(setup, work_dir, *, replicates=None) -> dict:
    task_results = {task: read_json(Path(work_dir) / PARTIAL / f"{task}.json") for task in setup.tasks}
    results = {"track": setup.track, "model": setup.model, "seed": setup.seed, "tasks": task_results}
    stats.add_to_results(results, replicates or stats.single_repeat(task_results), TINY.headline_metrics)
    write_json(Path(work_dir) / RESULTS, results)
    return results


TINY = Track(
    name="tiny", setup_model=TinySetup, template="tiny_task_setup.yml.j2",
    defaults={"track": "tiny", "seed": 0, "repeats": 1, "train_size": 10},
    data_problems=tiny_data_problems, stages=lambda: sys.modules[__name__],
    headline_metrics=("heads",), sweep_metrics=("heads", "time_s", "fit_s", "predict_s"),
    result_columns=("heads", "kind"), result_kind=POINT, submission_suffix=".txt",
    builtin_datasets=("coins",), strategies=("random",))


TINY_TEMPLATE = """\
# A tiny benchmark: flip coins.
track: {{ track }}
seed: {{ seed }}
repeats: {{ repeats }}
train_size: {{ train_size }}
"""


@pytest.fixture
def tiny(monkeypatch, tmp_path) -> Track:
    """The tiny track registered (one registry line), with its template beside the real ones."""
    folder = tmp_path / "templates"
    shutil.copytree(templates_dir(), folder)
    (folder / TINY.template).write_text(TINY_TEMPLATE)
    monkeypatch.setenv("APPLIANCE_TEMPLATES_DIR", str(folder))
    monkeypatch.setitem(TRACKS, TINY.name, TINY)
    return TINY


def test_the_tiny_stages_follow_the_protocol(tiny):
    # Every stage the protocol declares is a function of the module the track names.
    declared = [name for name in vars(Stages) if not name.startswith("_")]
    assert declared and all(callable(getattr(tiny.stages(), name, None)) for name in declared)


def test_a_tiny_file_renders_validates_and_runs(tiny, tmp_path, capsys):
    text = tracks.render_task_setup(tracks.apply_overrides(tracks.default_params("tiny"), ["repeats=3"]))
    setup = tracks.parse_task_setup(text)
    assert isinstance(setup, TinySetup) and setup.repeats == 3
    path = tmp_path / "task_setup.yml"
    path.write_text(text)
    results = run_benchmark(path, tmp_path / "runs" / "tiny-1", data_root=tmp_path / "data", n_jobs=1)
    on_disk = json.loads((tmp_path / "runs" / "tiny-1" / RESULTS).read_text())
    assert on_disk == results and results["track"] == "tiny" and list(results["tasks"]) == ["heads", "tails"]
    # Three repeats of one setting: the statistics over them, through the sweeps engine.
    assert results["repeats"] == 3 and results["replicates"]["seeds"] == [0, 1, 2]
    summary = results["tasks"]["heads"]["strategies"]["random"][stats.OVER_REPEATS]["heads"]
    assert summary["n"] == 3 and 0 <= summary["mean"] <= 1
    # The CLI's table uses the track's metrics.
    assert cli.main(["validate", str(path), "--data-dir", str(tmp_path / "data")]) == 0
    print(cli._summary(results))
    assert "heads" in capsys.readouterr().out


def test_a_tiny_sweep_is_a_grid(tiny, tmp_path):
    text = tracks.render_task_setup({**tracks.default_params("tiny"), "train_size": [5, 20]})
    path = tmp_path / "task_setup.yml"
    path.write_text(text)
    results = run_benchmark(path, tmp_path / "runs" / "tiny-sweep", data_root=tmp_path / "data", n_jobs=1)
    sweep = results["sweep"]
    assert sweep["cells"] == 4 and sweep["parameters"]["train_size"] == [5, 20]
    assert {record["metric"] for record in sweep["summary"]} == {"heads"}
    assert (tmp_path / "runs" / "tiny-sweep" / sweep["table"]).read_text().startswith(
        "task,train_size,model,repeat,seed,strategy,kind,heads,")


def test_the_tiny_data_check_reports_its_line(tiny):
    text = tracks.render_task_setup(tracks.default_params("tiny")).replace("train_size: 10", "train_size: 5000")
    with pytest.raises(ConfigError) as caught:
        tracks.parse_task_setup(text, filename="tiny.yml")
    (issue,) = caught.value.issues
    assert (issue.line, issue.field) == (5, "train_size") and str(MAX_COINS) in issue.message


def test_the_pages_ask_the_track(tiny):
    assert run_list.main_metric("tiny") == ("heads", False)
    assert "tiny" in form.available_tracks()
    assert {spec.key for spec in form.field_specs("tiny")} == set(TINY.defaults)


def test_an_unknown_track_is_named():
    with pytest.raises(ConfigError, match="unknown track 'tiny'; choose one of: debugging, selection"):
        tracks.parse_task_setup("track: tiny\n")


def test_every_headline_metric_has_its_direction_in_the_catalog():
    from dataperf_appliance.config import catalog

    for track in TRACKS.values():
        assert set(track.headline_metrics) <= set(catalog.LOWER_IS_BETTER), track.name
        assert track.lower_is_better == catalog.LOWER_IS_BETTER[track.main_metric]
    # A track's metrics need not share a direction: debugging's main one goes down, its others up.
    assert [metric for metric, lower in catalog.LOWER_IS_BETTER.items() if lower] == ["fraction_fixes"]
    assert (catalog.metric_label("fraction_fixes"), catalog.metric_label("auroc")) == ("fraction_fixes ↓", "auroc ↑")
    assert catalog.metric_label("time_s") == "time_s" and catalog.better("time_s") is None
