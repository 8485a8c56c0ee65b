"""Resolve a scenario into a `Lab`: names, addresses, pod CIDRs, VPC routes (pure).

Everything the real service would refuse is refused here, before anything is built, with
the file, line and field of the offending entry: duplicate names, unknown references,
overlapping CIDRs, exhausted address space, a VPC route table over its quota.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from netlab import cloud, models
from netlab.cloud import internet, natgw, secgroup, vpc as vpc_cloud
from netlab.errors import ScenarioError
from netlab.ingress import addon
from netlab.lab import impair, ipam, naming, pods, refs
from netlab.lab.model import (Attachment, ClusterInfo, HostInfo, Lab, NodeInfo, PodSetInfo, SubnetInfo,
                              VpcInfo)
from netlab.lab.services import resolve_services
from netlab.scenario.loader import Source
from netlab.scenario.schema import Scenario
from netlab.scenario.types import ClusterBase, Path_

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
    # Refuse what this machine cannot run (`up`, `validate --host`); `validate` judges the
    # file alone.
    check_host: bool = True
    # The lab's VPCs and one address pool per subnet (by name), shared by every machine and,
    # for models whose pods hold VPC addresses, by pods: the model allocates with `take`.
    vpcs: list[VpcInfo] = dataclass_field(default_factory=list)
    pools: dict[str, ipam.Pool] = dataclass_field(default_factory=dict)
    # The scenario's security groups: name → where declared (models bind pods to them).
    security_groups: dict[str, Path_] = dataclass_field(default_factory=dict)

    def error(self, path: Path_, message: str) -> ScenarioError:
        return self.source.error(path, message)

    def subnet(self, name: str) -> SubnetInfo | None:
        return next((sn for v in self.vpcs for sn in v.subnets if sn.name == name), None)

    def take(self, subnet: str) -> IPv4Address | None:
        """The next free address of a subnet (None when it has none left)."""
        return self.pools[subnet].next()


def resolve(scenario: Scenario, source: Source, features: frozenset[str] | None = frozenset()) -> Lab:
    """`features`: the kernel features of the machine the lab will run on; None judges the
    scenario alone (`netlab validate`), as if the machine had every feature."""
    check_host = features is not None
    if features is None:
        from netlab.capabilities import KERNEL_FEATURES

        features = frozenset(KERNEL_FEATURES)
    ctx = Context(scenario.name, source, features=features, check_host=check_host)
    scenario = addon.expand(scenario, ctx)  # the NGINX Ingress Controller add-on's pods and Service
    _check_unique_names(scenario, ctx)
    vpcs = _resolve_vpcs(scenario, ctx)
    pools = {s.name: ipam.Pool(s.cidr) for v in vpcs for s in v.subnets}
    ctx.vpcs, ctx.pools = vpcs, pools
    secgroup.check_scenario(scenario.security_groups, ctx)
    _claim_explicit_ips(scenario, vpcs, pools, ctx)
    for ci, spec in enumerate(scenario.clusters):
        models.get(spec.model).validate(spec, ("clusters", ci), ctx)
    _check_cidrs(scenario, ctx)

    clusters = []
    created_groups = []
    for ci, spec in enumerate(scenario.clusters):
        nodes = [NodeInfo(name=node.name, cluster=spec.name,
                          netns=naming.netns(scenario.name, spec.name, node.name),
                          eth0=_attach(("clusters", ci, "nodes", ni), node.subnet, node.ip, vpcs,
                                       pools, ctx, owner=f"{spec.name}/{node.name}"))
                 for ni, node in enumerate(spec.nodes)]
        _check_pod_nodes(spec, ci, ctx)
        alloc = models.get(spec.model).allocate(spec, nodes, ("clusters", ci), ctx)
        for route in alloc.routes:
            _vpc_of_nexthop(vpcs, route.nexthop).routes.append(route)
        created_groups += alloc.security_groups
        pod_sets = [PodSetInfo(name=p.name, namespace=p.namespace,
                               nodes=p.node if isinstance(p.node, list) else [p.node],
                               replicas=p.replicas, labels=p.labels, ports=p.ports, hostNetwork=p.hostNetwork)
                    for p in spec.pods if p.replicas is not None]
        cluster = ClusterInfo(
            name=spec.name, model=spec.model,
            container_cidr=alloc.container_cidr or getattr(spec, "container_cidr", None),
            service_cidr=spec.service_cidr, pod_cidr_size=getattr(spec, "pod_cidr_size", None),
            proxy_mode=spec.proxy_mode, mtu=alloc.mtu, nodes=alloc.nodes, pods=alloc.pods,
            pod_sets=pod_sets, services=resolve_services(spec, ("clusters", ci), ctx),
            network=alloc.network)
        node_group = _node_group(spec, cluster, vpcs)
        created_groups.append(node_group)
        asked = {n.name: n.security_groups or spec.node_security_groups for n in spec.nodes}
        clusters.append(cluster.model_copy(update={"node_group": node_group.name, "nodes": [
            n.model_copy(update={"security_groups": list(asked[n.name] or [node_group.name])})
            for n in cluster.nodes]}))

    if check_host:
        _check_proxy_modes(scenario, ctx)
    hosts = [HostInfo(name=h.name, netns=naming.netns(scenario.name, h.name), ports=h.ports,
                      security_groups=list(h.security_groups),
                      eth0=_attach(("hosts", hi), h.subnet, h.ip, vpcs, pools, ctx, owner=h.name))
             for hi, h in enumerate(scenario.hosts)]
    lab = Lab(name=scenario.name, description=scenario.description, scenario_file=source.file,
              features=sorted(features), underlay_mtu=ctx.underlay_mtu, vpcs=vpcs, hosts=hosts,
              clusters=clusters, checks=scenario.checks,
              security_groups=list(scenario.security_groups) + created_groups)
    for obj in cloud.registry():
        obj.resolve(scenario, lab, ctx)
    vpc_cloud.route_entries(scenario, lab, ctx)  # they name the objects just resolved
    _check_route_quota(scenario, vpcs, ctx)
    _check_refs(lab, ctx)
    lab.impairments = _impairments(scenario, lab, ctx)
    return lab


def _node_group(spec: ClusterBase, cluster: ClusterInfo, vpcs: list[VpcInfo]):
    """The default node security group the service creates with the cluster, with its
    network model's rules."""
    vpc = next(v for v in vpcs if any(cluster.nodes[0].eth0.ip in sn.cidr for sn in v.subnets))
    name = secgroup.created_name(spec.name, "node")
    return secgroup.default_node_group(spec.name, models.get(spec.model).node_group_rules(cluster, vpc, name))


