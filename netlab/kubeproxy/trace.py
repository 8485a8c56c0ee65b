"""Trace one packet through rendered rules, as kube-proxy's test helpers do.

``trace_iptables`` is ``tracePacket`` from pkg/proxy/iptables/proxier_test.go: it runs
nat PREROUTING (or nat KUBE-SERVICES when the dump has no PREROUTING chain, as a bare
proxier restore input does), following every matching jump; a jump with
``--probability`` does not end the chain, so every endpoint is collected. The
destination becomes the first DNAT target, then filter KUBE-SERVICES,
KUBE-EXTERNAL-SERVICES, KUBE-NODEPORTS and KUBE-PROXY-FIREWALL run. Rules that test
``recent --rcheck``, a mark or a conntrack state never match; ``--src-type``/
``--dst-type LOCAL`` match the given local IPs. ``output`` is the DNAT targets (or
ACCEPT/DROP/REJECT) joined by ", ", ``masq`` whether KUBE-MARK-MASQ was hit.

``trace_nftables`` follows kube-proxy's nftables ``tracePacket`` (helpers_test.go): it
recognises exactly the rule shapes the nftables proxier writes (address and port
matches, set lookups, verdict maps including ``numgen random mod N vmap``, ``fib ...
type local``, jump/goto/return, drop/reject, ``dnat to``, ``jump mark-for-masquerade``),
ignoring comments and ``ct state new`` (only new connections are traced). It runs
filter-prerouting-pre-dnat (a verdict there ends the trace), nat-prerouting, then, with
the destination rewritten by the first DNAT, filter-forward (a verdict ends the trace)
and filter-input. Rules of any other shape are skipped (kube-proxy's helper fails the
test instead); their text is returned in ``unmatched``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from netlab.kubeproxy.iptdump import Dump, Rule, Value, parse_dump
from netlab.kubeproxy.netutil import parse_cidr, parse_ip, split_host_port


@dataclass
class TraceResult:
    output: str
    masq: bool
    matches: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"output": self.output, "masq": self.masq}


def _address_matches(value: Value, ip_text: str) -> bool:
    """``addressMatches``: an IP or CIDR, possibly negated."""
    ip = parse_ip(ip_text)
    if "/" in value.value:
        net = parse_cidr(value.value)
        matches = net is not None and ip is not None and ip.version == net.version and ip in net
    else:
        other = parse_ip(value.value)
        matches = ip is not None and other is not None and ip == other
    return matches != value.negated


class _IPTablesTracer:
    def __init__(self, dump: Dump, local_ips) -> None:
        self.dump = dump
        self.local_ips = set(local_ips) | {"127.0.0.1", "::1"}
        self.matches: list[str] = []
        self.outputs: list[str] = []
        self.mark_masq = False

    def _addrtype(self, ip: str) -> str:
        return "LOCAL" if ip in self.local_ips else "not-matched"

    def rule_matches(self, r: Rule, src: str, proto: str, dst: str, dport: str) -> bool:
        checks = (
            r.source is None or _address_matches(r.source, src),
            r.source_type is None or r.source_type.matches(self._addrtype(src)),
            r.protocol is None or r.protocol.matches(proto),
            r.destination is None or _address_matches(r.destination, dst),
            r.destination_type is None or r.destination_type.matches(self._addrtype(dst)),
            r.destination_port is None or r.destination_port.matches(dport),
            # anything that checks past state/history never matches
            r.affinity_check is None and r.mark_check is None and r.ctstate_check is None,
        )
        return all(checks)

    def run_chain(self, table: str, chain: str, src: str, proto: str, dst: str,
                  dport: str) -> bool:
        c = self.dump.chain(table, chain)
        if c is None:
            return False
        for r in c.rules:
            if r.jump is None or not self.rule_matches(r, src, proto, dst, dport):
                continue
            self.matches.append(r.raw)
            target = r.jump.value
            if target == "KUBE-MARK-MASQ":
                self.mark_masq = True
            elif target in ("ACCEPT", "REJECT", "DROP"):
                self.outputs.append(target)
                return True
            elif target == "DNAT":
                self.outputs.append(r.dnat_destination.value)
                return True
            else:
                terminated = self.run_chain(table, target, src, proto, dst, dport)
                if terminated and r.probability is None:
                    return True
        return False


def trace_iptables(rules: str | Dump, src: str, proto: str, dst: str, dport: int,
                   local_ips=()) -> TraceResult:
    """``tracePacket`` over an ``iptables-restore`` dump (or a parsed one)."""
    dump = parse_dump(rules) if isinstance(rules, str) else rules
    t = _IPTablesTracer(dump, local_ips)
    proto, port = (proto or "tcp").lower(), str(dport)
    first = "PREROUTING" if dump.chain("nat", "PREROUTING") is not None else "KUBE-SERVICES"
    t.run_chain("nat", first, src, proto, dst, port)
    if t.outputs:
        dst = split_host_port(t.outputs[0])[0] if ":" in t.outputs[0] else t.outputs[0]
    for chain in ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS",
                  "KUBE-PROXY-FIREWALL"):
        t.run_chain("filter", chain, src, proto, dst, port)
    return TraceResult(", ".join(t.outputs), t.mark_masq, t.matches)


# --- nftables --------------------------------------------------------------------------

@dataclass
class NFTElement:
    key: list[str]
    value: list[str]
    comment: str | None = None


@dataclass
class NFTState:
    """Chains (rule texts), sets and maps of one table, parsed from a dump."""

    chains: dict[str, list[str]] = field(default_factory=dict)
    sets: dict[str, list[NFTElement]] = field(default_factory=dict)
    maps: dict[str, list[NFTElement]] = field(default_factory=dict)


_ADD = re.compile(r"^add (table|chain|rule|set|map|element) (\S+) (\S+)(?: (.*))?$")
_ELEMENT = re.compile(r'^(\S+) \{ ([^"]*?)(?: comment "([^"]*)")?(?: : (.*))? \}$')


def parse_nft_dump(text: str) -> NFTState:
    """Parse ``add ...`` lines as knftables' Fake.Dump (and a transaction) writes them."""
    state = NFTState()
    for line in text.splitlines():
        match = _ADD.match(line.strip())
        if not match:
            continue
        kind, rest = match[1], match[4] or ""
        name, _, body = rest.partition(" ")
        if kind == "chain":
            state.chains.setdefault(name, [])
        elif kind == "rule":
            state.chains.setdefault(name, []).append(body)
        elif kind == "set":
            state.sets.setdefault(name, [])
        elif kind == "map":
            state.maps.setdefault(name, [])
        elif kind == "element":
            _add_element(state, rest)
    return state


