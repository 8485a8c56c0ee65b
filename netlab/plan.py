"""Plan operations: small typed steps that build a lab, each printable as the command it equals.

`build(lab)` orders the operations of the cloud (VPC router, subnets, hosts), of each
cluster's network model and of the pod agent. `apply/` executes them; `netlab plan` prints
them (each op's `str()` is the iproute2/sysctl command a person would type for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from netlab.lab.model import Lab


@dataclass(frozen=True)
class Op:
    netns: str

    def __str__(self) -> str:  # pragma: no cover - every op overrides it
        raise NotImplementedError


@dataclass(frozen=True)
class AddNetns(Op):
    """A network namespace, IPv4 only: IPv6 is disabled before any interface exists, so
    captures show the lab's traffic, not link-local chatter."""

    def __str__(self) -> str:
        return f"ip netns add {self.netns}  # net.ipv6.conf.{{all,default}}.disable_ipv6=1"


@dataclass(frozen=True)
class DelNetns(Op):
    def __str__(self) -> str:
        return f"ip netns del {self.netns}"


@dataclass(frozen=True)
class Sysctl(Op):
    key: str
    value: str

    def __str__(self) -> str:
        return f"ip netns exec {self.netns} sysctl -w {self.key}={self.value}"


@dataclass(frozen=True)
class AddLink(Op):
    """A virtual device of a kind that needs no peer (bridge, dummy)."""

    ifname: str
    kind: str
    mtu: int | None = None

    def __str__(self) -> str:
        mtu = f" mtu {self.mtu}" if self.mtu else ""
        return f"ip -n {self.netns} link add {self.ifname}{mtu} type {self.kind}"


@dataclass(frozen=True)
class AddVeth(Op):
    """A veth pair created directly between two lab namespaces (never in the host's)."""

    ifname: str
    peer_netns: str
    peer_ifname: str
    mtu: int

    def __str__(self) -> str:
        return (f"ip -n {self.netns} link add {self.ifname} mtu {self.mtu} type veth "
                f"peer name {self.peer_ifname} netns {self.peer_netns}")


@dataclass(frozen=True)
class SetLink(Op):
    ifname: str
    up: bool = True
    master: str | None = None
    address: str | None = None  # a MAC address to set
    hairpin: bool = False  # bridge port: frames may leave by the port they came in on

    def __str__(self) -> str:
        master = f" master {self.master}" if self.master else ""
        address = f" address {self.address}" if self.address else ""
        hairpin = " type bridge_slave hairpin on" if self.hairpin else ""
        return f"ip -n {self.netns} link set {self.ifname}{master}{address} {'up' if self.up else 'down'}{hairpin}"


@dataclass(frozen=True)
class AddAddress(Op):
    ifname: str
    address: IPv4Interface

    def __str__(self) -> str:
        return f"ip -n {self.netns} address add {self.address} dev {self.ifname}"


@dataclass(frozen=True)
class AddRoute(Op):
    destination: IPv4Network
    via: IPv4Address | None = None
    dev: str | None = None
    src: IPv4Address | None = None
    scope_link: bool = False
    onlink: bool = False  # the gateway is on the link even though no address says so

    def __str__(self) -> str:
        dst = "default" if self.destination.prefixlen == 0 else str(self.destination)
        parts = [f"ip -n {self.netns} route add {dst}"]
        if self.via:
            parts.append(f"via {self.via}")
        if self.dev:
            parts.append(f"dev {self.dev}")
        if self.scope_link:
            parts.append("scope link")
        if self.src:
            parts.append(f"src {self.src}")
        if self.onlink:
            parts.append("onlink")
        return " ".join(parts)


@dataclass(frozen=True)
class StartProcess(Op):
    """A long-running process started inside a lab namespace, tracked by its pidfile."""

    name: str
    argv: tuple[str, ...]
    ready_file: str | None = None

    def __str__(self) -> str:
        return f"ip netns exec {self.netns} {' '.join(self.argv)} &  # {self.name}"


@dataclass(frozen=True)
class IptablesRestore(Op):
    """A whole iptables ruleset (iptables-restore input) loaded atomically, as kube-proxy does.

    `prune`: chain-name prefixes this ruleset owns; chains with them that exist in the
    namespace but not in `rules` are deleted in the same restore (kube-proxy's stale-chain
    cleanup on a re-sync)."""

    rules: str
    noflush: bool = True
    purpose: str = ""
    prune: tuple[str, ...] = ()

    def __str__(self) -> str:
        flag = " --noflush" if self.noflush else ""
        lines = self.rules.count("\n")
        return f"ip netns exec {self.netns} iptables-restore{flag} <<EOF  # {self.purpose} ({lines} lines)"


@dataclass(frozen=True)
class IpsetRestore(Op):
    rules: str
    purpose: str = ""

    def __str__(self) -> str:
        return f"ip netns exec {self.netns} ipset restore -exist <<EOF  # {self.purpose} ({self.rules.count(chr(10))} lines)"


@dataclass(frozen=True)
class IpvsRestore(Op):
    """IPVS virtual and real servers (`ipvsadm -R` input); `replace` clears the table first."""

    rules: str
    replace: bool = False
    purpose: str = ""

    def __str__(self) -> str:
        clear = f"ip netns exec {self.netns} ipvsadm -C; " if self.replace else ""
        return f"{clear}ip netns exec {self.netns} ipvsadm -R <<EOF  # {self.purpose}"


@dataclass(frozen=True)
class NfacctAdd(Op):
    """nfacct counter objects (per namespace), which `-m nfacct` rules refer to."""

    names: tuple[str, ...]

    def __str__(self) -> str:
        return "; ".join(f"ip netns exec {self.netns} nfacct add {n}" for n in self.names)


