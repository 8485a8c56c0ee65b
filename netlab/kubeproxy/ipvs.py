"""kube-proxy's IPVS mode: virtual servers, kube-ipvs0 addresses, ipsets, iptables rules.

Follows ``syncProxyRules``/``writeIptablesRules`` in pkg/proxy/ipvs/proxier.go (the
current layout with KUBE-IPVS-FILTER, KUBE-IPVS-OUT-FILTER and
KUBE-SOURCE-RANGES-FIREWALL; the shared code is the same as for the other modes):

- a virtual server (scheduler ``rr`` unless configured; ClientIP affinity sets the
  persistent flag with the affinity timeout) for every ClusterIP, external IP,
  load-balancer VIP and, for NodePorts, every node IP; real servers (weight 1, NAT
  forwarding) are the Cluster endpoints, or the Local ones for ``Local`` policies
  (falling back to Cluster endpoints when no local one exists, as kube-proxy does);
- ClusterIPs and the external/LB IPs that are not node addresses are bound to the
  dummy device ``kube-ipvs0`` (as /32 or /128);
- every ipset of ``ipsetInfo`` is created (empty ones too) and filled;
- the ``iptables-restore`` input is nat then filter, each chain declared, rules in
  kube-proxy's order; rules that match an ipset are only written when the set is
  non-empty;
- built-in chain jumps are ``iptables -I`` calls (``iptablesJumpChain``), as in
  iptables mode.

A NodePort service is skipped entirely after its load-balancer part when the node has
no usable IP (kube-proxy ``continue``s there, so its health-check port is skipped
too). The ``mh`` scheduler's source-hash flag is recorded but not rendered for ipvsadm.
Applying the result needs the kernel's ip_vs and ip_vs_<scheduler> modules; the
``-m ipvs`` match of KUBE-IPVS-OUT-FILTER (only written for load balancers whose
source ranges exclude the node) needs xt_ipvs as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.kubeproxy.endpoints import (
    EndpointInfo, ServicePortInfo, ServicePortName, categorize_endpoints, endpoints_map,
    service_port_map,
)
from netlab.kubeproxy.iptables import JumpRule, LineBuffer, jump_rules_restore_input, make_chain_line
from netlab.kubeproxy.model import NodeEnv
from netlab.kubeproxy.netutil import host_cidr, join_host_port, parse_ip
from netlab.kubeproxy.nodeports import NodePortAddresses

DUMMY_DEVICE = "kube-ipvs0"

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_SOURCE_RANGES_FIREWALL = "KUBE-SOURCE-RANGES-FIREWALL"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_NODE_PORT = "KUBE-NODE-PORT"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_LOAD_BALANCER = "KUBE-LOAD-BALANCER"
KUBE_IPVS_FILTER = "KUBE-IPVS-FILTER"
KUBE_IPVS_OUT_FILTER = "KUBE-IPVS-OUT-FILTER"

# ipset names (pkg/proxy/ipvs/ipset.go)
LOOP_BACK = "KUBE-LOOP-BACK"
CLUSTER_IP = "KUBE-CLUSTER-IP"
EXTERNAL_IP = "KUBE-EXTERNAL-IP"
EXTERNAL_IP_LOCAL = "KUBE-EXTERNAL-IP-LOCAL"
LOAD_BALANCER = "KUBE-LOAD-BALANCER"
LOAD_BALANCER_FW = "KUBE-LOAD-BALANCER-FW"
LOAD_BALANCER_LOCAL = "KUBE-LOAD-BALANCER-LOCAL"
LOAD_BALANCER_SOURCE_IP = "KUBE-LOAD-BALANCER-SOURCE-IP"
LOAD_BALANCER_SOURCE_CIDR = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
NODE_PORT_TCP = "KUBE-NODE-PORT-TCP"
NODE_PORT_LOCAL_TCP = "KUBE-NODE-PORT-LOCAL-TCP"
NODE_PORT_UDP = "KUBE-NODE-PORT-UDP"
NODE_PORT_LOCAL_UDP = "KUBE-NODE-PORT-LOCAL-UDP"
NODE_PORT_SCTP = "KUBE-NODE-PORT-SCTP-HASH"
NODE_PORT_LOCAL_SCTP = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
HEALTH_CHECK_NODE_PORT = "KUBE-HEALTH-CHECK-NODE-PORT"
IPVS_IPS = "KUBE-IPVS-IPS"

HASH_IP = "hash:ip"
HASH_IP_PORT = "hash:ip,port"
HASH_IP_PORT_IP = "hash:ip,port,ip"
HASH_IP_PORT_NET = "hash:ip,port,net"
BITMAP_PORT = "bitmap:port"

# ipsetInfo: (name, type, comment), in kube-proxy's order.
IPSET_INFO = (
    (LOOP_BACK, HASH_IP_PORT_IP, "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"),
    (CLUSTER_IP, HASH_IP_PORT, "Kubernetes service cluster ip + port for masquerade purpose"),
    (EXTERNAL_IP, HASH_IP_PORT, "Kubernetes service external ip + port for masquerade and filter purpose"),
    (EXTERNAL_IP_LOCAL, HASH_IP_PORT, "Kubernetes service external ip + port with externalTrafficPolicy=local"),
    (LOAD_BALANCER, HASH_IP_PORT, "Kubernetes service lb portal"),
    (LOAD_BALANCER_FW, HASH_IP_PORT, "Kubernetes service load balancer ip + port for load balancer with sourceRange"),
    (LOAD_BALANCER_LOCAL, HASH_IP_PORT, "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"),
    (LOAD_BALANCER_SOURCE_IP, HASH_IP_PORT_IP, "Kubernetes service load balancer ip + port + source IP for packet filter purpose"),
    (LOAD_BALANCER_SOURCE_CIDR, HASH_IP_PORT_NET, "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"),
    (NODE_PORT_TCP, BITMAP_PORT, "Kubernetes nodeport TCP port for masquerade purpose"),
    (NODE_PORT_LOCAL_TCP, BITMAP_PORT, "Kubernetes nodeport TCP port with externalTrafficPolicy=local"),
    (NODE_PORT_UDP, BITMAP_PORT, "Kubernetes nodeport UDP port for masquerade purpose"),
    (NODE_PORT_LOCAL_UDP, BITMAP_PORT, "Kubernetes nodeport UDP port with externalTrafficPolicy=local"),
    (NODE_PORT_SCTP, HASH_IP_PORT, "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"),
    (NODE_PORT_LOCAL_SCTP, HASH_IP_PORT, "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"),
    (HEALTH_CHECK_NODE_PORT, BITMAP_PORT, "Kubernetes health check node port"),
    (IPVS_IPS, HASH_IP, "Addresses on the ipvs interface"),
)

# ipsetWithIptablesChain: (set, table, from, to, matchType, protocolMatch)
IPSET_WITH_CHAIN = (
    (LOOP_BACK, "nat", KUBE_POSTROUTING, "MASQUERADE", "dst,dst,src", ""),
    (LOAD_BALANCER, "nat", KUBE_SERVICES, KUBE_LOAD_BALANCER, "dst,dst", ""),
    (LOAD_BALANCER_LOCAL, "nat", KUBE_LOAD_BALANCER, "RETURN", "dst,dst", ""),
    (NODE_PORT_LOCAL_TCP, "nat", KUBE_NODE_PORT, "RETURN", "dst", "tcp"),
    (NODE_PORT_TCP, "nat", KUBE_NODE_PORT, KUBE_MARK_MASQ, "dst", "tcp"),
    (NODE_PORT_LOCAL_UDP, "nat", KUBE_NODE_PORT, "RETURN", "dst", "udp"),
    (NODE_PORT_UDP, "nat", KUBE_NODE_PORT, KUBE_MARK_MASQ, "dst", "udp"),
    (NODE_PORT_LOCAL_SCTP, "nat", KUBE_NODE_PORT, "RETURN", "dst,dst", "sctp"),
    (NODE_PORT_SCTP, "nat", KUBE_NODE_PORT, KUBE_MARK_MASQ, "dst,dst", "sctp"),
    (LOAD_BALANCER_FW, "filter", KUBE_PROXY_FIREWALL, KUBE_SOURCE_RANGES_FIREWALL, "dst,dst", ""),
    (LOAD_BALANCER_SOURCE_CIDR, "filter", KUBE_SOURCE_RANGES_FIREWALL, "RETURN", "dst,dst,src", ""),
    (LOAD_BALANCER_SOURCE_IP, "filter", KUBE_SOURCE_RANGES_FIREWALL, "RETURN", "dst,dst,src", ""),
)

NAT_CHAINS = (KUBE_SERVICES, KUBE_POSTROUTING, KUBE_NODE_PORT, KUBE_LOAD_BALANCER, KUBE_MARK_MASQ)
FILTER_CHAINS = (KUBE_FORWARD, KUBE_NODE_PORT, KUBE_PROXY_FIREWALL, KUBE_SOURCE_RANGES_FIREWALL,
                 KUBE_IPVS_FILTER, KUBE_IPVS_OUT_FILTER)

# iptablesJumpChain: (table, from, to, comment)
JUMP_CHAINS = (
    ("nat", "OUTPUT", KUBE_SERVICES, "kubernetes service portals"),
    ("nat", "PREROUTING", KUBE_SERVICES, "kubernetes service portals"),
    ("nat", "POSTROUTING", KUBE_POSTROUTING, "kubernetes postrouting rules"),
    ("filter", "FORWARD", KUBE_FORWARD, "kubernetes forwarding rules"),
    ("filter", "INPUT", KUBE_NODE_PORT, "kubernetes health check rules"),
    ("filter", "INPUT", KUBE_PROXY_FIREWALL, "kube-proxy firewall rules"),
    ("filter", "FORWARD", KUBE_PROXY_FIREWALL, "kube-proxy firewall rules"),
    ("filter", "INPUT", KUBE_IPVS_FILTER, "kubernetes ipvs access filter"),
    ("filter", "OUTPUT", KUBE_IPVS_OUT_FILTER, "kubernetes ipvs access filter"),
)

_IPVSADM_PROTO = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}


@dataclass(frozen=True)
class RealServer:
    address: str
    port: int
    weight: int = 1

    @property
    def endpoint(self) -> str:
        return join_host_port(self.address, self.port)


@dataclass
class VirtualServer:
    address: str
    protocol: str          # TCP, UDP, SCTP (as kube-proxy passes it to netlink)
    port: int
    scheduler: str = "rr"
    persistent: bool = False
    timeout: int = 0
    source_hash: bool = False
    bind: bool = False      # address goes on kube-ipvs0
    service: str = ""       # ServicePortName, for humans
    kind: str = ""          # clusterIP, externalIP, loadBalancer, nodePort
    real_servers: list[RealServer] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.address, self.protocol, self.port)

    @property
    def endpoint(self) -> str:
        return join_host_port(self.address, self.port)

    def ipvsadm_service_args(self) -> list[str]:
        args = ["-A", _IPVSADM_PROTO[self.protocol], self.endpoint, "-s", self.scheduler]
        if self.persistent:
            args += ["-p", str(self.timeout)]
        return args

    def ipvsadm_real_server_args(self, rs: RealServer) -> list[str]:
        return ["-a", _IPVSADM_PROTO[self.protocol], self.endpoint, "-r", rs.endpoint,
                "-m", "-w", str(rs.weight)]


@dataclass
class IPSet:
    name: str
    set_type: str
    comment: str
    family: str = "inet"
    hash_size: int = 1024
    max_elem: int = 65536
    port_range: str = "0-65535"
    entries: list[str] = field(default_factory=list)
    # The entries again, for membership tests in constant time (a cluster's sets hold
    # tens of thousands of entries).
    _known: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    def create_line(self) -> str:
        """``ipset create`` arguments as kube-proxy's ipset runner builds them."""
        words = ["create", self.name, self.set_type]
        if self.set_type == BITMAP_PORT:
            words += ["range", self.port_range]
        else:
            words += ["family", self.family, "hashsize", str(self.hash_size),
                      "maxelem", str(self.max_elem)]
        return " ".join(words)

    def add(self, entry: str) -> None:
        if entry not in self._known:
            self._known.add(entry)
            self.entries.append(entry)


