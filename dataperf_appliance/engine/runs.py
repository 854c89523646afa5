"""The run layout on disk: staging, manifest, atomic publication.

A run is written under a hidden temporary name beside its final folder and
moved into place (one rename) when complete, so a reader never sees half a run
as finished:

    <runs>/.<run_id>.partial/   while it is written (and kept there if it fails)
    <runs>/<run_id>/            once published
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from dataperf_appliance import __version__
from dataperf_appliance.config.names import MAX_RUN_ID_LENGTH, is_safe_name
from dataperf_appliance.engine.atomic_file import atomic_write_bytes
from dataperf_appliance.engine.datasets.dataperf_files import sha256_of

#: The files of a run folder (the same names under the S3 prefix): exactly the file that was validated and
#: triggered, the state and timings, every figure; the tables of a sweep and of repeats alone.
TASK_SETUP, MANIFEST, RESULTS = "task_setup.yml", "manifest.json", "results.json"
SWEEP_CSV, REPEATS_CSV = "sweep.csv", "repeats.csv"
#: The state the lists and pages give a run whose manifest.json or results.json cannot be used (too large, not
#: JSON, too deep, not an object: `bounded.Unreadable`); the appliance never writes it.
UNREADABLE = "unreadable"
#: The folder of a run's per-task results before the report merges them.
PARTIAL = "partial"
STAGING_SUFFIX = ".partial"
MAIN_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "cleanlab", "matplotlib", "pydantic",
                 "ruamel.yaml", "jinja2", "boto3", "apache-airflow", "streamlit")


def check_run_id(run_id: str) -> str:
    """Return `run_id` if it is a safe folder name, else raise ValueError."""
    if not is_safe_name(run_id, max_length=MAX_RUN_ID_LENGTH):
        raise ValueError(f"run id {run_id!r} must be 1-128 of A-Z a-z 0-9 . _ - and not start with . _ or -")
    return run_id


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique-enough run id like ``20261123-071500-3f2a9c``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{os.urandom(3).hex()}"


def staging_dir(run_dir: Path) -> Path:
    """The hidden folder a run is written into before it is published as `run_dir`."""
    return run_dir.parent / f".{run_dir.name}{STAGING_SUFFIX}"


def staged_run_id(folder_name: str) -> str | None:
    """The run id of a staging folder's name (``.<run_id>.partial``), or None if it is not one."""
    if folder_name.startswith(".") and folder_name.endswith(STAGING_SUFFIX):
        run_id = folder_name[1:-len(STAGING_SUFFIX)]
        return run_id if is_safe_name(run_id, max_length=MAX_RUN_ID_LENGTH) else None
    return None


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def write_json(path: Path, payload: object) -> None:
    """Write JSON atomically, keys in a stable order."""
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n").encode())


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def git_commit() -> str | None:
    """The commit of the code in use: $APPLIANCE_GIT_COMMIT (set in the image), else asked of git."""
    if os.environ.get("APPLIANCE_GIT_COMMIT"):
        return os.environ["APPLIANCE_GIT_COMMIT"]
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def package_versions(names: tuple[str, ...] = MAIN_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def new_manifest(run_id: str, task_setup_text: str, *, seed: int, track: str) -> dict:
    """The manifest of a run that is starting (state `running`)."""
    return {
        "run_id": run_id,
        "state": "running",
        "track": track,
        "created_at": utc_now(),
        "finished_at": None,
        "error": None,
        "stages": {},
        "task_setup_sha256": hashlib.sha256(task_setup_text.encode()).hexdigest(),
        "seed": seed,
        "code_version": {"package": __version__, "git_commit": git_commit()},
        "packages": package_versions(),
        "inputs": {},
    }


def record_inputs(manifest: dict, files: list[Path], relative_to: Path) -> None:
    """Add the sha256 of every input file to the manifest, keyed by its path under `relative_to`."""
    for path in files:
        key = str(path.relative_to(relative_to)) if path.is_relative_to(relative_to) else str(path)
        manifest["inputs"][key] = sha256_of(path)
