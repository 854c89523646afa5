#!/usr/bin/env python3
"""Regenerate constraints/python-3.X.txt, the pinned versions scripts/dev/install.sh installs, one file per Python.

For each supported Python (scripts/dev/pythons.py: 3.11, 3.12, 3.13) pip resolves the appliance with every extra of
pyproject.toml in a scratch virtual environment of that Python (`pip install --dry-run --report`, nothing is installed),
and the file gets every resolved `name==version`. So that the three agree, each resolution is constrained
by the pins of the existing python-3.11.txt: a package moves only when it is not pinned yet or cannot
stay at its pin on that Python. `--upgrade` drops those pins first (the newest versions that fit).

An extra that does not resolve on a Python (e.g. one whose wheel exists for 3.11 only) is left out of that
Python's file, which lists the extras it covers in its `# extras:` line; scripts/dev/install.sh skips, with a
message, a requested extra that the file of the running Python does not list.

Usage: scripts/dev/update_constraints.py [--upgrade] [--python 3.X=/path/to/python ...]
  Interpreters: as scripts/dev/pythons.py finds them, unless given.
Needs PyPI. Runs with the standard library of any Python 3.11+.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from pythons import PYTHONS, find_python

REPO = Path(__file__).resolve().parents[2]
CONSTRAINTS_DIR = REPO / "constraints"
#: The Python whose pins the others follow.
REFERENCE_PYTHON = PYTHONS[0]


def constraints_file(version: str) -> Path:
    return CONSTRAINTS_DIR / f"python-{version}.txt"


def pins(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def resolve(python: str, extras: list[str], pinned: list[str], scratch: Path) -> dict[str, str] | None:
    """{name: version} pip would install for the appliance with `extras` on `python`; None if it cannot."""
    venv = scratch / "venv"
    if not venv.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    constraints = scratch / "pins.txt"
    constraints.write_text("".join(f"{line}\n" for line in pinned))
    report = scratch / "report.json"
    target = f"{REPO}[{','.join(extras)}]" if extras else str(REPO)
    done = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--dry-run", "--ignore-installed",
                           "--quiet", "--report", str(report), "-c", str(constraints), target],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    installed = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"]: item["metadata"]["version"] for item in installed
            if item["metadata"]["name"] != "dataperf-appliance"}


def update(version: str, python: str, extras: list[str], pinned: list[str]) -> list[str]:
    """Writes the file of `version`; the extras it covers."""
    with tempfile.TemporaryDirectory(prefix=f"constraints-{version}-") as scratch:
        covered = list(extras)
        resolved = resolve(python, covered, pinned, Path(scratch))
        for extra in extras:
            if resolved is not None:
                break
            print(f"update_constraints: Python {version}: leaving out the extra {extra!r}", file=sys.stderr)
            covered.remove(extra)
            resolved = resolve(python, covered, pinned, Path(scratch))
        if resolved is None:
            sys.exit(f"update_constraints: the appliance does not resolve on Python {version}")
    lines = sorted((f"{name}=={number}" for name, number in resolved.items()), key=str.lower)
    CONSTRAINTS_DIR.mkdir(exist_ok=True)
    constraints_file(version).write_text(
        f"# Pinned versions of every dependency of the appliance on Python {version} (a pip constraints file).\n"
        f"# Regenerate: scripts/dev/update_constraints.py (see its header).\n"
        f"# extras: {' '.join(covered)}\n" + "".join(f"{line}\n" for line in lines))
    print(f"update_constraints: {constraints_file(version).relative_to(REPO)}: {len(lines)} pins, "
          f"extras {', '.join(covered)}")
    return covered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true")
    parser.add_argument("--python", action="append", default=[], metavar="3.X=PATH")
    args = parser.parse_args(argv)
    given = dict(item.split("=", 1) for item in args.python)
    extras = list(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    reference_pins = [] if args.upgrade else pins(constraints_file(REFERENCE_PYTHON))
    for version in PYTHONS:
        python = given.get(version) or find_python(version)
        if not python:
            sys.exit(f"update_constraints: no Python {version} (python{version} on PATH or pyenv); pass --python")
        update(version, python, extras, reference_pins)
        if version == REFERENCE_PYTHON:
            reference_pins = pins(constraints_file(version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
