"""Why a check ends the way it does, in one line, from the lab model (pure).

Every check carries a `why`: the mechanism a trainer reads to a class. It is derived from
what the lab holds, not from the probe's answer: the VPC route table ("VPC route
172.16.1.0/24 via c1/node-2 (192.168.0.11)"), the network model ("VXLAN to 192.168.0.11
(VNI 1)", "SNAT to the node IP by the tunnel model's masquerade rule"), kube-proxy's rules
as rendered for the node that handles the packet, traced with `netlab.kubeproxy.trace`
("kube-proxy (iptables) on node-1: KUBE-SVC-… → KUBE-SEP-…, … (3 endpoints)"), IPVS
virtual servers, and what is missing ("no VPC route to 172.17.0.0/16", "nothing listens on
8081/tcp in c1/web-1").

Model facts used here that the model interface does not offer yet (computed from the
resolved lab: cluster.model, cluster.network, node.pod_cidr): how a node delivers to its own
pods, and how pod traffic crosses between nodes. Routes come from the VPC the packet is in
(`VpcInfo.lookup`); an EIP is followed to the address it is bound to; the internet egress is
`netlab.probe.edge_checks.internet_egress`, as the edge checks derive it.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address

from netlab import models, proxy
from netlab.kubeproxy import IPTablesRuleset, IPVSRuleset, NFTablesRuleset, trace_iptables, trace_nftables
from netlab.kubeproxy import names as kp_names
from netlab.kubeproxy.iptdump import parse_dump
from netlab.kubeproxy.trace import parse_nft_dump
from netlab.lab import refs
from netlab.lab.model import ClusterInfo, HostInfo, Lab, NodeInfo, PodInfo, ServiceInfo, SubnetInfo, VpcInfo


class Rulesets:
    """What explaining many checks of one lab needs once: kube-proxy's rules per node,
    rendered and parsed, and the lab's address book."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self._cache: dict[tuple[str, str], tuple] = {}
        self.book = refs.address_book(lab)
        self.pods = {p.ip: (c, p) for c in lab.clusters for p in c.pods}

    def get(self, cluster: ClusterInfo, node: NodeInfo) -> tuple:
        """(ruleset, parsed rules for the tracer, or None for IPVS)."""
        key = (cluster.name, node.name)
        if key not in self._cache:
            rs = proxy.ruleset(self.lab, cluster, node)
            parsed = (parse_dump(rs.restore_input()) if isinstance(rs, IPTablesRuleset)
                      else parse_nft_dump(rs.dump()) if isinstance(rs, NFTablesRuleset) else None)
            self._cache[key] = (rs, parsed)
        return self._cache[key]


def why(lab: Lab, spec, rulesets: Rulesets | None = None) -> str:
    """The one-line mechanism behind a check (a CheckSpec). Pass one `Rulesets` for all the
    checks of a lab: kube-proxy's rules are then rendered once per node."""
    rules = rulesets or Rulesets(lab)
    try:
        src = refs.lookup(lab, spec.src)
    except refs.RefError:
        return ""
    proto = "tcp" if spec.proto == "syn" else spec.proto
    if spec.size:
        return _mtu(lab, src, spec)
    dst_ip, via_eip = spec.dst_ip, ""
    eip = next((e for e in lab.eips if e.ip == dst_ip and e.private is not None), None)
    if eip is not None:  # the internet gateway translates it 1:1 to the address it is bound to
        dst_ip, via_eip = eip.private, f"EIP {eip.ip} → {eip.bind} ({eip.private}), 1:1 NAT at igw/{eip.vpc}"
    if not via_eip and _vpc_of(lab, src) is None and any(dst_ip in v.cidr for v in lab.vpcs):
        vpc = next(v for v in lab.vpcs if dst_ip in v.cidr)
        return f"{dst_ip} is a private address of VPC {vpc.name}: the internet does not route it"
    service = _cluster_ip(lab, dst_ip, spec.port, proto, src, spec.cluster)
    if service and not via_eip:
        return _to_cluster_ip(lab, rules, src, dst_ip, spec.port, proto, *service)
    nodeport = _nodeport(lab, dst_ip, spec.port, proto)
    if nodeport:
        cluster, node, info = nodeport
        return _join(via_eip, _kube_proxy(rules, cluster, node, str(src.ip), dst_ip, spec.port, proto, info,
                                          nodeport=True))
    elb = next((e for e in getattr(lab, "elbs", []) if e.ip == dst_ip), None)
    if elb is not None:
        return _join(via_eip, _elb(elb, spec.port))
    if via_eip:
        return _join(via_eip, _listener(lab, rules, dst_ip, spec.port, proto))
    return _join(_routing(lab, rules, src, dst_ip), _listener(lab, rules, dst_ip, spec.port, proto))


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# -- routing ------------------------------------------------------------------------------

