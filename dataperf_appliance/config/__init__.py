"""The ``task_setup.yml`` of a benchmark: render it, load it safely, check it.

A file is rendered from the track's template (``templates/debugging_task_setup.yml.j2``,
``templates/selection_task_setup.yaml.j2``) with a flat dict of parameters
(`default_params`, `apply_overrides`, `render_task_setup`), and read back with
`load_task_setup` / `parse_task_setup`, which return a frozen pydantic model
(`DebuggingSetup` or `SelectionSetup`, by the file's ``track``) or raise
`ConfigError` listing every problem as a `ConfigIssue` with its line, column
and field. Checking never writes anything.

Example::

    >>> from dataperf_appliance.config import apply_overrides, default_params, parse_task_setup, render_task_setup
    >>> params = apply_overrides(default_params("debugging"), ["noise_level=0.2", "tasks=digit-3,digit-8"])
    >>> setup = parse_task_setup(render_task_setup(params))
    >>> [task.data_id for task in setup.tasks]
    ['digit-3', 'digit-8']
"""

from .loader import MAX_FILE_BYTES, ConfigError, ConfigIssue, load_yaml
from .render import (
    apply_overrides,
    default_params,
    render_and_parse,
    render_task_setup,
    template_parameters,
    templates_dir,
    yaml_value,
)
from .schema import (
    DEFAULT_TRACK,
    MAX_GRID_CELLS,
    SETUP_MODELS,
    Baseline,
    DebuggingSetup,
    DebuggingTask,
    Paths,
    SelectionSetup,
    TaskSetup,
    load_task_setup,
    parse_task_setup,
)

__all__ = [
    "DEFAULT_TRACK", "MAX_FILE_BYTES", "MAX_GRID_CELLS", "SETUP_MODELS", "Baseline", "ConfigError", "ConfigIssue",
    "DebuggingSetup", "DebuggingTask", "Paths", "SelectionSetup", "TaskSetup", "apply_overrides", "default_params",
    "load_task_setup", "load_yaml", "parse_task_setup", "render_and_parse", "render_task_setup",
    "template_parameters", "templates_dir", "yaml_value",
]
