"""What security groups promise, as checks (pure).

Two parts, both decided by `netlab.cloud.secgroup.verdict` from the lab's groups alone:

- `judged`: the generated matrix (the edge's checks too) meets the groups. A check whose
  packets cross the VPC side of a bound port (a VPC host, another node, the internet through
  an EIP to a pod; a pod to anything but its own node) and that a group refuses is expected
  `blocked` (dropped: groups never answer), with the group and the missing rule in its name. Paths that stay on a node (a node to its own
  pods, a pod to its node or to a Service, over the pod's veth) meet no group.
- Checks through a Service or a load balancer (several endpoints, `allowed_backends`): each
  endpoint is judged with the source it must see (`allowed_sources`: a node address after
  kube-proxy's SNAT, the client's own through a dedicated ELB), on its target port; when the
  groups refuse every endpoint the check is expected `blocked`. (When they refuse only some,
  the check is left as it is: a round robin over them would fail by chance.)
- `checks`: for every pod bound to a group of the scenario (or refused something by its
  model's default group), its declared ports probed from every VPC host and from a bound
  pod on another node: one check per admitted or refused flow, the refusals `blocked`.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

from netlab import models
from netlab.cloud import secgroup
from netlab.lab.model import ClusterInfo, HostInfo, Lab, NodeInfo, PodInfo
from netlab.lab.services import selected, target_port
from netlab.probe.checks import CheckSpec


def _l4(proto: str) -> str:
    return "tcp" if proto in ("syn", "http", "https") else proto


class _Index:
    """The lab's pods and nodes by address, for following a flow onto the VPC fabric."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.pods: dict[IPv4Address, tuple[ClusterInfo, PodInfo]] = {
            p.ip: (c, p) for c in lab.clusters for p in c.netns_pods()}
        self.nodes: dict[IPv4Address, tuple[ClusterInfo, NodeInfo]] = {}
        for c in lab.clusters:
            for n in c.nodes:
                for a in models.get(c.model).node_addresses(c, n):
                    self.nodes.setdefault(a, (c, n))
        self.by_name = {f"{c.name}/{p.name}": p for c in lab.clusters for p in c.pods}

    def node_of(self, ip: IPv4Address) -> tuple[ClusterInfo, NodeInfo] | None:
        """The node a workload address lives on: a pod's node, or the node itself."""
        if ip in self.pods:
            c, p = self.pods[ip]
            return c, c.node(p.node)
        return self.nodes.get(ip)


def _local_path(lab: Lab, src: IPv4Address, dst: IPv4Address) -> bool:
    """Whether src → dst stays on one node: a node and its own pod, over the pod's veth."""
    for c in lab.clusters:
        for p in c.netns_pods():
            node_ip = c.node(p.node).eth0.ip
            if (src, dst) in ((node_ip, p.ip), (p.ip, node_ip)):
                return True
    return False


def _wire(idx: _Index, src: IPv4Address, dst: IPv4Address, proto: str, port: int | None):
    """The flow src → dst as the VPC router sees it (source, destination, protocol, port),
    or None when it stays on one node: a tunnel cluster's pods travel in VXLAN between their
    nodes, and leave their node with the address the model gives them (`source_towards`)."""
    lab = idx.lab
    if _local_path(lab, src, dst):
        return None
    here, there = idx.node_of(src), idx.node_of(dst)
    if dst in idx.pods and there is not None:
        cluster, node = there
        encap = models.get(cluster.model).encap_flow(cluster)
        if encap is not None:
            if here is None or here[0].name != cluster.name:
                return src, dst, proto, port  # from outside the cluster: no route, judged as sent
            if here[1].name == node.name:
                return None
            return here[1].eth0.ip, node.eth0.ip, encap[0], encap[1]
    if src in idx.pods and here is not None:
        cluster, node = here
        pod = idx.pods[src][1]
        if dst in node_ips(cluster, node):
            return None  # to its own node
        if dst not in cluster.container_cidr:
            src = models.get(cluster.model).source_towards(cluster, node, pod, dst)
    return src, dst, proto, port


def node_ips(cluster: ClusterInfo, node: NodeInfo) -> tuple[IPv4Address, ...]:
    return models.get(cluster.model).node_addresses(cluster, node)