def _node_of(src: refs.Target, lab: Lab) -> NodeInfo | None:
    if isinstance(src.obj, NodeInfo):
        return src.obj
    if isinstance(src.obj, PodInfo):
        return lab.cluster(src.obj.cluster).node(src.obj.node)
    return None


def _routing(lab: Lab, rules: Rulesets, src: refs.Target, dst_ip: IPv4Address) -> str:
    found = rules.pods.get(dst_ip)
    src_cluster = src.cluster
    if found:
        cluster, pod = found
        node = cluster.node(pod.node)
        if src_cluster is not None and src_cluster.name == cluster.name:
            return _inside_cluster(lab, cluster, src, pod, node)
        return _join(_egress(lab, src, dst_ip), _vpc_hop(lab, _vpc_of(lab, src), dst_ip, src, cluster))
    if isinstance(src.obj, PodInfo):
        return _join(_egress(lab, src, dst_ip), _underlay_path(lab, src, dst_ip, from_pod=True))
    return _underlay_path(lab, src, dst_ip)


def _inside_cluster(lab: Lab, cluster: ClusterInfo, src: refs.Target, pod: PodInfo, node: NodeInfo) -> str:
    src_node = _node_of(src, lab)
    model = models.get(cluster.model)
    from_node = isinstance(src.obj, NodeInfo)
    if src_node.name == node.name:
        return model.explain_same_node(cluster, node, pod, from_node)
    across = model.explain_across_nodes(cluster, src_node, node, pod, from_node)
    return across or _vpc_hop(lab, lab.vpc_of_cluster(cluster), pod.ip, src) + ", no encapsulation"


def _vpc_of(lab: Lab, src: refs.Target) -> VpcInfo | None:
    """The VPC whose router a packet from `src` meets first (None: not in a VPC)."""
    machine = src.obj
    if isinstance(machine, PodInfo):
        machine = lab.cluster(machine.cluster).node(machine.node)
    subnet = getattr(getattr(machine, "eth0", None), "subnet", None)
    if subnet is None or not any(sn.name == subnet for v in lab.vpcs for sn in v.subnets):
        return None
    return lab.vpc_of_subnet(subnet)


def _vpc_hop(lab: Lab, vpc: VpcInfo | None, dst_ip: IPv4Address, src: refs.Target,
             cluster: ClusterInfo | None = None) -> str:
    """How the source's VPC router gets a packet to dst_ip: a route of its table, the
    internet through its default route, or no route (naming the CIDR it falls in, of
    `cluster` first: clusters may share a Service CIDR)."""
    route = vpc.lookup(dst_ip) if vpc is not None else None
    if isinstance(route, SubnetInfo):
        return f"on VPC subnet {route.name} ({route.cidr}): {vpc.name}'s bridge {route.bridge} delivers it"
    if route is not None and route.destination.prefixlen:
        where = route.target or f"{route.owner} ({route.nexthop})"
        return f"VPC route {route.destination} via {where}"
    private = next((f"{net} ({c.name}'s {what})" for c in ([cluster] if cluster else []) + lab.clusters
                    for what, net in (("container CIDR", c.container_cidr), ("Service CIDR", c.service_cidr))
                    if dst_ip in net), None)
    if route is not None and private is None:
        return _internet(lab, vpc, src, dst_ip, route)
    text = f"no VPC route to {private or dst_ip}"
    if route is None:
        return text + ": the VPC router answers net unreachable"
    return text + f"; the default route leads to {route.target or route.nexthop}, which does not route it"


