"""The one rule for a name that becomes part of a path: task ids, methods, datasets, run ids.

Names become parts of file names under the data root (``{data_id}_train_...``,
``{data_id}_{method}.txt``, ``datasets/<dataset>/``, ``runs/<run id>/``), so
they are restricted to characters that cannot leave a folder or surprise a
shell. The first character must be a letter or digit: that rules out ``.``,
``..``, hidden files and names that look like command-line options. The whole
text must match (``fullmatch``): a trailing newline is not a name.
"""

from __future__ import annotations

import re
from typing import Any

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: Longest name (data_id, dataset, method).
MAX_NAME_LENGTH = 100
#: Longest run id (a run id is made from Airflow's run ids, which are longer).
MAX_RUN_ID_LENGTH = 128
#: How a safe name is described in messages.
SAFE_NAME_RULE = "use letters, digits, '.', '_' and '-', starting with a letter or digit"


def is_safe_name(value: Any, *, max_length: int = MAX_NAME_LENGTH) -> bool:
    """Whether `value` is text of 1..`max_length` characters that is a safe name."""
    return isinstance(value, str) and len(value) <= max_length and SAFE_NAME.fullmatch(value) is not None


def is_safe_relative_path(value: Any, *, folder: bool = False) -> bool:
    """Whether `value` is safe names joined by '/' (a relative path that stays inside its base folder); a
    `folder` may end with '/'."""
    if not isinstance(value, str):
        return False
    text = value[:-1] if folder and value.endswith("/") else value
    return all(is_safe_name(part, max_length=len(part) or 1) for part in text.split("/"))
