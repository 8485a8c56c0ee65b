"""YAML for netlab's input files: plain data, the line of every key and item, no surprises.

The one reader behind scenarios (`netlab.scenario.loader`) and Kubernetes manifests and
KubeProxyConfiguration files (`netlab.kubeproxy`). It builds data straight from the
parser's events, without a node graph and without recursion, so its cost is bounded by
the text it reads. Mappings come back as `MarkedDict` (the line of the mapping and of each
key) and sequences as `MarkedList` (the line of each item); `line_index` turns a document
into the path → line table a scenario's `Source` keeps.

Refused, each with the file, the line and the field it happened in:

- anchors and aliases (`&a`, `*a`): the source of alias bombs and self-referencing
  documents, and never written by kubectl; write the value out in full;
- merge keys (`<<:`), duplicate keys, keys that are not strings (`80:`, `null:`, `[a]:`);
- tags other than the standard scalar and collection tags (`!!str`, `!!int`, `!!float`,
  `!!bool`, `!!null`, `!!map`, `!!seq`), and a standard tag whose value does not fit it
  (`!!int abc`);
- nesting deeper than `MAX_DEPTH` collections;
- characters YAML does not allow (NUL and other control characters).

Plain scalars resolve as PyYAML's safe loader resolves them (YAML 1.1: `yes` is true,
`0x1F` is 31), except timestamps, which stay strings as Kubernetes reads them.

The parser is libyaml's (`yaml._yaml.CParser`) when PyYAML was built with it, else
PyYAML's pure-Python one; both emit the same events with the same marks.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator

import yaml
from yaml.events import (
    AliasEvent, DocumentEndEvent, MappingEndEvent, MappingStartEvent, ScalarEvent,
    SequenceEndEvent, SequenceStartEvent, StreamEndEvent,
)

from netlab.errors import InputError

# Far deeper than any scenario or Kubernetes object (CRD schemas included); a bound so that
# a hostile file costs nothing beyond its first MAX_DEPTH levels.
MAX_DEPTH = 100

Path_ = tuple[str | int, ...]


class MarkedDict(dict):
    """A mapping that remembers its own line and the line of each key."""

    __slots__ = ("line", "key_lines")

    def __init__(self, *args: Any, line: int = 0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.line = line
        self.key_lines: dict = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class MarkedList(list):
    """A sequence that remembers its own line and the line of each item."""

    __slots__ = ("line", "item_lines")

    def __init__(self, *args: Any, line: int = 0) -> None:
        super().__init__(*args)
        self.line = line
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


# --- parsers ------------------------------------------------------------------------------

class PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's pure-Python reader, scanner and parser: events, no composer."""

    def __init__(self, text: str) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml
    CParser = None  # type: ignore[assignment,misc]

PARSERS: dict[str, Callable[[str], Any]] = {"python": PyParser}
if CParser is not None:
    PARSERS["libyaml"] = CParser
DEFAULT_PARSER = "libyaml" if CParser is not None else "python"


# --- scalars ------------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_RESOLVER = yaml.resolver.Resolver()
_CTOR = yaml.constructor.SafeConstructor()
# First characters some implicit resolver looks at; any other plain scalar is a string.
_MAYBE_TYPED = frozenset(k for k in yaml.resolver.Resolver.yaml_implicit_resolvers if k)
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
# PyYAML's own check (yaml.reader.Reader.NON_PRINTABLE), run once over the whole text so
# that both parsers report the same line.
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]")


def _construct(tag: str, value: str) -> Any:
    """The value of a standard scalar tag; ValueError when it does not fit."""
    if tag == _TAG + "str":
        return value
    if tag == _TAG + "null":
        if value not in _NULLS:
            raise ValueError
        return None
    node = yaml.ScalarNode(tag, value)
    try:
        if tag == _TAG + "bool":
            return _CTOR.construct_yaml_bool(node)
        if tag == _TAG + "int":
            return _CTOR.construct_yaml_int(node)
        if tag == _TAG + "float":
            return _CTOR.construct_yaml_float(node)
    except (ValueError, KeyError, IndexError) as e:
        raise ValueError from e
    raise KeyError(tag)


_SCALAR_TAGS = tuple(_TAG + t for t in ("str", "int", "float", "bool", "null"))


# Any string some implicit resolver would type (bool, int, float, null, timestamp, ...):
# one regular expression, so that the common case (a string) costs one match.
_TYPED = re.compile("|".join(sorted({f"(?:{r.pattern})" for rs in
                                     yaml.resolver.Resolver.yaml_implicit_resolvers.values()
                                     for _, r in rs})), re.X)
# Plain scalars that start like a typed one, resolved: the keys (`name`, `nodeName`,
# `targetPort`, ...) and values (`true`, `TCP`, ports) of manifests repeat, and a dict
# lookup costs less than the regular expression. Bounded: unique values (addresses,
# uids) stop being added once it is full.
_plain_cache: dict[str, Any] = {}
_PLAIN_CACHE_SIZE = 1 << 14
_MISS = object()


