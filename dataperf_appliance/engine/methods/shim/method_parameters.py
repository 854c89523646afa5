"""A method's parameters and seed as the appliance gives them, for any method file to import.

The appliance runs a method with its ``params`` in the environment variables
``DATAPERF_PARAM_<NAME>`` (JSON for a number or a flag, the bare text for a
word) and the repeat's seed in ``DATAPERF_SEED``; this folder is on the
method's ``sys.path``, so ``from method_parameters import read_parameter``
works in every environment (it needs the standard library only).
"""

import json
import os

PARAMETER_PREFIX = "DATAPERF_PARAM_"
SEED_VARIABLE = "DATAPERF_SEED"


def read_parameter(name, value):
    """`value`, or the value of DATAPERF_PARAM_<NAME> when that is set, as `value`'s type (ValueError when it
    is not one)."""
    variable = PARAMETER_PREFIX + name.upper()
    raw = os.environ.get(variable)
    if raw is None or raw.strip() == "":
        return value
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw
    kind = type(value)
    if kind is bool and isinstance(parsed, bool):
        return parsed
    if kind is int and isinstance(parsed, (int, float)) and not isinstance(parsed, bool) and parsed == int(parsed):
        return int(parsed)
    if kind is float and isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
        return float(parsed)
    if kind is str and isinstance(parsed, str):
        return parsed
    raise ValueError(f"{variable}={raw!r} is not a valid {kind.__name__} (the default is {value!r})")


def require_positive(owner, *names):
    """ValueError naming the first of `owner`'s attributes `names` that is below 1."""
    for name in names:
        if getattr(owner, name) < 1:
            raise ValueError(f"{name} must be at least 1; got {getattr(owner, name)}")


def repeat_seed():
    """The repeat's seed from DATAPERF_SEED, 0 when it is not set (a run outside the appliance)."""
    return int(os.environ.get(SEED_VARIABLE, "0")) % 2**32
