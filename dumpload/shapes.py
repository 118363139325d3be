"""Shape checks for the JSON documents dumpload reads back from disk.

Backup manifests, export manifests and run journals are files a user can edit, truncate
or replace. Before any code indexes into one, `shape_error` compares it with a small spec
and names the first key that is missing or of the wrong type, so a damaged file becomes
one clear error (exit 7 for a backup, 6 for an export) instead of a `KeyError` deep in a
restore. Pure: no I/O.

A spec is one of:
- a type (`str`, `int`, `bool`, `float`, `dict`, `list`, `object` for anything); `bool` is
  never accepted as an `int`;
- `None`: JSON null;
- a tuple of specs: any of them;
- a list `[spec]`: a JSON array whose items all match `spec`;
- a dict `{key: spec}`: a JSON object with those keys (a key ending in `?` is optional;
  other keys are allowed);
- `MapOf(spec)`: a JSON object whose values all match `spec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_NAMES = {str: "a string", int: "an integer", bool: "true/false", float: "a number",
          dict: "an object", list: "an array", type(None): "null"}


@dataclass(frozen=True)
class MapOf:
    """A JSON object whose values all match `values`."""

    values: Any


def json_type(value: Any) -> str:
    """How JSON calls the type of `value` (for messages): null, true/false, an array..."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, float):
        return "a decimal number"
    return _NAMES.get(type(value), type(value).__name__)


def shape_error(value: Any, spec: Any, where: str = "") -> str | None:
    """None when `value` matches `spec`, else '<key>: expected X, got Y' for the first miss."""
    label = where or "the document"
    if spec is object:
        return None
    if spec is None:
        return None if value is None else f"{label}: expected null, got {json_type(value)}"
    if isinstance(spec, tuple):
        if any(shape_error(value, s, where) is None for s in spec):
            return None
        return f"{label}: expected {_describe(spec)}, got {json_type(value)}"
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{label}: expected an array, got {json_type(value)}"
        for i, item in enumerate(value):
            if (error := shape_error(item, spec[0], f"{where}[{i}]")) is not None:
                return error
        return None
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            return f"{label}: expected an object, got {json_type(value)}"
        for key, item in value.items():
            if (error := shape_error(item, spec.values, _join(where, key))) is not None:
                return error
        return None
    if isinstance(spec, dict):
        return _object_error(value, spec, where)
    if not isinstance(value, spec) or (isinstance(value, bool) and spec is not bool):
        return f"{label}: expected {_describe(spec)}, got {json_type(value)}"
    return None


def _object_error(value: Any, spec: dict[str, Any], where: str) -> str | None:
    if not isinstance(value, dict):
        return f"{where or 'the document'}: expected an object, got {json_type(value)}"
    for key, item_spec in spec.items():
        name = key.rstrip("?")
        if name not in value:
            if key.endswith("?"):
                continue
            return f"{_join(where, name)}: missing"
        if (error := shape_error(value[name], item_spec, _join(where, name))) is not None:
            return error
    return None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else str(key)


def _describe(spec: Any) -> str:
    if isinstance(spec, tuple):
        return " or ".join(_describe(s) for s in spec)
    if spec is None:
        return "null"
    if isinstance(spec, list):
        return "an array"
    if isinstance(spec, dict | MapOf):
        return "an object"
    return _NAMES.get(spec, getattr(spec, "__name__", str(spec)))