def _plain(value: str) -> Any:
    """An untagged plain scalar, resolved as YAML 1.1 (timestamps stay strings)."""
    if value and value[0] not in _MAYBE_TYPED:
        return value
    out = _plain_cache.get(value, _MISS)
    if out is not _MISS:
        return out
    if value and not _TYPED.match(value):
        out = value
    else:
        tag = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))
        try:
            out = _construct(tag, value) if tag in _SCALAR_TAGS else value
        except ValueError:  # matches YAML 1.1's pattern, yet holds no digit (0x_, 0b_)
            out = value
    if len(_plain_cache) < _PLAIN_CACHE_SIZE:
        _plain_cache[value] = out
    return out


_TYPE_NAMES = {type(None): "null", bool: "a boolean", int: "an integer", float: "a number"}


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


# --- paths --------------------------------------------------------------------------------

def format_path(path: Path_) -> str | None:
    """("clusters", 0, "name") → "clusters[0].name"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def line_index(data: Any) -> dict[Path_, int]:
    """The line of every path in a document: a mapping's key line for its value, an item's
    first line for a sequence item, the document's first line for ()."""
    lines: dict[Path_, int] = {}
    if isinstance(data, (MarkedDict, MarkedList)):
        lines[()] = data.line
    todo: list[tuple[Path_, Any]] = [((), data)]
    while todo:
        path, obj = todo.pop()
        if isinstance(obj, MarkedDict):
            for key, value in obj.items():
                lines[path + (key,)] = obj.key_lines.get(key, obj.line)
                todo.append((path + (key,), value))
        elif isinstance(obj, MarkedList):
            for i, value in enumerate(obj):
                lines[path + (i,)] = obj.line_of(i)
                todo.append((path + (i,), value))
    return lines


# --- documents ----------------------------------------------------------------------------

# Empty collections without running __init__ (the builder sets the attributes itself).
_new_dict = dict.__new__
_new_list = list.__new__


class _Builder:
    """Events of one document → data. The open collection's state lives in the loop's
    locals; `stack` keeps the enclosing ones as (collection, the mapping's last key,
    whether a key is due next), and `top` the open one when an error is raised."""

    def __init__(self, file: str, error: type[InputError]) -> None:
        self.file = file
        self.error = error
        self.stack: list[tuple[Any, Any, bool]] = []
        self.top: tuple[Any, Any, bool] | None = None

    def path(self) -> Path_:
        frames = self.stack + ([self.top] if self.top is not None else [])
        out: list[str | int] = []
        last = len(frames) - 1
        for i, (container, key, key_due) in enumerate(frames):
            if container.__class__ is MarkedList:
                # An open child is already the last item; a value being read is the next.
                out.append(len(container) - (i < last))
            elif not (i == last and key_due):  # a mapping: the key whose value is open
                out.append(key)
        return tuple(out)

    def fail(self, message: str, event: Any, path: Path_ | None = None) -> InputError:
        return self.error(message, file=self.file, line=event.start_mark.line + 1,
                          field=format_path(self.path() if path is None else path))

    def scalar(self, event: Any) -> Any:
        """A scalar with an anchor or a tag (the loop reads untagged ones itself)."""
        if event.anchor is not None:
            raise self.fail(f"anchor &{event.anchor}: anchors and aliases are not supported; "
                            "write the value out in full", event)
        tag = event.tag
        if tag is None:
            return _plain(event.value) if event.implicit[0] else event.value
        if tag == "!":  # the non-specific tag: a string
            return event.value
        if tag not in _SCALAR_TAGS:
            raise self.fail(f"tag {_short(tag)} is not supported; netlab reads plain YAML "
                            "(standard tags only: !!str, !!int, !!float, !!bool, !!null)", event)
        try:
            return _construct(tag, event.value)
        except ValueError:
            raise self.fail(f"{event.value!r} is not a valid {_short(tag)}", event) from None

    def check_collection(self, event: Any) -> None:
        """Refuse a collection's anchor, a tag other than !!map or !!seq, and depth."""
        if event.anchor is not None:
            raise self.fail(f"anchor &{event.anchor}: anchors and aliases are not supported; "
                            "write the value out in full", event)
        if event.tag is not None and event.tag not in ("!", _TAG + "map", _TAG + "seq"):
            raise self.fail(f"tag {_short(event.tag)} is not supported; netlab reads plain "
                            "YAML (standard tags only: !!map, !!seq)", event)
        if len(self.stack) + (self.top is not None) >= MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels", event, ())

    def document(self, get: Callable[[], Any]) -> Any:
        """Events up to the end of the document → its value. The hot loop: untagged
        scalars, keys and items are handled inline; everything else in methods."""
        stack = self.stack
        maybe_typed = _MAYBE_TYPED
        cached = _plain_cache.get
        miss = _MISS
        new_dict, new_list = _new_dict, _new_list
        root: Any = None
        container: Any = None  # the open collection, and of it:
        lines: Any = None      # its key_lines or item_lines
        key: Any = None        # a mapping's last key
        key_due = False        # a mapping's next scalar is a key
        is_list = False
        while True:
            event = get()
            cls = event.__class__
            if cls is ScalarEvent:
                if event.anchor is None and event.tag is None:
                    value = event.value
                    if event.implicit[0] and (not value or value[0] in maybe_typed):
                        resolved = cached(value, miss)
                        value = _plain(value) if resolved is miss else resolved
                else:
                    self.top = (container, key, key_due) if container is not None else None
                    value = self.scalar(event)
                if key_due:
                    if value.__class__ is not str or value in lines or value == "<<":
                        self.top = (container, key, key_due)
                        self.key(container, value, event)
                    lines[value] = event.start_mark.line + 1
                    key = value
                    key_due = False
                elif is_list:
                    container.append(value)
                    lines.append(event.start_mark.line + 1)
                elif container is not None:
                    container[key] = value
                    key_due = True
                else:
                    root = value
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                if event.anchor is not None or event.tag is not None \
                        or len(stack) + (container is not None) >= MAX_DEPTH:
                    self.top = (container, key, key_due) if container is not None else None
                    self.check_collection(event)
                if cls is MappingStartEvent:
                    value = new_dict(MarkedDict)
                    value.key_lines = {}
                else:
                    value = new_list(MarkedList)
                    value.item_lines = []
                value.line = event.start_mark.line + 1
                if key_due:
                    self.top = (container, key, key_due)
                    raise self.fail("keys must be strings, not a mapping or a list", event)
                if is_list:
                    container.append(value)
                    lines.append(value.line)
                elif container is not None:
                    container[key] = value
                    key_due = True
                else:
                    root = value
                if container is not None:
                    stack.append((container, key, key_due))
                container = value
                key = None
                if cls is MappingStartEvent:
                    lines, key_due, is_list = value.key_lines, True, False
                else:
                    lines, key_due, is_list = value.item_lines, False, True
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                if stack:
                    container, key, key_due = stack.pop()
                    is_list = container.__class__ is MarkedList
                    lines = container.item_lines if is_list else container.key_lines
                else:
                    container = lines = key = None
                    key_due = is_list = False
            elif cls is AliasEvent:
                self.top = (container, key, key_due) if container is not None else None
                raise self.fail(f"alias *{event.anchor}: anchors and aliases are not supported; "
                                "write the value out in full", event)
            elif cls is DocumentEndEvent:
                return root
            else:  # pragma: no cover - the parser emits nothing else inside a document
                raise self.fail(f"unexpected YAML event {cls.__name__}", event)


    def key(self, mapping: MarkedDict, key: Any, event: Any) -> None:
        """Refuse what may not be a key; a plain `<<` is a merge key, a quoted one is not."""
        if event.tag is None and event.implicit[0] and event.value == "<<":
            raise self.fail("merge keys (<<) are not supported; write the keys out", event)
        if key.__class__ is not str:
            raise self.fail(f"key {event.value!r} is not a string (YAML reads it as "
                            f"{_TYPE_NAMES.get(type(key), type(key).__name__)}); quote it", event)
        if key in mapping.key_lines:
            raise self.fail(f"duplicate key '{key}' (first on line {mapping.key_lines[key]})",
                            event, self.path() + (key,))


