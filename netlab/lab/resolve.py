"""Resolve a scenario into a `Lab`: names, addresses, pod CIDRs, VPC routes (pure).

Everything the real service would refuse is refused here, before anything is built, with
the file, line and field of the offending entry: duplicate names, unknown references,
overlapping CIDRs, exhausted address space, a VPC route table over its quota.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network

from netlab import models
from netlab.errors import ScenarioError
from netlab.lab import impair, ipam, naming, pods, refs
from netlab.lab.model import (Attachment, ClusterInfo, HostInfo, Lab, NodeInfo, PodSetInfo, SubnetInfo,
                              VpcInfo)
from netlab.lab.services import resolve_services
from netlab.scenario.loader import Path_, Source
from netlab.scenario.schema import MODEL_FIELDS, Cluster, Scenario

UNDERLAY_MTU = 1500


@dataclass
class Context:
    """What a model's `allocate` needs from the resolver."""

    lab: str
    source: Source
    underlay_mtu: int = UNDERLAY_MTU
    # Kernel features of the machine the lab will run on (netlab.capabilities names, e.g.
    # "openvswitch", "ip_vs", "ipvlan"), for models that choose a datapath from them.
    features: frozenset[str] = frozenset()

    def error(self, path: Path_, message: str) -> ScenarioError:
        return self.source.error(path, message)


def resolve(scenario: Scenario, source: Source, features: frozenset[str] = frozenset()) -> Lab:
    ctx = Context(scenario.name, source, features=features)
    _check_unique_names(scenario, ctx)
    vpc = _resolve_vpc(scenario, ctx)
    pools = {s.name: ipam.Pool(s.cidr) for s in vpc.subnets}
    _claim_explicit_ips(scenario, vpc, pools, ctx)
    _check_cidrs(scenario, ctx)

    clusters = []
    for ci, spec in enumerate(scenario.clusters):
        nodes = [NodeInfo(name=node.name, cluster=spec.name,
                          netns=naming.netns(scenario.name, spec.name, node.name),
                          eth0=_attach(scenario, ("clusters", ci, "nodes", ni), node.subnet, node.ip, vpc,
                                       pools, ctx, owner=f"{spec.name}/{node.name}"))
                 for ni, node in enumerate(spec.nodes)]
        _check_pod_nodes(spec, ci, ctx)
        _check_model_fields(spec, ci, ctx)
        alloc = models.get(spec.model).allocate(spec, nodes, ("clusters", ci), ctx)
        vpc.routes += alloc.routes
        pod_sets = [PodSetInfo(name=p.name, namespace=p.namespace,
                               nodes=p.node if isinstance(p.node, list) else [p.node],
                               replicas=p.replicas, labels=p.labels, ports=p.ports)
                    for p in spec.pods if p.replicas is not None]
        clusters.append(ClusterInfo(
            name=spec.name, model=spec.model, container_cidr=spec.container_cidr,
            service_cidr=spec.service_cidr, pod_cidr_size=spec.pod_cidr_size,
            proxy_mode=spec.proxy_mode, mtu=alloc.mtu, nodes=alloc.nodes, pods=alloc.pods,
            pod_sets=pod_sets, services=resolve_services(spec, ("clusters", ci), ctx),
            tunnel=alloc.tunnel))

    _check_proxy_modes(scenario, ctx)
    _check_route_quota(scenario, vpc, ctx)
    hosts = [HostInfo(name=h.name, netns=naming.netns(scenario.name, h.name), ports=h.ports,
                      eth0=_attach(scenario, ("hosts", hi), h.subnet, h.ip, vpc, pools, ctx, owner=h.name))
             for hi, h in enumerate(scenario.hosts)]
    lab = Lab(name=scenario.name, description=scenario.description, scenario_file=source.file,
              features=sorted(features), underlay_mtu=ctx.underlay_mtu, vpc=vpc, hosts=hosts, clusters=clusters,
              checks=scenario.checks)
    _check_refs(lab, ctx)
    lab.impairments = _impairments(scenario, lab, ctx)
    return lab


def _impairments(s: Scenario, lab: Lab, ctx: Context) -> list:
    out = []
    for i, spec in enumerate(s.impair):
        if "netem" not in ctx.features:
            raise ctx.error(("impair", i), "link impairment needs tc netem (sch_netem), which this kernel "
                                           "lacks (see `netlab doctor`); run the lab in the kernel tier")
        try:
            out.append(impair.resolve_one(lab, spec))
        except impair.ImpairError as e:
            raise ctx.error(("impair", i, "link"), str(e)) from None
        if any(o.link == spec.link for o in out[:-1]):
            raise ctx.error(("impair", i, "link"), f"{spec.link} is impaired twice; merge the entries")
    return out