@dataclass
class IPVSRuleset:
    """Everything kube-proxy's IPVS proxier programs on one node."""

    virtual_servers: list[VirtualServer]
    bind_addresses: list[str]
    ipsets: list[IPSet]
    nat_lines: list[str]
    filter_lines: list[str]
    jumps: list[JumpRule]
    sysctls: dict[str, str]
    dummy_device: str = DUMMY_DEVICE
    kernel_modules: tuple[str, ...] = ()

    def ipset(self, name: str) -> IPSet:
        return next(s for s in self.ipsets if s.name == name)

    def ipset_restore_input(self) -> str:
        """``ipset restore -exist`` input: every set created, then filled."""
        lines = [s.create_line() for s in self.ipsets]
        lines += [f"add {s.name} {e}" for s in self.ipsets for e in sorted(s.entries)]
        return "\n".join(lines) + "\n"

    def iptables_restore_input(self) -> str:
        """``iptables-restore --noflush --counters`` input, nat then filter."""
        return "\n".join(self.nat_lines + self.filter_lines) + "\n"

    def ipvsadm_restore_input(self) -> str:
        """``ipvsadm -R`` input (the format ``ipvsadm -S -n`` prints)."""
        lines = []
        for vs in self.virtual_servers:
            lines.append(" ".join(vs.ipvsadm_service_args()))
            lines += [" ".join(vs.ipvsadm_real_server_args(rs)) for rs in vs.real_servers]
        return "\n".join(lines) + ("\n" if lines else "")

    def jump_rules_restore_input(self) -> str:
        return jump_rules_restore_input(self.jumps)

    def dummy_addresses(self) -> list[str]:
        return [host_cidr(ip) for ip in self.bind_addresses]