def _hint(problem: str, text: str, mark) -> str:
    """What a newcomer most likely did, for libyaml's two commonest complaints."""
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line]:
        return "; the line holds a tab: YAML indents with spaces only"
    if "mapping values are not allowed" in problem:
        return "; a key's indentation differs from its siblings', or a value holds ': ' (quote it)"
    return ""


def _located(exc: yaml.YAMLError, text: str, file: str, error: type[InputError]) -> InputError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem:
            problem = f"{exc.problem} ({exc.context})"
        problem += _hint(exc.problem or "", text, mark)
        return error(f"not valid YAML: {problem}", file=file, line=mark.line + 1 if mark else None)
    return error(f"not valid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                 file=file)


def _documents(text: str, file: str, error: type[InputError],
               parser: str | None) -> Iterator[tuple[int, Any]]:
    bad = _NON_PRINTABLE.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise error(f"character U+{ord(bad.group()):04X} is not allowed in YAML text",
                    file=file, line=line)
    events = PARSERS[parser or DEFAULT_PARSER](text)
    get = events.get_event
    try:
        get()  # StreamStartEvent
        while True:
            event = get()
            if event.__class__ is StreamEndEvent:
                return
            value = _Builder(file, error).document(get)
            yield event.start_mark.line + 1, value
    except yaml.YAMLError as exc:
        raise _located(exc, text, file, error) from None


def documents(text: str, file: str, *, error: type[InputError] = InputError,
              parser: str | None = None) -> Iterator[Any]:
    """Each YAML document of `text`, in order, as soon as it is read (None for an empty
    one). `parser`: "libyaml" or "python" (default: libyaml where PyYAML has it)."""
    for _, value in _documents(text, file, error, parser):
        yield value


def document(text: str, file: str, *, error: type[InputError] = InputError,
             parser: str | None = None) -> Any:
    """The single YAML document of `text` (None when the text holds none)."""
    found: Any = None
    for i, (line, value) in enumerate(_documents(text, file, error, parser)):
        if i == 1:
            raise error("a second YAML document starts here; this file holds one", file=file,
                        line=line)
        found = value
    return found
