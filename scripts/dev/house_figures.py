"""The house's figures, for a before/after note on a refactoring: modules and internal imports of the package,
its top level, module names used twice, the Track record's members, lines of code, Terraform's instance
definitions and the duplicated blocks (the `duplicates` command, when it is on the PATH).

Usage: python scripts/dev/house_figures.py [REPO]   (default: this repository)
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = "dataperf_appliance"


def module_names(package_dir: Path) -> dict[str, Path]:
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def internal_imports(modules: dict[str, Path]) -> set[tuple[str, str]]:
    """(importer, imported) pairs between the package's modules, relative imports resolved."""
    edges = set()
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = (".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                        if node.level else node.module or "")
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in modules:  # a name imported from a module counts as that module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add((name, target))
    return edges


def track_members(protocol: Path) -> int:
    """Fields, properties and methods of the classes of tracks/protocol.py and tracks/engine.py named Track or
    Stages (the stages a track's engine module provides)."""
    count = 0
    for path in (protocol, protocol.with_name("engine.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name in ("Track", "Stages"):
                count += sum(isinstance(item, (ast.AnnAssign, ast.FunctionDef)) for item in node.body)
    return count


def main(repo: Path) -> None:
    package_dir = repo / PACKAGE
    modules = module_names(package_dir)
    top = [p for p in package_dir.iterdir()
           if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()]
    stems: dict[str, int] = {}
    for path in modules.values():
        if path.name != "__init__.py" and "library" not in path.parts:
            stems[path.stem] = stems.get(path.stem, 0) + 1
    python = [p for folder in (PACKAGE, "dags", "ui", "scripts") for p in (repo / folder).rglob("*.py")]
    terraform = list((repo / "terraform").rglob("*.tf"))
    instances = sum(p.read_text().count('resource "aws_instance"') for p in terraform)
    print(f"package modules: {len(modules)}, internal imports: {len(internal_imports(modules))}")
    print(f"top level: {sum(p.suffix == '.py' for p in top)} modules, {sum(p.is_dir() for p in top)} packages")
    print(f"module names used twice or more: {({s: n for s, n in stems.items() if n > 1}) or 'none'}")
    print(f"Track and Stages members: {track_members(package_dir / 'tracks' / 'protocol.py')}")
    print(f"lines of Python (package, dags, ui, scripts): {sum(len(p.read_text().splitlines()) for p in python)}")
    print(f"lines of Terraform: {sum(len(p.read_text().splitlines()) for p in terraform)}, "
          f"aws_instance resources: {instances}")
    if shutil.which("duplicates"):
        done = subprocess.run(["duplicates", "--repo", str(repo), "--seconds", "120"], capture_output=True, text=True)
        print(f"duplicates: {done.stdout.splitlines()[0] if done.stdout else done.stderr.strip()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