def _check_unique_names(s: Scenario, ctx: Context) -> None:
    seen_netns: dict[str, Path_] = {naming.netns(s.name, "vpc"): ("name",)}

    def claim(netns: str, path: Path_, what: str) -> None:
        if netns in seen_netns:
            other = ctx.source.line(seen_netns[netns])
            raise ctx.error(path, f"{what} collides with the entry on line {other} "
                                  f"(both would be namespace '{netns}'); rename one")
        seen_netns[netns] = path

    _unique([x.name for x in s.vpc.subnets], ("vpc", "subnets"), "subnet", ctx)
    _unique([x.name for x in s.hosts], ("hosts",), "host", ctx)
    _unique([x.name for x in s.clusters], ("clusters",), "cluster", ctx)
    for hi, h in enumerate(s.hosts):
        if h.name == "vpc":
            raise ctx.error(("hosts", hi, "name"), "'vpc' is the VPC router's name; choose another")
        claim(naming.netns(s.name, h.name), ("hosts", hi, "name"), f"host '{h.name}'")
    for ci, c in enumerate(s.clusters):
        _unique([x.name for x in c.nodes], ("clusters", ci, "nodes"), "node", ctx)
        for i, x in enumerate(c.nodes):
            claim(naming.netns(s.name, c.name, x.name), ("clusters", ci, "nodes", i, "name"),
                  f"node '{c.name}/{x.name}'")
        seen_pods: dict[str, pods.PodRequest] = {}
        for req in pods.expand(c, ("clusters", ci), ctx):
            if req.name in seen_pods:
                first = ctx.source.line(seen_pods[req.name].path)
                raise ctx.error(req.path + ("name",), f"duplicate pod name '{req.name}' (first on line {first})")
            seen_pods[req.name] = req
            claim(naming.netns(s.name, c.name, req.name), req.path + ("name",), f"pod '{c.name}/{req.name}'")


def _unique(names: list[str], path: Path_, what: str, ctx: Context) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            first = ctx.source.line(path + (seen[name],))
            raise ctx.error(path + (i, "name"), f"duplicate {what} name '{name}' (first on line {first})")
        seen[name] = i


def _resolve_vpc(s: Scenario, ctx: Context) -> VpcInfo:
    subnets = []
    for i, sn in enumerate(s.vpc.subnets):
        path = ("vpc", "subnets", i, "cidr")
        if not sn.cidr.subnet_of(s.vpc.cidr):
            raise ctx.error(path, f"subnet {sn.cidr} is not inside the VPC CIDR {s.vpc.cidr}")
        if sn.cidr.prefixlen > 29:
            raise ctx.error(path, f"subnet {sn.cidr} is too small; use /29 or larger")
        for other in subnets:
            if sn.cidr.overlaps(other.cidr):
                raise ctx.error(path, f"subnet {sn.cidr} overlaps subnet '{other.name}' ({other.cidr})")
        gw = ipam.gateway(sn.cidr)
        subnets.append(SubnetInfo(name=sn.name, cidr=sn.cidr, bridge=naming.bridge(sn.name),
                                  gateway=IPv4Interface(f"{gw}/{sn.cidr.prefixlen}")))
    return VpcInfo(netns=naming.netns(s.name, "vpc"), cidr=s.vpc.cidr,
                   route_quota=s.vpc.route_quota, subnets=subnets)


def _machines(s: Scenario):
    """(path, subnet, ip) of every machine with a VPC port, in allocation order."""
    for ci, c in enumerate(s.clusters):
        for ni, n in enumerate(c.nodes):
            yield ("clusters", ci, "nodes", ni), n.subnet, n.ip
    for hi, h in enumerate(s.hosts):
        yield ("hosts", hi), h.subnet, h.ip


def _subnet_of(s: Scenario, vpc: VpcInfo, path: Path_, subnet: str | None, ctx: Context) -> SubnetInfo:
    name = subnet or vpc.subnets[0].name
    found = next((sn for sn in vpc.subnets if sn.name == name), None)
    if found is None:
        raise ctx.error(path + ("subnet",), f"unknown subnet '{name}'; subnets: "
                                            + ", ".join(sn.name for sn in vpc.subnets))
    return found


def _claim_explicit_ips(s: Scenario, vpc: VpcInfo, pools: dict[str, ipam.Pool], ctx: Context) -> None:
    owners: dict = {}
    for path, subnet, ip in _machines(s):
        sn = _subnet_of(s, vpc, path, subnet, ctx)
        if ip is None:
            continue
        if not pools[sn.name].usable(ip):
            raise ctx.error(path + ("ip",), f"{ip} is not a usable address of subnet '{sn.name}' "
                                            f"({sn.cidr}; {sn.gateway.ip} is the gateway)")
        if ip in owners:
            raise ctx.error(path + ("ip",), f"{ip} is already used on line {ctx.source.line(owners[ip])}")
        owners[ip] = path
        pools[sn.name].claim(ip)


