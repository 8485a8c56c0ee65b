"""What a lab promises, as a list of checks (pure): the generated matrix plus the
scenario's explicit checks.

The matrix follows the design's access scenarios for each cluster: pod↔pod on one node,
pod↔pod across nodes, node→pod, VPC host→pod, and pod→VPC host (with the source address the
host must see). It is sampled so that it grows linearly with the lab: every pod is the
source of one same-node and one cross-node check, every node and host probes a few pods.
What a network model promises (encapsulation between nodes, the source address of pod
egress, the interface a pod's traffic leaves its node by) comes from the model module's
traits; what security groups refuse, from `netlab.probe.secgroup_checks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from netlab import models
from netlab.lab import refs
from netlab.lab.model import ClusterInfo, HostInfo, Lab, NodeInfo, PodInfo

Obj = HostInfo | NodeInfo | PodInfo


@dataclass(frozen=True)
class CheckSpec:
    name: str
    src: str
    src_netns: str
    src_ip: IPv4Address
    dst: str
    dst_ip: IPv4Address
    port: int | None
    proto: str  # tcp | udp | icmp | syn (a crafted TCP SYN: tells a REJECT from a DROP)
    expect: str = "reach"  # reach | blocked
    expect_source: IPv4Address | None = None
    expect_backend: str | None = None
    # Where to sniff (netns, ifname) and what must be seen there: "none" (plain IP),
    # "vxlan", or "absent" (the packet must not cross that interface at all).
    sniff: tuple[str, str] | None = None
    sniff_label: str | None = None
    expect_encap: str | None = None
    # Services: several connections, any of several backends, masqueraded sources.
    count: int = 1
    allowed_backends: tuple[str, ...] = ()
    spread: str | None = None  # "all": every allowed backend answers; "one": one answers all
    allowed_sources: tuple[IPv4Address, ...] = ()
    blocked_by: str | None = None  # "reject" (ICMP unreachable or RST) | "drop" (silence)
    min_rtt_ms: float | None = None  # ICMP: every round trip must take at least this long
    size: int | None = None  # ICMP only: the IP packet's total length, sent with DF set
    # HTTP and HTTPS (proto "http" | "https"): the request, and what the answer must show.
    host: str | None = None  # the Host header, and the TLS server name (SNI, verified)
    path: str = "/"
    ca_pem: str | None = None  # https: the CA the server's certificate must chain to
    expect_status: int | None = None  # default: 2xx (a backend answered)
    expect_forwarded_for: str | None = None  # the last address of X-Forwarded-For
    # Checks counting answers that share a round robin take turns (default: same target).
    turn: str | None = None


def _service_port(obj: Obj) -> tuple[str, int | None]:
    ports = getattr(obj, "ports", [])
    tcp = [p for p in ports if p.protocol == "TCP"]
    if tcp:
        return "tcp", tcp[0].port
    if ports:
        return "udp", ports[0].port
    return "icmp", None


def _name(obj: Obj) -> str:
    cluster = getattr(obj, "cluster", None)
    return f"{cluster}/{obj.name}" if cluster else obj.name


def _ip(obj: Obj) -> IPv4Address:
    return obj.ip if isinstance(obj, PodInfo) else obj.eth0.ip


def _check(category: str, src: Obj, dst: Obj, **kw) -> CheckSpec:
    proto, port = _service_port(dst)
    target = f"{_name(dst)}:{port}" if port else _name(dst)
    return CheckSpec(name=f"{category}: {_name(src)} → {target}", src=_name(src), src_netns=src.netns,
                     src_ip=_ip(src), dst=_name(dst), dst_ip=_ip(dst), port=port, proto=proto,
                     expect_backend=_name(dst) if proto != "icmp" else None, **kw)


def _underlay(node: NodeInfo, ifname: str = "eth0") -> tuple[str, str]:
    return node.netns, ifname


def cluster_matrix(lab: Lab, cluster: ClusterInfo) -> list[CheckSpec]:
    model = models.get(cluster.model)
    out: list[CheckSpec] = []
    by_node = {n.name: cluster.pods_on(n.name) for n in cluster.nodes}
    with_pods = [n for n in cluster.nodes if by_node[n.name]]

    def sniff(node: NodeInfo, expect: str, ifname: str = "eth0") -> dict:
        return {"sniff": _underlay(node, ifname), "sniff_label": f"{node.name} {ifname}", "expect_encap": expect}

    for node in with_pods:
        pods = by_node[node.name]
        if len(pods) > 1:
            for i, pod in enumerate(pods):
                dst = pods[(i + 1) % len(pods)]
                if len(pods) == 2 and i == 1:
                    break  # a ring of two is one pair; once is enough
                out.append(_check("pod→pod same node", pod, dst, expect_source=pod.ip, **sniff(node, "absent")))
    for k, node in enumerate(with_pods):
        if len(with_pods) < 2:
            break
        peer = with_pods[(k + 1) % len(with_pods)]
        peer_pods = by_node[peer.name]
        for i, pod in enumerate(by_node[node.name]):
            dst = peer_pods[i % len(peer_pods)]
            out.append(_check("pod→pod across nodes", pod, dst, expect_source=pod.ip,
                              **sniff(node, model.ENCAP, model.POD_UPLINK)))
    for k, node in enumerate(cluster.nodes):
        local = by_node[node.name]
        if local:
            out.append(_check("node→pod", node, local[0], expect_source=model.node_source(cluster, node, local[0]),
                              **sniff(node, "absent")))
        others = [n for n in with_pods if n.name != node.name]
        if others:
            dst = by_node[others[k % len(others)].name][0]
            out.append(_check("node→pod", node, dst, expect_source=model.node_source(cluster, node, dst),
                              **sniff(node, model.ENCAP)))
    if model.ENCAP != "none" and len(with_pods) > 1:
        # The pod MTU leaves room for the encapsulation: a DF packet of exactly the pod MTU
        # crosses the tunnel, one byte more does not leave the pod.
        src, dst = by_node[with_pods[0].name][0], by_node[with_pods[1].name][0]
        for size, expect in ((cluster.mtu, "reach"), (cluster.mtu + 1, "blocked")):
            out.append(CheckSpec(
                name=f"pod MTU across nodes: {_name(src)} → {_name(dst)} ping {size} bytes DF",
                src=_name(src), src_netns=src.netns, src_ip=src.ip, dst=_name(dst), dst_ip=dst.ip,
                port=None, proto="icmp", expect=expect, size=size,
                **sniff(with_pods[0], model.ENCAP if expect == "reach" else "absent", model.POD_UPLINK)))
    hosts = lab.hosts_in(lab.vpc_of_cluster(cluster))  # a peered VPC's: netlab.probe.edge_checks
    for host in hosts:
        for node in with_pods:
            out.append(_check("VPC host→pod", host, by_node[node.name][0], expect_source=host.eth0.ip,
                              expect=model.VPC_HOST_TO_POD))
    for node in with_pods:
        pod = by_node[node.name][0]
        for host in hosts:
            if host.ports:
                out.append(_check("pod→VPC host", pod, host, **sniff(node, "none", model.POD_UPLINK),
                                  expect_source=model.source_towards(cluster, node, pod, host.eth0.ip)))
    return out


def explicit(lab: Lab) -> list[CheckSpec]:
    out = []
    for c in lab.checks:
        src = refs.lookup(lab, c.from_)
        name, port = refs.split_port(c.to)
        dst = refs.lookup(lab, name)
        proto = c.proto or ("tcp" if port else "icmp")
        source = refs.lookup(lab, c.source).ip if c.source else None
        web = proto in ("http", "https")
        if web:
            port = port or (443 if proto == "https" else 80)
        target = f"{dst.name}:{port}" if port else dst.name
        backend = c.backend or (dst.name if dst.kind in ("pod", "host", "node") and proto != "icmp" else None)
        request = f" {c.host or ''}{c.path or '/'}" if web else ""
        out.append(CheckSpec(
            name=f"scenario check: {src.name} → {target} {proto}{request}", src=src.name, src_netns=src.netns,
            src_ip=src.ip, dst=dst.name, dst_ip=dst.ip, port=port, proto=proto, expect=c.expect,
            expect_source=source, expect_backend=backend, **_explicit_sniff(lab, src), **_web(lab, c)))
    return out


def _web(lab: Lab, c) -> dict:
    """An explicit HTTP(S) check's request: Host (and SNI, verified against the lab's CA), path."""
    if c.proto not in ("http", "https"):
        return {}
    from netlab.ingress.certs import ca_pem

    return {"host": c.host, "path": c.path or "/", "ca_pem": ca_pem(lab.name) if c.proto == "https" else None}


def _explicit_sniff(lab: Lab, src: refs.Target) -> dict:
    """Explicit checks from a pod or node watch that node's underlay, without asserting."""
    node, ifname = None, "eth0"
    if isinstance(src.obj, PodInfo):
        cluster = lab.cluster(src.obj.cluster)
        node = cluster.node(src.obj.node)
        ifname = "eth0" if src.obj.hostNetwork else models.get(cluster.model).POD_UPLINK
    elif isinstance(src.obj, NodeInfo):
        node = src.obj
    if node is None:
        return {}
    return {"sniff": _underlay(node, ifname), "sniff_label": f"{node.name} {ifname}"}


def impairment_checks(lab: Lab) -> list[CheckSpec]:
    """netem's delay, measured: pings across the impaired link must take at least that long."""
    out = []
    for i in lab.impairments:
        if not i.delay:
            continue
        obj = i.link.rpartition(":")[0]
        out.append(CheckSpec(name=f"netem delay {i.delay}: {i.link} → {i.peer}", src=obj, src_netns=i.netns,
                             src_ip=i.peer, dst=str(i.peer), dst_ip=i.peer, port=None, proto="icmp",
                             count=5, min_rtt_ms=i.delay_ms))
    return out


def matrix(lab: Lab) -> list[CheckSpec]:
    from netlab.probe import secgroup_checks
    from netlab.probe.edge_checks import edge_matrix
    from netlab.probe.lb_checks import lb_matrix
    from netlab.probe.service_checks import service_matrix

    out = []
    for cluster in lab.clusters:
        out += cluster_matrix(lab, cluster) + service_matrix(lab, cluster)
    out = secgroup_checks.judged(lab, out + edge_matrix(lab) + lb_matrix(lab)) + secgroup_checks.checks(lab)
    return out + impairment_checks(lab) + explicit(lab)
