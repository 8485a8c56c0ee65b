"""What a probe's answer means (pure): the outcome of a check and who caused it.

A probe ends in one piece of evidence (`Evidence`): an answer from the server, a TCP RST,
an ICMP error (type 3, with its code and the address that sent it, read from the socket's
error queue or the raw packet), an error of the sender's own stack (no route, packet larger
than the MTU), or silence. `classify` turns it into one of five outcomes:

- `reach`: the server answered.
- `refused`: the target itself answered that nothing listens there (a TCP RST, or ICMP port
  unreachable from the target's address or from one of the pods behind it), or, for HTTPS,
  with a certificate the check does not accept. Not the network's doing.
- `rejected`: a rule on the way answered on the target's behalf: ICMP administratively
  prohibited, or a RST or port unreachable where the lab says a rule rejects (kube-proxy's
  REJECT for a Service without endpoints; IPVS answers from the ClusterIP itself, so only
  the lab can tell it from `refused`), or from an address that is not the target.
- `unreachable`: ICMP net or host unreachable (a router with no route), fragmentation
  needed, or the sender's own stack had no route or a smaller MTU.
- `dropped`: silence until the wait ran out.

`expect: blocked` accepts any outcome caused by the network: rejected, unreachable,
dropped. `refused` is not one of them: a check to a port nobody serves says so.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from ipaddress import IPv4Address

OUTCOMES = ("reach", "refused", "rejected", "unreachable", "dropped")
BLOCKED = frozenset({"rejected", "unreachable", "dropped"})
EXPECTATIONS = OUTCOMES + ("blocked",)

# ICMP destination unreachable codes (RFC 792, RFC 1812).
ICMP_CODES = {0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
              4: "fragmentation needed", 5: "source route failed", 6: "destination network unknown",
              7: "destination host unknown", 9: "network administratively prohibited",
              10: "host administratively prohibited", 11: "network unreachable for TOS",
              12: "host unreachable for TOS", 13: "communication administratively prohibited"}
_PROHIBITED = {9, 10, 13}
_NOT_LISTENING = {2, 3}


@dataclass(frozen=True)
class Evidence:
    """The one thing a probe ended with."""

    kind: str  # answer | rst | icmp | local | tls | silence
    sender: IPv4Address | None = None  # who sent the RST or ICMP error
    code: int | None = None  # ICMP code
    errno: int | None = None  # local: the sender's own error
    mtu: int | None = None  # ICMP fragmentation needed / local EMSGSIZE: the MTU in the way
    note: str = ""  # what the probe saw, when it says more than the kind (a silence's reason)


def satisfies(outcome: str, expect: str) -> bool:
    return outcome == expect or (expect == "blocked" and outcome in BLOCKED)


def classify(ev: Evidence, target: set[IPv4Address], rule_rejects: bool,
             name=lambda ip: str(ip)) -> tuple[str, str]:
    """(outcome, cause). `target`: the addresses that are the destination itself (its IP,
    the pods behind a Service); `rule_rejects`: the lab puts a rejecting rule on this path;
    `name(ip)`: how to call the sender of an answer (a lab object, or the address)."""
    if ev.kind == "answer":
        return "reach", "answered"
    if ev.kind == "silence":
        return "dropped", ev.note or "no answer"
    if ev.kind == "tls":  # the server answered, but not with a certificate the check accepts
        return "refused", f"TLS: {ev.note}"
    if ev.kind == "rst":
        who = name(ev.sender) if ev.sender else "the target"
        if rule_rejects:
            return "rejected", f"TCP RST from {who}, sent by a rule"
        return "refused", f"TCP RST from {who}: nothing listens"
    if ev.kind == "local":
        text = errno.errorcode.get(ev.errno or 0, str(ev.errno))
        if ev.errno == errno.EMSGSIZE:
            mtu = f" (MTU {ev.mtu})" if ev.mtu else ""
            return "unreachable", f"the sender's own stack refused it: larger than the path MTU{mtu}, DF set"
        if ev.errno == errno.EHOSTUNREACH:
            return "unreachable", f"{text}: no neighbour answered ARP, or no route in the sender"
        return "unreachable", f"{text}: the sender has no route"
    # ICMP destination unreachable
    code = ev.code if ev.code is not None else -1
    what = f"ICMP {ICMP_CODES.get(code, f'unreachable code {code}')} from {name(ev.sender)}"
    if code in _PROHIBITED:
        return "rejected", what
    if code in _NOT_LISTENING:
        if rule_rejects or (ev.sender is not None and ev.sender not in target):
            return "rejected", what
        return "refused", what + ": nothing listens"
    if code == 4 and ev.mtu:
        what += f" (next-hop MTU {ev.mtu})"
    return "unreachable", what
