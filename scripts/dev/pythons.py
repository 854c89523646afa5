#!/usr/bin/env python3
"""The Pythons the appliance supports, and where this machine has each.

Usage: scripts/dev/pythons.py              the supported versions, one a line
       scripts/dev/pythons.py 3.X          the path of a Python 3.X: pyenv's newest 3.X (~/.pyenv/versions/3.X.*),
                                       else python3.X on PATH; exit 1 when there is none
Standard library only (scripts/test.sh and scripts/dev/update_constraints.py use it).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

#: pyproject.toml's requires-python says the same; constraints/python-3.X.txt pins each.
PYTHONS = ("3.11", "3.12", "3.13")


def find_python(version: str) -> str | None:
    """pyenv's newest 3.X, else python3.X on PATH (not pyenv's shims: they run only the selected versions)."""
    candidates = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python"),
                        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parts[-3])])
    if candidates:
        return str(candidates[-1])
    path = os.pathsep.join(folder for folder in os.environ.get("PATH", "").split(os.pathsep)
                           if not folder.endswith("/shims"))
    return shutil.which(f"python{version}", path=path)


def main(argv: list[str]) -> int:
    if not argv:
        print("\n".join(PYTHONS))
        return 0
    found = find_python(argv[0])
    if not found:
        print(f"pythons: no Python {argv[0]} (python{argv[0]} on PATH, or pyenv's)", file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
