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

from netlab.cloud import secgroup
from netlab.lab.model import Lab, PodInfo
from netlab.lab.services import selected, target_port
from netlab.probe.checks import CheckSpec


def _l4(proto: str) -> str:
    return "tcp" if proto == "syn" else proto


def _local_path(lab: Lab, src: IPv4Address, dst: IPv4Address) -> bool:
    """Whether src → dst stays on one node: a node and its own pod, over the pod's veth."""
    for c in lab.clusters:
        for p in c.netns_pods():
            node_ip = c.node(p.node).eth0.ip
            if (src, dst) in ((node_ip, p.ip), (p.ip, node_ip)):
                return True
    return False


def _service_ips(lab: Lab, ip: IPv4Address) -> bool:
    return any(ip in c.service_cidr for c in lab.clusters)


def judged(lab: Lab, specs: list[CheckSpec]) -> list[CheckSpec]:
    """The generated checks, with what the groups refuse expected `blocked`."""
    if not secgroup.members(lab):
        return specs
    # An EIP reaches the VPC router translated to the address bound to it (1:1 NAT at the
    # internet gateway): the groups judge that address.
    private = {e.ip: e.private for e in getattr(lab, "eips", []) if e.private is not None}
    out = []
    for spec in specs:
        dst = private.get(spec.dst_ip, spec.dst_ip)
        if spec.expect != "reach":
            v = None
        elif spec.allowed_backends:
            v = _through_service(lab, spec)
        elif _service_ips(lab, dst) or _local_path(lab, spec.src_ip, dst):
            v = None
        else:
            v = secgroup.verdict(lab, spec.src_ip, dst, _l4(spec.proto), spec.port)
        if v is None or v.allowed:
            out.append(spec)
            continue
        out.append(replace(spec, expect="dropped", why=v.why, expect_source=None, expect_backend=None,
                           allowed_backends=(), spread=None, allowed_sources=(), hairpin=None,
                           expect_encap=None))
    return out


def _through_service(lab: Lab, spec: CheckSpec) -> secgroup.Verdict | None:
    """Refused when the groups refuse every endpoint the source it must see."""
    sources = spec.allowed_sources or ((spec.expect_source,) if spec.expect_source else ())
    pods = {f"{c.name}/{p.name}": p for c in lab.clusters for p in c.pods}
    refusals = []
    for name in spec.allowed_backends:
        pod = pods.get(name)
        port = _target_port(lab, spec, pod) if pod is not None else None
        if pod is None or port is None or not sources:
            return None
        verdicts = [None if _local_path(lab, s, pod.ip) else secgroup.verdict(lab, s, pod.ip, _l4(spec.proto), port)
                    for s in sources]
        if any(v is None or v.allowed for v in verdicts):
            return None
        refusals.append(verdicts[0].why)
    return secgroup.Verdict(False, "; ".join(dict.fromkeys(refusals))) if refusals else None


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


def _probe(pod: PodInfo) -> list[tuple[str, int | None]]:
    ports = [(p.protocol.lower(), p.port) for p in pod.ports]
    return ports or [("icmp", None)]


def checks(lab: Lab) -> list[CheckSpec]:
    """Every bound pod's ports from the VPC hosts and from a bound pod on another node."""
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
            for name, netns, ip in sources:
                for proto, port in _probe(pod):
                    v = secgroup.verdict(lab, ip, pod.ip, proto, port)
                    if v is None or (v.allowed and not user_groups):
                        continue  # the default group admitting the VPC: the matrix shows it
                    target = f"{c.name}/{pod.name}" + (f":{port}" if port else "")
                    verdict = "admitted" if v.allowed else "blocked"
                    out.append(CheckSpec(
                        name=f"security group: {name} → {target} {proto} {verdict}", why=v.why,
                        src=name, src_netns=netns, src_ip=ip, dst=f"{c.name}/{pod.name}", dst_ip=pod.ip,
                        port=port, proto=proto, expect="reach" if v.allowed else "dropped", cluster=c.name,
                        expect_source=ip if v.allowed else None,
                        expect_backend=f"{c.name}/{pod.name}" if v.allowed and proto != "icmp" else None))
    return out

