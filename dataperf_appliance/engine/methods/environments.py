"""A method's own virtual environment: built once with uv from its requirements, then reused.

A method that needs libraries the appliance cannot hold (datascope and pyDVL
need numpy < 2; the appliance runs numpy 2) names them in a requirements file.
Its environment lives under ``<data root>/method-envs/<key>``, the key being a
hash of what decides its content: the requirements' text, the Python it is
made for and what the child process itself needs (`CHILD_REQUIREMENTS`). The
same requirements give the same folder, so the second run, another task and
another run of the same file all reuse it. An image may carry environments
built in advance (the built-in methods'): `PREBUILT_VARIABLE` names that
read-only folder, looked up first.

A line ``# python: 3.11`` in the requirements chooses the environment's
Python (a library without wheels for newer ones); else it is the appliance's.
A `BUILD_CONSTRAINTS` file beside the requirements constrains what builds a
source-only package (datascope 0.0.8 needs ``cython<3`` and numpy 1.26's
headers), and is part of the key.

Building holds a lock on the key, so two tasks wanting the same environment
build it once, and writes the folder's ``ready`` mark last: a build that
fails or is killed leaves no environment that looks usable, and the next
attempt starts anew. uv installs from the package sources pip is configured
with on the machine (its index, extra indexes and find-links), so a wheel
mirror of the machine is used as pip would.

An environment is made relocatable (``uv venv --relocatable``), so it can be
kept elsewhere and unpacked under another data root: `archive_environment`
packs a built one into a ``.tar.gz`` handed to a keeper (the S3 bucket, by the
pipeline), and `restore_environment` unpacks one a fetcher brings, so that a
new instance or another worker does not build it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

#: The folder under the data root that holds the environments.
ENVIRONMENTS_FOLDER = "method-envs"
#: The environment variable naming a folder of environments built in advance (the image's).
PREBUILT_VARIABLE = "APPLIANCE_PREBUILT_METHOD_ENVS"
#: What the child process needs in every environment, whatever the method's requirements say.
CHILD_REQUIREMENTS = ("numpy",)
#: The file beside a requirements file that constrains the builds of source-only packages (uv's -b).
BUILD_CONSTRAINTS = "build-constraints.txt"
#: uv's cache, beside the environments it builds.
UV_CACHE_FOLDER = ".uv-cache"
#: Written last into a finished environment.
READY_MARK = "ready"
#: The longest a build may take (seconds): a wheel compiled from source included.
BUILD_TIMEOUT_S = 1800
#: How a packed environment ends: a gzipped tar of the environment's folder.
ARCHIVE_SUFFIX = ".tar.gz"
_PYTHON_LINE = re.compile(r"^#\s*python:\s*(3\.\d+)\s*$", re.MULTILINE)


class EnvironmentBuildError(RuntimeError):
    """An environment could not be built; the message ends with the end of uv's output."""


def requested_python(requirements_text: str) -> str | None:
    """The ``X.Y`` of a ``# python: X.Y`` line of the requirements, or None (the appliance's Python)."""
    found = _PYTHON_LINE.search(requirements_text)
    return found.group(1) if found else None


def environment_key(requirements_text: str, build_constraints_text: str = "") -> str:
    """The name of the environment the requirements give: a hash of everything that decides its content."""
    python = requested_python(requirements_text) or f"{sys.version_info.major}.{sys.version_info.minor}"
    identity = "\n".join([f"python {python}", *CHILD_REQUIREMENTS, requirements_text.strip()]
                         + ([f"build {build_constraints_text.strip()}"] if build_constraints_text.strip() else []))
    return hashlib.sha256(identity.encode()).hexdigest()[:20]


def python_of(folder: Path) -> Path:
    return folder / "bin" / "python"


def _uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def package_sources() -> list[str]:
    """uv's flags for the package sources pip is configured with here (index, extra indexes, find-links)."""
    try:
        listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                                timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    flags: list[str] = []
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        option = {"index-url": "--index-url", "extra-index-url": "--extra-index-url",
                  "find-links": "--find-links"}.get(key.rsplit(".", 1)[-1])
        if option:
            for source in value.strip().strip("'\"").split():
                if (option, source) not in zip(flags[::2], flags[1::2]):  # the same source set twice (env, file)
                    flags += [option, source]
    if any(flag == "--extra-index-url" for flag in flags):
        # pip takes the best version over every index; uv's default stops at the first index that has the name.
        flags += ["--index-strategy", "unsafe-best-match"]
    return flags


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _run(command: list[str], log: Path, cache: Path) -> None:
    # uv's download and build cache under the data root too (nothing is written outside it), unless the
    # machine names one.
    env = {**os.environ, "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR") or str(cache)}
    with open(log, "a") as out:
        out.write("$ " + " ".join(command) + "\n")
        out.flush()
        completed = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S, env=env)
    if completed.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-6:]
        raise EnvironmentBuildError(f"building the environment failed ({command[1]} {command[2]} exited "
                                f"{completed.returncode}): " + " | ".join(tail))


