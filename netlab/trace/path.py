"""One probe's path through a lab, assembled from what the namespaces and switches reported
(pure): which namespaces to instrument, the hops in order, the OVS traces to ask for, and
the report (a stable JSON shape, and the lines of the table people read).

Order of hops. Every namespace reports its own traversals; the order across namespaces
comes from the packet itself: each routing hop lowers the TTL by one, and the namespace that
sent the packet saw it first in its output hook. Open vSwitch does not touch the TTL (no
`dec_ttl` in br-int's flows), so the switch hops are placed right after the hop that handed
the packet to br-int, and the VXLAN hop between the two switches it joins.

The JSON report (`netlab trace --json`):

    {"lab", "from", "to", "proto",
     "probe": {"src", "dst", "sport" | "icmp_id", "dport"},
     "result": {"reached", "answered_by", "seen_source", "detail"},
     "hops": [ {"direction": "request" | "reply", "kind": "netns", "object", "object_kind",
                "netns", "in", "out", "ttl", "packet_in", "packet_out", "fate" (sent | forwarded |
                delivered | dropped), "route", "rules": [{"family", "table", "chain", "rule",
                "verdict"}], "nat": [{"type", "from", "to"}], "dropped_by",
                "security_groups": [{"member", "direction", "group", "verdict", "why"}]},
               {"direction", "kind": "ovs", "object", "bridge", "in_port", "flows": [{"bridge",
                "table", "match", "priority", "actions", "notes"}], "output", "tunnel", "dropped"},
               {"direction", "kind": "underlay", "encap": "vxlan", "vni", "outer_src",
                "outer_dst", "dst_port", "from_object", "to_object", "seen"} ],
     "kube_proxy": [{"object", "chains", "dnat"}],
     "died": null | {"direction", "object", "netns", "reason", "rule"}}
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from netlab import models
from netlab.cloud.secgroup import TABLE as SG_TABLE
from netlab.lab import services as svc_mod
from netlab.lab.model import Lab
from netlab.trace import ovstrace
from netlab.trace.nftrace import Packet, Traversal

# kube-proxy's per-Service and per-endpoint chains (iptables mode; nftables mode).
KUBE_CHAIN = re.compile(r"^(KUBE-(SVC|SVL|EXT|FW|SEP)-|(service|external|endpoint|firewall)-[A-Z0-9]{8}-)")


@dataclass(frozen=True)
class Probe:
    src_object: str
    src_netns: str
    src_ip: str
    dst: str  # as the user wrote it
    dst_ip: str
    proto: str  # tcp | udp | icmp
    ident: int  # the source port (tcp, udp) or the ICMP id
    port: int | None


# -- what to instrument ---------------------------------------------------------------------
def instrumented(lab: Lab, probe: Probe) -> dict[str, str]:
    """netns → object name for every namespace the probe may cross: VPC routers, hosts,
    nodes, the source, the destination, and the pods that back the lab's Services (a
    Service or NodePort may send the probe to any of them)."""
    out: dict[str, str] = {}
    endpoints = {(c.name, p.name) for c in lab.clusters for s in c.services for p in svc_mod.selected(s, c.pods)}
    for kind, cluster, name, netns in lab.objects():
        full = f"{cluster}/{name}" if cluster else name
        if kind != "pod" or netns == probe.src_netns or (cluster, name) in endpoints:
            out[netns] = full
        elif any(p.netns == netns and str(p.ip) == probe.dst_ip for c in lab.clusters for p in c.pods):
            out[netns] = full
    return out


# -- ordering -------------------------------------------------------------------------------
def _opening(p: Packet, probe: Probe) -> bool:
    if probe.proto == "icmp":
        return p.icmp_type == "echo-request"
    if p.sport != probe.ident:
        return False
    return probe.proto != "tcp" or p.tcp_flags in ("syn",)


def _answer(p: Packet, probe: Probe) -> bool:
    if probe.proto == "icmp":
        return p.icmp_type == "echo-reply"
    return p.dport == probe.ident


def order(found: dict[str, list[Traversal]], probe: Probe) -> tuple[list[tuple[str, Traversal]],
                                                                   list[tuple[str, Traversal]]]:
    """The request's and the reply's traversals, each in path order (see the module doc).
    Retransmissions are left out: the request is the packet the source sent first (its IP
    id), the reply the packet its origin sent first."""
    def pick(test, origin_netns: str | None):
        items = [(ns, t) for ns, ts in found.items() for t in ts if t.events and test(t.first, probe)]
        origin = [t for ns, t in items if t.hook == "output" and (origin_netns is None or ns == origin_netns)]
        if origin:
            ip_id = origin[0].first.ip_id
            items = [(ns, t) for ns, t in items if t.first.ip_id == ip_id]
        seen: set[tuple[str, str]] = set()
        unique = []
        for ns, t in items:
            key = (ns, t.hook, t.first.saddr, t.first.daddr)
            if key not in seen:
                seen.add(key)
                unique.append((ns, t))
        return sorted(unique, key=lambda item: (-(item[1].first.ttl or 0), item[1].hook != "output"))

    return pick(_opening, probe.src_netns), pick(_answer, None)


# -- routing decisions ----------------------------------------------------------------------
def route_query(t: Traversal) -> list[str]:
    """`ip route get` arguments for the decision a namespace took for this packet (after DNAT:
    the headers it had when it left, or last had)."""
    p = t.left or t.last
    args = ["fibmatch", p.daddr or t.first.daddr]
    if t.hook == "prerouting" and t.first.iif:
        args += ["from", t.first.saddr, "iif", t.first.iif]
    return args


def route_facts(answer: list[dict] | None, error: str | None, dst: str) -> dict:
    if error or not answer:
        return {"dst": dst, "error": error or "no route"}
    r = answer[0]
    text = " ".join(x for x in [r.get("dst"), f"via {r['gateway']}" if r.get("gateway") else "",
                                f"dev {r['dev']}" if r.get("dev") else ""] if x)
    return {"dst": dst, "route": text, "table": r.get("table", "main"), "gateway": r.get("gateway"),
            "dev": r.get("dev"), "type": r.get("type", "unicast")}


# -- netns hops -----------------------------------------------------------------------------
def _rule(e) -> dict:
    return {"family": e.family, "table": e.table, "chain": e.chain, "rule": e.text, "verdict": e.verdict}


def netns_hop(lab: Lab, direction: str, netns: str, obj: str, t: Traversal) -> dict:
    left, delivered = t.left, t.delivered
    fate = ("delivered" if delivered else ("sent" if t.hook == "output" else "forwarded") if left else "dropped")
    out_packet = delivered or left or t.last
    dropped = t.dropped_by
    return {"direction": direction, "kind": "netns", "object": obj, "object_kind": _kind(lab, netns),
            "netns": netns, "in": t.first.iif, "out": left.oif if left else None, "ttl": t.first.ttl,
            "packet_in": t.first.endpoints, "packet_out": out_packet.endpoints, "fate": fate,
            "route": None, "rules": [_rule(e) for e in t.rules], "nat": [],
            "dropped_by": _rule(dropped) if dropped else None,
            "security_groups": security_group_verdicts([_rule(e) for e in t.rules])}


_COMMENT = re.compile(r'comment "(?P<text>[^"]*)"')
_MEMBER_CHAIN = re.compile(r"^(?P<way>in|out)-(?P<member>.+)$")


def security_group_verdicts(rules: list[dict]) -> list[dict]:
    """What the VPC's security groups (`ip netlab-sg`, `netlab.cloud.secgroup`) decided for
    the packet: per member port crossed, the group and rule that admitted it, or that no rule
    of its groups did (the renderer's comments name them); a reply passes as part of a flow
    the groups admitted."""
    out = []
    for r in rules:
        if r["table"] != SG_TABLE:
            continue
        if r["chain"] == "forward" and r["rule"].startswith("ct state established"):
            out.append({"member": None, "direction": None, "group": None, "verdict": "accept",
                        "why": "a reply (or related packet) of a flow the groups admitted: stateful"})
            continue
        chain = _MEMBER_CHAIN.match(r["chain"])
        if chain is None:
            continue
        comment = _COMMENT.search(r["rule"])
        text = comment.group("text") if comment else r["rule"]
        admitted = r["verdict"] in ("accept", "return")
        group, _, rule = text.partition(": ")
        direction = "inbound" if chain.group("way") == "in" else "outbound"
        out.append({"member": chain.group("member"), "direction": direction, "group": group if admitted else None, "verdict": "accept" if admitted else "drop",
                    "why": f"{group} admits it ({rule})" if admitted else rule})
    return out


def _kind(lab: Lab, netns: str) -> str:
    return next((kind for kind, _, _, ns in lab.objects() if ns == netns), "?")


# -- virtual switches and tunnels (the network models say how) -----------------------------
def switch_entry(lab: Lab, hop: dict, t: Traversal):
    """The switch query for a packet a netns hop hands to a node's virtual switch, if any."""
    if hop["out"] is None or t.left is None:
        return None
    for c in lab.clusters:
        q = models.get(c.model).trace_into_switch(lab, c, hop["netns"], hop["out"], t.left)
        if q is not None:
            return q
    return None


def switch_hop(lab: Lab, direction: str, q, result: ovstrace.OvsTrace) -> tuple[dict, dict | None, object]:
    """The switch hop, the underlay hop after it (if it tunnelled) and the next switch query."""
    cluster = lab.cluster(q.cluster)
    output, underlay, nxt = models.get(cluster.model).trace_switch_result(lab, cluster, q, result)
    hop = {"direction": direction, "kind": "ovs", "object": f"{q.cluster}/{q.node}", "bridge": "br-int",
           "in_port": q.in_port, "flows": [f.as_json() for f in result.flows], "output": output,
           "tunnel": result.tunnel, "dropped": result.dropped, "datapath_actions": result.datapath_actions}
    if underlay:
        underlay = {"direction": direction, "kind": "underlay", **underlay, "seen": None}
    return hop, underlay, nxt


def encap_hop(lab: Lab, hop: dict) -> dict | None:
    """The underlay hop after a node stack sent into a kernel tunnel device, if it did."""
    if hop["out"] is None:
        return None
    gw = (hop.get("route") or {}).get("gateway")
    for c in lab.clusters:
        u = models.get(c.model).trace_encap(lab, c, hop["netns"], hop["out"], gw)
        if u:
            return {"direction": hop["direction"], "kind": "underlay", **u, "seen": None}
    return None


# -- the report -------------------------------------------------------------------------------
def kube_proxy(hops: list[dict]) -> list[dict]:
    """Per namespace, the kube-proxy chains the request went through and where it was DNATed."""
    out = []
    for hop in hops:
        if hop["kind"] != "netns" or hop["direction"] != "request":
            continue
        chains: list[str] = []
        dnat = None
        for r in hop["rules"]:
            for name in [r["chain"]] + _targets(r["verdict"]):
                if KUBE_CHAIN.match(name) and name not in chains:
                    chains.append(name)
            m = re.search(r"dnat (?:ip )?to (\S+)", r["rule"])
            if m and dnat is None:
                dnat = m.group(1)
        if chains:
            out.append({"object": hop["object"], "chains": chains, "dnat": dnat})
    return out


def _targets(verdict: str | None) -> list[str]:
    m = re.match(r"(?:jump|goto) (\S+)", verdict or "")
    return [m.group(1)] if m else []


def died(hops: list[dict], reached: bool) -> dict | None:
    """Where and why the probe died: the first hop that dropped it (a rule, a chain policy, a
    missing route, an OVS table), or the last place it was seen."""
    for hop in hops:
        if hop["kind"] == "netns" and hop["fate"] == "dropped":
            rule = hop["dropped_by"]
            route = hop.get("route") or {}
            refused = [g for g in hop.get("security_groups", []) if g["verdict"] == "drop"]
            if refused:
                g = refused[0]
                reason = f"security groups of {g['member']} ({g['direction']}): {g['why']}"
            elif route.get("error") and rule and (rule["table"], rule["chain"]) == ("netlab", "no-route"):
                # the VPC router's own answer for what it cannot route (netlab.cloud.vpc)
                reason = f"no route to {route['dst']} ({route['error']}; the router answers ICMP net unreachable)"
            elif rule:
                reason = f"{rule['family']} {rule['table']} {rule['chain']}: {rule['rule']} ({rule['verdict']})"
            elif route.get("error"):
                reason = f"no route to {route['dst']} ({route['error']})"
            else:
                reason = "entered but never left nor was delivered (no rule dropped it; no neighbour?)"
            return {"direction": hop["direction"], "object": hop["object"], "netns": hop["netns"],
                    "reason": reason, "rule": rule}
        if hop["kind"] == "ovs" and hop["dropped"]:
            last = hop["flows"][-1] if hop["flows"] else None
            reason = (f"br-int table {last['table']} ({last['match'] or 'any'}, priority {last['priority']}): "
                      f"{', '.join(last['actions'])}") if last else "dropped by br-int"
            return {"direction": hop["direction"], "object": hop["object"], "netns": None, "reason": reason,
                    "rule": None}
    if reached or not hops:
        return None if reached else {"direction": "request", "object": None, "netns": None,
                                     "reason": "the probe was never seen (no namespace reported it)", "rule": None}
    last = hops[-1]
    return {"direction": last["direction"], "object": last.get("object"), "netns": last.get("netns"),
            "reason": f"last seen leaving {last.get('object')} by {last.get('out') or last.get('output')}; "
                      "nothing further reported it", "rule": None}


def hop_lines(hop: dict) -> tuple[str, str, list[str]]:
    """(where, what, details) for the table people read."""
    if hop["kind"] == "underlay":
        return (f"{hop['via']} (underlay)",
                f"VXLAN vni {hop['vni']} {hop['outer_src']} → {hop['outer_dst']} udp/{hop['dst_port']}",
                [f"seen on the wire: {hop['seen']}"] if hop.get("seen") else [])
    if hop["kind"] == "ovs":
        details = [("" if f["bridge"] == hop["bridge"] else f"{f['bridge']} ")
                   + f"table {f['table']} {f['match'] or '*'} (priority {f['priority']}): {', '.join(f['actions'])}"
                   for f in hop["flows"]]
        what = f"{hop['bridge']} in_port {hop['in_port']} → " + (
            "DROP" if hop["dropped"] else (hop["output"] or "?"))
        if hop["tunnel"]:
            what += f" (tun_dst {hop['tunnel']['dst']})"
        return f"{hop['object']} (Open vSwitch)", what, details
    ifaces = f"{hop['in'] or '(local)'} → {hop['out'] or ('(local)' if hop['fate'] == 'delivered' else '✗')}"
    what = f"{ifaces}  {hop['packet_in']}"
    if hop["packet_out"] != hop["packet_in"]:
        what += f" ⇒ {hop['packet_out']}"
    details = []
    if hop.get("route"):
        r = hop["route"]
        details.append(f"route: {r['route']} (table {r['table']})" if "route" in r else f"route: {r['error']}")
    details += [f"{r['table']} {r['chain']}: {r['rule']}" + (f"  ({r['verdict']})" if not _targets(r["verdict"]) else "")
                for r in hop["rules"] if r["table"] != SG_TABLE]
    details += [f"security group {g['member']} {g['direction']}: {g['why']}" if g["member"] else
                f"security groups: {g['why']}" for g in hop.get("security_groups", [])]
    details += [f"conntrack: {n['type'].upper()} {n['from']} → {n['to']}" for n in hop["nat"]]
    if hop["dropped_by"]:
        where = hop["dropped_by"]["chain"]
        member = _MEMBER_CHAIN.match(where) if hop["dropped_by"]["table"] == SG_TABLE else None
        details.append(f"DROPPED here by the security groups of {member.group('member')}" if member
                       else f"DROPPED here by {where}")
    elif hop["fate"] == "dropped":
        details.append("DIED here")
    return hop["object"], what, details
