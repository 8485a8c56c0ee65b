"""Security groups: the VPC's stateful packet filter, enforced at the VPC side of the ports
bound to a group, so that a packet a group refuses never reaches the machine behind it.

Where: each VPC router namespace holds one nftables table, `ip netlab-sg`, rendered whole
from the lab (`ruleset`) and replaced in one `nft -f` transaction (`add table; delete table;
table {...}`), like kube-proxy's full sync. The ports are bridge ports (a subnet is a Linux
bridge in the router), so the router filters bridged IPv4 with br_netfilter
(`net.bridge.bridge-nf-call-iptables=1` in the router's namespace): bridged and routed
packets then meet the same `forward` hook and the same conntrack, which is what makes the
groups stateful (`ct state established,related accept` first: replies to admitted traffic
pass; then the rules). The alternative, an nftables `bridge` family table, needs
nf_conntrack_bridge for `ct state`, which the development kernels lack; br_netfilter is
built in there and a module in stock kernels (loaded on demand; once loaded, bridges in
every namespace pass IPv4 through netfilter, as on any Kubernetes node).

How: a member is a port bound to groups: an eni pod's sub-ENI (its packets cross its node's
trunk port into the pod subnet's bridge), a node's eth0 port and a VPC host's (`members`).
The forward chain sends a packet from a member to that member's `out-<member>` chain (its
groups' outbound rules, `return` when one admits it, else drop) and a packet to a member to
`in-<member>` (inbound rules, `accept` when one admits it, else drop). A rule's remote is a
CIDR or another group: the set `members-<group>` of that group's addresses. Addresses are
matched, not bridge ports: a routed packet leaves the router towards its bridge before the
port is known, and a member's address is its port's (the VPC's anti-spoofing makes that so
in the real cloud). What the VPC routes to a port counts as that port's too: a vpc-model
node's pod CIDR (its pods' packets cross the node's port with their own addresses). Two
addresses behind one port never meet the groups between them (the packet stays on the
node).

Nodes: the service creates a node group with every cluster (`default_node_group`: the
model's rules, `NetworkModel.node_group_rules`, then NodePorts from anywhere and everything
from the group's own members) and binds it to every node unless the scenario names the
nodes' groups. It is enforced where the kernel has br_netfilter; groups the scenario binds
(to pods, nodes, hosts) require it. A host the scenario binds nothing to is not a member.

A new binding (ELBs) adds its addresses in `members`, and the renderer, the checks
(`verdict`) and `netlab sg` follow.

`verdict` answers, from the lab alone, whether the groups admit a flow and why: the
generated checks use it to expect `blocked` where a group refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from netlab.cloud.base import CloudObject
from netlab.lab.model import Lab, VpcInfo
from netlab.lab.naming import short_hash
from netlab.plan.ops import LoadModule, NftApply, Op, Sysctl
from netlab.scenario.security_groups import MAX_GROUPS_PER_POD, Rule, SecurityGroup, SecurityGroupBinding
from netlab.scenario.types import NAME_MAX

TABLE = "netlab-sg"
DIRECTIONS = ("inbound", "outbound")
BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"
BR_NETFILTER = "br_netfilter"


@dataclass(frozen=True)
class Member:
    """An address bound to groups, behind a port of a VPC."""

    name: str  # `c1/web-1`, `c1/node-1`, `ecs-1`
    ip: IPv4Address
    vpc: str
    groups: tuple[str, ...]
    # What else the VPC sends to this port: a vpc-model node's pod CIDR (its pods' packets
    # cross the node's port with their own addresses, so the node's groups judge them).
    behind: tuple[IPv4Network, ...] = ()
    kind: str = "pod"  # pod | node | host

    def holds(self, ip: IPv4Address) -> bool:
        return ip == self.ip or any(ip in net for net in self.behind)


def members(lab: Lab) -> list[Member]:
    """Every address bound to security groups: pods whose model data names groups (the eni
    model's sub-ENIs), every cluster node (its groups, the default node group unless the
    scenario names others) and the hosts the scenario binds."""
    out = []
    for c in lab.clusters:
        for p in c.netns_pods():
            groups = getattr(p.network, "security_groups", None)
            if groups:
                out.append(Member(f"{c.name}/{p.name}", p.ip, _vpc_of(lab, p.ip).name, tuple(groups)))
    # The node groups the service creates are enforced where the kernel can (br_netfilter);
    # elsewhere the lab keeps them unenforced, as labs were before nodes had groups. Groups
    # the scenario binds need br_netfilter (`check_host`).
    enforce = BR_NETFILTER in lab.features
    for c in lab.clusters:
        for n in c.nodes:
            if n.security_groups and (enforce or n.security_groups != [c.node_group]):
                vpc = _vpc_of(lab, n.eth0.ip)
                behind = tuple(r.destination for r in vpc.routes if r.nexthop == n.eth0.ip and r.target is None)
                out.append(Member(f"{c.name}/{n.name}", n.eth0.ip, vpc.name, tuple(n.security_groups), behind,
                                  "node"))
    for h in lab.hosts:
        if h.security_groups:
            out.append(Member(h.name, h.eth0.ip, _vpc_of(lab, h.eth0.ip).name, tuple(h.security_groups),
                              kind="host"))
    return out


def member_of(members_: list[Member], ip: IPv4Address) -> Member | None:
    """The member whose port the VPC delivers `ip` to (its own address, or one behind it)."""
    return next((m for m in members_ if m.ip == ip), None) or next((m for m in members_ if m.holds(ip)), None)


def _vpc_of(lab: Lab, ip: IPv4Address) -> VpcInfo:
    return next(v for v in lab.vpcs if any(ip in sn.cidr for sn in v.subnets))


def created_name(cluster: str, kind: str) -> str:
    """The name the service gives a group it creates for a cluster: `<cluster>-cce-<kind>`
    (`node`, `eni`); a long cluster name keeps a prefix and a hash of the whole."""
    name = f"{cluster}-cce-{kind}"
    if len(name) > NAME_MAX:  # a prefix and a hash of the whole
        name = f"{cluster[:NAME_MAX - 14]}-{short_hash(cluster)}-cce-{kind}"
    return name


NODE_PORTS = "30000-32767"  # the NodePort range the default node group opens to anywhere


def default_node_group(cluster: str, model_rules: list[Rule]) -> SecurityGroup:
    """The node security group the service creates with a cluster (`<cluster>-cce-node`):
    the network model's rules (`NetworkModel.node_group_rules`), then what every model's
    has: TCP and UDP 30000-32767 from anywhere (NodePorts), everything from the group's own
    members (the cluster's nodes reach each other). Outbound: everything."""
    name = created_name(cluster, "node")
    return SecurityGroup(
        name=name, description=f"the service's default group for the nodes of cluster {cluster}",
        inbound=list(model_rules) + [Rule(protocol="tcp", port=NODE_PORTS, description="NodePorts"),
                                     Rule(protocol="udp", port=NODE_PORTS, description="NodePorts"),
                                     Rule(protocol="all", remote_group=name, description="the cluster's nodes")])


def group_members(lab: Lab) -> dict[str, list[Member]]:
    out: dict[str, list[Member]] = {g.name: [] for g in lab.security_groups}
    for m in members(lab):
        for g in m.groups:
            out.setdefault(g, []).append(m)
    return out


# -- what the groups admit (pure) ------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    allowed: bool
    why: str  # which group admits or refuses it, and by which rule


def _matches(rule: Rule, remote: IPv4Address, proto: str, port: int | None, groups: dict) -> bool:
    if rule.protocol != "all" and rule.protocol != proto:
        return False
    if rule.port is not None:
        low, high = rule.ports
        if port is None or not low <= port <= high:
            return False
    if rule.remote_group:
        return any(m.ip == remote for m in groups.get(rule.remote_group, []))
    return remote in rule.remote


def _judge(lab: Lab, member: Member, direction: str, remote: IPv4Address, proto: str, port: int | None,
           groups: dict) -> tuple[bool, str]:
    for name in member.groups:
        group = lab.security_group(name)
        for rule in group.rules(direction) if group else []:
            if _matches(rule, remote, proto, port, groups):
                return True, f"{name} admits it ({direction} {rule.text(direction)})"
    flow = f"{proto}/{port}" if port else proto
    where = f"from {remote}" if direction == "inbound" else f"to {remote}"
    return False, f"no {direction} rule of {', '.join(member.groups)} admits {flow} {where}"


def verdict(lab: Lab, src: IPv4Address, dst: IPv4Address, proto: str, port: int | None) -> Verdict | None:
    """Whether the groups at both ends admit a new flow src → dst (proto tcp/udp/icmp), and
    why; None when neither end is bound to a group."""
    bound = members(lab)
    sender, receiver = member_of(bound, src), member_of(bound, dst)
    if (sender is None and receiver is None) or sender == receiver:
        return None  # no group on the way, or both behind one port: it never crosses the VPC
    groups = group_members(lab)
    reasons = []
    if sender is not None:
        ok, why = _judge(lab, sender, "outbound", dst, proto, port, groups)
        if not ok:
            return Verdict(False, f"blocked by the security groups of {sender.name}: {why}")
        reasons.append(why)
    if receiver is not None:
        ok, why = _judge(lab, receiver, "inbound", src, proto, port, groups)
        if not ok:
            return Verdict(False, f"blocked by the security groups of {receiver.name}: {why}")
        reasons.append(why)
    return Verdict(True, "; ".join(reasons))


# -- the ruleset (pure) ---------------------------------------------------------------------
def _rule_line(rule: Rule, direction: str, group: str) -> str:
    parts = []
    field = "saddr" if direction == "inbound" else "daddr"
    if rule.remote_group:
        parts.append(f"ip {field} @members-{rule.remote_group}")
    elif rule.remote.prefixlen:
        parts.append(f"ip {field} {rule.remote}")
    if rule.port is not None:
        low, high = rule.ports
        parts.append(f"{rule.protocol} dport {low if low == high else f'{low}-{high}'}")
    elif rule.protocol != "all":
        parts.append(f"meta l4proto {rule.protocol}")
    verdict_ = "accept" if direction == "inbound" else "return"
    return " ".join(parts + ["counter", verdict_, f'comment "{group}: {direction} {rule.text(direction)}"'])


def ruleset(lab: Lab, vpc: VpcInfo) -> str:
    """The whole `ip netlab-sg` table of one VPC router, as one `nft -f` transaction that
    replaces the previous one atomically."""
    local = [m for m in members(lab) if m.vpc == vpc.name]
    groups = group_members(lab)
    lines = [f"add table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{"]
    used = sorted({r.remote_group for m in local for name in m.groups for d in DIRECTIONS
                   for r in (lab.security_group(name).rules(d) if lab.security_group(name) else [])
                   if r.remote_group})
    for name in used:
        lines.append(f"\tset members-{name} {{")
        lines.append("\t\ttype ipv4_addr")
        addrs = sorted({m.ip for m in groups.get(name, [])})
        if addrs:
            lines.append(f"\t\telements = {{ {', '.join(str(a) for a in addrs)} }}")
        lines.append("\t}")
    for m in local:
        for direction, prefix, last in (("inbound", "in", "drop"), ("outbound", "out", "drop")):
            lines.append(f"\tchain {prefix}-{m.name} {{")
            for name in m.groups:
                group = lab.security_group(name)
                lines += [f"\t\t{_rule_line(r, direction, name)}" for r in (group.rules(direction) if group else [])]
            lines.append(f'\t\tcounter {last} comment "{m.name}: no {direction} rule of '
                         f'{", ".join(m.groups)} admits it"')
            lines.append("\t}")
    lines += ["\tchain forward {",
              "\t\ttype filter hook forward priority filter; policy accept;",
              "\t\tct state established,related accept"]
    if local:
        for field, prefix in (("saddr", "out"), ("daddr", "in")):
            lines.append(f"\t\tip {field} vmap {{ " + ", ".join(f"{key} : jump {prefix}-{m.name}" for m in local
                                                                  for key in (m.ip, *m.behind)) + " }")
    lines += ["\t}", "}"]
    return "\n".join(lines) + "\n"


def vpc_ops(lab: Lab) -> list[Op]:
    """For every VPC with bound ports: bridged IPv4 through netfilter, and the whole table."""
    out: list[Op] = []
    hosting = {m.vpc for m in members(lab)}
    for vpc in lab.vpcs:
        if vpc.name not in hosting:
            continue
        out += [LoadModule(vpc.netns, "br_netfilter"), Sysctl(vpc.netns, BRIDGE_NF, "1"),
                NftApply(vpc.netns, ruleset(lab, vpc), purpose="security groups")]
    return out


class SecurityGroups(CloudObject):
    name = "secgroup"

    def resolve(self, scenario, lab: Lab, ctx) -> None:
        """The groups are in the lab already (the scenario's, and those the models created):
        check what refers to them, and that this machine can enforce them."""
        check_references(scenario.security_groups, lab.security_groups[len(scenario.security_groups):], ctx)
        check_bindings(scenario, lab, ctx)
        check_host(scenario, lab, ctx)

    def edge(self, lab: Lab) -> list[Op]:
        return vpc_ops(lab)

    def resync(self, lab: Lab) -> list[Op]:
        return vpc_ops(lab)


OBJECT = SecurityGroups()


# -- resolve-time checks (pure) ---------------------------------------------------------------
def check_scenario(groups: list[SecurityGroup], ctx) -> None:
    """Group names are unique, rules consistent; remember where each group is declared
    (`ctx.security_groups`)."""
    for i, g in enumerate(groups):
        if g.name in ctx.security_groups:
            first = ctx.source.line(ctx.security_groups[g.name])
            raise ctx.error(("security_groups", i, "name"), f"duplicate security group '{g.name}' (first on line {first})")
        ctx.security_groups[g.name] = ("security_groups", i)
        for direction in DIRECTIONS:
            for j, rule in enumerate(g.rules(direction)):
                if (problem := rule.problem()) is not None:
                    raise ctx.error(("security_groups", i, direction, j, problem[0]), problem[1])


def check_references(groups: list[SecurityGroup], created: list[SecurityGroup], ctx) -> None:
    """Every `remote_group` names a group of the lab; a group a model creates (an eni
    cluster's default group) takes no name a user group has."""
    known = {g.name for g in groups}
    for g in created:
        if g.name in known:
            raise ctx.error(ctx.security_groups[g.name] + ("name",),
                            f"'{g.name}' is the name of a group the service creates for a cluster; rename it")
        known.add(g.name)
    for i, g in enumerate(groups):
        for direction in DIRECTIONS:
            for j, rule in enumerate(g.rules(direction)):
                if rule.remote_group and rule.remote_group not in known:
                    raise ctx.error(("security_groups", i, direction, j, "remote_group"),
                                    f"unknown security group '{rule.remote_group}'; groups: {', '.join(sorted(known))}")


def check_bindings(scenario, lab: Lab, ctx) -> None:
    """The groups written on hosts, nodes and clusters' `node_security_groups` exist (a
    group the service creates, such as `<cluster>-cce-node`, may be named too)."""
    known = {g.name for g in lab.security_groups}
    paths = [(("hosts", hi, "security_groups"), h.security_groups) for hi, h in enumerate(scenario.hosts)]
    for ci, c in enumerate(scenario.clusters):
        paths.append((("clusters", ci, "node_security_groups"), c.node_security_groups or []))
        paths += [(("clusters", ci, "nodes", ni, "security_groups"), n.security_groups or [])
                  for ni, n in enumerate(c.nodes)]
    for path, names in paths:
        for j, name in enumerate(names):
            if name not in known:
                raise ctx.error(path + (j,), f"unknown security group '{name}'; groups: {', '.join(sorted(known))}")
            if name in names[:j]:
                raise ctx.error(path + (j,), f"security group '{name}' is named twice")


def groups_for(bindings: list[SecurityGroupBinding], namespace: str, labels: dict) -> list[str]:
    """The groups the `SecurityGroup` objects give a pod with these labels, in object order."""
    return list(dict.fromkeys(name for b in bindings if b.namespace == namespace and b.podSelector.matches(labels)
                              for name in b.securityGroups))


def bind(bindings: list[SecurityGroupBinding], path, pod_name: str, namespace: str, labels: dict,
         known: set[str], ctx) -> list[str]:
    """`groups_for`, checked: every group exists, at most five per pod (located errors)."""
    out: list[str] = []
    for i, b in enumerate(bindings):
        if b.namespace != namespace or not b.podSelector.matches(labels):
            continue
        for j, name in enumerate(b.securityGroups):
            if name not in known:
                raise ctx.error(path + (i, "securityGroups", j),
                                f"unknown security group '{name}'; groups: {', '.join(sorted(known)) or 'none'}")
            if name not in out:
                out.append(name)
        if len(out) > MAX_GROUPS_PER_POD:
            raise ctx.error(path + (i, "securityGroups"),
                            f"pod '{pod_name}' would get {len(out)} security groups ({', '.join(out)}); "
                            f"a pod holds at most {MAX_GROUPS_PER_POD}")
    return out


def check_host(scenario, lab: Lab, ctx) -> None:
    """Groups the scenario binds (an eni cluster's pods always are) need br_netfilter."""
    if not ctx.check_host or BR_NETFILTER in ctx.features:
        return
    path = next((("clusters", ci, "model") for ci, c in enumerate(lab.clusters)
                 if any(getattr(p.network, "security_groups", None) for p in c.pods)), None)
    path = path or next((("hosts", hi, "security_groups") for hi, h in enumerate(scenario.hosts)
                         if h.security_groups), None)
    path = path or next((("clusters", ci, "node_security_groups") for ci, c in enumerate(scenario.clusters)
                         if c.node_security_groups), None)
    path = path or next((("clusters", ci, "nodes", ni, "security_groups") for ci, c in enumerate(scenario.clusters)
                         for ni, n in enumerate(c.nodes) if n.security_groups), None)
    if path is not None:
        raise ctx.error(path, "security groups are enforced "
                              "on the VPC's bridges with br_netfilter, which this kernel lacks (see `netlab "
                              "doctor`); run the lab on a kernel with the br_netfilter module")


# -- a running lab's groups change (`netlab sg`) (pure) -----------------------------------------
def change_rule(lab: Lab, group: str, direction: str, rule: Rule, *, add: bool) -> tuple[Lab, list[Op]]:
    """The lab with one rule added to or removed from a group, and the ops that re-render
    every affected VPC router's table (whole, atomic). Raises UserError when the group or
    the rule does not exist, or the rule is there already."""
    from netlab.errors import UserError

    old = lab.security_group(group)
    if old is None:
        raise UserError(f"lab {lab.name} has no security group '{group}'; groups: "
                        + (", ".join(g.name for g in lab.security_groups) or "none"))
    if rule.remote_group and lab.security_group(rule.remote_group) is None:
        raise UserError(f"--remote-group: lab {lab.name} has no security group '{rule.remote_group}'")
    rules = list(old.rules(direction))
    same = [r for r in rules if _same(r, rule)]
    if add and same:
        raise UserError(f"{group} already has the {direction} rule {rule.text(direction)}")
    if not add and not same:
        listed = "; ".join(r.text(direction) for r in rules) or "none"
        raise UserError(f"{group} has no {direction} rule {rule.text(direction)}; its {direction} rules: {listed}")
    rules = rules + [rule] if add else [r for r in rules if not _same(r, rule)]
    new_group = old.model_copy(update={direction: rules})
    new = lab.model_copy(update={"security_groups": [new_group if g.name == group else g
                                                     for g in lab.security_groups]})
    return new, vpc_ops(new)


def _same(a: Rule, b: Rule) -> bool:
    """Rules admit the same (descriptions aside)."""
    return (a.protocol, a.ports, str(a.remote)) == (b.protocol, b.ports, str(b.remote))