def key_of(requirements: Path) -> str:
    """The key (folder name) of the environment `requirements` gives, with the build constraints beside it."""
    constraints = requirements.parent / BUILD_CONSTRAINTS
    return environment_key(requirements.read_text(), constraints.read_text() if constraints.is_file() else "")


def _prebuilt(key: str) -> Path | None:
    prebuilt = os.environ.get(PREBUILT_VARIABLE)
    if prebuilt and (Path(prebuilt) / key / READY_MARK).exists():
        return Path(prebuilt) / key
    return None


def ensure_environment(requirements: Path, data_root: Path) -> Path:
    """The python of the environment of `requirements`, built first if it does not exist yet.

    Raises EnvironmentBuildError (with the end of uv's output) when the build fails; the half-built folder is
    removed. The build's log stays beside the environment (``<key>.log``).
    """
    key = key_of(requirements)
    prebuilt = _prebuilt(key)
    if prebuilt:
        return python_of(prebuilt)
    return python_of(build_environment(requirements, Path(data_root) / ENVIRONMENTS_FOLDER))


def build_environment(requirements: Path, root: Path) -> Path:
    """The folder ``root/<key>`` of the environment of `requirements`, built there unless it is ready."""
    text = requirements.read_text()
    constraints = requirements.parent / BUILD_CONSTRAINTS
    key = key_of(requirements)
    folder = root / key
    if (folder / READY_MARK).exists():
        return folder
    with _lock(root / f".{key}.lock"):
        if (folder / READY_MARK).exists():  # built by another task while this one waited
            return folder
        shutil.rmtree(folder, ignore_errors=True)  # what a killed build left
        log = root / f"{key}.log"
        log.write_text("")
        python = requested_python(text) or sys.executable
        try:
            # Relocatable: its scripts find their interpreter relatively, so a restored copy works under
            # another data root.
            _run([_uv(), "venv", "--quiet", "--relocatable", "--python", python, str(folder)], log,
                 root / UV_CACHE_FOLDER)
            build = ["--build-constraints", str(constraints)] if constraints.is_file() else []
            _run([_uv(), "pip", "install", "--python", str(python_of(folder)), *package_sources(), *build,
                  "-r", str(requirements), *CHILD_REQUIREMENTS], log, root / UV_CACHE_FOLDER)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        (folder / READY_MARK).write_text(text)
    return folder


def archive_environment(requirements: Path, data_root: Path, keep: Callable[[str, Path], object]) -> bool:
    """Pack the environment of `requirements` built under `data_root` and hand it to ``keep(key, archive)``
    (the archive is removed afterwards); False, and nothing kept, when no such environment is ready here."""
    key = key_of(requirements)
    root = Path(data_root) / ENVIRONMENTS_FOLDER
    folder = root / key
    if not (folder / READY_MARK).exists():
        return False
    with tempfile.TemporaryDirectory(prefix=f".{key}.pack-", dir=root) as tmp:
        archive = Path(tmp) / f"{key}{ARCHIVE_SUFFIX}"
        # Level 1: an environment is hundreds of MB of binaries that compress little more at higher levels.
        with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
            tar.add(folder, arcname=".")
        keep(key, archive)
    return True


def restore_environment(requirements: Path, data_root: Path, fetch: Callable[[str, Path], bool]) -> bool:
    """Unpack the environment of `requirements` under `data_root` from the archive ``fetch(key, path)`` writes
    to `path` (False: none is kept), unless it is here or prebuilt already; True when it was restored.

    The archive is unpacked beside the environments and moved into place only when complete, with its
    ``ready`` mark; an archive without one, or with a member that would leave the folder, is refused
    (EnvironmentBuildError) and leaves nothing.
    """
    key = key_of(requirements)
    root = Path(data_root) / ENVIRONMENTS_FOLDER
    folder = root / key
    if _prebuilt(key) or (folder / READY_MARK).exists():
        return False
    with _lock(root / f".{key}.lock"):
        if (folder / READY_MARK).exists():
            return False
        with tempfile.TemporaryDirectory(prefix=f".{key}.restore-", dir=root) as tmp:
            archive = Path(tmp) / f"{key}{ARCHIVE_SUFFIX}"
            if not fetch(key, archive):
                return False
            unpacked = Path(tmp) / key
            try:
                with tarfile.open(archive, "r:gz") as tar:
                    # "tar": no member outside the folder, no device or set-uid file; a venv's symlink to its
                    # base interpreter is absolute, which the stricter "data" filter would refuse.
                    tar.extractall(unpacked, filter="tar")
            except (tarfile.TarError, OSError) as error:
                raise EnvironmentBuildError(f"the kept environment {key} cannot be unpacked: {error}") from error
            if not (unpacked / READY_MARK).exists():
                raise EnvironmentBuildError(f"the kept environment {key} has no {READY_MARK} mark: not unpacked")
            shutil.rmtree(folder, ignore_errors=True)  # what a killed build left
            os.rename(unpacked, folder)
    return True


def prebuild(into: Path, requirement_files: list[Path]) -> list[Path]:
    """Build the environments of `requirement_files` into the folder `into` (an image's
    `PREBUILT_VARIABLE` folder); their folders."""
    into.mkdir(parents=True, exist_ok=True)
    return [build_environment(path, into) for path in requirement_files]
