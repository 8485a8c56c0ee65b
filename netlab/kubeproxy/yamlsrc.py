"""YAML with line numbers, and a small field reader that reports errors precisely.

``load_documents`` returns plain dicts/lists (``MarkedDict``/``MarkedList``) that remember
the line of every key and item. ``Fields`` reads typed values out of them and raises
``ManifestError`` naming the file, line, object (``Service ns/name``) and field path,
and saying what would have been valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from netlab.errors import ManifestError


class MarkedDict(dict):
    line: int = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class MarkedList(list):
    line: int = 0
    item_lines: list

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> MarkedDict:
    loader.flatten_mapping(node)
    out = MarkedDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            out[key] = loader.construct_object(value_node, deep=True)
        except TypeError as exc:  # unhashable key
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid mapping key: {exc}", key_node.start_mark) from exc
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> MarkedList:
    out = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_documents(text: str, file: str) -> list[Any]:
    """All YAML documents of ``text`` (empty documents dropped)."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(f"not valid YAML: {problem}", file=file, line=line) from None


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"cannot read file: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise ManifestError("cannot read file: not UTF-8 text", file=str(path)) from None


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
            empty = MarkedDict()
            empty.line = obj.line_of(key) if isinstance(obj, MarkedDict) else 0
            empty.key_lines = {}
            return empty
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
