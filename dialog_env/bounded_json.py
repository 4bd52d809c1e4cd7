"""Strict, bounded JSON for files that come from outside (results files, checkpoint configs).

``json.loads`` accepts what a hostile file can use against its reader: duplicate keys (the
last one silently wins), ``NaN`` and ``Infinity``, numbers such as ``1e400`` that read as
infinity, integers of thousands of digits (slow to convert; past 4,300 digits Python
raises an error that names no file), and nesting deep enough to exhaust the recursion
limit. :func:`loads_bounded` refuses all of them with a one-line ``ValueError`` before any
of them is converted, and :func:`read_json_file` adds a size limit checked before a byte
is read. :func:`check_shape` then checks that an object holds the keys its reader uses,
each of the type it expects, so that a reader meets a one-line ``ValueError`` rather
than an ``AttributeError`` deep inside.

>>> loads_bounded('{"a": [1, 2.5]}')
{'a': [1, 2.5]}
>>> loads_bounded('{"budget": 1e400}')
Traceback (most recent call last):
...
ValueError: number 1e400 is not finite
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from itertools import accumulate
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_NUMBER_CHARS",
    "check_shape",
    "loads_bounded",
    "nesting_depth",
    "read_json_file",
]

#: JSON nested deeper than this is refused before Python's recursion limit is reached.
MAX_DEPTH = 64
#: A number literal longer than this is refused before it is converted (a float's repr
#: has at most 24 characters; an integer this long is far past any count we store).
MAX_NUMBER_CHARS = 40

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting of JSON ``text``, strings left out, without recursion.

    >>> nesting_depth('[{"a": "[[["}, []]')
    2
    """
    steps = (1 if b in "[{" else -1 for b in _BRACKET.findall(_STRING.sub("", text)))
    return max(accumulate(steps, initial=0))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key[:60]!r}")
        obj[key] = value
    return obj


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _short(literal: str) -> str:
    return literal if len(literal) <= 24 else f"{literal[:12]}...{literal[-6:]}"


def _parse_int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise ValueError(
            f"integer {_short(literal)} has {len(literal)} characters, more than the "
            f"{MAX_NUMBER_CHARS} allowed"
        )
    return int(literal)


def _parse_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise ValueError(
            f"number {_short(literal)} has {len(literal)} characters, more than the "
            f"{MAX_NUMBER_CHARS} allowed"
        )
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {_short(literal)} is not finite")
    return value


def loads_bounded(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON ``text``; a ``ValueError`` with a one-line reason for anything hostile."""
    if nesting_depth(text) > max_depth:
        raise ValueError(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_refuse_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except json.JSONDecodeError as err:
        raise ValueError(f"{err.msg} at line {err.lineno} column {err.colno}") from None


def read_json_file(path: str | Path, max_bytes: int) -> Any:
    """The JSON value in file ``path`` (at most ``max_bytes``, UTF-8, :func:`loads_bounded`);
    any flaw is a one-line ``ValueError`` that names the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(f"{size} bytes, over the limit of {max_bytes}")
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueError(f"over the limit of {max_bytes} bytes")
        return loads_bounded(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise ValueError(f"{path}: {' '.join(str(reason).split())}") from None


_KINDS = {dict: "an object", list: "an array", str: "a string", int: "an integer",
          float: "a number", bool: "true or false", type(None): "null"}  # fmt: skip


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def check_shape(value: Any, shape: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``value`` if it is an object that holds every key of ``shape``, each value of the
    type (or tuple of types) given there, or an object of the nested shape given there;
    other keys are left alone. Else a one-line ``ValueError`` that begins with ``where``.

    >>> check_shape({"env_id": "Dialog-v1", "env_spec": {"kwargs": {}}},
    ...             {"env_id": str, "env_spec": {"kwargs": dict}}, "demo.meta.json")
    {'env_id': 'Dialog-v1', 'env_spec': {'kwargs': {}}}
    >>> check_shape([], {"env_id": str}, "demo.meta.json")
    Traceback (most recent call last):
    ...
    ValueError: demo.meta.json: must be an object, got an array
    """
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be an object, got {_kind(value)}")
    for key, expected in shape.items():
        if key not in value:
            raise ValueError(f"{where}: missing {key!r}")
        item = value[key]
        if isinstance(expected, Mapping):
            check_shape(item, expected, f"{where}: {key}")
            continue
        types = expected if isinstance(expected, tuple) else (expected,)
        if not isinstance(item, types) or (isinstance(item, bool) and bool not in types):
            wanted = " or ".join(_KINDS.get(t, t.__name__) for t in types)
            raise ValueError(f"{where}: {key} must be {wanted}, got {_kind(item)}")
    return value