def _internet(lab: Lab, vpc: VpcInfo, src: refs.Target, dst_ip: IPv4Address, route) -> str:
    from netlab.probe.edge_checks import internet_egress

    private = src.ip
    if isinstance(src.obj, PodInfo):
        cluster = lab.cluster(src.obj.cluster)
        private = models.get(cluster.model).source_towards(cluster, cluster.node(src.obj.node), src.obj, dst_ip)
    egress = internet_egress(lab, vpc, private, dst_ip)
    if egress is not None and "EIP" in egress.how and "NAT gateway" not in egress.how:
        return f"to the internet by the {egress.how} (1:1 NAT at igw/{vpc.name})"
    return f"VPC route 0.0.0.0/0 via {route.target or route.nexthop}: {egress.how if egress else 'the internet'}"


def _underlay_path(lab: Lab, src: refs.Target, dst_ip: IPv4Address, from_pod: bool = False) -> str:
    """Between VPC machines: one subnet (bridged), or routed by the VPC router."""
    vpc = _vpc_of(lab, src)
    dst_subnet = vpc.lookup(dst_ip) if vpc is not None else None
    if not isinstance(dst_subnet, SubnetInfo):
        return _vpc_hop(lab, vpc, dst_ip, src)
    src_machine = _node_of(src, lab) if from_pod else src.obj
    src_ip = src_machine.eth0.ip if isinstance(src_machine, (NodeInfo, HostInfo)) else src.ip
    src_subnet = vpc.lookup(src_ip)
    if isinstance(src_subnet, SubnetInfo) and src_subnet.name == dst_subnet.name:
        return f"same VPC subnet {dst_subnet.name} ({dst_subnet.cidr}): bridged, not routed"
    if not isinstance(src_subnet, SubnetInfo):
        return f"VPC subnet {dst_subnet.name} ({dst_subnet.cidr})"
    return f"the VPC router routes subnet {src_subnet.name} → {dst_subnet.name} ({dst_subnet.cidr})"


def _egress(lab: Lab, src: refs.Target, dst_ip: IPv4Address) -> str:
    """How a pod's packet leaves its cluster for dst_ip: masqueraded to its node, or as itself."""
    if not isinstance(src.obj, PodInfo):
        return ""
    cluster = lab.cluster(src.obj.cluster)
    node = cluster.node(src.obj.node)
    seen = models.get(cluster.model).source_towards(cluster, node, src.obj, dst_ip)
    if seen == src.obj.ip:
        return f"pod IP {src.obj.ip} kept (no SNAT toward {dst_ip} in the {cluster.model} model)"
    return f"SNAT to the node IP {seen} by the {cluster.model} model's masquerade rule"


def _elb(elb, port: int | None) -> str:
    """An ELB's listener on that port: its pool and members (layer 4), or its nginx (layer 7)."""
    listener = next((li for li in elb.listeners if li.port == port), None)
    head = f"{elb.type} ELB {elb.name}"
    if listener is None:
        return f"{head} has no listener on port {port}"
    if listener.pool is None:
        return f"{head}: its nginx serves {listener.protocol} on {port} by the Ingress rules of class cce"
    pool = elb.pool(listener.pool)
    source = (f"from its backend-side address {elb.backend_address}" if elb.type == "shared"
              else "with the client's own address")
    n = len(pool.members)
    return (f"{head} ({elb.datapath}): listener {listener.protocol}/{port} → pool {pool.name}, "
            f"{n} member{'s' if n != 1 else ''} ({pool.algorithm.lower().replace('_', ' ')}), {source}")


