"""The tracks of the appliance, behind one registry: `TRACKS`, keyed by the ``track`` key of a file.

Everything that depends on the kind of benchmark asks the setup's track
(`track_of`): the sweeps, the pipeline, the CLI, the DAG and the pages never
name a track. Adding a track means one module here (its setup model built from
`dataperf_appliance.config`, and its `Track` record) and one line in `TRACKS`.

This package is also the boundary where a file becomes a setup: every entry
point below validates once (schema, then the track's data checks) and returns
a typed, frozen setup that the rest of the code trusts.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dataperf_appliance import config
from dataperf_appliance.config import ConfigError, TaskSetup
from dataperf_appliance.engine.parallel import ProgressCallback
from dataperf_appliance.tracks import debugging, selection
from dataperf_appliance.tracks.protocol import CURVE, POINT, Track

#: Every track, by the value of its files' ``track`` key.
TRACKS: dict[str, Track] = {track.name: track for track in (debugging.TRACK, selection.TRACK)}
#: The track of a file that does not say (the DataPerf reference files do not).
DEFAULT_TRACK = debugging.TRACK.name


def track_of(setup_or_name: TaskSetup | str) -> Track:
    """The track of a setup, or of a track name (ValueError for an unknown one)."""
    name = setup_or_name if isinstance(setup_or_name, str) else setup_or_name.track
    try:
        return TRACKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown track {name!r}; choose one of: {', '.join(TRACKS)}") from None


def track_of_results(results: Mapping | None) -> Track:
    """The track of a results.json's content (untrusted: an unknown or missing track is the default's)."""
    name = (results or {}).get("track")
    return TRACKS.get(name, TRACKS[DEFAULT_TRACK]) if isinstance(name, str) else TRACKS[DEFAULT_TRACK]


# ---- a file becomes a setup ----------------------------------------------------------------------

def parse_task_setup(text: str, *, filename: str = "task_setup.yml", data_root: Path | None = None,
                     source_dir: Path | None = None) -> TaskSetup:
    """Validate the text of a ``task_setup.yml`` and return the setup it describes.

    `filename` names the file in messages. `data_root` is where official
    dataset folders are looked for (``<data_root>/datasets/<dataset>``); with
    None, only the generated datasets (digits, synthetic) are checked against
    their tasks. `source_dir`, the folder of the file, is where its methods'
    files must be (not checked with None). A missing ``track`` means the
    `DEFAULT_TRACK`.

    Raises ConfigError listing every problem found, each with its line,
    column and field. Read-only: nothing is written anywhere.
    """
    models = {name: track.setup_model for name, track in TRACKS.items()}
    def problems_of(setup: TaskSetup) -> list:
        problems = track_of(setup).data_problems(setup, data_root)
        return problems + (config.method_file_problems(setup, source_dir) if source_dir is not None else [])

    return config.parse_setup(text, models, default_track=DEFAULT_TRACK, filename=filename, problems_of=problems_of)


def load_task_setup(path: str | os.PathLike, *, data_root: Path | None = None) -> TaskSetup:
    """Read and validate the ``task_setup.yml`` at `path` (see `parse_task_setup`; its methods' files are looked
    for in its folder).

    A file over `config.MAX_FILE_BYTES` is refused before it is read. Raises
    ConfigError for an invalid file, OSError when it cannot be read.
    """
    return parse_task_setup(config.read_config_text(path), filename=str(path), data_root=data_root,
                            source_dir=Path(path).parent)


def default_params(track: str = DEFAULT_TRACK, preset: str | None = None) -> dict[str, Any]:
    """A fresh copy of the default template parameters of `track`, changed by its `preset` when given
    (ValueError for an unknown one)."""
    found = track_of(track)
    params = copy.deepcopy(dict(found.defaults))
    if preset is not None:
        if preset not in found.presets:
            raise ValueError(f"unknown preset {preset!r} of the {found.name} track; choose one of: "
                             f"{', '.join(found.presets) or 'none'}")
        params.update(copy.deepcopy(dict(found.presets[preset])))
    return params


def apply_overrides(params: Mapping[str, Any], assignments: list[str]) -> dict[str, Any]:
    """`params` with each ``key=value`` of `assignments` applied (see `config.render.apply_overrides`)."""
    name = params.get("track", DEFAULT_TRACK)
    defaults = TRACKS[name].defaults if isinstance(name, str) and name in TRACKS else None
    return config.apply_overrides(params, assignments, defaults=defaults)


def render_and_parse(params: Mapping[str, Any], *, data_root: Path | None = None) -> tuple[str, TaskSetup]:
    """The ``task_setup.yml`` text of `params` (see `default_params`) from its track's template, and the setup
    it validates to. Raises ValueError for a missing or unknown parameter, ConfigError (a ValueError) when
    the rendered file is invalid, with the field of each problem; TypeError for a value YAML cannot hold."""
    track = track_of(params.get("track", DEFAULT_TRACK))
    text = config.render_template(track.template, params, defaults=track.defaults)
    return text, parse_task_setup(text, filename="task_setup.yml", data_root=data_root)


def render_task_setup(params: Mapping[str, Any], *, data_root: Path | None = None) -> str:
    """`render_and_parse`'s text: a file `parse_task_setup` accepts."""
    return render_and_parse(params, data_root=data_root)[0]