# --- the proxier -----------------------------------------------------------------------

class _Sync:
    def __init__(self, env: NodeEnv) -> None:
        self.env = env
        self.ipsets = {name: IPSet(_set_name(name, env), stype, comment,
                                   family="inet6" if env.is_ipv6 else "inet")
                       for name, stype, comment in IPSET_INFO}
        self.vs: dict[tuple, VirtualServer] = {}
        self.bind: dict[str, None] = {}  # ordered, without repeats
        self.lb_no_node_access: list[tuple[str, str, int]] = []
        self.node_addresses = [str(parse_ip(ip)) for ip in env.family_node_ips
                               if not parse_ip(ip).is_loopback and not parse_ip(ip).is_link_local]

    def add_vs(self, vs: VirtualServer, eps: list[EndpointInfo]) -> None:
        vs.real_servers = [RealServer(ep.ip, ep.port) for ep in eps]
        existing = self.vs.get(vs.key)
        if existing is None:
            self.vs[vs.key] = vs
        if vs.bind:
            self.bind.setdefault(vs.address)


def _set_name(name: str, env: NodeEnv) -> str:
    if env.is_ipv6 and name.startswith("KUBE-"):
        return ("KUBE-6-" + name[len("KUBE-"):])[:31]
    return name


def _vs(s: _Sync, svc: ServicePortInfo, address: str, port: int, kind: str,
        bind: bool) -> VirtualServer:
    return VirtualServer(
        address=address, protocol=svc.protocol, port=port, scheduler=s.env.ipvs_scheduler,
        persistent=svc.session_affinity_client_ip,
        timeout=svc.sticky_max_age_seconds if svc.session_affinity_client_ip else 0,
        source_hash=s.env.ipvs_scheduler == "mh", bind=bind, service=svc.name_string,
        kind=kind)


