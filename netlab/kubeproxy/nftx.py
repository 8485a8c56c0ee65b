"""A tiny knftables: build an nftables transaction, print it, and dump its result.

``Transaction`` records operations in order and prints them the way knftables'
``writeOperation`` does (``add chain ip kube-proxy NAME { type nat hook output priority
-100 ; }``, ``add element ip kube-proxy MAP { KEY comment "c" : VALUE }``, ...), which is
the text kube-proxy pipes into ``nft -f``. ``dump()`` applies the operations to an empty
table and prints the result like knftables' ``Fake.Dump()`` (table, chains with their
rules, sets and maps with their elements, each group sorted by name): the form
kube-proxy's nftables tests compare against.

``sort_nftables_transaction`` is ``sortNFTablesTransaction`` from kube-proxy's
pkg/proxy/nftables/helpers_test.go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# knftables.ParsePriority for the named priorities kube-proxy uses.
_NAMED_PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0,
                     "security": 50, "srcnat": 100}


def parse_priority(priority: str) -> int:
    """``dstnat-10`` -> -110, ``filter`` -> 0, ``-5`` -> -5."""
    for name, value in _NAMED_PRIORITIES.items():
        if priority.startswith(name):
            rest = priority[len(name):]
            return value + (int(rest) if rest else 0)
    return int(priority)


def quote(text: str) -> str:
    """Go's ``%q`` for the plain ASCII comments kube-proxy writes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def concat(*args) -> str:
    """``knftables.Concat``: words and lists of words joined by single spaces, except
    that an ``"@"`` word is glued to the next one (``"@", "set"`` -> ``@set``)."""
    words: list[str] = []
    for arg in args:
        if arg.__class__ is str:
            words.append(arg)
        elif isinstance(arg, (list, tuple)):
            words.extend([a if a.__class__ is str else str(a) for a in arg])
        else:
            words.append(str(arg))
    if "@" not in words and "" not in words:
        return " ".join(words)  # the common case: nothing glued, nothing empty
    out: list[str] = []
    need_space = False
    written = False  # anything non-empty so far
    for word in words:
        if need_space:
            out.append(" ")
            written = True
        out.append(word)
        written = written or bool(word)
        need_space = written and word != "@"
    return "".join(out)


