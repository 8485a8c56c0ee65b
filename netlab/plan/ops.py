"""The plan's vocabulary: small typed operations that build a lab, each printable as the
command it equals.

Every op names the namespace it acts in (`netns`) and prints, with `str()`, as the
iproute2/sysctl/nft/ovs command a person would type for it. Ops that feed a tool a whole
text (a ruleset, a flow table, a configuration file) also have a `body()`: `str()` is then
the first line of a heredoc and `Plan.render(bodies=True)` prints the body after it, so a
plan can be read, compared with golden files, or typed by hand. This module knows nothing
of labs or models: the planner (`netlab.plan.planner`) assembles ops, `netlab.apply` runs
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network


@dataclass(frozen=True)
class Op:
    netns: str

    def __str__(self) -> str:  # pragma: no cover - every op overrides it
        raise NotImplementedError

    def body(self) -> str | None:
        """The text this op feeds its tool on stdin (a heredoc), if any."""
        return None


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
    """A virtual device that needs no peer: a bridge or dummy, or a sub-interface of a
    `parent` device (macvlan and ipvlan with their `mode`, 802.1Q vlan with its `vlan_id`),
    as `ip link add [link PARENT] NAME type KIND [mode MODE | id VLAN]` creates them.

    With `parent_netns`, the parent lives in that namespace and the device is created
    straight into `netns` (`ip -n PARENT_NETNS link add link PARENT name NAME netns NETNS
    ...`), as the CNI macvlan/ipvlan/vlan plugins create a pod's interface: no move
    afterwards, whose RCU grace period costs milliseconds per device."""

    ifname: str
    kind: str
    mtu: int | None = None
    parent: str | None = None
    mode: str | None = None  # macvlan: bridge|private|vepa|passthru; ipvlan: l2|l3|l3s [bridge|private|vepa]
    vlan_id: int | None = None
    address: str | None = None  # a MAC address
    parent_netns: str | None = None  # where the parent is, when not in `netns`

    def __str__(self) -> str:
        name = f"link {self.parent} name {self.ifname}" if self.parent else self.ifname
        mtu = f" mtu {self.mtu}" if self.mtu else ""
        mac = f" address {self.address}" if self.address else ""
        mode = f" mode {self.mode}" if self.mode else ""
        vlan = f" id {self.vlan_id}" if self.vlan_id is not None else ""
        if self.parent_netns:
            return (f"ip -n {self.parent_netns} link add {name} netns {self.netns}{mtu}{mac} "
                    f"type {self.kind}{mode}{vlan}")
        return f"ip -n {self.netns} link add {name}{mtu}{mac} type {self.kind}{mode}{vlan}"


@dataclass(frozen=True)
class DelLink(Op):
    """Remove a device (and, for a veth, its peer): `ip link del DEV`."""

    ifname: str

    def __str__(self) -> str:
        return f"ip -n {self.netns} link del {self.ifname}"


@dataclass(frozen=True)
class SetBridgePort(Op):
    """A bridge port's flags: `hairpin on` sends a frame back out the port it came in on (what
    a VEPA neighbour needs: its sub-interfaces talk to each other through the switch)."""

    ifname: str
    hairpin: bool = True

    def __str__(self) -> str:
        return f"bridge -n {self.netns} link set dev {self.ifname} hairpin {'on' if self.hairpin else 'off'}"


@dataclass(frozen=True)
class MoveLink(Op):
    """Move an existing device into another lab namespace (renaming it on the way), as a
    CNI plugin moves a pod's interface: `ip link set DEV netns NS name NAME`."""

    ifname: str
    to_netns: str
    new_ifname: str | None = None

    def __str__(self) -> str:
        name = f" name {self.new_ifname}" if self.new_ifname else ""
        return f"ip -n {self.netns} link set {self.ifname} netns {self.to_netns}{name}"


@dataclass(frozen=True)
class AddVeth(Op):
    """A veth pair created directly between two lab namespaces (never in the host's)."""

    ifname: str
    peer_netns: str
    peer_ifname: str
    mtu: int

    def __str__(self) -> str:
        return (f"ip -n {self.netns} link add {self.ifname} mtu {self.mtu} type veth "
                f"peer name {self.peer_ifname} netns {self.peer_netns} mtu {self.mtu}")  # the peer's own options