def _real_servers(svc: ServicePortInfo, eps: list[EndpointInfo], only_local: bool):
    """``syncEndpoint``'s choice of endpoints."""
    cat = categorize_endpoints(eps, svc)
    if only_local:
        return cat.local if cat.local else (cat.cluster or [])
    return cat.cluster or []


def _ip_port(ip: str, proto: str, port: int) -> str:
    return f"{ip},{proto}:{port}"


def _sync_service(s: _Sync, spn: ServicePortName, svc: ServicePortInfo,
                  eps: list[EndpointInfo], node_ips: list[str]) -> None:
    proto = svc.proto
    for ep in eps:
        if ep.is_local:
            s.ipsets[LOOP_BACK].add(f"{ep.ip},{proto}:{ep.port},{ep.ip}")
    s.ipsets[CLUSTER_IP].add(_ip_port(svc.cluster_ip, proto, svc.port))
    s.add_vs(_vs(s, svc, svc.cluster_ip, svc.port, "clusterIP", True),
             _real_servers(svc, eps, svc.internal_policy_local))
    for ext_ip in svc.external_ips:
        target = EXTERNAL_IP_LOCAL if svc.external_policy_local else EXTERNAL_IP
        s.ipsets[target].add(_ip_port(ext_ip, proto, svc.port))
        s.add_vs(_vs(s, svc, ext_ip, svc.port, "externalIP", ext_ip not in s.node_addresses),
                 _real_servers(svc, eps, svc.external_policy_local))
    for lbip in svc.load_balancer_vips:
        _sync_load_balancer(s, svc, lbip, eps)
    if svc.node_port:
        if not node_ips:
            return  # kube-proxy `continue`s: no nodeport and no health-check entries
        _sync_node_port(s, svc, eps, node_ips)
    if svc.health_check_node_port:
        s.ipsets[HEALTH_CHECK_NODE_PORT].add(str(svc.health_check_node_port))