def _impairments(s: Scenario, lab: Lab, ctx: Context) -> list:
    out = []
    for i, spec in enumerate(s.impair):
        if ctx.check_host and "netem" not in ctx.features:
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
    """Names that become namespaces must give distinct ones: lab-level objects (VPCs, hosts,
    and later gateways and load balancers) share one name space with cluster names."""
    seen_netns: dict[str, tuple[Path_, str]] = {}

    def claim(netns: str, path: Path_, what: str) -> None:
        if netns in seen_netns:
            other_path, other = seen_netns[netns]
            line = ctx.source.line(other_path)
            where = f" on line {line}" if line and other_path[0] != "vpc" or "name" in s.vpc.model_fields_set \
                else " (the VPC router's, named 'vpc' by default)"
            raise ctx.error(path, f"{what} collides with {other}{where} "
                                  f"(both would be namespace '{netns}'); rename one")
        seen_netns[netns] = (path, what)

    vpc_paths = [("vpc",)] + [("vpcs", i) for i in range(len(s.vpcs))]
    for vi, (path, vpc) in enumerate(zip(vpc_paths, s.all_vpcs(), strict=True)):
        if vi and "name" not in vpc.model_fields_set:
            raise ctx.error(path, "a VPC of `vpcs` needs a name (the first VPC is called 'vpc' by default)")
        claim(naming.netns(s.name, vpc.name), path + ("name",), f"VPC '{vpc.name}'")
    subnets = [(path + ("subnets", i), sn.name) for path, vpc in zip(vpc_paths, s.all_vpcs(), strict=True)
               for i, sn in enumerate(vpc.subnets)]
    seen_subnets: dict[str, Path_] = {}
    for path, name in subnets:
        if name in seen_subnets:
            raise ctx.error(path + ("name",), f"duplicate subnet name '{name}' (first on line "
                                              f"{ctx.source.line(seen_subnets[name])}); subnet names are "
                                              "unique across the lab's VPCs")
        seen_subnets[name] = path
    _unique([x.name for x in s.hosts], ("hosts",), "host", ctx)
    _unique([x.name for x in s.clusters], ("clusters",), "cluster", ctx)
    for hi, h in enumerate(s.hosts):
        claim(naming.netns(s.name, h.name), ("hosts", hi, "name"), f"host '{h.name}'")
    if s.internet is not None:
        for netns, what, path in internet.netns_names(s.name, s.internet, [v.name for v in s.all_vpcs()]):
            claim(netns, path, what)
    for gi, gw in enumerate(s.nat_gateways):
        claim(natgw.netns_of(s.name, gw.name), ("nat_gateways", gi, "name"), f"NAT gateway '{gw.name}'")
    for ci, c in enumerate(s.clusters):
        # A cluster's objects live under its name: it must not be a lab-level object's name.
        claim(naming.netns(s.name, c.name), ("clusters", ci, "name"), f"cluster '{c.name}'")
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


