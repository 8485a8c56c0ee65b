"""A lab as a graph (pure): what is drawn, independent of how.

Nodes: each VPC's router (with its route table), subnets, VPC hosts, and per cluster its
nodes (with their pod CIDR), pods (address, labels) and Services (ClusterIP, ports); around
them the internet with its public hosts, each VPC's internet gateway (its EIPs), NAT
gateways, ELBs (type, private address, EIP, listeners) and each VPC's security groups (one
note listing every group's rules; each guarded port names its groups in its details). Edges: machines on subnets, pods on nodes, Services to their endpoints, VPC routes
to the nodes they point at, the tunnel between every two nodes of a tunnel-model cluster,
EIPs to what they are bound to, peering connections, and an ELB's listeners to their
backend servers (nodes' nodePorts, or pods' target ports with passthrough).
After `netlab check`, each explicit or generated check between two drawn objects is an
edge too, green when it came out as expected (reached or blocked), red when not.
Groups (Graphviz clusters): a VPC, and inside it each Kubernetes cluster, each node.

Node ids are `kind:name` (`pod:c1/web-1`, `svc:c1/default/web`), the names `netlab check`
and the other commands use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.lab import inventory
from netlab.lab.model import Lab


@dataclass
class Node:
    id: str
    kind: str  # vpc | subnet | host | node | pod | service | internet | igw | natgw | elb | secgroup
    label: str  # first line: the name
    details: list[str] = field(default_factory=list)
    group: str | None = None  # the id of the group it is drawn in


@dataclass
class Edge:
    src: str
    dst: str
    kind: str  # attach | pod | endpoint | route | tunnel | eip | peering | backend | check
    label: str = ""
    ok: bool | None = None  # checks: as expected?
    title: str = ""  # hover text


@dataclass
class Group:
    id: str
    label: str
    kind: str  # vpc | cluster | node | internet
    parent: str | None = None


@dataclass
class Graph:
    name: str
    description: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)


def build(lab: Lab, checks: dict | None = None) -> Graph:
    g = Graph(lab.name, lab.description)
    subnet_vpc = {}
    for vpc in lab.vpcs:
        gid = f"group:vpc/{vpc.name}"
        g.groups.append(Group(gid, f"VPC {vpc.name} {vpc.cidr}", "vpc"))
        routes = [f"{r.destination} via {r.nexthop}" for r in vpc.routes]
        g.nodes.append(Node(f"vpc:{vpc.name}", "vpc", f"{vpc.name} router",
                            ["route table:"] + (routes or ["(local subnets only)"]), gid))
        for sn in vpc.subnets:
            subnet_vpc[sn.name] = vpc.name
            g.nodes.append(Node(f"subnet:{sn.name}", "subnet", f"subnet {sn.name}",
                                [str(sn.cidr), f"gateway {sn.gateway.ip}"], gid))
            g.edges.append(Edge(f"vpc:{vpc.name}", f"subnet:{sn.name}", "attach", sn.bridge))
    for h in lab.hosts:
        gid = f"group:vpc/{subnet_vpc[h.eth0.subnet]}"
        ports = ", ".join(f"{p.port}/{p.protocol}" for p in h.ports)
        g.nodes.append(Node(f"host:{h.name}", "host", h.name, [str(h.eth0.ip)] + ([ports] if ports else []), gid))
        g.edges.append(Edge(f"subnet:{h.eth0.subnet}", f"host:{h.name}", "attach", "eth0"))
    for c in lab.clusters:
        vpc = subnet_vpc[c.nodes[0].eth0.subnet] if c.nodes else lab.vpc.name
        cg = f"group:cluster/{c.name}"
        g.groups.append(Group(cg, f"cluster {c.name}: {c.model} model, kube-proxy {c.proxy_mode}",
                              "cluster", f"group:vpc/{vpc}"))
        for n in c.nodes:
            ng = f"group:node/{c.name}/{n.name}"
            g.groups.append(Group(ng, f"{n.name}", "node", cg))
            details = [f"eth0 {n.eth0.ip}"] + ([f"pods {n.pod_cidr}"] if n.pod_cidr else [])
            g.nodes.append(Node(f"node:{c.name}/{n.name}", "node", n.name, details, ng))
            g.edges.append(Edge(f"subnet:{n.eth0.subnet}", f"node:{c.name}/{n.name}", "attach", "eth0"))
            for p in c.pods_on(n.name):
                labels = [",".join(f"{k}={v}" for k, v in p.labels.items())] if p.labels else []
                g.nodes.append(Node(f"pod:{c.name}/{p.name}", "pod", p.name, [str(p.ip)] + labels, ng))
                g.edges.append(Edge(f"node:{c.name}/{n.name}", f"pod:{c.name}/{p.name}", "pod", p.host_ifname))
        for s in inventory.services(lab):
            if s["cluster"] != c.name:
                continue
            sid = f"svc:{c.name}/{s['namespace']}/{s['name']}"
            ports = [inventory.port_text(p) for p in s["ports"]]
            g.nodes.append(Node(sid, "service", f"svc {s['name']}", [f"{s['type']} {s['cluster_ip']}"] + ports, cg))
            for ep in s["endpoints"]:
                g.edges.append(Edge(sid, f"pod:{ep['pod']}", "endpoint", ep["address"]))
        net = c.network
        if net is not None and hasattr(net, "vni"):
            for i, a in enumerate(c.nodes):
                for b in c.nodes[i + 1:]:
                    g.edges.append(Edge(f"node:{c.name}/{a.name}", f"node:{c.name}/{b.name}", "tunnel",
                                        f"VXLAN {net.vni}", title=f"VXLAN vni {net.vni} udp/{net.port} "
                                                                  f"{a.eth0.ip} ↔ {b.eth0.ip}"))
    _load_balancers(g, lab)  # before the EIPs, which may be bound to them
    _edge_objects(g, lab)
    _security_groups(g, lab)
    for vpc in lab.vpcs:
        for r in vpc.routes:
            owner = f"node:{r.owner}" if g.node(f"node:{r.owner}") else None
            if owner:
                g.edges.append(Edge(f"vpc:{vpc.name}", owner, "route", str(r.destination),
                                    title=f"{vpc.name} route {r.destination} via {r.nexthop}"))
    if checks:
        _overlay(g, lab, checks)
    return g


def _edge_objects(g: Graph, lab: Lab) -> None:
    """The cloud around the VPCs: the internet and its public hosts, each VPC's internet
    gateway, NAT gateways, EIPs (on the gateway, pointing at what they are bound to) and
    peering connections."""
    inet = lab.internet
    if inet is not None:
        g.groups.append(Group("group:internet", f"internet {inet.cidr}", "internet"))
        g.nodes.append(Node("internet:internet", "internet", "internet router",
                            [f"{inet.gateway}", f"EIP pool {inet.eip_pool}"], "group:internet"))
        for h in inet.hosts:
            ports = ", ".join(f"{p.port}/{p.protocol}" for p in h.ports)
            g.nodes.append(Node(f"host:internet/{h.name}", "host", h.name,
                                [str(h.eth0.ip)] + ([ports] if ports else []),
                                "group:internet"))
            g.edges.append(Edge("internet:internet", f"host:internet/{h.name}", "attach", "eth0"))
    for igw in lab.igws:
        gid = f"igw:{igw.vpc}"
        eips = [e for e in lab.eips if e.vpc == igw.vpc and e.kind != "natgw"]
        g.nodes.append(Node(gid, "igw", f"internet gateway {igw.vpc}",
                            [f"EIP {e.ip} → {e.bind} ({e.private})" for e in eips] or ["no EIP bound"],
                            f"group:vpc/{igw.vpc}"))
        g.edges.append(Edge(f"vpc:{igw.vpc}", gid, "attach", str(igw.vpc_link.address.ip)))
        if inet is not None:
            g.edges.append(Edge(gid, "internet:internet", "attach", str(igw.internet_link.address.ip)))
        for e in eips:
            target = _object_id(g, lab, e.bind)
            if target:
                g.edges.append(Edge(gid, target, "eip", f"EIP {e.ip}", title=f"1:1 NAT {e.ip} ↔ {e.private}"))
    for ngw in lab.nat_gateways:
        nid = f"natgw:{ngw.name}"
        g.nodes.append(Node(nid, "natgw", f"NAT gateway {ngw.name}",
                            [f"EIPs {', '.join(str(ip) for ip in ngw.eips)}"]
                            + [f"SNAT {r.source} → {r.eip}" for r in ngw.snat_rules], f"group:vpc/{ngw.vpc}"))
        g.edges.append(Edge(f"vpc:{ngw.vpc}", nid, "attach", str(ngw.vpc_link.address.ip)))
        if g.node(f"igw:{ngw.vpc}"):
            g.edges.append(Edge(nid, f"igw:{ngw.vpc}", "attach", str(ngw.igw_link.address.ip)))
    for peering in lab.peerings:
        a, b = peering.vpcs
        g.edges.append(Edge(f"vpc:{a}", f"vpc:{b}", "peering", f"peering {peering.name}",
                            title=f"peering {peering.name}: {peering.link.address.ip} ↔ {peering.link.peer_address.ip}"))


def _load_balancers(g: Graph, lab: Lab) -> None:
    """Each ELB on its subnet: type, private address (and backend-side one), EIPs, one line
    per listener; an edge per listener to each backend server it forwards to."""
    for elb in lab.elbs:
        eid = f"elb:{elb.ref}"
        details = [f"{elb.type}, {elb.datapath}", f"VIP {elb.ip}"]
        details += [f"backend side {elb.backend_address}"] if elb.backend_address else []
        details += [f"EIP {ip}" for ip in lab.eips_of(elb.ref)]
        for ln in elb.listeners:
            pool = elb.pool(ln.pool) if ln.pool else None
            to = f" → {len(pool.members)} members" if pool else " (Ingress, layer 7)"
            details.append(f"{ln.protocol} {ln.port}{to}" + (f" ({ln.service})" if ln.service else ""))
        g.nodes.append(Node(eid, "elb", f"ELB {elb.name}", details, f"group:vpc/{elb.vpc}"))
        g.edges.append(Edge(f"subnet:{elb.eth0.subnet}", eid, "attach", "eth0"))
        for ln in elb.listeners:
            for m in elb.pool(ln.pool).members if ln.pool else []:
                target = _object_id(g, lab, m.target)
                if target:
                    g.edges.append(Edge(eid, target, "backend", f"{ln.protocol} {ln.port} → {m.port}",
                                        title=f"{elb.ref} {ln.protocol} {ln.port} → {m.key} ({m.target})"))


def _security_groups(g: Graph, lab: Lab) -> None:
    """Every guarded port names its groups (a line of its details); each VPC with guarded
    ports gets one note with every group bound there and its rules."""
    from netlab.cloud import secgroup

    by_vpc: dict[str, list[str]] = {}
    for m in secgroup.members(lab):
        node = _object_id(g, lab, m.name)
        if node is not None:
            g.node(node).details.append(f"sg: {', '.join(m.groups)}")
        for name in m.groups:
            by_vpc.setdefault(m.vpc, [])
            if name not in by_vpc[m.vpc]:
                by_vpc[m.vpc].append(name)
    for vpc, names in by_vpc.items():
        details = []
        for name in names:
            group = lab.security_group(name)
            details.append(f"{name}:")
            details += [f"  in {r.text('inbound')}" for r in group.inbound] or ["  in (nothing)"]
            details += [f"  out {r.text('outbound')}" for r in group.outbound
                        if r.text("outbound") != "all to 0.0.0.0/0"]
        g.nodes.append(Node(f"secgroup:{vpc}", "secgroup", f"security groups of {vpc}", details, f"group:vpc/{vpc}"))


def _object_id(g: Graph, lab: Lab, text: str) -> str | None:
    name = text.rsplit(":", 1)[0] if text.count(":") and text.rsplit(":", 1)[1].isdigit() else text
    if "/svc/" in name:
        cluster, _, rest = name.partition("/svc/")
        ns, _, svc = rest.rpartition("/")
        return f"svc:{cluster}/{ns or 'default'}/{svc}"
    for kind in ("pod", "node", "host", "vpc", "igw", "natgw", "internet", "elb"):
        if g.node(f"{kind}:{name}"):
            return f"{kind}:{name}"
    return None


def _overlay(g: Graph, lab: Lab, report: dict) -> None:
    """One edge per pair of drawn objects and protocol; it is red if any of its checks came
    out otherwise than expected (its hover text names them)."""
    edges: dict[tuple[str, str, str], Edge] = {}
    for c in report.get("checks", []):
        src, dst = _object_id(g, lab, c["from"]), _object_id(g, lab, c["to"])
        if not src or not dst or src == dst:
            continue
        outcome = "reached" if c["reached"] else "blocked"
        text = f"{c['name']}: {outcome}, expected {c['expect']}" + ("" if c["ok"] else f" — {c.get('detail', '')}")
        e = edges.get((src, dst, c["proto"]))
        if e is None:
            e = edges[(src, dst, c["proto"])] = Edge(src, dst, "check", f"{c['proto']} {outcome}", ok=c["ok"], title=text)
            g.edges.append(e)
        elif not c["ok"]:
            e.ok, e.title = False, (text if e.ok else f"{e.title}; {text}")


def summary(g: Graph) -> dict:
    checks = [e for e in g.edges if e.kind == "check"]
    kinds: dict[str, int] = {}
    for n in g.nodes:
        kinds[n.kind] = kinds.get(n.kind, 0) + 1
    return {"objects": kinds, "checks": {"ok": sum(1 for e in checks if e.ok),
                                         "failed": sum(1 for e in checks if e.ok is False)}}