def _sync_load_balancer(s: _Sync, svc: ServicePortInfo, lbip: str, eps) -> None:
    proto, entry = svc.proto, _ip_port(lbip, svc.proto, svc.port)
    s.ipsets[LOAD_BALANCER].add(entry)
    if svc.external_policy_local:
        s.ipsets[LOAD_BALANCER_LOCAL].add(entry)
    if svc.load_balancer_source_ranges:
        s.ipsets[LOAD_BALANCER_FW].add(entry)
        allow_from_node = False
        node_ip = parse_ip(s.env.node_ip or "")
        for cidr in svc.load_balancer_source_ranges:
            s.ipsets[LOAD_BALANCER_SOURCE_CIDR].add(f"{entry},{cidr}")
            if node_ip is not None and node_ip.version == cidr.version and node_ip in cidr:
                allow_from_node = True
        if allow_from_node:
            # A node reaching a local LB VIP loops back with the VIP as source.
            s.ipsets[LOAD_BALANCER_SOURCE_IP].add(f"{entry},{lbip}")
        else:
            s.lb_no_node_access.append((lbip, proto, svc.port))
    s.add_vs(_vs(s, svc, lbip, svc.port, "loadBalancer", lbip not in s.node_addresses),
             _real_servers(svc, eps, svc.external_policy_local))


_NODE_PORT_SETS = {"tcp": (NODE_PORT_TCP, NODE_PORT_LOCAL_TCP),
                   "udp": (NODE_PORT_UDP, NODE_PORT_LOCAL_UDP),
                   "sctp": (NODE_PORT_SCTP, NODE_PORT_LOCAL_SCTP)}


def _sync_node_port(s: _Sync, svc: ServicePortInfo, eps, node_ips: list[str]) -> None:
    proto = svc.proto
    if proto == "sctp":
        entries = [_ip_port(ip, proto, svc.node_port) for ip in node_ips]
    else:
        entries = [str(svc.node_port)]
    all_set, local_set = _NODE_PORT_SETS[proto]
    for entry in entries:
        s.ipsets[all_set].add(entry)
        if svc.external_policy_local:
            s.ipsets[local_set].add(entry)
    for ip in node_ips:
        s.add_vs(_vs(s, svc, ip, svc.node_port, "nodePort", False),
                 _real_servers(svc, eps, svc.external_policy_local))


def _node_ips(s: _Sync, svc_map) -> list[str]:
    if not any(svc.node_port for svc in svc_map.values()):
        return []
    npa = NodePortAddresses(s.env.ip_family, s.env.node_port_addresses)
    if npa.match_all:
        return list(s.node_addresses)
    return [str(ip) for ip in npa.node_ips(s.env.interface_addresses) if not ip.is_loopback]


# --- iptables --------------------------------------------------------------------------

class _Rules:
    def __init__(self) -> None:
        self.nat = LineBuffer()
        self.filter = LineBuffer()


def _comment(ipset: IPSet) -> str:
    return f'"{ipset.comment}"'