def preview(params: Mapping[str, Any]) -> str | None:
    """The text `params` render to, valid or not (None when the template cannot be filled)."""
    name = params.get("track", DEFAULT_TRACK)
    if not isinstance(name, str) or name not in TRACKS:
        return None
    return config.preview(TRACKS[name].template, params)


def available_tracks() -> list[str]:
    """The tracks whose template file is in the templates folder."""
    return [name for name, track in TRACKS.items() if (config.templates_dir() / track.template).is_file()]


# ---- the official evaluators' folders ------------------------------------------------------------

def evaluate_folder(folder: Path, *, model: str | None = None, seed: int = 0, n_jobs: int = -1,
                    now: dt.datetime | None = None, progress: ProgressCallback | None = None):
    """Evaluate the official folder `folder` (its track told by its task file) and write the official result
    files; a `official.evaluate.FolderEvaluation`.

    `model` defaults to the track's official classifier. Raises ConfigError
    for a task file that is invalid or names a missing file, SubmissionError
    / TrainingSetError for a user's file, ValueError for a data file that
    cannot be used (each naming the file).
    """
    from dataperf_appliance.engine.official.setup import load_official_setup, official_task_file

    folder = Path(folder)
    evaluators = {name: track.official() for name, track in TRACKS.items() if track.official}
    path = official_task_file(folder, {evaluator.task_file: name for name, evaluator in evaluators.items()})
    evaluator = next(evaluator for evaluator in evaluators.values() if evaluator.task_file == path.name)
    setup = load_official_setup(path, evaluator.setup_model)
    return evaluator.evaluate(folder, setup, model=model, seed=seed, n_jobs=n_jobs, now=now, progress=progress)


def export_run(run_dir: Path, out: Path, *, data_root: Path):
    """Write the finished run at `run_dir` as official folders under `out` (see `official.export`)."""
    from dataperf_appliance.engine.official.export import ExportError
    from dataperf_appliance.engine.runs import TASK_SETUP

    setup = load_task_setup(Path(run_dir) / TASK_SETUP, data_root=data_root)
    track = track_of(setup)
    if track.official is None:
        raise ExportError(f"{run_dir}: the {track.name} track has no official evaluator to export to")
    return track.official().export(run_dir, out, setup, data_root=data_root)


__all__ = [
    "CURVE", "DEFAULT_TRACK", "POINT", "TRACKS", "ConfigError", "Track", "apply_overrides", "available_tracks",
    "default_params",
    "evaluate_folder", "export_run", "load_task_setup", "parse_task_setup", "preview", "render_and_parse",
    "render_task_setup", "track_of", "track_of_results",
]
