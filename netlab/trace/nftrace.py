"""nftables trace events, as `nft monitor` prints them, grouped into traversals (pure).

A packet whose `meta nftrace` bit is set makes the kernel report every base chain it
enters ("packet:" with its headers), every rule that matched it ("rule ... (verdict X)")
and every chain's end ("policy accept", "verdict return"). Rules loaded by iptables-nft
appear in nft syntax under their iptables table and chain names (`ip nat KUBE-SEP-...`).

One traversal is one packet crossing one namespace: it starts at the packet line of the
trace table netlab adds (its `prerouting`/`output` chains run first, priority -350, and set
the bit), and it ends in that table's `input` chain (delivered) or `postrouting` chain
(sent on), both at priority 500 after every NAT rule; a traversal that reaches neither died
in the namespace. The kernel reuses trace ids, so a traversal takes the lines of its id
until the next start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TABLE = "netlab-trace"  # the trace table netlab adds (and removes) in each namespace
_LINE = re.compile(r"^trace id (\S+) (\S+) (\S+) (\S+) (packet:|rule |verdict |policy |unknown rule )(.*)$")
_VERDICT = re.compile(r"^(.*) \(verdict ([^)]*)\)\s*$")


@dataclass(frozen=True)
class Packet:
    """The headers a trace line shows (those netlab uses)."""

    iif: str | None = None
    oif: str | None = None
    saddr: str | None = None
    daddr: str | None = None
    ttl: int | None = None
    ip_id: int | None = None
    proto: str | None = None  # tcp | udp | icmp
    sport: int | None = None
    dport: int | None = None
    tcp_flags: str | None = None
    icmp_type: str | None = None
    icmp_id: int | None = None

    @property
    def endpoints(self) -> str:
        if self.sport is not None:
            return f"{self.saddr}:{self.sport} → {self.daddr}:{self.dport}"
        return f"{self.saddr} → {self.daddr}"


def parse_packet(text: str) -> Packet:
    def word(pattern: str) -> str | None:
        m = re.search(pattern, text)
        return m.group(1) if m else None

    def num(pattern: str) -> int | None:
        w = word(pattern)
        return int(w) if w is not None and w.isdigit() else None

    proto = next((p for p in ("tcp", "udp", "icmp") if re.search(rf"(^| ){p} ", text)), None)
    return Packet(
        iif=word(r'(?:^| )iif "([^"]+)"'), oif=word(r'(?:^| )oif "([^"]+)"'),
        saddr=word(r" ip saddr (\S+)"), daddr=word(r" ip daddr (\S+)"),
        ttl=num(r" ip ttl (\d+)"), ip_id=num(r" ip id (\d+)"), proto=proto,
        sport=num(rf" {proto} sport (\d+)") if proto in ("tcp", "udp") else None,
        dport=num(rf" {proto} dport (\d+)") if proto in ("tcp", "udp") else None,
        tcp_flags=word(r" tcp flags == (\S+)"),
        icmp_type=word(r" icmp type (\S+)"), icmp_id=num(r" icmp id (\d+)"))


@dataclass(frozen=True)
class Event:
    trace_id: str
    family: str
    table: str
    chain: str
    kind: str  # packet | rule | verdict | policy | own-rule
    text: str = ""  # the rule, or the packet's headers
    verdict: str | None = None  # "accept", "drop", "jump KUBE-SVC-...", "continue", ...
    packet: Packet | None = None

    @property
    def own(self) -> bool:
        return self.table == TABLE


def parse_line(line: str) -> Event | None:
    m = _LINE.match(line.rstrip("\n"))
    if not m:
        return None
    trace_id, family, table, chain, kind, rest = m.groups()
    kind = kind.strip().rstrip(":")
    rest = rest.strip()
    if kind == "packet":
        return Event(trace_id, family, table, chain, "packet", rest, packet=parse_packet(" " + rest))
    if kind == "unknown rule":
        return Event(trace_id, family, table, chain, "own-rule", rest)
    if kind == "rule":
        v = _VERDICT.match(rest)
        text, verdict = (v.group(1), v.group(2)) if v else (rest, None)
        text = re.sub(r"\bcounter packets \d+ bytes \d+ ?", "", text)  # the counts of every packet, not ours
        return Event(trace_id, family, table, chain, "rule", re.sub(r"\s+", " ", text).strip(), verdict)
    return Event(trace_id, family, table, chain, kind, verdict=rest)


@dataclass
class Traversal:
    """One packet crossing one namespace."""

    events: list[Event] = field(default_factory=list)

    @property
    def first(self) -> Packet:
        return self.events[0].packet

    @property
    def hook(self) -> str:
        """Where the packet entered: `output` (sent by this namespace) or `prerouting`."""
        return self.events[0].chain

    @property
    def last(self) -> Packet:
        """The headers last seen (after NAT, with the output interface if it left)."""
        return [e.packet for e in self.events if e.packet][-1]

    @property
    def ended(self) -> bool:
        return self.left is not None or self.delivered is not None

    @property
    def left(self) -> Packet | None:
        """The packet as it left by `oif` (the trace table's postrouting chain), if it did."""
        return next((e.packet for e in self.events if e.own and e.kind == "packet" and e.chain == "postrouting"), None)

    @property
    def delivered(self) -> Packet | None:
        """The packet as delivered to a local socket (the trace table's input chain), if it was."""
        return next((e.packet for e in self.events if e.own and e.kind == "packet" and e.chain == "input"), None)

    @property
    def rules(self) -> list[Event]:
        """The rules that matched, in order (the trace table's own excluded)."""
        return [e for e in self.events if e.kind == "rule" and not e.own]

    @property
    def dropped_by(self) -> Event | None:
        """The rule or chain policy that dropped or rejected the packet, if one did."""
        for e in self.events:
            if e.own:
                continue
            if e.kind == "rule" and (e.verdict in ("drop",) or re.search(r"(^| )reject( |$)", e.text)):
                return e
            if e.kind == "policy" and e.verdict == "drop":
                return e
        return None


def traversals(lines: list[str]) -> list[Traversal]:
    """Group one namespace's trace lines (in the order printed) into traversals."""
    out: list[Traversal] = []
    current: dict[str, Traversal] = {}
    for line in lines:
        e = parse_line(line)
        if e is None:
            continue
        if e.own and e.kind == "packet" and e.chain in ("prerouting", "output"):
            current[e.trace_id] = Traversal([e])
            out.append(current[e.trace_id])
        elif e.trace_id in current and not (e.kind == "packet" and e.trace_id in current
                                           and current[e.trace_id].ended and e.own):
            current[e.trace_id].events.append(e)
        elif e.kind == "packet":
            # The kernel copied the packet on its way (forwarding out of the interface it came
            # in by, for one): the copy has a new trace id. Same IP id, same packet.
            open_ = [t for t in out if not t.ended and t.first.ip_id == e.packet.ip_id]
            if open_:
                current[e.trace_id] = open_[-1]
                open_[-1].events.append(e)
    return out


def ruleset(proto: str, ident: int) -> str:
    """The trace table for one probe: the bit is set only for packets of its flow (its source
    port, or ICMP id, in either direction), and two empty late chains show where each
    packet ended up (delivered, or sent on, after every NAT rule)."""
    if proto == "icmp":
        match = [f"icmp id {ident}"]
    else:
        match = [f"meta l4proto {proto} th sport {ident}", f"meta l4proto {proto} th dport {ident}"]
    rules = "".join(f"\t\t{m} meta nftrace set 1\n" for m in match)
    return (f"table ip {TABLE} {{\n"
            f"\tchain prerouting {{\n\t\ttype filter hook prerouting priority -350; policy accept;\n{rules}\t}}\n"
            f"\tchain output {{\n\t\ttype filter hook output priority -350; policy accept;\n{rules}\t}}\n"
            f"\tchain input {{\n\t\ttype filter hook input priority 500; policy accept;\n\t}}\n"
            f"\tchain postrouting {{\n\t\ttype filter hook postrouting priority 500; policy accept;\n\t}}\n"
            "}\n")