def _add_element(state: NFTState, rest: str) -> None:
    match = _ELEMENT.match(rest)
    if not match:
        return
    name, key, comment, value = match[1], match[2], match[3], match[4]
    elem = NFTElement(key.split(" . "), value.split(" . ") if value else [], comment)
    target = state.maps if value else state.sets
    target.setdefault(name, []).append(elem)


_IGNORED = re.compile(r' *comment "[^"]*"$|^ct state new')
_PATTERNS = [(name, re.compile(rx)) for name, rx in (
    ("dest_ip_lookup", r"^ip6* daddr @(\S+)"),
    ("dest_source_lookup", r"^ip6* daddr \. meta l4proto \. th dport \. ip6* saddr @(\S+)"),
    ("dest_lookup", r"^ip6* daddr \. meta l4proto \. th dport @(\S+)"),
    ("port_lookup", r"^meta l4proto \. th dport @(\S+)"),
    ("dest_dispatch", r"^ip6* daddr \. meta l4proto \. th dport vmap @(\S+)$"),
    ("port_dispatch", r"^meta l4proto \. th dport vmap @(\S+)$"),
    ("dest_set", r"^ip6* daddr (!= )?\{([^}]*)\}"),
    ("dest_addr", r"^ip6* daddr (!= )?(\S+)"),
    ("dest_local", r"^fib daddr type local"),
    ("dest_port", r"^(tcp|udp|sctp) dport (\d+)"),
    ("source_set", r"^ip6* saddr (!= )?\{([^}]*)\}"),
    ("source_lookup", r"^ip6* saddr @(\S+)"),
    ("source_addr", r"^ip6* saddr (!= )?(\S+)"),
    ("source_local", r"^fib saddr type local"),
    ("masquerade", r"^jump mark-for-masquerade$"),
    ("jump", r"^(jump|goto) (\S+)$"),
    ("return", r"^return$"),
    ("verdict", r"^(drop|reject)$"),
    ("dnat", r"^meta l4proto (tcp|udp|sctp) dnat to (\S+)$"),
    ("numgen", r"^numgen random mod \d+ vmap \{(.*)\}$"),
    ("update", r"^update @(\S+) \{ ip6* saddr \}$"),
)]
_VMAP_ENTRY = re.compile(r"\d+ : goto (\S+)")


@dataclass
class _Packet:
    src: str
    proto: str
    dst: str
    dport: str


def _in(ip_text: str, address: str) -> bool:
    return _address_matches(Value(address.strip()), ip_text)


