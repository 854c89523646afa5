"""The rules of the house (docs/architecture.md), checked on the source: who may import whom.

Every import counts, at the top of a module or inside a function (a lazy
import that would close a circle is still a circle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import REPO_ROOT

PACKAGE = "dataperf_appliance"
PACKAGE_DIR = REPO_ROOT / PACKAGE
#: The one module of the package that talks to Airflow (importing it lazily).
AIRFLOW_GATEWAY = f"{PACKAGE}.orchestration.airflow_gateway"
#: Airflow's own plugin: the executor Airflow's scheduler loads by name (AIRFLOW__CORE__EXECUTOR). It imports
#: Airflow, and nothing of the package imports it.
AIRFLOW_EXECUTOR = f"{PACKAGE}.orchestration.airflow_executor"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The modules `name` imports (absolute names), at any depth of its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES}
            # `from package import module` imports that module; the package only for the names it defines
            # (its __init__ runs first anyway, as the parent of the module).
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(target)
    return found


GRAPH = {name: {target for target in imports_of(name) if target in MODULES and target != name} for name in MODULES}


def test_the_engine_imports_neither_airflow_nor_streamlit():
    offenders = {name: sorted(t for t in imports_of(name) if t.split(".")[0] in {"airflow", "streamlit"})
                 for name in MODULES if name not in (AIRFLOW_GATEWAY, AIRFLOW_EXECUTOR)}
    assert {name: found for name, found in offenders.items() if found} == {}
    assert [name for name in MODULES if AIRFLOW_EXECUTOR in GRAPH[name]] == []


def test_config_is_a_leaf():
    inside = f"{PACKAGE}.config"
    outside = {name: sorted(t for t in GRAPH[name] if t != inside and not t.startswith(inside + "."))
               for name in MODULES if name == inside or name.startswith(inside + ".")}
    assert {name: found for name, found in outside.items() if found} == {}
    assert len(outside) >= 6, "the config package's modules were not found"


def test_there_is_no_import_circle():
    # Depth-first search for a back edge; a circle is reported as its path.
    state: dict[str, int] = {}
    circles = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [name, target] if target in path else [name, target])
            elif target not in state:
                visit(target, path + [name])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [])
    assert circles == []


#: The package's top level, lowest layer first (docs/architecture.md, "The rooms"): a layer imports only
#: the layers before it (the interface triggers runs through the orchestration's Airflow gateway).
LAYERS = ("config", "engine", "tracks", "stages", "orchestration", "interface")


def _layer(name: str) -> str:
    return name.split(".")[1]


def test_the_top_level_holds_only_the_layers():
    top = {path.stem for path in PACKAGE_DIR.iterdir()
           if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").exists()}
    assert top == set(LAYERS)


def test_each_layer_imports_only_the_layers_below_it():
    # The engine never reaches up to the tracks, the stages never to Airflow or the pages, and so on.
    reaching_up = {}
    for name in MODULES:
        if name == PACKAGE:
            continue
        level = LAYERS.index(_layer(name))
        up = sorted(t for t in GRAPH[name] if t != PACKAGE and LAYERS.index(_layer(t)) > level)
        if up:
            reaching_up[name] = up
    assert reaching_up == {}


def test_no_two_modules_share_a_name():
    # A module's name alone says which one it is (in a traceback, a search, a conversation).
    stems: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        if path.name != "__init__.py" and "library" not in path.parts:
            stems.setdefault(path.stem, []).append(name)
    assert {stem: names for stem, names in stems.items() if len(names) > 1} == {}


def _documentation(tree: ast.AST) -> set[int]:
    """The ids of the string constants that document: docstrings, and any string standing alone as a statement."""
    return {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def _track_names(path: Path) -> list[str]:
    """Where `path` spells a registered track's name as a string, in any position: compared, assigned, a dict key,
    a default, a label, an argument, a Literal. Docstrings and comments are prose, and a subpackage in an import
    (``dataperf_appliance.engine.debugging``) is a module, not a track's name."""
    from dataperf_appliance.tracks import TRACKS

    tree = ast.parse(path.read_text())
    prose = _documentation(tree)
    lines = sorted(node.lineno for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and node.value in TRACKS and id(node) not in prose)
    return [f"{path.relative_to(REPO_ROOT)}:{line}" for line in lines]


@pytest.mark.parametrize("folder", [PACKAGE, "dags", "ui"])
def test_no_track_name_outside_the_tracks(folder):
    # A track's facts live in its module under tracks/; everything else asks the track (track_of).
    tracks = PACKAGE_DIR / "tracks"
    found = [where for path in sorted((REPO_ROOT / folder).rglob("*.py")) if tracks not in path.parents
             for where in _track_names(path)]
    assert found == []


PROBE = '''"""A module about the selection track and debugging."""
from dataperf_appliance.engine.debugging import debugging_task
import dataperf_appliance.engine.selection
if setup.track == "selection":
    pass
kind = "debugging"
LABELS = {"selection": "pick a training set"}
def default(track="debugging"):
    """The debugging track's default."""
    return label("selection", Literal["debugging"])
'''


def test_the_scan_finds_a_track_name_in_any_position(tmp_path):
    # The check above must be able to fail: once per spelling of a name below the docstring and the imports.
    probe = REPO_ROOT / "tests" / f"_probe_{tmp_path.name}.py"
    probe.write_text(PROBE)
    try:
        assert [where.rpartition(":")[2] for where in _track_names(probe)] == ["4", "6", "7", "8", "10", "10"]
    finally:
        probe.unlink()


#: What runs in a method's own environment (often without the appliance installed): the child process and the
#: modules it provides to a method file.
METHOD_SIDE = [f"{PACKAGE}.engine.methods.child", f"{PACKAGE}.engine.methods.shim.appraiser",
               f"{PACKAGE}.engine.methods.shim.method_parameters"]


@pytest.mark.parametrize("name", METHOD_SIDE)
def test_the_method_side_needs_only_the_standard_library_and_numpy(name):
    import sys

    allowed = set(sys.stdlib_module_names) | {"numpy"}
    assert sorted(t for t in imports_of(name) if t.split(".")[0] not in allowed) == []