def _listener(lab: Lab, rules: Rulesets, ip: IPv4Address, port: int | None, proto: str) -> str:
    """Nothing listens: the destination object declares no such port (the agent serves the
    declared ports of pods and hosts only)."""
    if port is None or proto not in ("tcp", "udp"):
        return ""
    owner = refs.owner_of(lab, ip, rules.book)
    if owner is None:
        return ""
    target = refs.lookup(lab, owner) if "/svc/" not in owner else None
    if target is None or target.kind not in ("pod", "host", "node"):
        return ""
    ports = getattr(target.obj, "ports", [])
    if any(p.port == port and p.protocol.lower() == proto for p in ports):
        return ""
    return f"nothing listens on {port}/{proto} in {owner}"


def _mtu(lab: Lab, src: refs.Target, spec) -> str:
    cluster = src.cluster
    overhead = lab.underlay_mtu - cluster.mtu
    fits = spec.size <= cluster.mtu
    head = f"pod MTU {cluster.mtu} = underlay {lab.underlay_mtu} − {overhead} (VXLAN)"
    if fits:
        return f"{head}: a {spec.size}-byte DF packet fits, and crosses VXLAN in a {spec.size + overhead}-byte frame"
    return f"{head}: a {spec.size}-byte DF packet does not leave the pod (EMSGSIZE)"


# -- Services -----------------------------------------------------------------------------

def _cluster_ip(lab: Lab, ip: IPv4Address, port: int | None, proto: str, src: refs.Target, hint: str | None):
    """(cluster, Service) for a ClusterIP; the source's own cluster first, then the check's
    (two clusters may share a Service CIDR and even an address)."""
    first = src.cluster.name if src.cluster else hint
    order = sorted(lab.clusters, key=lambda c: c.name != first)
    for c in order:
        for s in c.services:
            if s.cluster_ip == ip and any(p.port == port and p.protocol.lower() == proto for p in s.spec.ports):
                return c, s
    return None


def _nodeport(lab: Lab, ip: IPv4Address, port: int | None, proto: str):
    for c in lab.clusters:
        for n in c.nodes:
            if n.eth0.ip != ip:
                continue
            for s in c.services:
                if any(p.nodePort == port and p.protocol.lower() == proto for p in s.spec.ports):
                    return c, n, s
    return None


def _to_cluster_ip(lab: Lab, rules: Rulesets, src: refs.Target, dst_ip: IPv4Address, port: int, proto: str,
                   cluster: ClusterInfo, info: ServiceInfo) -> str:
    node = _node_of(src, lab)
    if node is None or src.cluster is None or src.cluster.name != cluster.name:
        return _join(_egress(lab, src, dst_ip), _vpc_hop(lab, _vpc_of(lab, src), dst_ip, src, cluster))
    return _kube_proxy(rules, cluster, node, str(src.ip), dst_ip, port, proto, info)


def _kube_proxy(rules: Rulesets, cluster: ClusterInfo, node: NodeInfo, src: str, dst: IPv4Address, port: int,
                proto: str, info: ServiceInfo, nodeport: bool = False) -> str:
    rs, parsed = rules.get(cluster, node)
    head = f"kube-proxy ({cluster.proxy_mode}) on {node.name}"
    if isinstance(rs, IPVSRuleset):
        return f"{head}: {_ipvs(rs, cluster, node, info, src, str(dst), port, proto)}"
    local = [str(node.eth0.ip)]
    if isinstance(rs, IPTablesRuleset):
        t = trace_iptables(parsed, src, proto, str(dst), port, local)
        text = _iptables_path(t)
    else:
        t = trace_nftables(parsed, src, proto, str(dst), port, local)
        text = _nftables_path(t, info, proto)
    return f"{head}: {text}{_masquerade(t, src, nodeport)}"


def _count(n: int) -> str:
    return f"{n} endpoint{'s' if n != 1 else ''}"


def _comment(rule: str) -> str:
    m = re.search(r'--comment "([^"]*)"', rule)
    return m[1] if m else ""