@dataclass(frozen=True)
class SetLink(Op):
    ifname: str
    up: bool = True
    master: str | None = None
    address: str | None = None  # a MAC address to set
    name: str | None = None  # rename the (down) device to this first, as `ip link set DEV name NAME`
    hairpin: bool = False  # bridge port: frames may leave by the port they came in on
    mtu: int | None = None  # change the device's MTU

    def __str__(self) -> str:
        name = f" name {self.name}" if self.name else ""
        master = f" master {self.master}" if self.master else ""
        address = f" address {self.address}" if self.address else ""
        mtu = f" mtu {self.mtu}" if self.mtu else ""
        hairpin = " type bridge_slave hairpin on" if self.hairpin else ""
        return (f"ip -n {self.netns} link set {self.ifname}{name}{master}{address}{mtu} "
                f"{'up' if self.up else 'down'}{hairpin}")


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
    table: int | None = None  # a policy-routing table (default: main)

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
        if self.table is not None:
            parts.append(f"table {self.table}")
        return " ".join(parts)


@dataclass(frozen=True)
class DelRoute(Op):
    """Remove a route: `ip route del DEST [table T]` (the first route to DEST in that table)."""

    destination: IPv4Network
    table: int | None = None

    def __str__(self) -> str:
        dst = "default" if self.destination.prefixlen == 0 else str(self.destination)
        table = f" table {self.table}" if self.table is not None else ""
        return f"ip -n {self.netns} route del {dst}{table}"


@dataclass(frozen=True)
class AddRule(Op):
    """A policy-routing rule: `ip rule add priority P [from SRC] [to DST] [ipproto PROTO]
    [dport PORT] lookup TABLE [suppress_prefixlength N]`."""

    priority: int
    table: int
    src: IPv4Network | None = None
    suppress_prefixlength: int | None = None
    dst: IPv4Network | None = None
    ipproto: str | None = None  # tcp | udp
    dport: int | None = None

    def __str__(self) -> str:
        parts = [f"ip -n {self.netns} rule add priority {self.priority}"]
        if self.src is not None:
            parts.append(f"from {self.src.network_address if self.src.prefixlen == 32 else self.src}")
        if self.dst is not None:
            parts.append(f"to {self.dst.network_address if self.dst.prefixlen == 32 else self.dst}")
        if self.ipproto is not None:
            parts.append(f"ipproto {self.ipproto}")
        if self.dport is not None:
            parts.append(f"dport {self.dport}")
        parts.append(f"lookup {'main' if self.table == 254 else self.table}")
        if self.suppress_prefixlength is not None:
            parts.append(f"suppress_prefixlength {self.suppress_prefixlength}")
        return " ".join(parts)


@dataclass(frozen=True)
class DelRule(AddRule):
    """Remove the policy-routing rule that matches exactly these selectors: `ip rule del ...`."""

    def __str__(self) -> str:
        return super().__str__().replace(" rule add ", " rule del ", 1)


@dataclass(frozen=True)
class StartProcess(Op):
    """A long-running process started inside a lab namespace, tracked by its pidfile."""

    name: str
    argv: tuple[str, ...]
    ready_file: str | None = None
    ready_timeout: float = 60.0  # seconds to wait for the ready file

    def __str__(self) -> str:
        return f"ip netns exec {self.netns} {' '.join(self.argv)} &  # {self.name}"


@dataclass(frozen=True)
class ReloadProcess(Op):
    """Tell a running lab process to re-read its configuration (SIGHUP). `wait`: how to know
    it did — "workers" (nginx: every worker process of the old configuration is gone and new
    ones serve), or "" (no wait: a process that re-reads in the background)."""

    name: str
    wait: str = ""

    def __str__(self) -> str:
        return f"kill -HUP $(cat pids/{self.name}.pid)  # {self.name} re-reads its configuration"


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
        return f"ip netns exec {self.netns} iptables-restore -w{flag} <<'EOF'  # {self.purpose} ({lines} lines)"

    def body(self) -> str:
        return self.rules


@dataclass(frozen=True)
class IpsetRestore(Op):
    rules: str
    purpose: str = ""

    def __str__(self) -> str:
        return f"ip netns exec {self.netns} ipset restore -exist <<'EOF'  # {self.purpose} ({self.rules.count(chr(10))} lines)"

    def body(self) -> str:
        return self.rules