def _attach(s: Scenario, path: Path_, subnet: str | None, ip, vpc: VpcInfo,
            pools: dict[str, ipam.Pool], ctx: Context, owner: str) -> Attachment:
    """A machine's port on its subnet: the next free address unless it asked for one."""
    sn = _subnet_of(s, vpc, path, subnet, ctx)
    addr = ip or pools[sn.name].next()
    if addr is None:
        raise ctx.error(path, f"subnet '{sn.name}' ({sn.cidr}) has no free address left")
    return Attachment(subnet=sn.name, address=IPv4Interface(f"{addr}/{sn.cidr.prefixlen}"),
                      gateway=sn.gateway.ip, port=naming.vpc_port(owner))


def _check_cidrs(s: Scenario, ctx: Context) -> None:
    """The real service's rule: node, container and Service CIDRs must not overlap."""
    claimed: list[tuple[IPv4Network, str, Path_]] = [(s.vpc.cidr, "the VPC CIDR", ("vpc", "cidr"))]
    for ci, c in enumerate(s.clusters):
        for field, what in (("container_cidr", "container CIDR"), ("service_cidr", "Service CIDR")):
            net: IPv4Network = getattr(c, field)
            path = ("clusters", ci, field)
            for other, other_what, other_path in claimed:
                # Service CIDRs are node-local virtual addresses: two clusters may share one.
                if field == "service_cidr" and other_what.startswith("Service CIDR"):
                    continue
                if net.overlaps(other):
                    raise ctx.error(path, f"{what} {net} overlaps {other_what} {other} "
                                          f"(line {ctx.source.line(other_path)}); they must not overlap")
            claimed.append((net, f"{what} of cluster '{c.name}'", path))


def _check_pod_nodes(spec: Cluster, ci: int, ctx: Context) -> None:
    nodes = {n.name for n in spec.nodes}
    for pi, pod in enumerate(spec.pods):
        for name in pod.node if isinstance(pod.node, list) else [pod.node]:
            if name not in nodes:
                raise ctx.error(("clusters", ci, "pods", pi, "node"),
                                f"unknown node '{name}'; nodes of cluster '{spec.name}': "
                                + ", ".join(n.name for n in spec.nodes))


def _check_model_fields(spec: Cluster, ci: int, ctx: Context) -> None:
    for name, models_ in MODEL_FIELDS.items():
        if name in spec.model_fields_set and spec.model not in models_:
            raise ctx.error(("clusters", ci, name),
                            f"'{name}' applies to model: {' or '.join(models_)} only, and cluster "
                            f"'{spec.name}' is model: {spec.model}; remove it")


# What each kube-proxy mode needs from the kernel beyond netfilter.
PROXY_MODE_FEATURES = {"iptables": (), "nftables": (), "ipvs": ("ip_vs", "dummy")}


def _check_proxy_modes(s: Scenario, ctx: Context) -> None:
    for ci, c in enumerate(s.clusters):
        missing = [f for f in PROXY_MODE_FEATURES[c.proxy_mode] if f not in ctx.features]
        if missing:
            raise ctx.error(("clusters", ci, "proxy_mode"),
                            f"proxy_mode {c.proxy_mode} needs {' and '.join(missing)}, which this kernel "
                            "lacks (see `netlab doctor`); use iptables or nftables here, or run the lab "
                            "in the kernel tier (a VM with Debian's stock kernel: `make test-kernel`, Vagrant)")


def _check_route_quota(s: Scenario, vpc: VpcInfo, ctx: Context) -> None:
    if len(vpc.routes) <= vpc.route_quota:
        return
    owners = sorted({r.owner.split("/")[0] for r in vpc.routes})
    ci = next((i for i, c in enumerate(s.clusters) if c.name == owners[-1]), 0)
    raise ctx.error(("clusters", ci, "nodes"),
                    f"the VPC route table needs {len(vpc.routes)} routes (one per node of VPC-network "
                    f"clusters: {', '.join(owners)}) but vpc.route_quota is {vpc.route_quota}; "
                    "remove nodes or raise the quota")


def _check_refs(lab: Lab, ctx: Context) -> None:
    for i, check in enumerate(lab.checks):
        try:
            refs.check_refs(lab, check)
        except refs.RefError as e:
            raise ctx.error(("checks", i, e.field or "to"), str(e)) from None