def _iptables_path(t) -> str:
    if t.output in ("REJECT", "DROP"):
        rule = next((r for r in reversed(t.matches) if r.endswith(f"-j {t.output}")), "")
        chain = rule.split()[1] if rule else "KUBE-SERVICES"
        return f"{chain} {t.output} ({_comment(rule)})"
    jumps = [m[1] for r in t.matches if (m := re.search(r"-j (KUBE-(?:SVC|SVL|EXT|FW|SEP)-\S+)", r))]
    chains = [j for j in dict.fromkeys(jumps) if not j.startswith("KUBE-SEP-")]
    seps = [j for j in dict.fromkeys(jumps) if j.startswith("KUBE-SEP-")]
    if not seps:
        return t.output or "no rule matched"
    return " → ".join(chains + [seps[0] + (", …" if len(seps) > 1 else "")]) + f" ({_count(len(seps))})"


def _nftables_path(t, info: ServiceInfo, proto: str) -> str:
    if t.output in ("REJECT", "DROP"):
        where = "no-endpoint-services" if any("no-endpoint-services" in m for m in t.matches) else "no-endpoint-nodeports"
        local = "local " if where.endswith("nodeports") else ""
        return f"{where} map: {t.output.lower()} ({info.spec.namespace}/{info.spec.name} has no {local}endpoints)"
    endpoints = list(dict.fromkeys(m for r in t.matches for m in re.findall(r"goto (endpoint-\S+)", r)))
    ports = [p for p in info.spec.ports if p.protocol.lower() == proto]
    chain = "service-" + kp_names.service_port_chain_name_base(
        info.spec.namespace, info.spec.name, proto, ports[0].name or "" if ports else "")
    if not endpoints:
        return t.output or "no rule matched"
    return f"{chain} → {endpoints[0]}{', …' if len(endpoints) > 1 else ''} ({_count(len(endpoints))})"


def _masquerade(t, src: str, nodeport: bool) -> str:
    if not t.masq:
        return ""
    for rule in t.matches:
        if re.search(rf"-s {re.escape(src)}\b.*-j KUBE-MARK-MASQ", rule):
            return f"; the client is an endpoint: {rule.split()[1]} masquerades the hairpin"
        for chain in re.findall(rf"goto (endpoint-\S+__{re.escape(src)}/\d+)", rule):
            short = chain.split("-")[0] + "-" + chain.split("-")[1] + "-…"
            return f"; the client is an endpoint: its chain {short} masquerades the hairpin"
    if nodeport:
        return "; masqueraded to the node (externalTrafficPolicy Cluster)"
    return "; masqueraded to a node address (the source is not a pod of the cluster)"


def _ipvs(rs: IPVSRuleset, cluster: ClusterInfo, node: NodeInfo, info: ServiceInfo, src: str, dst: str,
          port: int, proto: str) -> str:
    vs = next((v for v in rs.virtual_servers
               if (v.address, v.port, v.protocol.lower()) == (dst, port, proto)), None)
    if vs is None:
        return "no virtual server"
    if not vs.real_servers:
        return f"virtual server {vs.endpoint} ({vs.scheduler}) has no real servers: IPVS answers port unreachable"
    n = len(vs.real_servers)
    text = f"virtual server {vs.endpoint} ({vs.scheduler}) → {n} real server{'s' if n != 1 else ''}"
    local_ips = {str(p.ip) for p in cluster.pods_on(node.name)}
    if vs.kind == "nodePort" and info.spec.externalTrafficPolicy == "Local":
        if not any(r.address in local_ips for r in vs.real_servers):
            return (text + f" on other nodes, not SNATed (externalTrafficPolicy Local): the reply bypasses "
                           f"{node.name} and the client drops it")
        return text + " (externalTrafficPolicy Local: the client's address is kept)"
    if any(r.address == src for r in vs.real_servers):
        return text + "; the client is a real server: the KUBE-LOOP-BACK set masquerades the hairpin"
    if vs.kind == "nodePort":
        return text + "; masqueraded to the node (externalTrafficPolicy Cluster)"
    if src not in local_ips and not any(src == str(p.ip) for p in cluster.pods):
        return text + "; masqueraded to a node address (the source is not a pod of the cluster)"
    return text
