"""Writing a ``task_setup.yml`` from parameters: defaults, ``--set`` overrides, the Jinja2 template.

The parameters of a track are one dict, flat but for ``method_params``, that a
form or the command line fills naturally, for the debugging track::

    {"track": "debugging", "dataset": "digits", "model": "logistic_regression", "seed": 0, "repeats": 6,
     "eval_points": None, "dim": None, "tasks": ["digit-3", "digit-8", "digit-9"],
     "train_size": 200, "val_size": 40, "test_size": 100, "noise_level": 0.3,
     "strategies": ["random", "knn_shapley", "confident_learning", "loss"], "submissions": [], "methods": [],
     "method_params": {"data_oob": {"n_estimators": 800, "max_features": "sqrt", "n_jobs": 1}, ...}}

(``method_params``: the parameters of the libraries' methods, their
constructors' defaults, written under each one chosen in ``strategies``) and
for the selection track (``emb_file``, ``train_csv`` and ``test_parquet``
are patterns: ``{task}`` and ``{dim}`` become each task's name and the
embedding length)::

    {"track": "selection", "dataset": "digits", "model": "logistic_regression", "seed": 0, "repeats": 1,
     "dim": 128, "emb_file": "embeddings/train_emb_{dim}_dataperf.parquet", "train_size": 100,
     "test_size": 100, "tasks": ["digit-0", "digit-3", "even-odd"],
     "train_csv": "train_sets/random_500_{task}.csv", "test_parquet": "test_sets/alpha_test_set_{task}_{dim}.parquet",
     "strategies": ["random", "balanced_random", "uncertainty", "diversity"], "submissions": [],
     "results_dir": "results"}

Every task gets the same sizes and noise level; a user who wants them to
differ edits the YAML. ``train_size``, ``noise_level`` and ``model`` may be
lists (a sweep, see `dataperf_appliance.stages.sweeps`). `render_task_setup` fills
the track's template and validates the result, so it never
returns a file that `parse_task_setup` would refuse.

Every ``{{ expression }}`` of a template is written through `yaml_value` (the
Jinja2 environment's ``finalize``): a value always becomes one YAML scalar or
flow list, so no parameter, however strange, can add keys or items to the file.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta

from dataperf_appliance.config.loader import ConfigError, load_yaml

#: Environment variable naming the folder of the templates (default: ``templates/`` of the repository).
TEMPLATES_DIR_ENV = "APPLIANCE_TEMPLATES_DIR"

#: Parameters that may be given a list of values (a sweep) although their default is one value.
SWEEP_PARAMS = frozenset({"train_size", "noise_level", "model"})
#: The parameter of the methods' parameters, {method: {parameter: value}}: a template writes a chosen method's
#: under its entry (the debugging track's defaults hold every library method's, `catalog.library_method_defaults`).
METHOD_PARAMS = "method_params"


# --- overrides ------------------------------------------------------------------------------

def _parse_override(raw: str, assignment: str) -> Any:
    text = raw.strip()
    if not text:
        return None
    try:
        return load_yaml(text, filename="--set", mapping=False).data
    except ConfigError as error:
        raise ValueError(f"{assignment!r}: the value is not valid YAML: {error.issues[0].message}") from None


def _as_name(value: Any, raw: str, assignment: str) -> str | None:
    if isinstance(value, str) or value is None:  # null (or nothing) stays null: train_csv=null
        return value
    if isinstance(value, (list, dict)):
        raise ValueError(f"{assignment!r}: expected a single value, got a {type(value).__name__}")
    # `dataset=2023` means the folder "2023", not the number: keep what was typed.
    return raw.strip()


def _as_names(value: Any, raw: str, assignment: str) -> list[str]:
    if isinstance(value, str):  # tasks=digit-3,digit-4
        return [part.strip() for part in value.split(",") if part.strip()]
    if value is None:
        return []
    if isinstance(value, list):  # tasks=[digit-3, digit-4]
        return [_as_name(item, str(item), assignment) for item in value]
    return [_as_name(value, raw, assignment)]


def _changed(current: Any, path: list[str], value: Any, raw: str | None, assignment: str, where: str) -> Any:
    """`current` with `value` at the dotted `path` below it (`where` names the place in messages). A mapping
    given for a mapping changes only the keys it names. Every key must exist: a misspelt one is an error, not a
    new key. At the end of a path, a text value keeps the `raw` text typed (as `_as_name`)."""
    if path:
        if not isinstance(current, Mapping):
            raise ValueError(f"{assignment!r}: {where} is not a mapping")
        head, *rest = path
        if head not in current:
            known = ", ".join(map(str, current)) or "none"
            raise ValueError(f"{assignment!r}: unknown key {head!r} in {where}; known keys: {known}")
        return {**current, head: _changed(current[head], rest, value, raw, assignment, f"{where}.{head}")}
    if isinstance(current, Mapping):
        if not isinstance(value, Mapping):
            raise ValueError(f"{assignment!r}: {where} is a mapping: give a mapping ({where}={{key: value}}) or "
                             f"set one of its values ({where}.KEY=VALUE)")
        for key, item in value.items():
            current = _changed(current, [key], item, None, assignment, where)
        return current
    if isinstance(current, str) and raw is not None:
        return _as_name(value, raw, assignment)
    return value


def apply_overrides(params: Mapping[str, Any], assignments: list[str], *,
                    defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A copy of `params` with each ``key=value`` of `assignments` applied, in order.

    A value is read as YAML (``seed=3``, ``noise_level=0.2``, ``eval_points=null``,
    ``tasks=[digit-3, digit-4]``); an empty value means null. A key whose
    default is a list takes a YAML list or a comma-separated text
    (``tasks=digit-3,digit-4``); a key whose default is text keeps the text
    typed (``dataset=2023``). ``train_size=150`` sets the size of every task.
    ``train_size``, ``noise_level`` and ``model`` also take a list, a sweep
    (``train_size=[50, 100, 200]`` or ``model=knn,mlp``). A value inside a
    mapping is set by its dotted path (``method_params.data_oob.n_estimators=50``),
    or a mapping changes the keys it names (``method_params={data_oob:
    {n_estimators: 50}}``). The values are checked when the file is rendered.

    `defaults` (the track's default parameters) tell each key's kind; without
    them, the kinds of `params` do.

    Raises ValueError for an assignment without '=', an unknown key (naming
    it and the known ones, also inside a mapping), a value that is not YAML,
    or a change of track.
    """
    result = copy.deepcopy(dict(params))
    defaults = defaults or {}
    for assignment in assignments:
        target, sep, raw = assignment.partition("=")
        key, *path = target.strip().split(".")
        if not sep or not key:
            raise ValueError(f"{assignment!r} is not KEY=VALUE (for example seed=3)")
        if key not in result:
            raise ValueError(f"unknown parameter {key!r} in {assignment!r}; known parameters: {', '.join(result)}")
        value = _parse_override(raw, assignment)
        kind = defaults.get(key, result[key])
        if path or isinstance(kind, Mapping):
            result[key] = _changed(result[key], path, value, raw, assignment, key)
            continue
        if key in SWEEP_PARAMS and isinstance(value, str) and "," in value:
            value = [_parse_override(part, assignment) for part in raw.split(",")]  # model=knn,mlp
        if key in SWEEP_PARAMS and isinstance(value, list):
            if isinstance(kind, str):
                value = _as_names(value, raw, assignment)
        elif isinstance(kind, list):
            value = _as_names(value, raw, assignment)
        elif isinstance(kind, str):
            value = _as_name(value, raw, assignment)
        if key == "track" and value != result["track"]:
            raise ValueError(f"{assignment!r}: the track cannot be changed by an override; "
                             f"start from default_params({value!r})")
        result[key] = value
    return result