def _words(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


class Op(NamedTuple):  # a tuple: a ruleset has hundreds of thousands of them
    verb: str      # add, flush, delete
    kind: str      # table, chain, rule, set, map, element
    name: str      # object name (chain of a rule, set/map of an element)
    body: str = "" # what follows the name when the verb is "add"
    key: str = ""  # element key, for the dump's de-duplication


@dataclass
class _Chain:
    line: str
    rules: list[str] = field(default_factory=list)


@dataclass
class _Container:
    line: str
    elements: dict[str, str] = field(default_factory=dict)


class Transaction:
    def __init__(self, family: str = "ip", table: str = "kube-proxy") -> None:
        self.family = family
        self.table = table
        self.ops: list[Op] = []

    # --- builders ---------------------------------------------------------------------
    def add_table(self, comment: str | None = None) -> None:
        body = f"{{ comment {quote(comment)} ; }}" if comment else ""
        self.ops.append(Op("add", "table", self.table, body))

    def add_chain(self, name: str, type: str | None = None, hook: str | None = None,
                  priority: str | None = None, comment: str | None = None) -> None:
        parts = []
        if type:
            parts.append(f"type {type} hook {hook} priority {parse_priority(priority)} ;")
        if comment:
            parts.append(f"comment {quote(comment)} ;")
        body = "{ " + " ".join(parts) + " }" if parts else ""
        self.ops.append(Op("add", "chain", name, body))

    def flush_chain(self, name: str) -> None:
        self.ops.append(Op("flush", "chain", name))

    def delete_chain(self, name: str) -> None:
        self.ops.append(Op("delete", "chain", name))

    def add_rule(self, chain: str, rule: str, comment: str | None = None) -> None:
        body = rule + (f" comment {quote(comment)}" if comment is not None else "")
        self.ops.append(Op("add", "rule", chain, body))

    def add_set(self, name: str, type: str, flags=(), timeout: int | None = None,
                comment: str | None = None) -> None:
        self.ops.append(Op("add", "set", name, _container_body(type, flags, timeout, comment)))

    def add_map(self, name: str, type: str, comment: str | None = None) -> None:
        self.ops.append(Op("add", "map", name, _container_body(type, (), None, comment)))

    def flush_set(self, name: str) -> None:
        self.ops.append(Op("flush", "set", name))

    def delete_set(self, name: str) -> None:
        self.ops.append(Op("delete", "set", name))

    def add_element(self, name: str, key, value=None, comment: str | None = None) -> None:
        """``key`` and ``value`` are lists of words joined by `` . `` (a str is one word)."""
        key, value = _words(key), _words(value)
        key_text = " . ".join(key)
        body = "{ " + key_text
        if comment is not None:
            body += f" comment {quote(comment)}"
        if value:
            body += " : " + " . ".join(value)
        body += " }"
        self.ops.append(Op("add", "element", name, body, key_text))

    # --- output -----------------------------------------------------------------------
    def _prefix(self, op: Op) -> str:
        if op.kind == "table":
            return f"{op.verb} table {self.family} {self.table}"
        return f"{op.verb} {op.kind} {self.family} {self.table} {op.name}"

    def line(self, op: Op) -> str:
        prefix = self._prefix(op)
        return f"{prefix} {op.body}" if op.verb == "add" and op.body else prefix

    def text(self) -> str:
        return "".join(self.line(op) + "\n" for op in self.ops)

    def dump(self) -> str:
        """The resulting table, printed as knftables' ``Fake.Dump()`` prints it."""
        table, chains, sets, maps = None, {}, {}, {}
        for op in self.ops:
            table = self._apply(op, table, chains, sets, maps)
        if table is None:
            return ""
        out = [table]
        for name in sorted(chains):
            out += [chains[name].line, *chains[name].rules]
        for group in (sets, maps):
            for name in sorted(group):
                out += [group[name].line, *group[name].elements.values()]
        return "\n".join(out) + "\n"

    def _apply(self, op: Op, table, chains, sets, maps):
        line = self.line(op)
        if op.kind == "table":
            return None if op.verb == "delete" else (table or line)
        if op.kind == "chain":
            _apply_container(op, chains, lambda: _Chain(line), lambda c: c.rules.clear())
        elif op.kind == "rule":
            chains[op.name].rules.append(line)
        elif op.kind in ("set", "map"):
            group = sets if op.kind == "set" else maps
            _apply_container(op, group, lambda: _Container(line), lambda c: c.elements.clear())
        elif op.kind == "element":
            group = maps if " : " in op.body else sets
            group[op.name].elements[op.key] = line
        return table


def _apply_container(op: Op, group: dict, make, flush) -> None:
    if op.verb == "add":
        group.setdefault(op.name, make())
    elif op.verb == "flush":
        flush(group[op.name])
    elif op.verb == "delete":
        group.pop(op.name, None)


def _container_body(type: str, flags, timeout: int | None, comment: str | None) -> str:
    parts = [f"type {type} ;"]
    if flags:
        parts.append(f"flags {','.join(flags)} ;")
    if timeout is not None:
        parts.append(f"timeout {timeout}s ;")
    if comment:
        parts.append(f"comment {quote(comment)} ;")
    return "{ " + " ".join(parts) + " }"


# --- sortNFTablesTransaction -----------------------------------------------------------

_OBJECT_ORDER = {"table": 10, "chain": 9, "rule": 8, "set": 7, "map": 6, "element": 5}


def sort_nftables_transaction(tx: str) -> str:
    """Blank and ``#`` lines dropped; lines ordered by object type, then object name;
    rules keep their order; other lines with the same type and name by whole line."""
    lines = [line for line in tx.split("\n") if line and not line.startswith("#")]

    def key(item):
        index, line = item
        words = line.split(" ")
        if len(words) < 5:
            return (0, "", "", index)
        rank = -_OBJECT_ORDER.get(words[1], 0)
        if words[1] == "rule":
            return (rank, words[4], "", index)
        return (rank, words[4], line, index)

    return "\n".join(line for _, line in sorted(enumerate(lines), key=key))
