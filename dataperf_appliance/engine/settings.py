"""Settings of the appliance, read from the environment (see README.md, Settings)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The data root when APPLIANCE_DATA_DIR is unset or empty: the repository's data/ (the appliance is installed
#: editable from its checkout). The same default as the scripts', which is set in scripts/runtime/paths.sh only;
#: tests/test_lint.py checks that the two agree. (The image sets APPLIANCE_DATA_DIR=/data: its own value.)
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data"
DEFAULT_S3_PREFIX = "dataperf-appliance/"
#: The reverse proxies whose X-Forwarded-For the login gate believes: addresses or networks, comma-separated.
TRUSTED_PROXIES_ENV = "APPLIANCE_TRUSTED_PROXIES"

#: A run's limits (README, Settings; docs/security.md, Runs with limits): the embeddings it may hold at once and
#: the classifier fits it may need, checked when its file is validated; how long one Airflow task and one whole
#: DAG run may take.
MAX_RUN_MEMORY_ENV = "APPLIANCE_MAX_RUN_MEMORY_MIB"
MAX_RUN_FITS_ENV = "APPLIANCE_MAX_RUN_FITS"
TASK_TIMEOUT_ENV = "APPLIANCE_TASK_TIMEOUT_S"
RUN_TIMEOUT_ENV = "APPLIANCE_RUN_TIMEOUT_S"
#: Without APPLIANCE_MAX_RUN_MEMORY_MIB a run may hold this share of the machine's memory: the rest is for
#: Airflow, PostgreSQL, the app and the classifiers' own copies of the data.
RUN_MEMORY_SHARE = 0.5
#: Over 40 times the fits of the default debugging run (4,428 at most) or of the arena (3,645), and above a sweep
#: of the default tasks at the grid's 500 cells (123,000); a fit of the default classifier at the default sizes
#: takes about 15 ms on one core, so this is under an hour of fitting, not days.
DEFAULT_MAX_RUN_FITS = 200_000
#: The arena takes about 15 min on 2 cores; an Airflow task holds a slot for at most this long, a run all its
#: tasks together (both are stopped past it, and the run is marked failed).
DEFAULT_TASK_TIMEOUT_S = 6 * 3600
DEFAULT_RUN_TIMEOUT_S = 24 * 3600


@dataclass(frozen=True)
class Settings:
    """Where the appliance keeps its files, and whom its login gate trusts.

    data_dir: the data root on disk (datasets/ and runs/ below it).
    s3_bucket: the bucket to sync with; None means disk only.
    s3_prefix: the key prefix inside the bucket, ending in '/'.
    trusted_proxies: the addresses or networks (``10.0.0.5``, ``172.18.0.0/16``) of the reverse proxies in
        front of the app whose X-Forwarded-For names the client; empty: the connection's peer is the client.
    """

    data_dir: Path
    s3_bucket: str | None
    s3_prefix: str
    trusted_proxies: tuple[str, ...] = ()

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"


@dataclass(frozen=True)
class RunLimits:
    """What one run may take (see the *_ENV names above).

    max_memory_mib: the embeddings a run may hold at once (MiB); max_fits: the classifier fits it may need;
    task_timeout_s, run_timeout_s: the longest one Airflow task and one whole DAG run may take (seconds).
    """

    max_memory_mib: int
    max_fits: int
    task_timeout_s: int
    run_timeout_s: int


def machine_memory_mib() -> int:
    """The memory this process may use (MiB): the machine's, or its container's limit when lower (cgroup v2)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        limit = "max"
    if limit.isdigit():
        total = min(total, int(limit))
    return total // 2**20


def _positive_whole_number(env, name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1; got {text!r}")
    return int(text)


def load_run_limits(environ: dict[str, str] | None = None) -> RunLimits:
    """A run's limits from `environ` (default: the process environment); ValueError naming a variable whose
    value is not a whole number of at least 1."""
    env = os.environ if environ is None else environ
    return RunLimits(
        max_memory_mib=_positive_whole_number(env, MAX_RUN_MEMORY_ENV,
                                              max(1, int(machine_memory_mib() * RUN_MEMORY_SHARE))),
        max_fits=_positive_whole_number(env, MAX_RUN_FITS_ENV, DEFAULT_MAX_RUN_FITS),
        task_timeout_s=_positive_whole_number(env, TASK_TIMEOUT_ENV, DEFAULT_TASK_TIMEOUT_S),
        run_timeout_s=_positive_whole_number(env, RUN_TIMEOUT_ENV, DEFAULT_RUN_TIMEOUT_S),
    )


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    prefix = env.get("APPLIANCE_S3_PREFIX", DEFAULT_S3_PREFIX).strip("/")
    return Settings(
        data_dir=Path(env.get("APPLIANCE_DATA_DIR") or DEFAULT_DATA_DIR).expanduser().resolve(),
        s3_bucket=env.get("APPLIANCE_S3_BUCKET") or None,
        s3_prefix=f"{prefix}/" if prefix else "",
        trusted_proxies=tuple(item.strip() for item in env.get(TRUSTED_PROXIES_ENV, "").split(",") if item.strip()),
    )