class _NFTablesTracer:
    def __init__(self, state: NFTState, local_ips) -> None:
        self.state = state
        self.local_ips = set(local_ips)
        self.matches: list[str] = []
        self.outputs: list[str] = []
        self.unmatched: list[str] = []
        self.mark_masq = False

    def run_chain(self, name: str, pkt: _Packet) -> bool:
        for rule_text in self.state.chains.get(name, []):
            result = self._run_rule(_IGNORED.sub("", rule_text), rule_text, pkt)
            if result is not None:
                return result
        return False

    def _run_rule(self, rule: str, original: str, pkt: _Packet) -> bool | None:
        """None: go on with the next rule; True/False: the chain ends (terminated?)."""
        while rule:
            rule = rule.lstrip(" ")
            step = self._step(rule, original, pkt)
            if step is None:
                return None
            if isinstance(step, bool):
                return step
            rule = step
        return None

    def _step(self, rule: str, original: str, pkt: _Packet):
        """Consume one piece of ``rule``: the rest (str), None (no match), or a bool."""
        for name, rx in _PATTERNS:
            match = rx.match(rule)
            if match:
                return getattr(self, "_do_" + name)(match, rule[match.end():], original, pkt)
        self.unmatched.append(original)
        return None

    # matches: return the remaining rule text, or None when the packet does not match
    def _do_dest_ip_lookup(self, m, rest, _o, pkt):
        elems = self.state.sets.get(m[1], [])
        return rest if any(e.key[0] == pkt.dst for e in elems) else None

    def _do_dest_source_lookup(self, m, rest, _o, pkt):
        elems = self.state.sets.get(m[1], [])
        ok = any(e.key[:3] == [pkt.dst, pkt.proto, pkt.dport] and _in(pkt.src, e.key[3])
                 for e in elems)
        return rest if ok else None

    def _do_dest_lookup(self, m, rest, _o, pkt):
        elems = self.state.sets.get(m[1], [])
        return rest if any(e.key == [pkt.dst, pkt.proto, pkt.dport] for e in elems) else None

    def _do_port_lookup(self, m, rest, _o, pkt):
        elems = self.state.sets.get(m[1], [])
        return rest if any(e.key == [pkt.proto, pkt.dport] for e in elems) else None

    def _do_dest_dispatch(self, m, rest, _o, pkt):
        for e in self.state.maps.get(m[1], []):
            if e.key == [pkt.dst, pkt.proto, pkt.dport]:
                return e.value[0]
        return None

    def _do_port_dispatch(self, m, rest, _o, pkt):
        for e in self.state.maps.get(m[1], []):
            if e.key == [pkt.proto, pkt.dport]:
                return e.value[0]
        return None

    def _set_match(self, ip, negated, body):
        hits = [_in(ip, a) for a in body.replace(" ", "").split(",") if a]
        return not any(hits) if negated else any(hits)

    def _do_dest_set(self, m, rest, _o, pkt):
        return rest if self._set_match(pkt.dst, bool(m[1]), m[2]) else None

    def _do_source_set(self, m, rest, _o, pkt):
        return rest if self._set_match(pkt.src, bool(m[1]), m[2]) else None

    def _do_dest_addr(self, m, rest, _o, pkt):
        return rest if _in(pkt.dst, m[2]) != bool(m[1]) else None

    def _do_source_addr(self, m, rest, _o, pkt):
        return rest if _in(pkt.src, m[2]) != bool(m[1]) else None

    def _do_source_lookup(self, m, rest, _o, pkt):
        # affinity sets are empty for a new connection
        return rest if any(e.key[0] == pkt.src for e in self.state.sets.get(m[1], [])) else None

    def _do_dest_local(self, m, rest, _o, pkt):
        return rest if pkt.dst in self.local_ips else None

    def _do_source_local(self, m, rest, _o, pkt):
        return rest if pkt.src in self.local_ips else None

    def _do_dest_port(self, m, rest, _o, pkt):
        return rest if (m[1], m[2]) == (pkt.proto, pkt.dport) else None

    # actions
    def _do_masquerade(self, m, rest, original, pkt):
        self.matches.append(original)
        self.mark_masq = True
        return rest

    def _do_update(self, m, rest, original, pkt):
        return rest

    def _do_jump(self, m, rest, original, pkt):
        self.matches.append(original)
        if self.run_chain(m[2], pkt):
            return True
        return False if m[1] == "goto" else rest

    def _do_return(self, m, rest, original, pkt):
        self.matches.append(original)
        return False

    def _do_verdict(self, m, rest, original, pkt):
        self.matches.append(original)
        self.outputs.append(m[1].upper())
        return True

    def _do_dnat(self, m, rest, original, pkt):
        self.matches.append(original)
        self.outputs.append(m[2])
        return True

    def _do_numgen(self, m, rest, original, pkt):
        for entry in _VMAP_ENTRY.finditer(m[1]):
            self.matches.append(original)
            self.run_chain(entry[1], pkt)  # collect every endpoint
        return True


def trace_nftables(rules: str | NFTState, src: str, proto: str, dst: str, dport: int,
                   local_ips=()) -> TraceResult:
    """kube-proxy's nftables ``tracePacket`` over a dump or transaction text."""
    state = parse_nft_dump(rules) if isinstance(rules, str) else rules
    t = _NFTablesTracer(state, local_ips)
    pkt = _Packet(src, (proto or "tcp").lower(), dst, str(dport))
    for pre in ("filter-prerouting-pre-dnat", "filter-prerouting"):
        if pre in state.chains:
            if t.run_chain(pre, pkt):
                return TraceResult(", ".join(t.outputs), t.mark_masq, t.matches, t.unmatched)
            break
    t.run_chain("nat-prerouting", pkt)
    if t.outputs:
        pkt.dst = split_host_port(t.outputs[0])[0]
    if not t.run_chain("filter-forward", pkt):
        t.run_chain("filter-input", pkt)
    return TraceResult(", ".join(t.outputs), t.mark_masq, t.matches, t.unmatched)
