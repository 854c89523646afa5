"""Safe YAML loading that remembers where every key and item was written.

A configuration file comes from a user (a browser upload, a CLI argument), so
it is treated as hostile:

* it is read only when it is at most `MAX_FILE_BYTES` (checked before reading);
* every event of the YAML stream is checked *before* anything is built: only
  the JSON-compatible standard tags (``!!str``, ``!!int``, ``!!float``,
  ``!!bool``, ``!!null``, ``!!map``, ``!!seq``) are accepted, nesting is
  bounded by `MAX_DEPTH` and the number of values, counting every expansion
  of an alias, by `MAX_NODES` ("billion laughs" documents fail after a few
  hundred events, using little memory);
* only then is it loaded with ruamel.yaml's round-trip loader, which never
  builds Python objects from tags and keeps the line and column of each key
  and item, and converted to plain ``dict``/``list``/``str``/``int``/
  ``float``/``bool``/``None`` data plus a table of positions.

Every problem is a `ConfigIssue` (file, line, column, field, message); a
document that cannot be read raises `ConfigError` with them. Nothing here
writes to disk.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
)
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

#: Largest configuration file accepted, in bytes (1 MiB).
MAX_FILE_BYTES = 2**20
#: Most values (scalars, mappings, sequences) a document may hold, every
#: alias counted as the values it expands to.
MAX_NODES = 10_000
#: Deepest nesting of mappings and sequences accepted. ruamel.yaml's scanner
#: is quadratic in the depth of flow collections, so depth is bounded early.
MAX_DEPTH = 32

#: Longest integer accepted, in characters: Python refuses to read one of more than 4,300 digits, and
#: no setting needs more than a few (a seed has at most 10).
MAX_INTEGER_CHARS = 100
#: What YAML 1.2 (ruamel.yaml's default) reads as an integer.
_INTEGER = re.compile(r"[-+]?[0-9_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+")
_INT_TAG = "tag:yaml.org,2002:int"

#: The standard tags a document may spell out: the JSON-compatible core schema.
ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)

#: Where a value sits in a document: keys (str) and list indices (int) from the top.
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem of a configuration file.

    `line` and `column` are 1-based and None when unknown; `field` is the
    dotted path of the value concerned (``tasks[0].train_size``) or None for
    a problem of the file as a whole.
    """

    file: str
    line: int | None
    column: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [where, self.field, self.message]
        return ": ".join(part for part in parts if part)


class ConfigError(ValueError):
    """A configuration file was rejected; `issues` lists every problem found, in file order."""

    #: At most this many issues are spelled out by str(); `issues` keeps all of them.
    MAX_SHOWN = 50

    def __init__(self, issues: list[ConfigIssue] | tuple[ConfigIssue, ...]) -> None:
        if not issues:
            raise ValueError("a ConfigError needs at least one issue")
        # Problems with a line first, in file order; the rest keep their order after them.
        self.issues: list[ConfigIssue] = sorted(
            issues, key=lambda i: (i.line is None, i.line or 0, i.column or 0))
        super().__init__(self.issues)

    def __str__(self) -> str:
        shown = [str(issue) for issue in self.issues[: self.MAX_SHOWN]]
        hidden = len(self.issues) - len(shown)
        if hidden:
            shown.append(f"... and {hidden} more problem(s)")
        return "\n".join(shown)

    def __reduce__(self):  # so a worker process can send it back pickled
        return type(self), (self.issues,)