@dataclass(frozen=True)
class IpvsRestore(Op):
    """IPVS virtual and real servers (`ipvsadm -R` input); `replace` clears the table first."""

    rules: str
    replace: bool = False
    purpose: str = ""

    def __str__(self) -> str:
        clear = f"ip netns exec {self.netns} ipvsadm -C; " if self.replace else ""
        return f"{clear}ip netns exec {self.netns} ipvsadm -R <<'EOF'  # {self.purpose}"

    def body(self) -> str:
        return self.rules


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

    @property
    def present(self) -> str:
        """A path that exists when the module is there, built in or loaded (a built-in
        br_netfilter has no /sys/module entry, and no module file to modprobe)."""
        return MODULE_PRESENT.get(self.module, f"/sys/module/{self.module}/initstate")


MODULE_PRESENT = {"br_netfilter": "/proc/sys/net/bridge/bridge-nf-call-iptables"}


@dataclass(frozen=True)
class NftApply(Op):
    """An nftables transaction (`nft -f`), atomic by construction."""

    rules: str
    purpose: str = ""

    def __str__(self) -> str:
        return f"ip netns exec {self.netns} nft -f - <<'EOF'  # {self.purpose} ({self.rules.count(chr(10))} lines)"

    def body(self) -> str:
        return self.rules


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
class AddMachineVxlan(Op):
    """A kernel VXLAN device created inside lab namespace `netns` whose underlay is the
    machine's own network namespace (the one netlab runs in): its UDP socket is bound there
    to `local`, so frames travel between the machines of a split lab over the machine's own
    network (docs/scale-out.md). The machine's namespace gets a socket, no link, address or
    route."""

    ifname: str
    vni: int
    local: IPv4Address
    port: int
    mtu: int

    def __str__(self) -> str:
        return (f"ip link add {self.ifname} netns {self.netns} mtu {self.mtu} type vxlan "
                f"id {self.vni} local {self.local} dstport {self.port}  # socket in this machine's netns")


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


VSWITCH_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"  # Debian's openvswitch-common


@dataclass(frozen=True)
class OvsCreateDb(Op):
    """A fresh OVSDB database file for one node's Open vSwitch."""

    db: str
    schema: str = VSWITCH_SCHEMA

    def __str__(self) -> str:
        return f"ovsdb-tool create {self.db} {self.schema}"


Pairs = tuple[tuple[str, str], ...]  # an OVSDB string map (other_config, options, external_ids), in order


@dataclass(frozen=True)
class OvsBridge:
    """A bridge as `ovs-vsctl add-br` makes it (the Bridge row, its local Port and internal
    Interface of the same name), with the columns set on it; `external_ids` go on the Bridge
    row and on its local Port."""

    name: str
    datapath_type: str = ""  # "" = system (the kernel datapath); netdev = userspace
    fail_mode: str | None = None  # secure | standalone
    other_config: Pairs = ()
    external_ids: Pairs = ()

    def vsctl(self) -> list[tuple[str, ...]]:
        cols = [f"datapath_type={self.datapath_type}"] if self.datapath_type else []
        cols += _map("other_config", self.other_config)
        cols += [f"fail_mode={self.fail_mode}"] if self.fail_mode else []
        cols += _map("external_ids", self.external_ids)
        out: list[tuple[str, ...]] = [("add-br", self.name)]
        out += [("set", "Bridge", self.name, *cols)] if cols else []
        out += [("set", "Port", self.name, *_map("external_ids", self.external_ids))] if self.external_ids else []
        return out


@dataclass(frozen=True)
class OvsPort:
    """A port on `bridge` with one Interface of the same name, as `ovs-vsctl add-port` makes
    it: the Interface's columns (`type`, `options`, `mac`, `mtu_request`, `ofport_request`)
    and the Port's `external_ids`. In `OvsConfigure.del_ports` only `bridge` and `name` count."""

    bridge: str
    name: str
    type: str = ""  # "" = a device of the node (a veth, eth0); internal, vxlan, ...
    options: Pairs = ()
    mac: str | None = None
    mtu_request: int | None = None
    ofport_request: int | None = None
    external_ids: Pairs = ()

    def vsctl(self) -> list[tuple[str, ...]]:
        cols = [f"type={self.type}"] if self.type else []
        cols += _map("options", self.options)
        cols += [f"mac={_value(self.mac)}"] if self.mac else []
        cols += [f"mtu_request={self.mtu_request}"] if self.mtu_request is not None else []
        cols += [f"ofport_request={self.ofport_request}"] if self.ofport_request is not None else []
        out: list[tuple[str, ...]] = [("add-port", self.bridge, self.name)]
        out += [("set", "Interface", self.name, *cols)] if cols else []
        out += [("set", "Port", self.name, *_map("external_ids", self.external_ids))] if self.external_ids else []
        return out


