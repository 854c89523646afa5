"""The building blocks of a setup model: bounds, checked names and paths, the sweepable type.

Every type here is strict (the text ``"200"`` is not a size, ``true`` is not a
number) and says what is wrong in words a user can act on. A check that finds
problems of several fields at once raises `FieldProblems`, so each problem is
reported at its own line (see `issues`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    TypeAdapter,
    ValidationError,
)

from dataperf_appliance.config.catalog import DEBUGGING_BASELINES, DEBUGGING_STRATEGY_ALIASES, MODEL_NAMES, SELECTION_STRATEGIES
from dataperf_appliance.config.issues import FieldProblems, error_message, shorten, shown
from dataperf_appliance.config.loader import Loc
from dataperf_appliance.config.names import MAX_NAME_LENGTH, SAFE_NAME_RULE, is_safe_name, is_safe_relative_path

#: Largest training set of a task (the evaluation retrains once per budget).
MAX_TRAIN_SIZE = 100_000
#: Largest validation or test set of a task.
MAX_SPLIT_SIZE = 1_000_000
#: Largest fraction of flipped training labels: above it the labels carry almost no signal.
MAX_NOISE_LEVEL = 0.9
#: Most tasks in one file.
MAX_TASKS = 100
#: Largest seed (numpy's seeds are 32-bit).
MAX_SEED = 2**32 - 1
#: Embedding length bounds of the synthetic dataset.
MIN_DIM, MAX_DIM = 2, 2048
#: Largest embedding length of a selection dataset (the official files have 256).
MAX_SELECTION_DIM = 8192
#: Most values of one swept field, and most repeats (the grid bound applies on top).
MAX_SWEEP_VALUES, MAX_REPEATS = 100, 100
#: Longest folder or file path.
MAX_PATH_LENGTH = 200


def check_name(value: str) -> str:
    """`value` if it is a safe name (``digit-0``, ``my_method.v2``); ValueError otherwise."""
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"is longer than {MAX_NAME_LENGTH} characters")
    if not is_safe_name(value):
        raise ValueError(f"{shorten(value)!r} is not a safe name: {SAFE_NAME_RULE} (it becomes part of a file name)")
    return value


def check_folder(value: str) -> str:
    """`value` if it is a relative folder inside the data root (``embeddings/``, ``a/b``); ValueError otherwise."""
    if len(value) > MAX_PATH_LENGTH:
        raise ValueError(f"is longer than {MAX_PATH_LENGTH} characters")
    if not is_safe_relative_path(value, folder=True):
        raise ValueError(f"{shorten(value)!r} is not a safe relative folder: write names of letters, digits, "
                         "'.', '_' and '-' separated by '/', like 'embeddings/' (no '..', no leading '/', "
                         "no '\\' or drive letter)")
    return value


def check_data_file(value: str) -> str:
    """`value` if it is a relative file path inside the dataset folder (``test_sets/x.parquet``); else ValueError."""
    if len(value) > MAX_PATH_LENGTH:
        raise ValueError(f"is longer than {MAX_PATH_LENGTH} characters")
    if not is_safe_relative_path(value):
        raise ValueError(f"{shorten(value)!r} is not a safe relative file path: write names of letters, digits, "
                         "'.', '_' and '-' separated by '/', like 'test_sets/alpha_test_set_Hawk_256.parquet' "
                         "(no '..', no leading '/', no '\\' or drive letter)")
    return value


def check_model_name(value: str) -> str:
    if value not in MODEL_NAMES:
        raise ValueError(f"unknown model {shorten(value)!r}; choose one of: {', '.join(MODEL_NAMES)}")
    return value


def check_strategy_name(value: str) -> str:
    if value not in DEBUGGING_BASELINES and value not in DEBUGGING_STRATEGY_ALIASES:
        raise ValueError(f"unknown baseline {shorten(value)!r}; choose one of: {', '.join(DEBUGGING_BASELINES)} "
                         "(your own methods go under methods or submissions)")
    return value


def check_selection_strategy_name(value: str) -> str:
    if value not in SELECTION_STRATEGIES:
        raise ValueError(f"unknown strategy {shorten(value)!r}; choose one of: {', '.join(SELECTION_STRATEGIES)} "
                         "(your own training sets go under submissions)")
    return value


def _task_pair(value: Any) -> Any:
    # Checked before the items, so that one path or three read as what they are, not as a missing item.
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"must be a pair [train_csv, test_parquet] of paths inside the dataset folder "
                         f"(train_csv may be null), got {shown(value)}"
                         + (f" of {len(value)} item(s)" if isinstance(value, (list, tuple)) else ""))
    return value


SafeName = Annotated[str, Strict(), AfterValidator(check_name)]
Folder = Annotated[str, Strict(), AfterValidator(check_folder)]
DataFile = Annotated[str, Strict(), AfterValidator(check_data_file)]
ModelName = Annotated[str, Strict(), AfterValidator(check_model_name)]
StrategyName = Annotated[str, Strict(), AfterValidator(check_strategy_name)]
SelectionStrategyName = Annotated[str, Strict(), AfterValidator(check_selection_strategy_name)]
Seed = Annotated[int, Strict(), Field(ge=0, le=MAX_SEED)]
Repeats = Annotated[int, Strict(), Field(ge=1, le=MAX_REPEATS)]
TrainSize = Annotated[int, Strict(), Field(gt=0, le=MAX_TRAIN_SIZE)]
NoiseLevel = Annotated[float, Strict(), Field(ge=0, le=MAX_NOISE_LEVEL, allow_inf_nan=False)]
#: A method's parameter in a file: a number, a word or a flag (it reaches the method as DATAPERF_PARAM_<NAME>).
MethodParameter = (Annotated[bool, Strict()] | Annotated[int, Strict()] | Annotated[float, Strict()]
                   | Annotated[str, Strict()])
TaskPair = Annotated[tuple[DataFile | None, DataFile], BeforeValidator(_task_pair)]

MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True)


def sweepable(item: Any) -> Any:
    """The type "one `item`, or a list of distinct `item`s to sweep over" (a list becomes a tuple).

    Each value is checked as `item` is; every problem is reported at its own
    list item (its line), with the same words as for a single value.
    """
    adapter = TypeAdapter(item)

    def problems_of(value: Any, where: Loc) -> list[tuple[Loc, str]]:
        try:
            adapter.validate_python(value)
        except ValidationError as error:
            return [(where, error_message(e, None)) for e in error.errors()]
        return []

    def validate(value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            problems = problems_of(value, ())
            if problems:
                raise FieldProblems(problems)
            return adapter.validate_python(value)
        if not value:
            raise FieldProblems([((), "must not be empty: give one value, or a list of the values to sweep")])
        if len(value) > MAX_SWEEP_VALUES:
            raise FieldProblems([((), f"a sweep takes at most {MAX_SWEEP_VALUES} values; this list has {len(value)}")])
        problems = [p for index, item_value in enumerate(value) for p in problems_of(item_value, (index,))]
        if not problems:
            problems += duplicates(value, "", None, lambda v: v, what="item")
        if problems:
            raise FieldProblems(problems)
        return tuple(adapter.validate_python(item_value) for item_value in value)

    # Written back as the file gives it: one value, or a list.
    serialize = PlainSerializer(lambda value: list(value) if isinstance(value, tuple) else value)
    return Annotated[item | tuple[item, ...], PlainValidator(validate), serialize]



def duplicates(items, key: str, field_name: str | None, name_of, what: str = "") -> Iterator[tuple[Loc, str]]:
    """(loc, message) of every item whose name an earlier item has; `key` "" for a list of the field itself."""
    first_index: dict[Any, int] = {}
    for index, item in enumerate(items):
        name = name_of(item)
        if name in first_index:
            loc = tuple(part for part in (key, index, field_name) if part not in ("", None))
            first = f"{key}[{first_index[name]}]" if key else f"{what} {first_index[name]}"
            yield loc, f"{name!r} is listed twice (first as {first})"
        else:
            first_index[name] = index
