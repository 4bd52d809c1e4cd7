"""A linear-time validator for the JSON Schema keywords that ``results.schema.json`` uses.

``jsonschema`` walks a file generically and collects every error before it picks one to
report: a file of 80,000 empty episodes took 7 s to reject, about 0.6 s per MiB of valid
structure. This validator reads the same schema file, knows only the keywords that file
uses (any other keyword is refused when the schema is loaded, so it cannot be skipped
silently), checks every size and count limit of a container before it walks into it,
and stops at the first error, so rejecting a file costs at most one pass over it.

It is never more lenient than ``jsonschema`` (the tests hold it to that on random files),
and in two places stricter, as the JSON Schema standard reads: ``integer`` means a JSON
integer, not a float such as ``5.0``; and a ``$`` that ends a ``pattern`` is the end of the
string (ECMA-262), where Python's ``re`` also lets it match before a final newline (so
``"expert\\n"`` would pass ``^[a-z]+$``).

>>> schema = {"type": "object", "required": ["name"], "additionalProperties": False,
...           "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}}}
>>> SchemaValidator(schema).first_error({"name": "expert\\n"})
('name', "'expert\\\\n' does not match '^[a-z]+$'")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

__all__ = ["SchemaValidator"]

_ANNOTATIONS = {"$schema", "title", "description", "$defs"}
_KEYWORDS = {
    "type",
    "const",
    "enum",
    "pattern",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "items",
    "required",
    "properties",
    "additionalProperties",
    "maxProperties",
    "propertyNames",
    "$ref",
}
_SUBSCHEMA_KEYWORDS = ("items", "propertyNames")
#: JSON type -> the Python types json.loads gives it (a bool is an int: excluded apart).
_PYTHON_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


class _Invalid(Exception):
    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path, self.message = path, message


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern:
    # ECMA-262: a final "$" is the end of the string; Python's "\Z" is that end.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _show(value: Any) -> str:
    """A short repr: a hostile string or list is cut, never printed whole."""
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:40] + "...")
    if isinstance(value, (list, dict)):
        return f"an {'array' if isinstance(value, list) else 'object'} of {len(value)}"
    return repr(value)


def _check_keywords(schema: Any, where: str) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise ValueError(f"schema at {where} is not an object")
    unknown = set(schema) - _KEYWORDS - _ANNOTATIONS
    if unknown:
        raise ValueError(f"schema at {where} uses keywords this validator lacks: {unknown}")
    for key in _SUBSCHEMA_KEYWORDS:
        if key in schema:
            _check_keywords(schema[key], f"{where}/{key}")
    if isinstance(schema.get("additionalProperties"), dict):
        _check_keywords(schema["additionalProperties"], f"{where}/additionalProperties")
    for name, sub in schema.get("properties", {}).items():
        _check_keywords(sub, f"{where}/properties/{name}")
    for name, sub in schema.get("$defs", {}).items():
        _check_keywords(sub, f"{where}/$defs/{name}")


Check = Callable[[Any, tuple], None]


def _accept(value: Any, path: tuple) -> None:
    return None


class SchemaValidator:
    """Validates instances against ``schema`` (a dict: the root of any ``$ref``).

    The schema is compiled once into one small function per schema node, holding only
    the checks that node has, so validating costs a few calls per value of the instance.
    """

    def __init__(self, schema: dict[str, Any]):
        _check_keywords(schema, "#")
        self.root = schema
        self._refs: dict[str, Check] = {}
        self._check = self._compile(schema)

    def first_error(self, instance: Any) -> tuple[str, str] | None:
        """``(path, message)`` of the first violation (path ``a/0/b``), or None if valid."""
        try:
            self._check(instance, ())
        except _Invalid as err:
            return "/".join(str(p) for p in err.path), err.message
        return None

    def _ref(self, ref: str) -> Check:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref are supported, got {ref!r}")

        def check(value: Any, path: tuple) -> None:
            if ref not in self._refs:  # compiled on first use: a $ref may be recursive
                node = self.root
                for part in ref[2:].split("/"):
                    node = node[part]
                self._refs[ref] = self._compile(node)
            self._refs[ref](value, path)

        return check

    def _compile(self, schema: Any) -> Check:
        if schema is True:
            return _accept
        if schema is False:

            def refuse(value: Any, path: tuple) -> None:
                raise _Invalid(path, f"{_show(value)} is not allowed here")

            return refuse
        checks: list[Check] = []
        if "$ref" in schema:
            checks.append(self._ref(schema["$ref"]))
        if "type" in schema:
            checks.append(_type_check(schema["type"]))
        if "const" in schema:
            checks.append(_const_check(schema["const"]))
        if "enum" in schema:
            checks.append(_enum_check(schema["enum"]))
        checks += _string_checks(schema)
        checks += _number_checks(schema)
        checks += self._array_checks(schema)
        checks += self._object_checks(schema)
        if len(checks) == 1:
            return checks[0]

        def check(value: Any, path: tuple) -> None:
            for one in checks:
                one(value, path)

        return check

    def _array_checks(self, schema: dict) -> list[Check]:
        most, least = schema.get("maxItems"), schema.get("minItems")
        item = self._compile(schema["items"]) if "items" in schema else None
        if most is None and least is None and item is None:
            return []

        def check(value: Any, path: tuple) -> None:
            if not isinstance(value, list):
                return
            # Counts first: a list of 80,000 items is refused before one of them is read.
            if most is not None and len(value) > most:
                raise _Invalid(path, f"{len(value)} items, more than the {most} allowed")
            if least is not None and len(value) < least:
                raise _Invalid(path, f"{len(value)} items, fewer than the {least} needed")
            if item is not None:
                for i, element in enumerate(value):
                    item(element, (*path, i))

        return [check]

    def _object_checks(self, schema: dict) -> list[Check]:
        keys = ("maxProperties", "required", "properties", "additionalProperties", "propertyNames")
        if not any(k in schema for k in keys):
            return []
        most = schema.get("maxProperties")
        required = tuple(schema.get("required", ()))
        properties = {k: self._compile(v) for k, v in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        closed = extra is False
        other = None if extra is True or closed else self._compile(extra)
        names = self._compile(schema["propertyNames"]) if "propertyNames" in schema else None

        def check(value: Any, path: tuple) -> None:
            if not isinstance(value, dict):
                return
            if most is not None and len(value) > most:
                raise _Invalid(path, f"{len(value)} properties, more than the {most} allowed")
            for name in required:
                if name not in value:
                    raise _Invalid(path, f"{name!r} is a required property")
            if closed:
                unexpected = [k for k in value if k not in properties]
                if unexpected:
                    shown = ", ".join(_show(k) for k in unexpected[:5])
                    verb = "was" if len(unexpected) == 1 else "were"
                    raise _Invalid(
                        path, f"Additional properties are not allowed ({shown} {verb} unexpected)"
                    )
            if names is not None:
                for name in value:
                    try:
                        names(name, path)
                    except _Invalid as err:
                        raise _Invalid(path, f"property name {err.message}") from None
            for name, element in value.items():
                sub = properties.get(name, other)
                if sub is not None:
                    sub(element, (*path, name))

        return [check]


def _type_check(types: str | list[str]) -> Check:
    types = types if isinstance(types, list) else [types]
    allowed = tuple(_PYTHON_TYPES[t] for t in types)
    bools = "boolean" in types
    names = ", ".join(repr(t) for t in types)

    def check(value: Any, path: tuple) -> None:
        if not isinstance(value, allowed) or (isinstance(value, bool) and not bools):
            raise _Invalid(path, f"{_show(value)} is not of type {names}")

    return check


def _const_check(const: Any) -> Check:
    def check(value: Any, path: tuple) -> None:
        if not _same(value, const):
            raise _Invalid(path, f"{const!r} was expected")

    return check


def _enum_check(enum: list) -> Check:
    def check(value: Any, path: tuple) -> None:
        if not any(_same(value, e) for e in enum):
            raise _Invalid(path, f"{_show(value)} is not one of {enum!r}")

    return check


def _string_checks(schema: dict) -> list[Check]:
    longest, pattern = schema.get("maxLength"), schema.get("pattern")
    if longest is None and pattern is None:
        return []
    compiled = _compiled(pattern) if pattern is not None else None

    def check(value: Any, path: tuple) -> None:
        if not isinstance(value, str):
            return
        if longest is not None and len(value) > longest:
            raise _Invalid(path, f"{_show(value)} is longer than {longest} characters")
        if compiled is not None and not compiled.search(value):
            raise _Invalid(path, f"{_show(value)} does not match {pattern!r}")

    return [check]


def _number_checks(schema: dict) -> list[Check]:
    low, high, below = (schema.get(k) for k in ("minimum", "maximum", "exclusiveMaximum"))
    if low is None and high is None and below is None:
        return []

    def check(value: Any, path: tuple) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return
        if low is not None and value < low:
            raise _Invalid(path, f"{value!r} is less than the minimum of {_bound(low)}")
        if high is not None and value > high:
            raise _Invalid(path, f"{value!r} is greater than the maximum of {_bound(high)}")
        if below is not None and value >= below:
            raise _Invalid(path, f"{value!r} is not less than the maximum of {_bound(below)}")

    return [check]


def _bound(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else repr(x)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b
