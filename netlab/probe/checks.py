"""What a lab promises, as a list of checks (pure): the generated matrix plus the
scenario's explicit checks.

The matrix follows the design's access scenarios for each cluster: pod↔pod on one node,
pod↔pod across nodes, node→pod, VPC host→pod, and pod→VPC host (with the source address the
host must see). It is sampled so that it grows linearly with the lab: every pod is the
source of one same-node and one cross-node check, every node and host probes a few pods.
What a network model promises (encapsulation between nodes, the source address of pod
egress, the interface a pod's traffic leaves its node by) comes from the model's traits;
what security groups refuse, from `netlab.probe.secgroup_checks`; what blocks a path is named
precisely (an outcome of `netlab.probe.outcomes`), and every check carries a one-line `why`
(`netlab.probe.explain`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from ipaddress import IPv4Address

from netlab import models
from netlab.lab import refs
from netlab.lab.model import ClusterInfo, HostInfo, Lab, NodeInfo, PodInfo, VpcInfo

Obj = HostInfo | NodeInfo | PodInfo
ORIGINS = ("generated", "scenario")


@dataclass(frozen=True)
class CheckSpec:
    name: str
    src: str
    src_netns: str
    src_ip: IPv4Address
    dst: str
    dst_ip: IPv4Address
    port: int | None
    proto: str  # tcp | udp | icmp | syn (a crafted TCP SYN: sees a drop without a connect timeout)
    # The outcome the check expects (netlab.probe.outcomes.OUTCOMES) or "blocked" (any
    # refusal by the network: rejected, unreachable or dropped).
    expect: str = "reach"
    kind: str = ""  # the row's category, e.g. "pod→pod across nodes" (default: the name's head)
    cluster: str | None = None  # the cluster it is about (None: the lab as a whole)
    origin: str = "generated"  # generated (the matrix) | scenario (the file's `checks:`)
    why: str = ""  # the mechanism, from the lab model (netlab.probe.explain)
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
    # The client is one of the Service's endpoints: when it answers itself, kube-proxy
    # masquerades the hairpin connection, and the server sees one of these instead.
    hairpin: tuple[str, tuple[IPv4Address, ...]] | None = None
    # Telling `refused` from `rejected`: the addresses that are the target itself, and
    # whether the lab puts a rejecting rule on this path (kube-proxy, no endpoints).
    target_ips: tuple[IPv4Address, ...] = ()
    rule_rejects: bool = False
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

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", self.name.split(":")[0])
        if not self.target_ips:
            object.__setattr__(self, "target_ips", (self.dst_ip,))

    @property
    def target(self) -> str:
        return self.dst + (f":{self.port}" if self.port else "")


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


def from_outside(vpc: VpcInfo, ip: IPv4Address, promise: str = "blocked") -> str:
    """What a VPC host gets from an address the model says is `reach` or `blocked`: blocked
    where the VPC router has no route means it answers so (unreachable)."""
    if promise == "reach":
        return "reach"
    return "unreachable" if vpc.lookup(ip) is None else "blocked"


def cluster_matrix(lab: Lab, cluster: ClusterInfo) -> list[CheckSpec]:
    model = models.get(cluster.model)
    out: list[CheckSpec] = []
    by_node = {n.name: cluster.pods_on(n.name) for n in cluster.nodes}
    with_pods = [n for n in cluster.nodes if by_node[n.name]]
    c = {"cluster": cluster.name}

    def sniff(node: NodeInfo, expect: str, ifname: str = "eth0") -> dict:
        return {"sniff": _underlay(node, ifname), "sniff_label": f"{node.name} {ifname}", "expect_encap": expect}

    for node in with_pods:
        pods = by_node[node.name]
        if len(pods) > 1:
            for i, pod in enumerate(pods):
                dst = pods[(i + 1) % len(pods)]
                if len(pods) == 2 and i == 1:
                    break  # a ring of two is one pair; once is enough
                out.append(_check("pod→pod same node", pod, dst, expect_source=pod.ip, **c, **sniff(node, "absent")))
    for k, node in enumerate(with_pods):
        if len(with_pods) < 2:
            break
        peer = with_pods[(k + 1) % len(with_pods)]
        peer_pods = by_node[peer.name]
        for i, pod in enumerate(by_node[node.name]):
            dst = peer_pods[i % len(peer_pods)]
            out.append(_check("pod→pod across nodes", pod, dst, expect_source=pod.ip, **c,
                              **sniff(node, model.ENCAP, model.POD_UPLINK)))
    for k, node in enumerate(cluster.nodes):
        local = by_node[node.name]
        if local:
            out.append(_check("node→pod", node, local[0], expect_source=model.node_source(cluster, node, local[0]),
                              **c, **sniff(node, "absent")))
        others = [n for n in with_pods if n.name != node.name]
        if others:
            dst = by_node[others[k % len(others)].name][0]
            out.append(_check("node→pod", node, dst, expect_source=model.node_source(cluster, node, dst),
                              **c, **sniff(node, model.ENCAP)))
    if model.ENCAP != "none" and len(with_pods) > 1:
        # The pod MTU leaves room for the encapsulation: a DF packet of exactly the pod MTU
        # crosses the tunnel, one byte more does not leave the pod.
        src, dst = by_node[with_pods[0].name][0], by_node[with_pods[1].name][0]
        for size, expect in ((cluster.mtu, "reach"), (cluster.mtu + 1, "unreachable")):
            out.append(CheckSpec(
                name=f"pod MTU across nodes: {_name(src)} → {_name(dst)} ping {size} bytes DF",
                src=_name(src), src_netns=src.netns, src_ip=src.ip, dst=_name(dst), dst_ip=dst.ip,
                port=None, proto="icmp", expect=expect, size=size, **c,
                **sniff(with_pods[0], model.ENCAP if expect == "reach" else "absent", model.POD_UPLINK)))
    hosts = lab.hosts_in(lab.vpc_of_cluster(cluster))  # a peered VPC's: netlab.probe.edge_checks
    for host in hosts:
        for node in with_pods:
            pod = by_node[node.name][0]
            out.append(_check("VPC host→pod", host, pod, expect_source=host.eth0.ip, **c,
                              expect=from_outside(lab.vpc_of_cluster(cluster), pod.ip, model.VPC_HOST_TO_POD)))
    for node in with_pods:
        pod = by_node[node.name][0]
        for host in hosts:
            if host.ports:
                out.append(_check("pod→VPC host", pod, host, **c, **sniff(node, "none", model.POD_UPLINK),
                                  expect_source=model.source_towards(cluster, node, pod, host.eth0.ip)))
    return out


def explicit(lab: Lab) -> list[CheckSpec]:
    out = []
    for c in lab.checks:
        src = refs.lookup(lab, c.from_)
        dst = refs.destination(lab, c.to, c.proto)
        proto = c.proto or dst.proto or ("tcp" if dst.port else "icmp")
        web = proto in ("http", "https")
        port = dst.port or ((443 if proto == "https" else 80) if web else None)
        request = f" {c.host or ''}{c.path or '/'}" if web else (f" {c.size} B DF" if c.size else "")
        # the destination as written; a web check's default port spelled out
        label = f"{c.to}:{port}" if web and ":" not in c.to.rpartition("/")[2] else c.to
        sources = tuple(refs.source_address(lab, s) for s in refs.as_list(c.source))
        cluster = dst.target.cluster or src.cluster
        service = dst.kind in ("service", "nodeport")
        out.append(CheckSpec(
            name=f"scenario check: {src.name} → {label} {proto}{request}", src=src.name, src_netns=src.netns,
            src_ip=src.ip, dst=dst.name, dst_ip=dst.ip, port=port, proto=proto, expect=c.expect,
            kind="scenario check", cluster=cluster.name if cluster else None, origin="scenario",
            expect_source=sources[0] if len(sources) == 1 else None,
            allowed_sources=sources if len(sources) > 1 else (),
            target_ips=tuple(dict.fromkeys((dst.ip, dst.target.ip) + tuple(p.ip for p in dst.endpoints))),
            rule_rejects=service and _rejects_without_endpoints(dst), size=c.size,
            **_explicit_backend(c, dst, proto), **_explicit_sniff(lab, src), **_web(lab, c)))
    return out


def _explicit_backend(c, dst: refs.Destination, proto: str) -> dict:
    """Who may answer: the check's `backend`; else a Service's (or NodePort's) endpoints;
    else the pod, host or node it names."""
    if c.backend:
        backends = tuple(refs.as_list(c.backend))
        return {"expect_backend": backends[0]} if len(backends) == 1 else {"allowed_backends": backends}
    if proto == "icmp":
        return {}
    if dst.kind in ("service", "nodeport"):
        return {"allowed_backends": tuple(f"{dst.target.cluster.name}/{p.name}" for p in dst.endpoints)}
    if dst.kind in ("pod", "host", "node"):
        return {"expect_backend": dst.target.name}  # an EIP's: what it is bound to
    return {}


def _rejects_without_endpoints(dst: refs.Destination) -> bool:
    """kube-proxy REJECTs a Service port without endpoints; a NodePort with
    externalTrafficPolicy Local and no endpoint on its node is dropped instead."""
    if dst.endpoints:
        return False
    return not (dst.kind == "nodeport" and dst.service.spec.externalTrafficPolicy == "Local"
                and refs.endpoints(dst.service, dst.target.cluster, dst.service_port))


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
        cluster = obj.partition("/")[0] if "/" in obj else None
        out.append(CheckSpec(name=f"netem delay {i.delay}: {i.link} → {i.peer}", src=obj, src_netns=i.netns,
                             src_ip=i.peer, dst=str(i.peer), dst_ip=i.peer, port=None, proto="icmp",
                             count=5, min_rtt_ms=i.delay_ms, kind="netem delay", cluster=cluster,
                             why=f"tc netem delay {i.delay} on the egress of {i.link}: each round trip "
                                 "crosses it once"))
    return out


def _refused_by_groups(lab: Lab, spec: CheckSpec) -> CheckSpec:
    """A scenario's check that expects no answer says why when security groups refuse the
    flow (the group and the rule missing), as the generated checks do."""
    from netlab.probe import secgroup_checks

    if spec.expect == "reach" or spec.why:
        return spec
    judged = secgroup_checks.judged(lab, [dataclasses.replace(spec, expect="reach")])[0]
    return dataclasses.replace(spec, why=judged.why) if judged.expect == "dropped" else spec


def matrix(lab: Lab, only: str | None = None, cluster: str | None = None) -> list[CheckSpec]:
    """Every check of the lab, each with its `why`; `only` keeps the generated matrix or the
    scenario's checks, `cluster` the checks about one cluster."""
    from netlab.probe import secgroup_checks
    from netlab.probe.edge_checks import edge_matrix
    from netlab.probe.explain import Rulesets, why
    from netlab.probe.lb_checks import lb_matrix
    from netlab.probe.service_checks import service_matrix

    out: list[CheckSpec] = []
    if only != "scenario":
        for c in lab.clusters:
            out += cluster_matrix(lab, c) + service_matrix(lab, c)
        out = secgroup_checks.judged(lab, out + edge_matrix(lab) + lb_matrix(lab)) + secgroup_checks.checks(lab)
        out += impairment_checks(lab)
    if only != "generated":
        out += [_refused_by_groups(lab, s) for s in explicit(lab)]
    if cluster is not None:
        out = [s for s in out if s.cluster == cluster or s.src.startswith(f"{cluster}/")
               or s.dst.startswith(f"{cluster}/")]
    rules = Rulesets(lab)
    return [s if s.why else dataclasses.replace(s, why=why(lab, s, rules)) for s in out]
