"""Parse and normalise ``iptables-restore`` dumps the way kube-proxy's tests do.

``parse_dump`` mirrors ``iptablestest.ParseIPTablesDump`` (pkg/util/iptables/testing/
parse.go): tables, ``:CHAIN - [p:b]`` declarations, ``-A`` rules (kept raw), ``-X``
deletions. ``parse_rule`` mirrors ``ParseRule``: words (a quoted string is one word),
``-m MODULE`` skipped, ``!`` negating the next known parameter.

``sort_iptables_rules`` is ``sortIPTablesRules`` from pkg/proxy/iptables/proxier_test.go:
tables by name; chains KUBE-NODEPORTS, KUBE-SERVICES, other KUBE-* alphabetically, then
the rest alphabetically; rules of KUBE-NODEPORTS (filter and nat) and filter
KUBE-SERVICES stable-sorted by the service name in their comment; nat KUBE-SERVICES the
same but with the "must be the last rule" rule kept last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DECLARE_TABLE = re.compile(r"^\*(.*)$")
# kube-proxy's fake only writes "-"; iptables-save writes the policy of built-in chains.
_DECLARE_CHAIN = re.compile(r"^:([^ ]*) (?:-|ACCEPT|DROP) \[([0-9]*):([0-9]*)\]$")
_ADD_RULE = re.compile(r"^-A ([^ ]*) (.*)$")
_DELETE_CHAIN = re.compile(r"^-X (.*)$")
_WORD = re.compile(r'(?:^|\s)("[^"]*"|[^"]\S*)')


class DumpError(ValueError):
    """The text is not an iptables-restore dump this parser understands."""


@dataclass
class Value:
    value: str
    negated: bool = False

    def matches(self, other: str) -> bool:
        return (self.value != other) if self.negated else (self.value == other)


# Parameters ParseRule knows: name -> (attribute, takes value, negatable).
_PARAMS = {
    "-A": ("chain", True, False),
    "--comment": ("comment", True, False),
    "-p": ("protocol", True, True),
    "-s": ("source", True, True),
    "--src-type": ("source_type", True, True),
    "--sport": ("source_port", True, True),
    "-d": ("destination", True, True),
    "--dst-type": ("destination_type", True, True),
    "--dport": ("destination_port", True, True),
    "--match-set": ("match_set", True, True),
    "-j": ("jump", True, False),
    "--random-fully": ("random_fully", False, False),
    "--probability": ("probability", True, False),
    "--to-destination": ("dnat_destination", True, False),
    "--rcheck": ("affinity_check", False, True),
    "--mark": ("mark_check", True, True),
    "--ctstate": ("ctstate_check", True, True),
    "--name": ("affinity_name", True, False),
    "--seconds": ("affinity_seconds", True, False),
    "--set": ("affinity_set", False, True),
    "--reap": ("affinity_reap", False, False),
    "--mode": ("statistic_mode", True, False),
}


@dataclass
class Rule:
    raw: str
    chain: str = ""
    comment: Value | None = None
    protocol: Value | None = None
    source: Value | None = None
    source_type: Value | None = None
    source_port: Value | None = None
    destination: Value | None = None
    destination_type: Value | None = None
    destination_port: Value | None = None
    match_set: Value | None = None
    jump: Value | None = None
    random_fully: bool | None = None
    probability: Value | None = None
    dnat_destination: Value | None = None
    affinity_check: bool | None = None
    mark_check: Value | None = None
    ctstate_check: Value | None = None
    affinity_name: Value | None = None
    affinity_seconds: Value | None = None
    affinity_set: bool | None = None
    affinity_reap: bool | None = None
    statistic_mode: Value | None = None


def split_words(rule: str) -> list[str]:
    return [m.group(1).strip('"') for m in _WORD.finditer(rule)]


def parse_rule(rule: str) -> Rule:
    """``ParseRule(rule, strict=false)``."""
    parsed = Rule(raw=rule)
    words = split_words(rule)
    if len(words) < 2 or words[0] != "-A":
        raise DumpError(f'bad iptables rule (does not start with "-A CHAIN"): {rule}')
    if len(words) < 3:
        raise DumpError(f"bad iptables rule (no match rules): {rule}")
    negated = False
    w = 0
    while w < len(words):
        word = words[w]
        if word == "-m" and w < len(words) - 1:
            w += 2
            continue
        if word == "!":
            negated = True
            w += 1
            continue
        spec = _PARAMS.get(word)
        if spec is None:
            w += 1
        else:
            attr, takes_value, negatable = spec
            if negated and not negatable:
                raise DumpError(f"cannot negate parameter {word!r}: {rule}")
            if takes_value:
                if w == len(words) - 1:
                    raise DumpError(f"parameter {word!r} requires an argument: {rule}")
                value = words[w + 1]
                setattr(parsed, attr, value if attr == "chain" else Value(value, negated))
                w += 2
            else:
                setattr(parsed, attr, not negated)
                w += 1
        negated = False
    return parsed


@dataclass
class Chain:
    name: str
    packets: int = 0
    bytes: int = 0
    rules: list[Rule] = field(default_factory=list)
    deleted: bool = False


@dataclass
class Table:
    name: str
    chains: list[Chain] = field(default_factory=list)

    def chain(self, name: str) -> Chain | None:
        for c in self.chains:
            if c.name == name:
                return c
        return None


@dataclass
class Dump:
    tables: list[Table] = field(default_factory=list)

    def table(self, name: str) -> Table | None:
        for t in self.tables:
            if t.name == name:
                return t
        return None

    def chain(self, table: str, chain: str) -> Chain | None:
        t = self.table(table)
        return t.chain(chain) if t else None

    def __str__(self) -> str:
        """``IPTablesDump.String()``."""
        out: list[str] = []
        for t in self.tables:
            out.append(f"*{t.name}")
            out += [f":{c.name} - [{c.packets}:{c.bytes}]" for c in t.chains]
            out += [r.raw for c in t.chains for r in c.rules]
            out += [f"-X {c.name}" for c in t.chains if c.deleted]
            out.append("COMMIT")
        return "\n".join(out) + "\n"


def parse_dump(data: str) -> Dump:
    """``ParseIPTablesDump``."""
    dump = Dump()
    state = "table"
    table: Table | None = None
    for line in data.strip("\n").split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if state == "chains":
            match = _DECLARE_CHAIN.match(line)
            if match:
                table.chains.append(Chain(match[1], int(match[2] or 0), int(match[3] or 0)))
                continue
            state = "rules"
        if state == "table":
            match = _DECLARE_TABLE.match(line)
            if not match:
                raise DumpError(f"could not parse iptables data (table {len(dump.tables) + 1} "
                                f"starts with {line!r} not a table name)")
            table = Table(match[1])
            dump.tables.append(table)
            state = "chains"
            continue
        _parse_rule_line(dump, table, line)
        if line == "COMMIT":
            state = "table"
    if state != "table":
        raise DumpError("could not parse iptables data (no COMMIT line?)")
    return dump


def _parse_rule_line(dump: Dump, table: Table, line: str) -> None:
    if line == "COMMIT":
        return
    match = _ADD_RULE.match(line)
    if match:
        chain = table.chain(match[1])
        if chain is None:
            raise DumpError(f"error parsing rule {line!r}: no such chain {match[1]!r}")
        if chain.deleted:
            raise DumpError(f"cannot add rules to deleted chain {match[1]!r}")
        chain.rules.append(parse_rule(line))
        return
    match = _DELETE_CHAIN.match(line)
    if match:
        chain = table.chain(match[1])
        if chain is None:
            raise DumpError(f"error parsing rule {line!r}: no such chain {match[1]!r}")
        if chain.rules:
            raise DumpError(f"cannot delete chain {match[1]!r} after adding rules")
        chain.deleted = True
        return
    raise DumpError(f"error parsing rule {line!r}")


# --- sortIPTablesRules -----------------------------------------------------------------

def _chain_key(name: str) -> tuple:
    if name == "KUBE-NODEPORTS":
        return (0, "")
    if name == "KUBE-SERVICES":
        return (1, "")
    if name.startswith("KUBE-"):
        return (2, name)
    return (3, name)


def _service_name(rule: Rule) -> str | None:
    if rule.comment is None:
        return None
    value = rule.comment.value
    cut = min((i for i in (value.find(" "), value.find(":")) if i != -1), default=-1)
    return value[:cut] if cut != -1 else value


def _stable_sort_by_comment(rules: list[Rule], keep_last: bool = False) -> list[Rule]:
    """Stable sort by ``orderByCommentServiceName``; rules without a comment stay put
    relative to each other (Go's comparator treats them as "not less")."""
    def is_last(r: Rule) -> bool:
        return keep_last and r.comment is not None and "must be the last rule" in r.comment.value
    return _merge_sort(rules, lambda a, b: _less(a, b, is_last))


def _less(a: Rule, b: Rule, is_last) -> bool:
    if is_last(a):
        return False
    if is_last(b):
        return True
    na, nb = _service_name(a), _service_name(b)
    if na is None or nb is None:
        return False
    return na < nb


def _merge_sort(items: list, less) -> list:
    """A stable sort driven by a Go-style ``less`` (which need not be a total order)."""
    if len(items) <= 1:
        return list(items)
    mid = len(items) // 2
    left, right = _merge_sort(items[:mid], less), _merge_sort(items[mid:], less)
    out = []
    i = j = 0
    while i < len(left) and j < len(right):
        if less(right[j], left[i]):
            out.append(right[j])
            j += 1
        else:
            out.append(left[i])
            i += 1
    return out + left[i:] + right[j:]


def sort_dump(dump: Dump) -> Dump:
    dump.tables.sort(key=lambda t: t.name)
    for table in dump.tables:
        table.chains.sort(key=lambda c: _chain_key(c.name))
    for table_name, chain_name, keep_last in (("filter", "KUBE-NODEPORTS", False),
                                              ("nat", "KUBE-NODEPORTS", False),
                                              ("filter", "KUBE-SERVICES", False),
                                              ("nat", "KUBE-SERVICES", True)):
        chain = dump.chain(table_name, chain_name)
        if chain is not None:
            chain.rules = _stable_sort_by_comment(chain.rules, keep_last)
    return dump


def sort_iptables_rules(data: str) -> str:
    """``sortIPTablesRules``: the dump in kube-proxy's test normal form."""
    return str(sort_dump(parse_dump(data)))


def normalize_for_compare(data: str) -> str:
    """``assertIPTablesRulesEqual``'s view of a result: left-trimmed, then sorted."""
    return sort_iptables_rules(data.lstrip(" \t\n"))


# --- checkIPTablesRuleJumps ------------------------------------------------------------

_BUILTIN_TARGETS = {"ACCEPT", "REJECT", "DROP", "MARK", "RETURN", "DNAT", "SNAT", "MASQUERADE"}
_ALWAYS_CREATED = {"KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS",
                   "KUBE-POSTROUTING", "KUBE-FORWARD", "KUBE-MARK-MASQ",
                   "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"}


def check_rule_jumps(data: str) -> list[str]:
    """kube-proxy's ``checkIPTablesRuleJumps``: jumps only to created, non-empty chains,
    rules only in created chains, no created chain left unused. Returns the problems."""
    problems = []
    for table in parse_dump(data).tables:
        created = {c.name for c in table.chains if not c.deleted}
        filled = {c.name for c in table.chains if c.rules}
        jumped = {r.jump.value for c in table.chains for r in c.rules if r.jump} - _BUILTIN_TARGETS
        missing = (jumped | filled) - created
        if missing:
            problems.append(f"chains in {table.name} used but not created: {sorted(missing)}")
        empty = jumped - filled - {"KUBE-NODEPORTS"}
        if empty:
            problems.append(f"chains in {table.name} jumped to but empty: {sorted(empty)}")
        extra = created - jumped - _ALWAYS_CREATED
        if extra:
            problems.append(f"chains in {table.name} created but not used: {sorted(extra)}")
    return problems