@dataclass(frozen=True)
class OvsConfigure(Op):
    """One OVSDB transaction against a node's own database (`db`: the ovsdb-server socket):
    `init` creates the Open_vSwitch row if there is none, then bridges and ports are added and
    `del_ports` removed. It returns once ovs-vswitchd has applied it, as `ovs-vsctl` does, or
    with `wait=False` (`--no-wait`) once the database holds it, for an `OvsSync` to wait on
    later. Prints as the `ovs-vsctl` call that does the same: each bridge followed by its ports."""

    db: str
    bridges: tuple[OvsBridge, ...] = ()
    ports: tuple[OvsPort, ...] = ()
    del_ports: tuple[OvsPort, ...] = ()
    init: bool = False
    wait: bool = True

    def commands(self) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = [("init",)] if self.init else []
        new = [b.name for b in self.bridges]
        for b in self.bridges:
            out += b.vsctl()
            for p in self.ports:
                out += p.vsctl() if p.bridge == b.name else []
        for p in self.ports:
            out += p.vsctl() if p.bridge not in new else []
        out += [("del-port", p.bridge, p.name) for p in self.del_ports]
        return out

    def argv(self) -> list[str]:
        """The `ovs-vsctl` call that does the same (no shell quoting)."""
        out = ["ovs-vsctl", f"--db=unix:{self.db}", "--timeout=30"] + ([] if self.wait else ["--no-wait"])
        for cmd in self.commands():
            out += ["--", *cmd]
        return out

    def __str__(self) -> str:
        return " ".join(_quote(a) for a in self.argv())


@dataclass(frozen=True)
class OvsSync(Op):
    """Wait until a node's ovs-vswitchd has applied every transaction of its database so far
    (after `OvsConfigure(wait=False)`) and has given each of `interfaces` an OpenFlow port.
    Prints as the `ovs-vsctl wait-until` calls that wait for those ports (ovs-vsctl has no
    command that waits for a configuration without changing one)."""

    db: str
    interfaces: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        out = ["ovs-vsctl", f"--db=unix:{self.db}", "--timeout=30"]
        for name in self.interfaces:
            out += ["--", "wait-until", "Interface", name, "ofport>0"]
        return out

    def __str__(self) -> str:
        return " ".join(_quote(a) for a in self.argv())


def _value(v: str) -> str:
    # ovs-vsctl reads a bare value as an OVSDB atom: one with a colon (a MAC) needs quotes.
    return f'"{v}"' if any(c in v for c in ':,{}[]=" ') else v


def _map(column: str, pairs: Pairs) -> list[str]:
    return [f"{column}:{k}={_value(v)}" for k, v in pairs]


@dataclass(frozen=True)
class OvsFlows(Op):
    """A bridge's whole OpenFlow table, replaced in one atomic bundle."""

    bridge: str
    target: str  # the bridge's management socket
    flows: tuple[str, ...]

    def __str__(self) -> str:
        return (f"ovs-ofctl --bundle replace-flows unix:{self.target} - <<'EOF'  "
                f"# {self.bridge}: {len(self.flows)} flows")

    def body(self) -> str:
        return "\n".join(self.flows) + "\n"


@dataclass(frozen=True)
class OvsAppctl(Op):
    """A runtime command to a node's ovs-vswitchd (over its control socket)."""

    target: str
    args: tuple[str, ...]

    def __str__(self) -> str:
        return f"ovs-appctl -t {self.target} {' '.join(self.args)}"


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in ' "{}<>') else arg


@dataclass(frozen=True)
class WriteFile(Op):
    """A file a lab process reads (a configuration), written before the process starts.
    `path` is absolute and lies under the lab's run directory; `netns` is the namespace of
    the object the file configures."""

    path: str
    content: str
    mode: int = 0o644

    def __str__(self) -> str:
        return f"cat > {self.path} <<'EOF'  # {self.content.count(chr(10))} lines"

    def body(self) -> str:
        return self.content


@dataclass
class Plan:
    lab: str
    ops: list[Op] = field(default_factory=list)

    def render(self, *, bodies: bool = False) -> str:
        """One line per op; with `bodies`, each heredoc's text follows its op, closed by EOF."""
        out: list[str] = []
        for op in self.ops:
            out.append(str(op))
            body = op.body() if bodies else None
            if body is not None:
                out.append(body.rstrip("\n"))
                out.append("EOF")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


__all__ = sorted([name for name, value in list(globals().items())
                  if isinstance(value, type) and issubclass(value, Op)] + ["Plan", "OvsBridge", "OvsPort"])