def _write_ipset_jumps(s: _Sync, r: _Rules) -> None:
    for name, table, src, dst, match_type, proto in IPSET_WITH_CHAIN:
        ipset = s.ipsets[name]
        if not ipset.entries:
            continue
        args = ["-A", src] + (["-p", proto] if proto else [])
        args += ["-m", "comment", "--comment", _comment(ipset),
                 "-m", "set", "--match-set", ipset.name, match_type]
        (r.filter if table == "filter" else r.nat).write(args, "-j", dst)


def _write_cluster_ip_rules(s: _Sync, r: _Rules) -> None:
    ipset = s.ipsets[CLUSTER_IP]
    if not ipset.entries:
        return
    args = ["-A", KUBE_SERVICES, "-m", "comment", "--comment", _comment(ipset),
            "-m", "set", "--match-set", ipset.name]
    det = s.env.local_detector
    if s.env.masquerade_all:
        r.nat.write(args, "dst,dst", "-j", KUBE_MARK_MASQ)
    elif det.implemented:
        r.nat.write(args, "dst,dst", det.if_not_local(), "-j", KUBE_MARK_MASQ)
    else:
        # With no detector, masquerade node-originated traffic whose source is a VIP
        # (the dummy device makes the VIP the preferred source for VIP destinations).
        r.nat.write(args, "src,dst", "-j", KUBE_MARK_MASQ)


def _write_external_ip_rules(s: _Sync, r: _Rules) -> None:
    for name, masquerade in ((EXTERNAL_IP, True), (EXTERNAL_IP_LOCAL, False)):
        ipset = s.ipsets[name]
        if not ipset.entries:
            continue
        args = ["-A", KUBE_SERVICES, "-m", "comment", "--comment", _comment(ipset),
                "-m", "set", "--match-set", ipset.name, "dst,dst"]
        if masquerade:
            r.nat.write(args, "-j", KUBE_MARK_MASQ)
        # Accept traffic from off-machine (not from a bridge, not local) ...
        r.nat.write(args, "-m", "physdev", "!", "--physdev-is-in",
                    "-m", "addrtype", "!", "--src-type", "LOCAL", "-j", "ACCEPT")
        # ... and traffic to external IPs that happen to be local addresses.
        r.nat.write(args, "-m", "addrtype", "--dst-type", "LOCAL", "-j", "ACCEPT")


def _write_source_range_rules(s: _Sync, r: _Rules) -> None:
    r.filter.write("-A", KUBE_SOURCE_RANGES_FIREWALL, "-j", "DROP")
    for ip, proto, port in s.lb_no_node_access:
        r.filter.write("-A", KUBE_IPVS_OUT_FILTER, "-s", ip, "-m", "ipvs", "--vaddr", ip,
                       "--vproto", proto, "--vport", str(port), "-j", "DROP")


def _write_accept_ipvs_traffic(s: _Sync, r: _Rules) -> None:
    for name in (CLUSTER_IP, LOAD_BALANCER):
        ipset = s.ipsets[name]
        if ipset.entries:
            match = "dst" if ipset.set_type == BITMAP_PORT else "dst,dst"
            r.nat.write("-A", KUBE_SERVICES, "-m", "set", "--match-set", ipset.name, match,
                        "-j", "ACCEPT")


