"""A small field reader for manifests that reports errors precisely.

``netlab.yamlsrc`` reads the YAML into ``MarkedDict``/``MarkedList``, which remember the
line of every key and item. ``Fields`` reads typed values out of them and raises
``ManifestError`` naming the file, line, object (``Service ns/name``) and field path,
and saying what would have been valid.
"""

from __future__ import annotations

from typing import Any, Iterable

from netlab.errors import ManifestError
from netlab.yamlsrc import MarkedDict, MarkedList

_MISSING = object()


def _type_name(value: Any) -> str:
    return {dict: "a mapping", MarkedDict: "a mapping", list: "a list", MarkedList: "a list",
            str: "a string", int: "an integer", bool: "a boolean", float: "a number"
            }.get(type(value), type(value).__name__)


class Fields:
    """Reads fields of one object; errors name ``file:line: <what> <path>: message``."""

    def __init__(self, file: str, what: str) -> None:
        self.file = file
        self.what = what  # e.g. "Service ns1/svc1"

    def error(self, message: str, container: Any, key: Any, path: str) -> ManifestError:
        line = None
        if isinstance(container, MarkedDict):
            line = container.line_of(key)
        elif isinstance(container, MarkedList):
            line = container.line_of(key)
        field = f"{self.what}: {path}" if self.what else path
        return ManifestError(message, file=self.file, line=line, field=field)

    def get(self, obj: Any, key: str, path: str, kind: type | tuple, default: Any = _MISSING):
        """``obj[key]`` checked to be ``kind``; ``default`` when absent (or an error)."""
        if obj.__class__ is MarkedDict:  # the common cases, checked in the fewest steps
            value = obj.get(key)
            if value.__class__ is kind or (value.__class__ is MarkedDict and kind is dict) \
                    or (value.__class__ is MarkedList and kind is list):
                return value
            if value is None and default is not _MISSING:
                return default
        if not isinstance(obj, dict):
            raise self.error(f"must be a mapping, not {_type_name(obj)}", obj, key, path)
        if key not in obj or obj[key] is None:
            if default is _MISSING:
                raise self.error("required field is missing", obj, key, path)
            return default
        value = obj[key]
        if not _is_kind(value, kind):
            raise self.error(f"must be {_kind_name(kind)}, not {_type_name(value)} "
                             f"({value!r})", obj, key, path)
        return value

    def mapping(self, obj: Any, key: str, path: str) -> MarkedDict:
        value = self.get(obj, key, path, dict, None)
        if value is None:
            return MarkedDict(line=obj.line_of(key) if isinstance(obj, MarkedDict) else 0)
        return value

    def items(self, obj: Any, key: str, path: str) -> Iterable[tuple[int, Any, MarkedList]]:
        value = self.get(obj, key, path, list, None) or MarkedList()
        for i, item in enumerate(value):
            yield i, item, value

    def enum(self, obj: Any, key: str, path: str, allowed: Iterable[str], default: str) -> str:
        value = self.get(obj, key, path, str, default)
        allowed = tuple(allowed)
        if value not in allowed:
            shown = ", ".join(a if a else '"" (the default)' for a in allowed)
            raise self.error(f"{value!r} is not valid; valid values: {shown}",
                             obj, key, path)
        return value

    def int_in(self, obj: Any, key: str, path: str, low: int, high: int, default: Any = _MISSING):
        value = self.get(obj, key, path, int, default)
        if value is default and default is not _MISSING:
            return value
        if not low <= value <= high:
            raise self.error(f"{value} is out of range; valid: {low}-{high}", obj, key, path)
        return value


def _is_kind(value: Any, kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def _kind_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_type_name(k()) for k in kinds)