@dataclass(frozen=True)
class Netem(Op):
    """tc netem as the root qdisc of an interface (egress); no args removes it."""

    ifname: str
    args: tuple[str, ...]

    def __str__(self) -> str:
        if not self.args:
            return f"ip netns exec {self.netns} tc qdisc del dev {self.ifname} root"
        return f"ip netns exec {self.netns} tc qdisc replace dev {self.ifname} root netem {' '.join(self.args)}"


@dataclass(frozen=True)
class LoadModule(Op):
    """A kernel module a datapath needs (kernel state is global; netns says who asked)."""

    module: str

    def __str__(self) -> str:
        return f"modprobe {self.module}  # for {self.netns}"


@dataclass(frozen=True)
class NftApply(Op):
    """An nftables transaction (`nft -f`), atomic by construction."""

    rules: str
    purpose: str = ""

    def __str__(self) -> str:
        return f"ip netns exec {self.netns} nft -f - <<EOF  # {self.purpose} ({self.rules.count(chr(10))} lines)"


@dataclass(frozen=True)
class SetOffload(Op):
    """Turn a device's TX checksum offload on or off (what `ethtool -K IF tx off` does)."""

    ifname: str
    tx_checksum: bool = False

    def __str__(self) -> str:
        return f"ip netns exec {self.netns} ethtool -K {self.ifname} tx {'on' if self.tx_checksum else 'off'}"


@dataclass(frozen=True)
class AddVxlan(Op):
    """A kernel VXLAN device (a VTEP) bound to an underlay device."""

    ifname: str
    vni: int
    local: IPv4Address
    dev: str
    port: int
    mtu: int
    address: str | None = None  # the VTEP's MAC
    learning: bool = False

    def __str__(self) -> str:
        mac = f" address {self.address}" if self.address else ""
        return (f"ip -n {self.netns} link add {self.ifname} mtu {self.mtu}{mac} type vxlan id {self.vni} "
                f"local {self.local} dev {self.dev} dstport {self.port}"
                f"{'' if self.learning else ' nolearning'}")


@dataclass(frozen=True)
class AddFdb(Op):
    """A static forwarding entry on a VXLAN device: frames for `mac` go to the VTEP at `dst`."""

    ifname: str
    mac: str
    dst: IPv4Address

    def __str__(self) -> str:
        return f"bridge -n {self.netns} fdb append {self.mac} dev {self.ifname} dst {self.dst} self permanent"


@dataclass(frozen=True)
class AddNeigh(Op):
    """A permanent neighbour (ARP) entry."""

    ifname: str
    ip: IPv4Address
    mac: str

    def __str__(self) -> str:
        return f"ip -n {self.netns} neigh replace {self.ip} lladdr {self.mac} dev {self.ifname} nud permanent"


@dataclass(frozen=True)
class OvsCreateDb(Op):
    """A fresh OVSDB database file for one node's Open vSwitch."""

    db: str
    schema: str = "/usr/share/openvswitch/vswitch.ovsschema"

    def __str__(self) -> str:
        return f"ovsdb-tool create {self.db} {self.schema}"


@dataclass(frozen=True)
class OvsVsctl(Op):
    """One batched `ovs-vsctl` transaction against a node's own database; it returns once
    ovs-vswitchd has applied it."""

    db: str  # the ovsdb-server socket path
    commands: tuple[tuple[str, ...], ...]

    def argv(self) -> list[str]:
        out = ["ovs-vsctl", f"--db=unix:{self.db}", "--timeout=30"]
        for cmd in self.commands:
            out += ["--", *cmd]
        return out

    def __str__(self) -> str:
        return " ".join(_quote(a) for a in self.argv())


@dataclass(frozen=True)
class OvsFlows(Op):
    """A bridge's whole OpenFlow table, replaced in one atomic bundle."""

    bridge: str
    target: str  # the bridge's management socket
    flows: tuple[str, ...]

    def __str__(self) -> str:
        return (f"ovs-ofctl --bundle replace-flows unix:{self.target} - <<EOF  "
                f"# {self.bridge}: {len(self.flows)} flows")


@dataclass(frozen=True)
class OvsAppctl(Op):
    """A runtime command to a node's ovs-vswitchd (over its control socket)."""

    target: str
    args: tuple[str, ...]

    def __str__(self) -> str:
        return f"ovs-appctl -t {self.target} {' '.join(self.args)}"


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in ' "{}') else arg


@dataclass
class Plan:
    lab: str
    ops: list[Op] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(op) for op in self.ops)


def build(lab: Lab) -> Plan:
    """The whole lab, in an order the kernel accepts: namespaces and devices before
    the addresses and routes that use them, routes before the processes that serve."""
    from netlab import models, proxy
    from netlab.cloud import vpc

    plan = Plan(lab.name)
    plan.ops += vpc.router_ops(lab)
    for cluster in lab.clusters:
        plan.ops += models.get(cluster.model).ops(lab, cluster)
        plan.ops += proxy.cluster_ops(lab, cluster)
    plan.ops += vpc.host_ops(lab)
    plan.ops += vpc.route_ops(lab)
    plan.ops += [Netem(i.netns, i.ifname, tuple(i.netem_args())) for i in lab.impairments]
    # One agent per lab serves every pod's and host's ports (netlab.probe.agent).
    plan.ops.append(StartProcess(lab.vpc.netns, name="agent", argv=("netlab-agent", lab.name),
                                 ready_file="agent.ready"))
    return plan