def format_loc(loc: Loc) -> str | None:
    """``("tasks", 0, "train_size")`` -> ``"tasks[0].train_size"``; () -> None."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


@dataclass(frozen=True)
class YamlDocument:
    """A loaded document: plain data, where each of its keys and items was written, and soft problems.

    `positions` maps the location of every mapping key and sequence item to
    its 1-based (line, column). `issues` are problems that do not stop the
    check of the rest (a key that is not text, for instance).
    """

    data: Any
    positions: Mapping[Loc, tuple[int, int]]
    filename: str
    issues: list[ConfigIssue] = field(default_factory=list)

    def position(self, loc: Loc) -> tuple[int | None, int | None]:
        """The position of `loc`, or of its nearest written ancestor; (None, None) if none is known."""
        for end in range(len(loc), 0, -1):
            found = self.positions.get(tuple(loc[:end]))
            if found:
                return found
        return None, None

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        """A ConfigIssue about the value at `loc`, placed at the line of that value."""
        line, column = self.position(loc)
        return ConfigIssue(self.filename, line, column, format_loc(loc), message)


def _issue_at(filename: str, mark, message: str, loc: Loc = ()) -> ConfigIssue:
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return ConfigIssue(filename, line, column, format_loc(loc), message)


# ruamel.yaml's messages speak of tokens; these say what a user most likely did.
_SYNTAX_HINTS = (
    ("expected <block end>", ": the indentation is inconsistent"),
    ("mapping values are not allowed", ": quote a value that contains ': ', or fix the indentation"),
    ("found character '\\t'", ": indent with spaces, not tabs"),
)


def _syntax_issue(filename: str, error: YAMLError, text: str) -> ConfigIssue:
    """A plain one-line message at the position ruamel.yaml points to."""
    if isinstance(error, ReaderError):
        # Raised for characters YAML forbids (NUL, most control characters).
        position = error.position
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        character = chr(error.character) if isinstance(error.character, int) else error.character
        return ConfigIssue(filename, line, column, None,
                           f"character {character!r} is not allowed in YAML ({error.reason})")
    if isinstance(error, DuplicateKeyError):
        # ruamel's context is the mapping's start, the problem names the key and both values.
        message = (error.problem or "duplicate key").strip().replace("found duplicate key", "duplicate key")
        return _issue_at(filename, error.problem_mark, message)
    if isinstance(error, MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = (error.problem or error.context or "invalid YAML").strip()
        if problem.startswith("but found another document"):
            return _issue_at(filename, mark, "a second document starts here ('---'); "
                                             "a task setup is a single document")
        message = problem + next((hint for start, hint in _SYNTAX_HINTS if problem.startswith(start)), "")
        if error.context and error.problem and error.context_mark is not None:
            message += f" ({error.context.strip()} at line {error.context_mark.line + 1})"
        return _issue_at(filename, mark, message)
    return ConfigIssue(filename, None, None, None, f"invalid YAML: {error}")


def _check_events(text: str, filename: str) -> None:
    """Walk the YAML event stream once; raise ConfigError at the first unsafe or malformed construct.

    Counting expanded values here, before anything is built, is what keeps an
    alias bomb cheap: each anchor's size is known when its node ends, and an
    alias adds that size without expanding anything.
    """
    anchor_sizes: dict[str, int] = {}
    open_collections: list[tuple[str | None, int]] = []  # (anchor, node count at its start)
    nodes = 0
    children: list[list] = []  # per open collection: [is a mapping, values seen in it]
    try:
        for event in YAML(typ="rt").parse(io.StringIO(text)):
            if isinstance(event, NodeEvent) and children:
                in_mapping, seen = children[-1]
                if in_mapping and seen % 2 == 0 and isinstance(event, CollectionStartEvent):
                    # ruamel cannot even hold such a key (it is unhashable); refuse it plainly.
                    raise ConfigError([_issue_at(filename, event.start_mark,
                                                 "a mapping key must be plain text, not a list or mapping")])
                children[-1][1] += 1
            if isinstance(event, NodeEvent):
                if not isinstance(event, AliasEvent) and event.anchor is not None:
                    if event.anchor in anchor_sizes or any(a == event.anchor for a, _ in open_collections):
                        raise ConfigError([_issue_at(filename, event.start_mark,
                                                     f"anchor &{event.anchor} is defined twice")])
                tag = getattr(event, "tag", None)
                if tag is not None and str(tag) not in ALLOWED_TAGS:
                    raise ConfigError([_issue_at(
                        filename, event.start_mark,
                        f"tag {str(tag).replace('tag:yaml.org,2002:', '!!')} is not allowed: only plain "
                        "values (text, numbers, true/false, null, lists and mappings) may be used")])
            if isinstance(event, AliasEvent):
                if any(anchor == event.anchor for anchor, _ in open_collections):
                    raise ConfigError([_issue_at(filename, event.start_mark,
                                                 f"alias *{event.anchor} refers to a value that contains it")])
                nodes += anchor_sizes.get(event.anchor, 1)  # an unknown anchor is reported by the loader
            elif isinstance(event, ScalarEvent):
                nodes += 1
                if (len(event.value) > MAX_INTEGER_CHARS and (event.style is None or str(event.tag) == _INT_TAG)
                        and _INTEGER.fullmatch(event.value.strip())):
                    raise ConfigError([_issue_at(filename, event.start_mark,
                                                 f"a number of {len(event.value):,} characters; a number here "
                                                 f"has at most {MAX_INTEGER_CHARS}")])
                if event.anchor is not None:
                    anchor_sizes[event.anchor] = 1
            elif isinstance(event, CollectionStartEvent):
                nodes += 1
                open_collections.append((event.anchor, nodes))
                children.append([isinstance(event, MappingStartEvent), 0])
                if len(open_collections) > MAX_DEPTH:
                    raise ConfigError([_issue_at(filename, event.start_mark,
                                                 f"values are nested more than {MAX_DEPTH} levels deep")])
            elif isinstance(event, CollectionEndEvent):
                anchor, started_at = open_collections.pop()
                children.pop()
                if anchor is not None:
                    anchor_sizes[anchor] = nodes - started_at + 1
            if nodes > MAX_NODES:
                what = "after expanding its aliases (an alias bomb?)" if anchor_sizes else ""
                raise ConfigError([_issue_at(filename, event.start_mark,
                                             f"the document has more than {MAX_NODES:,} values {what}".strip())])
    except YAMLError as error:
        raise ConfigError([_syntax_issue(filename, error, text)]) from None


def _describe(value: Any) -> str:
    return type(value).__name__


class _Converter:
    """Round-trip data -> plain Python data, recording the position of each key and item."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.positions: dict[Loc, tuple[int, int]] = {}
        self.issues: list[ConfigIssue] = []

    def convert(self, value: Any, loc: Loc) -> Any:
        if isinstance(value, CommentedMap):
            return self._mapping(value, loc)
        if isinstance(value, CommentedSeq):
            items = []
            for index, item in enumerate(value):
                position = _item_position(value, index)
                if position:
                    self.positions[loc + (index,)] = position
                items.append(self.convert(item, loc + (index,)))
            return items
        if isinstance(value, TaggedScalar):  # only !!str reaches here (other tags were refused)
            return str(value.value)
        # The round-trip loader returns subclasses (ScalarInt, ScalarFloat, ...)
        # that carry formatting; the schema wants the plain types.
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, ScalarBoolean):  # an anchored true/false: an int subclass, 1 or 0
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, str):
            return str(value)
        return value  # a date, for instance: the schema reports it as the wrong type

    def _mapping(self, mapping: CommentedMap, loc: Loc) -> dict:
        result = {}
        own_position = (mapping.lc.line + 1, mapping.lc.col + 1) if mapping.lc.line is not None else None
        for key, value in mapping.items():
            try:
                line, column = mapping.lc.key(key)
                position = (line + 1, column + 1)
            except (KeyError, TypeError):
                position = own_position  # a key merged in with `<<:` has no place of its own here
            if not isinstance(key, str):
                line, column = position or (None, None)
                self.issues.append(ConfigIssue(self.filename, line, column, format_loc(loc),
                                               f"key {key!r} is not text ({_describe(key)}); "
                                               "write keys as names, e.g. train_size"))
                continue
            if position:
                self.positions[loc + (key,)] = position
            result[key] = self.convert(value, loc + (key,))
        return result