# --- rendering ------------------------------------------------------------------------------

# A text written without quotes must read back as the same text both in YAML
# 1.2 (ruamel.yaml, ours) and in YAML 1.1 (PyYAML, the DataPerf reference):
# starting with a letter rules out numbers, dates, '-', '.inf' and indicators,
# and these words are the booleans and null of either version.
_PLAIN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")
_RESERVED_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _double_quoted(text: str) -> str:
    # JSON's escapes are valid in YAML double quotes. Everything from DEL up is
    # escaped too: YAML forbids some of it raw (DEL, C1 controls) and reads
    # NEL and the line/paragraph separators as line breaks; and a character
    # beyond the BMP needs YAML's \U escape (JSON would write a surrogate pair,
    # which YAML reads as two separate characters).
    return "".join(
        char if ord(char) < 0x7F else f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"
        for char in json.dumps(text, ensure_ascii=False))


def yaml_value(value: Any) -> str:
    """`value` written as one YAML flow value that reads back equal (YAML 1.1 and 1.2).

    None, bool, numbers, text, lists/tuples and mappings with text keys.
    Text is plain when that is unambiguous (``digit-0``, ``embeddings/``) and
    double-quoted with JSON escapes otherwise, so it cannot start a comment,
    a key or a new line. Raises TypeError for any other type.
    """
    if isinstance(value, jinja2.Undefined):
        str(value)  # a StrictUndefined raises UndefinedError, naming the variable
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return ".nan"
        if math.isinf(number):
            return ".inf" if number > 0 else "-.inf"
        text = repr(number)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:
            # YAML 1.1 (the reference's PyYAML) reads 1e-05 as text; 1.0e-05 is a float in both.
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, str):
        if _PLAIN_TEXT.fullmatch(value) and value.lower() not in _RESERVED_WORDS:
            return value
        return _double_quoted(value)
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"cannot write a mapping key of type {type(key).__name__} into YAML")
        return "{" + ", ".join(f"{yaml_value(k)}: {yaml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write a value of type {type(value).__name__} into YAML")