def _resolve_vpcs(s: Scenario, ctx: Context) -> list[VpcInfo]:
    out: list[VpcInfo] = []
    paths = [("vpc",)] + [("vpcs", i) for i in range(len(s.vpcs))]
    for vpath, spec in zip(paths, s.all_vpcs(), strict=True):
        for other, other_path in zip(out, paths, strict=False):
            if spec.cidr.overlaps(other.cidr):
                raise ctx.error(vpath + ("cidr",), f"VPC CIDR {spec.cidr} overlaps VPC '{other.name}' "
                                                   f"({other.cidr}, line {ctx.source.line(other_path)}); "
                                                   "VPCs of a lab must not overlap (peering refuses it)")
        subnets: list[SubnetInfo] = []
        for i, sn in enumerate(spec.subnets):
            path = vpath + ("subnets", i, "cidr")
            if not sn.cidr.subnet_of(spec.cidr):
                raise ctx.error(path, f"subnet {sn.cidr} is not inside the VPC CIDR {spec.cidr}")
            if sn.cidr.prefixlen > 29:
                raise ctx.error(path, f"subnet {sn.cidr} is too small; use /29 or larger")
            for other in subnets:
                if sn.cidr.overlaps(other.cidr):
                    raise ctx.error(path, f"subnet {sn.cidr} overlaps subnet '{other.name}' ({other.cidr})")
            gw = ipam.gateway(sn.cidr)
            subnets.append(SubnetInfo(name=sn.name, cidr=sn.cidr, bridge=naming.bridge(sn.name),
                                      gateway=IPv4Interface(f"{gw}/{sn.cidr.prefixlen}")))
        out.append(VpcInfo(name=spec.name, netns=naming.netns(s.name, spec.name), cidr=spec.cidr,
                           route_quota=spec.route_quota, subnets=subnets))
    return out


def _vpc_of_nexthop(vpcs: list[VpcInfo], nexthop) -> VpcInfo:
    return next(v for v in vpcs if any(nexthop in sn.cidr for sn in v.subnets))


def _machines(s: Scenario):
    """(path, subnet, ip) of every machine with a VPC port, in allocation order."""
    for ci, c in enumerate(s.clusters):
        for ni, n in enumerate(c.nodes):
            yield ("clusters", ci, "nodes", ni), n.subnet, n.ip
    for hi, h in enumerate(s.hosts):
        yield ("hosts", hi), h.subnet, h.ip


def _subnet_of(vpcs: list[VpcInfo], path: Path_, subnet: str | None, ctx: Context) -> SubnetInfo:
    """A machine's subnet by name (any VPC's); the first VPC's first subnet by default."""
    name = subnet or vpcs[0].subnets[0].name
    found = next((sn for v in vpcs for sn in v.subnets if sn.name == name), None)
    if found is None:
        raise ctx.error(path + ("subnet",), f"unknown subnet '{name}'; subnets: "
                                            + ", ".join(sn.name for v in vpcs for sn in v.subnets))
    return found


def _claim_explicit_ips(s: Scenario, vpcs: list[VpcInfo], pools: dict[str, ipam.Pool], ctx: Context) -> None:
    owners: dict = {}
    for path, subnet, ip in _machines(s):
        sn = _subnet_of(vpcs, path, subnet, ctx)
        if ip is None:
            continue
        if not pools[sn.name].usable(ip):
            raise ctx.error(path + ("ip",), f"{ip} is not a usable address of subnet '{sn.name}' "
                                            f"({sn.cidr}; {sn.gateway.ip} is the gateway)")
        if ip in owners:
            raise ctx.error(path + ("ip",), f"{ip} is already used on line {ctx.source.line(owners[ip])}")
        owners[ip] = path
        pools[sn.name].claim(ip)