def _item_position(sequence: CommentedSeq, index: int) -> tuple[int, int] | None:
    try:
        line, column = sequence.lc.item(index)
    except (KeyError, TypeError, IndexError):
        return None
    return line + 1, column + 1


def load_yaml(text: str, *, filename: str = "task_setup.yml", mapping: bool = True) -> YamlDocument:
    """Parse one YAML document from `text` safely, keeping the position of every key and item.

    Raises ConfigError for a syntax error, a duplicate key, a forbidden tag,
    too deep nesting or too many values (aliases expanded), an empty
    document and (with `mapping`, the default) a top level that is not a
    mapping; without `mapping`, any value is returned, None included. The data is plain Python (dict, list, str, int, float, bool,
    None; a YAML date stays a date and is for the schema to refuse).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    _check_events(text, filename)
    try:
        loaded = YAML(typ="rt").load(text)
    except YAMLError as error:  # duplicate keys, undefined aliases, several documents
        raise ConfigError([_syntax_issue(filename, error, text)]) from None
    if loaded is None and mapping:
        raise ConfigError([ConfigIssue(filename, 1, None, None,
                                       "the file is empty: it must be a mapping of keys such as tasks:")])
    converter = _Converter(filename)
    data = converter.convert(loaded, ())
    if isinstance(loaded, (CommentedMap, CommentedSeq)) and loaded.lc.line is not None:
        root_position = (loaded.lc.line + 1, loaded.lc.col + 1)
    else:
        root_position = (1, 1)
    if mapping and not isinstance(data, dict):
        raise ConfigError([ConfigIssue(filename, *root_position, None,
                                       f"the top level must be a mapping of keys (key: value lines), "
                                       f"not {_kind(data)}")])
    return YamlDocument(data, converter.positions, filename, converter.issues)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a text value"
    if isinstance(value, bool):
        return "a true/false value"
    if isinstance(value, (int, float)):
        return "a number"
    return f"a {_describe(value)}"


def read_config_text(path: str | os.PathLike, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The text of the file at `path` (UTF-8), refusing one larger than `max_bytes` before reading it.

    Raises ConfigError for a file too large or not UTF-8, OSError when it
    cannot be read. Read-only.
    """
    path = Path(path)
    filename = str(path)
    too_large = ConfigIssue(filename, None, None, None,
                            f"the file is larger than {max_bytes:,} bytes; a task setup is a few kilobytes")
    if path.stat().st_size > max_bytes:
        raise ConfigError([too_large])
    with path.open("rb") as stream:
        # Read one byte more than allowed: the file may have grown since stat(),
        # or be a device or pipe whose size stat() does not tell.
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ConfigError([too_large])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise ConfigError([ConfigIssue(filename, line, column, None,
                                       "the file is not UTF-8 text")]) from None