def _write_tail_filter_rules(s: _Sync, r: _Rules, mark: str) -> None:
    r.filter.write("-A", KUBE_FORWARD, "-m", "comment", "--comment",
                   '"kubernetes forwarding rules"', "-m", "mark", "--mark", f"{mark}/{mark}",
                   "-j", "ACCEPT")
    r.filter.write("-A", KUBE_FORWARD, "-m", "comment", "--comment",
                   '"kubernetes forwarding conntrack rule"', "-m", "conntrack",
                   "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    hc = s.ipsets[HEALTH_CHECK_NODE_PORT]
    r.filter.write("-A", KUBE_NODE_PORT, "-m", "comment", "--comment", _comment(hc),
                   "-m", "set", "--match-set", hc.name, "dst", "-j", "ACCEPT")
    # Stop access to host ports through VIPs bound on kube-ipvs0 (issue 72236).
    for name, match in ((LOAD_BALANCER, "dst,dst"), (CLUSTER_IP, "dst,dst"),
                        (EXTERNAL_IP, "dst,dst"), (EXTERNAL_IP_LOCAL, "dst,dst"),
                        (HEALTH_CHECK_NODE_PORT, "dst")):
        r.filter.write("-A", KUBE_IPVS_FILTER, "-m", "set", "--match-set",
                       s.ipsets[name].name, match, "-j", "RETURN")
    r.filter.write("-A", KUBE_IPVS_FILTER, "-m", "conntrack", "--ctstate", "NEW",
                   "-m", "set", "--match-set", s.ipsets[IPVS_IPS].name, "dst", "-j", "REJECT")


def _write_tail_nat_rules(s: _Sync, r: _Rules, mark: str) -> None:
    r.nat.write("-A", KUBE_POSTROUTING, "-m", "mark", "!", "--mark", f"{mark}/{mark}",
                "-j", "RETURN")
    r.nat.write("-A", KUBE_POSTROUTING, "-j", "MARK", "--xor-mark", mark)
    masq = ["-A", KUBE_POSTROUTING, "-m", "comment", "--comment",
            '"kubernetes service traffic requiring SNAT"', "-j", "MASQUERADE"]
    if s.env.has_random_fully:
        masq.append("--random-fully")
    r.nat.write(masq)
    r.nat.write("-A", KUBE_MARK_MASQ, "-j", "MARK", "--or-mark", mark)


def _write_iptables(s: _Sync) -> _Rules:
    """``writeIptablesRules``."""
    r, mark = _Rules(), s.env.mark
    lo = "::1/128" if s.env.is_ipv6 else "127.0.0.0/8"
    r.nat.write("-A", KUBE_SERVICES, "-s", lo, "-j", "RETURN")
    _write_ipset_jumps(s, r)
    _write_cluster_ip_rules(s, r)
    _write_external_ip_rules(s, r)
    r.nat.write("-A", KUBE_SERVICES, "-m", "addrtype", "--dst-type", "LOCAL",
                "-j", KUBE_NODE_PORT)
    r.nat.write("-A", KUBE_LOAD_BALANCER, "-j", KUBE_MARK_MASQ)
    _write_source_range_rules(s, r)
    _write_accept_ipvs_traffic(s, r)
    _write_tail_filter_rules(s, r, mark)
    _write_tail_nat_rules(s, r, mark)
    return r


def jump_rules() -> list[JumpRule]:
    return [JumpRule(table, src, ("-m", "comment", "--comment", comment, "-j", dst))
            for table, src, dst, comment in JUMP_CHAINS]


def _sysctls(env: NodeEnv) -> dict[str, str]:
    out = {"net.ipv4.vs.conntrack": "1", "net.ipv4.vs.expire_nodest_conn": "1",
           "net.ipv4.vs.expire_quiescent_template": "1", "net.ipv4.ip_forward": "1"}
    if env.ipvs_strict_arp:
        out.update({"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2"})
    return out


def render_ipvs(services, slices, env: NodeEnv) -> IPVSRuleset:
    """What kube-proxy's IPVS proxier programs for ``services``/``slices`` on ``env``."""
    s = _Sync(env)
    svc_map = service_port_map(services, env)
    eps_map = endpoints_map(slices, env)
    node_ips = _node_ips(s, svc_map)
    for spn, svc in svc_map.items():
        _sync_service(s, spn, svc, eps_map.get(spn, []), node_ips)
    for ip in s.bind:
        s.ipsets[IPVS_IPS].add(ip)
    for ipset in s.ipsets.values():
        ipset.entries.sort()
    r = _write_iptables(s)
    nat = ["*nat", *map(make_chain_line, NAT_CHAINS), *r.nat.lines, "COMMIT"]
    filt = ["*filter", *map(make_chain_line, FILTER_CHAINS), *r.filter.lines, "COMMIT"]
    return IPVSRuleset(
        virtual_servers=sorted(s.vs.values(), key=_vs_order),
        bind_addresses=list(s.bind),
        ipsets=list(s.ipsets.values()),
        nat_lines=nat, filter_lines=filt, jumps=jump_rules(), sysctls=_sysctls(env),
        kernel_modules=("ip_vs", f"ip_vs_{env.ipvs_scheduler}", "nf_conntrack"),
    )


def _vs_order(vs: VirtualServer):
    addr = parse_ip(vs.address)
    return (addr.version, int(addr), vs.protocol, vs.port)
