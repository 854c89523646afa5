"""The ``task_setup.yml`` of a benchmark, as a file: its names, its schema, its template, its errors.

A leaf: nothing here imports the rest of the package, so every room may use
it. Which model reads a file, and whether its dataset can serve it, is the
track's: `dataperf_appliance.tracks` holds the registry and the entry points
(`parse_task_setup`, `load_task_setup`, `render_task_setup`, ...).

* `loader`: safe YAML with the line of every key (`load_yaml`, `ConfigIssue`, `ConfigError`);
* `names`: the one safe-name rule; `catalog`: the names a user chooses from, and each library
  method's parameters (`library_method_parameters`);
* `types`: bounds, checked names and paths, the sweepable type;
* `setups`: `TaskSetup`, the base of each track's setup model (in its track's module), and their parts;
* `grid`: the cells of a sweep;
* `issues`: pydantic's errors as issues at their lines (`parse_setup`);
* `render`: the Jinja2 templates (`render_template`, `preview`, `apply_overrides`, `yaml_value`).
"""

from dataperf_appliance.config import catalog, grid
from dataperf_appliance.config.grid import MAX_CELLS, Cell, sweep_loc, values
from dataperf_appliance.config.issues import ConfigModel, FieldProblems, parse_setup
from dataperf_appliance.config.loader import MAX_FILE_BYTES, ConfigError, ConfigIssue, Loc, load_yaml, read_config_text
from dataperf_appliance.config.names import is_safe_name
from dataperf_appliance.config.render import (
    METHOD_PARAMS,
    SWEEP_PARAMS,
    apply_overrides,
    preview,
    render_template,
    template_parameters,
    templates_dir,
    yaml_value,
)
from dataperf_appliance.config.setups import (
    SELECTION_DATASET_CSV,
    SELECTION_DIGITS,
    Baseline,
    DebuggingTask,
    MethodFile,
    Paths,
    TaskSetup,
    method_file_problems,
)

__all__ = [
    "MAX_CELLS", "MAX_FILE_BYTES", "METHOD_PARAMS", "SELECTION_DATASET_CSV", "SELECTION_DIGITS", "SWEEP_PARAMS",
    "Baseline", "Cell", "ConfigError", "ConfigIssue", "ConfigModel", "DebuggingTask",
    "FieldProblems", "Loc", "MethodFile", "Paths", "TaskSetup", "apply_overrides", "catalog", "grid",
    "is_safe_name", "load_yaml", "method_file_problems", "parse_setup", "preview", "read_config_text", "render_template", "sweep_loc",
    "template_parameters", "templates_dir", "values", "yaml_value",
]