def templates_dir() -> Path:
    """The folder of the templates: $APPLIANCE_TEMPLATES_DIR, else ``templates/`` beside the package."""
    configured = os.environ.get(TEMPLATES_DIR_ENV)
    if configured:
        return Path(configured)
    # The package is installed editable: <repository>/dataperf_appliance/config/render.py.
    return Path(__file__).resolve().parents[2] / "templates"


def fill(pattern: Any, **fields: Any) -> Any:
    """`pattern` with every ``{name}`` replaced by ``str(fields[name])`` (``{task}``, ``{dim}``); a value that
    is not text (null, a number) is returned unchanged, for the schema to judge."""
    if not isinstance(pattern, str):
        return pattern
    for name, value in fields.items():
        pattern = pattern.replace("{" + name + "}", str(value))
    return pattern


def _environment(folder: Path) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # YAML, not HTML: escaping is yaml_value's job
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=yaml_value,
    )
    environment.filters["fill"] = fill
    return environment


def template_parameters(template: str) -> set[str]:
    """The names of the parameters the template `template` (a file in the templates folder) uses."""
    environment = _environment(templates_dir())
    source, _, _ = environment.loader.get_source(environment, template)
    return meta.find_undeclared_variables(environment.parse(source))


def render_template(template: str, params: Mapping[str, Any], *, defaults: Mapping[str, Any]) -> str:
    """The text the template `template` writes for `params` (not validated: the track's parse does that).

    Raises ValueError naming every missing or unknown parameter, or a list
    parameter (a list in `defaults`) given as something else; TypeError for
    a value that YAML cannot hold.
    """
    needed = template_parameters(template)
    missing, unknown = sorted(needed - params.keys()), sorted(map(str, params.keys() - needed))
    if missing:
        raise ValueError(f"missing template parameter(s) of {template}: {', '.join(missing)}")
    if unknown:
        raise ValueError(f"unknown template parameter(s) for {template}: {', '.join(unknown)}")
    for key, default in defaults.items():
        if isinstance(default, list) and key in params and not isinstance(params[key], (list, tuple)):
            raise ValueError(f"parameter {key!r} must be a list of names, got {type(params[key]).__name__}")
        if isinstance(default, Mapping) and key in params and not isinstance(params[key], Mapping):
            raise ValueError(f"parameter {key!r} must be a mapping, got {type(params[key]).__name__}")
    try:
        return _environment(templates_dir()).get_template(template).render(**params)
    except jinja2.UndefinedError as error:
        raise ValueError(f"{template}: {error.message}") from None


def preview(template: str, params: Mapping[str, Any]) -> str | None:
    """The text `params` render to, valid or not, for a form to show beside its errors; None when the
    template cannot be filled at all (a missing parameter, a value YAML cannot hold)."""
    try:
        return _environment(templates_dir()).get_template(template).render(**params)
    except (jinja2.TemplateError, TypeError, ValueError):
        return None
