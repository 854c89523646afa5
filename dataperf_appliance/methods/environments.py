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
from collections.abc import Iterator
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


def ensure_environment(requirements: Path, data_root: Path) -> Path:
    """The python of the environment of `requirements`, built first if it does not exist yet.

    Raises EnvironmentBuildError (with the end of uv's output) when the build fails; the half-built folder is
    removed. The build's log stays beside the environment (``<key>.log``).
    """
    text = requirements.read_text()
    constraints = requirements.parent / BUILD_CONSTRAINTS
    key = environment_key(text, constraints.read_text() if constraints.is_file() else "")
    prebuilt = os.environ.get(PREBUILT_VARIABLE)
    if prebuilt and (Path(prebuilt) / key / READY_MARK).exists():
        return python_of(Path(prebuilt) / key)
    root = Path(data_root) / ENVIRONMENTS_FOLDER
    folder = root / key
    if (folder / READY_MARK).exists():
        return python_of(folder)
    with _lock(root / f".{key}.lock"):
        if (folder / READY_MARK).exists():  # built by another task while this one waited
            return python_of(folder)
        shutil.rmtree(folder, ignore_errors=True)  # what a killed build left
        log = root / f"{key}.log"
        log.write_text("")
        python = requested_python(text) or sys.executable
        try:
            _run([_uv(), "venv", "--quiet", "--python", python, str(folder)], log, root / UV_CACHE_FOLDER)
            build = ["--build-constraints", str(constraints)] if constraints.is_file() else []
            _run([_uv(), "pip", "install", "--python", str(python_of(folder)), *package_sources(), *build,
                  "-r", str(requirements), *CHILD_REQUIREMENTS], log, root / UV_CACHE_FOLDER)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        (folder / READY_MARK).write_text(text)
    return python_of(folder)