def _verdict(idx: _Index, src: IPv4Address, dst: IPv4Address, proto: str, port: int | None):
    flow = _wire(idx, src, dst, proto, port)
    return None if flow is None else secgroup.verdict(idx.lab, *flow)


def _service_ips(lab: Lab, ip: IPv4Address) -> bool:
    return any(ip in c.service_cidr for c in lab.clusters)


def judged(lab: Lab, specs: list[CheckSpec]) -> list[CheckSpec]:
    """The generated checks, with what the groups refuse expected `blocked`."""
    if not secgroup.members(lab):
        return specs
    idx = _Index(lab)
    # An EIP reaches the VPC router translated to the address bound to it (1:1 NAT at the
    # internet gateway): the groups judge that address.
    private = {e.ip: e.private for e in getattr(lab, "eips", []) if e.private is not None}
    out = []
    for spec in specs:
        dst = private.get(spec.dst_ip, spec.dst_ip)
        if spec.expect != "reach":
            v = None
        elif spec.allowed_backends:
            v = _through_service(idx, spec, dst)
        elif _service_ips(lab, dst):
            v = None
        else:
            v = _verdict(idx, spec.src_ip, dst, _l4(spec.proto), spec.port)
        if v is None or v.allowed:
            out.append(spec)
            continue
        out.append(replace(spec, expect="dropped", why=v.why, expect_source=None, expect_backend=None,
                           allowed_backends=(), spread=None, allowed_sources=(), hairpin=None,
                           expect_encap=None))
    return out


# -- checks through a Service or a load balancer ----------------------------------------------
def _through_service(idx: _Index, spec: CheckSpec, dst: IPv4Address) -> secgroup.Verdict | None:
    """Refused when the groups refuse every way to every endpoint: the client to where it
    enters (a node's nodePort, an ELB's members), then that node to each endpoint (none
    when the endpoint is on that node) with the sources the endpoint may see."""
    lab = idx.lab
    proto = _l4(spec.proto)
    endpoints = []
    for name in spec.allowed_backends:
        pod = idx.by_name.get(name)
        port = _target_port(lab, spec, pod) if pod is not None else None
        if pod is None or port is None:
            return None
        endpoints.append((pod, port))
    sources = spec.allowed_sources or ((spec.expect_source,) if spec.expect_source else ())
    refusals: list[str] = []
    for entry_leg, node in _entries(idx, spec, dst, proto):
        if entry_leg is not None and not entry_leg.allowed:
            refusals.append(entry_leg.why)
            continue
        for pod, port in endpoints:
            if node is not None and pod.node == node.name and pod.cluster == node.cluster:
                return None  # an endpoint on the node it entered: no group on the way
            if node is None and entry_leg is not None:
                return None  # passthrough: the entry leg reached the pod itself
            if not sources:
                return None
            verdicts = [_verdict(idx, s, pod.ip, proto, port) for s in sources]
            if any(v is None or v.allowed for v in verdicts):
                return None
            refusals.append(verdicts[0].why)
    return secgroup.Verdict(False, "; ".join(dict.fromkeys(refusals))) if refusals else None


def _entries(idx: _Index, spec: CheckSpec, dst: IPv4Address, proto: str):
    """Where a Service check's packets enter the cluster: (the verdict on the way there, the
    node they enter; None for a pod reached straight by an ELB's passthrough)."""
    lab = idx.lab
    elb = next((e for e in lab.elbs if e.ip == dst), None)
    if elb is not None and not _short_circuited(idx, spec, dst):
        return list(_elb_entries(idx, spec, elb, proto))
    if dst in idx.nodes and not _service_ips(lab, dst):
        node = idx.nodes[dst][1]
        return [(_verdict(idx, spec.src_ip, dst, proto, spec.port) or _ADMITTED, node)]
    here = idx.node_of(spec.src_ip)  # a ClusterIP, externalIP or short-circuited address
    return [(None, here[1] if here else None)]


_ADMITTED = secgroup.Verdict(True, "no group on the way")


def _short_circuited(idx: _Index, spec: CheckSpec, dst: IPv4Address) -> bool:
    """kube-proxy on the client's node answers for the load-balancer address itself."""
    here = idx.node_of(spec.src_ip)
    if here is None:
        return False
    return any(i.ip == dst and i.ip_mode != "Proxy" for s in here[0].services for i in s.load_balancer)