def _attach(path: Path_, subnet: str | None, ip, vpcs: list[VpcInfo],
            pools: dict[str, ipam.Pool], ctx: Context, owner: str) -> Attachment:
    """A machine's port on its subnet: the next free address unless it asked for one."""
    sn = _subnet_of(vpcs, path, subnet, ctx)
    addr = ip or pools[sn.name].next()
    if addr is None:
        raise ctx.error(path, f"subnet '{sn.name}' ({sn.cidr}) has no free address left")
    return Attachment(subnet=sn.name, address=IPv4Interface(f"{addr}/{sn.cidr.prefixlen}"),
                      gateway=sn.gateway.ip, port=naming.vpc_port(owner))


def _check_cidrs(s: Scenario, ctx: Context) -> None:
    """The real service's rule: node, container and Service CIDRs must not overlap."""
    claimed: list[tuple[IPv4Network, str, Path_]] = [(s.vpc.cidr, "the VPC CIDR", ("vpc", "cidr"))]
    claimed += [(v.cidr, f"the CIDR of VPC '{v.name}'", ("vpcs", i, "cidr")) for i, v in enumerate(s.vpcs)]
    for ci, c in enumerate(s.clusters):
        for field, what in (("container_cidr", "container CIDR"), ("service_cidr", "Service CIDR")):
            net: IPv4Network | None = getattr(c, field, None)
            if net is None:
                continue  # a model without a container CIDR of its own
            path = ("clusters", ci, field)
            for other, other_what, other_path in claimed:
                # Service CIDRs are node-local virtual addresses: two clusters may share one.
                if field == "service_cidr" and other_what.startswith("Service CIDR"):
                    continue
                if net.overlaps(other):
                    raise ctx.error(path, f"{what} {net} overlaps {other_what} {other} "
                                          f"(line {ctx.source.line(other_path)}); they must not overlap")
            claimed.append((net, f"{what} of cluster '{c.name}'", path))


def _check_pod_nodes(spec: ClusterBase, ci: int, ctx: Context) -> None:
    nodes = {n.name for n in spec.nodes}
    for pi, pod in enumerate(spec.pods):
        for name in pod.node if isinstance(pod.node, list) else [pod.node]:
            if name not in nodes:
                raise ctx.error(("clusters", ci, "pods", pi, "node"),
                                f"unknown node '{name}'; nodes of cluster '{spec.name}': "
                                + ", ".join(n.name for n in spec.nodes))


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


def _check_route_quota(s: Scenario, vpcs: list[VpcInfo], ctx: Context) -> None:
    for vi, vpc in enumerate(vpcs):
        if len(vpc.routes) <= vpc.route_quota:
            continue
        owners = sorted({r.owner.split("/")[0] for r in vpc.routes})
        clusters = [o for o in owners if any(c.name == o for c in s.clusters)]
        ci = next((i for i, c in enumerate(s.clusters) if clusters and c.name == clusters[-1]), None)
        field = "vpc.route_quota" if vi == 0 else f"vpcs[{vi - 1}].route_quota"
        nodes = len([r for r in vpc.routes if r.owner.split("/")[0] in clusters])
        what = f"one per node of VPC-network clusters: {', '.join(clusters)}" if nodes == len(vpc.routes) \
            else f"{nodes} for nodes of VPC-network clusters, {len(vpc.routes) - nodes} written or added " \
                 "for peering and NAT gateways"
        raise ctx.error(("clusters", ci, "nodes") if ci is not None else (field.split(".")[0], "route_quota"),
                        f"the VPC route table{'' if len(vpcs) == 1 else f' of {vpc.name!r}'} needs "
                        f"{len(vpc.routes)} routes ({what}) but {field} is {vpc.route_quota}; "
                        "remove nodes or routes, or raise the quota")


def _check_refs(lab: Lab, ctx: Context) -> None:
    for i, check in enumerate(lab.checks):
        try:
            refs.check_refs(lab, check)
        except refs.RefError as e:
            raise ctx.error(("checks", i, e.field or "to"), str(e)) from None
        if (check.host or check.path) and check.proto not in ("http", "https"):
            raise ctx.error(("checks", i, "host" if check.host else "path"), "needs proto: http or https")
        if check.path is not None and (not check.path.startswith("/") or any(c.isspace() for c in check.path)):
            raise ctx.error(("checks", i, "path"), f"{check.path!r} must start with / and hold no space")
