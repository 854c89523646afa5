"""From pydantic's errors to `ConfigIssue`s at their lines, and the parse of a file into a setup model.

`parse_setup` runs the first two layers of checking: `loader.load_yaml`
(syntax and safety) and the setup model of the file's ``track`` (keys, types,
ranges, names, cross-field rules). Each pydantic error's ``loc`` is looked up in
the positions the loader recorded, so every problem names its file, line,
column and field. The third layer, the setup against its dataset, belongs to
each track (`dataperf_appliance.tracks`).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from dataperf_appliance.config.loader import ConfigError, ConfigIssue, Loc, YamlDocument, format_loc, load_yaml


class ConfigModel(BaseModel):
    """A mapping of a configuration file: frozen, and an unknown key is an error (with a hint, see
    `unknown_key_hint`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Top-level keys only this model has: a file without ``track`` that has them is told to add it.
    IDENTIFYING_KEYS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def unknown_key_hint(cls, key: str, value: Any) -> str | None:
        """A few words after "unknown key ...; allowed here: ..." for `key` given `value`, or None."""
        return None


class FieldProblems(ValueError):
    """Raised by a model validator for problems of several fields at once.

    `problems` holds (loc relative to the model, message) pairs, so each can be
    reported at its own line; str() lists them for a caller of the model itself.
    """

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{format_loc(loc)}: {message}" for loc, message in problems))



def shown(value: Any) -> str:
    if value is None:
        return "null (nothing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {shorten(value, 40)!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"



def shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_TYPE_MESSAGES = {
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "model_type": "must be a mapping (key: value lines)",
    "dict_type": "must be a mapping (key: value lines)",
    "model_attributes_type": "must be a mapping (key: value lines)",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "finite_number": "must be a finite number",
}


def _unwrap(annotation: Any) -> Any:
    """The model type inside Annotated[...], X | None, tuple[X, ...] and list[X], if any."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is None:
            return annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None) and a is not Ellipsis]
        if origin is Annotated or origin in (tuple, list, typing.Union, types.UnionType):
            if not args:
                return None
            annotation = args[0]
        else:
            return annotation


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class of the mapping at `loc` under `model`, or None if it is not a model."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # the item type was reached when its list field was unwrapped
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = _unwrap(current.model_fields[part].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unknown_key_message(model: type[BaseModel], loc: Loc, value: Any = None) -> str:
    key = str(loc[-1])
    owner = _model_at(model, loc[:-1])
    if owner is None:
        return f"unknown key {key!r}"
    allowed = list(owner.model_fields)
    text = f"unknown key {shorten(key)!r}; allowed here: {', '.join(allowed)}"
    hint = owner.unknown_key_hint(key, value) if issubclass(owner, ConfigModel) else None
    if hint:
        return f"{text} ({hint})"
    close = difflib.get_close_matches(key, allowed, n=1)
    return text + (f" (did you mean {close[0]!r}?)" if close else "")


def error_message(error: dict, model: type[BaseModel] | None) -> str:
    kind, loc = error["type"], tuple(error["loc"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden" and model is not None:
        return _unknown_key_message(model, loc, error.get("input"))
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[kind]}, got {shown(error.get('input'))}"
    if kind == "too_short" and error.get("ctx", {}).get("min_length") == 1:
        return "must not be empty"
    return (error["msg"].replace("Input should be", "must be").replace("List should have", "must have")
            .replace("Tuple should have", "must have").replace(" after validation", ""))


def validation_issues(error: ValidationError, document: YamlDocument, model: type[BaseModel]) -> list[ConfigIssue]:
    """Every pydantic error of validating `document` with `model`, as ConfigIssues at their lines."""
    errors = error.errors()
    # A list whose items failed is also "too short after validation" (the
    # failed items do not count): that says nothing new, so it is dropped.
    failed_inside = {tuple(e["loc"][:end]) for e in errors for end in range(len(e["loc"]))}
    issues = []
    for item in errors:
        # pydantic marks a mapping key that failed with a "[key]" part; the key itself is the place.
        loc = tuple(part for part in item["loc"] if part != "[key]")
        if item["type"] == "too_short" and loc in failed_inside:
            continue
        context_error = item.get("ctx", {}).get("error")
        if isinstance(context_error, FieldProblems):
            issues += [document.issue(loc + sub_loc, message) for sub_loc, message in context_error.problems]
        else:
            issues.append(document.issue(loc, error_message(item, model)))
    return issues


def parse_setup(text: str, models: Mapping[str, type[ConfigModel]], *, default_track: str,
                filename: str = "task_setup.yml",
                problems_of: Callable[[Any], list[tuple[Loc, str]]] | None = None) -> ConfigModel:
    """The setup model of `text`: the model of its ``track`` in `models` (none: `default_track`'s).

    `problems_of(setup)` adds the problems found beyond the model, e.g. the
    setup against its dataset, as (loc, message) pairs reported at their lines.

    Raises ConfigError listing every problem found, each with its line,
    column and field. Read-only: nothing is written anywhere.
    """
    document = load_yaml(text, filename=filename)
    issues = list(document.issues)
    if "track" not in document.data:
        for track, model in models.items():
            found = [key for key in model.IDENTIFYING_KEYS if key in document.data]
            if track != default_track and found:
                # A file without `track` is the default track's (the reference's debugging files have none); a
                # file of another track that forgot it would otherwise get a dozen unknown-key errors.
                line, column = document.position((found[0],))
                raise ConfigError(issues + [ConfigIssue(document.filename, line, column, "track", (
                    f"no track: a file without one is the {default_track} track's, but this one has the {track} "
                    f"track's {' and '.join(found)}; add the line 'track: {track}'"))])
    track = document.data.get("track", default_track)
    model = models.get(track) if isinstance(track, str) else None
    if model is None:
        raise ConfigError(issues + [document.issue(("track",), f"unknown track {track!r}; choose one of: "
                                                               f"{', '.join(models)}")])
    try:
        setup = model.model_validate(document.data)
    except ValidationError as error:
        raise ConfigError(issues + validation_issues(error, document, model)) from None
    if problems_of is not None:
        issues += [document.issue(loc, text) for loc, text in problems_of(setup)]
    if issues:
        raise ConfigError(issues)
    return setup