def _elb_entries(idx: _Index, spec: CheckSpec, elb, proto: str):
    layer4 = next((ln for ln in elb.listeners if ln.port == spec.port and ln.pool), None)
    pools = [elb.pool(layer4.pool)] if layer4 else elb.pools
    if elb.type == "shared":
        sent = elb.backend_address
    elif layer4 is None:
        sent = elb.ip  # the ELB's nginx connects from its private address
    else:
        flow = _wire(idx, spec.src_ip, elb.ip, proto, spec.port)
        sent = flow[0] if flow else spec.src_ip
    for pool in pools:
        for m in pool.members:
            leg = secgroup.verdict(idx.lab, sent, m.address, proto, m.port) or _ADMITTED
            found = idx.nodes.get(m.address)
            yield leg, (found[1] if found else None)


def _target_port(lab: Lab, spec: CheckSpec, pod: PodInfo) -> int | None:
    """The endpoint's port of the Service the check calls (by its ClusterIP, an external or
    load-balancer address and port, or a nodePort)."""
    cluster = lab.cluster(pod.cluster)
    for info in cluster.services:
        addresses = {info.cluster_ip, *info.spec.externalIPs, *(i.ip for i in info.load_balancer)}
        for port in info.spec.ports:
            if (spec.dst_ip in addresses and port.port == spec.port) or port.nodePort == spec.port:
                if pod in selected(info, cluster.pods):
                    return target_port(port, pod)
    return None


def _probe(obj: PodInfo | HostInfo) -> list[tuple[str, int | None]]:
    ports = [(p.protocol.lower(), p.port) for p in obj.ports]
    return ports or [("icmp", None)]


def _spec(src: tuple[str, str, IPv4Address], dst: str, dst_ip: IPv4Address, proto: str, port: int | None,
          v: secgroup.Verdict, cluster: str | None) -> CheckSpec:
    name, netns, ip = src
    target = dst + (f":{port}" if port else "")
    verdict = "admitted" if v.allowed else "blocked"
    return CheckSpec(name=f"security group: {name} → {target} {proto} {verdict}", why=v.why,
                     src=name, src_netns=netns, src_ip=ip, dst=dst, dst_ip=dst_ip,
                     port=port, proto=proto, expect="reach" if v.allowed else "dropped", cluster=cluster,
                     expect_source=ip if v.allowed else None,
                     expect_backend=dst if v.allowed and proto != "icmp" else None)


def checks(lab: Lab) -> list[CheckSpec]:
    """Every bound pod's ports from the VPC hosts and from a bound pod on another node; every
    bound host's ports from the other hosts of its VPC (pods reach it in the matrix's
    `pod→VPC host`, judged by its groups)."""
    members = {m.ip: m for m in secgroup.members(lab)}
    # A model's default group (an eni cluster's), named in its cluster's data.
    created = {getattr(c.network, "default_group", None) for c in lab.clusters}
    out = []
    for c in lab.clusters:
        bound = [p for p in c.netns_pods() if p.ip in members]
        for pod in bound:
            sources = [(h.name, h.netns, h.eth0.ip) for h in lab.hosts]
            peer = next((p for p in bound if p.node != pod.node), None)
            if peer is not None:
                sources.append((f"{c.name}/{peer.name}", peer.netns, peer.ip))
            user_groups = set(members[pod.ip].groups) - created
            for src in sources:
                for proto, port in _probe(pod):
                    v = secgroup.verdict(lab, src[2], pod.ip, proto, port)
                    if v is None or (v.allowed and not user_groups):
                        continue  # the default group admitting the VPC: the matrix shows it
                    out.append(_spec(src, f"{c.name}/{pod.name}", pod.ip, proto, port, v, c.name))
    for host in lab.hosts:
        if not host.security_groups:
            continue
        vpc = lab.vpc_of_subnet(host.eth0.subnet)
        for other in lab.hosts_in(vpc):
            if other.name == host.name:
                continue
            for proto, port in _probe(host):
                v = secgroup.verdict(lab, other.eth0.ip, host.eth0.ip, proto, port)
                if v is not None:
                    out.append(_spec((other.name, other.netns, other.eth0.ip), host.name, host.eth0.ip, proto,
                                     port, v, None))
    return out
