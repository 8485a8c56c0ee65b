"""kube-proxy's iptables mode: the ``iptables-restore`` input of a full sync.

Follows ``syncProxyRules`` in pkg/proxy/iptables/proxier.go (commit 531be81, the anchor
of the shared conformance fixture) line by line: the filter chains KUBE-SERVICES,
KUBE-EXTERNAL-SERVICES, KUBE-FORWARD, KUBE-NODEPORTS, KUBE-PROXY-FIREWALL (and
KUBE-FIREWALL when localhost NodePorts are on), the nat chains KUBE-SERVICES,
KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-MARK-MASQ and the per-service KUBE-SVC-, KUBE-SVL-,
KUBE-EXT-, KUBE-FW- and KUBE-SEP- chains. Rules are written in kube-proxy's order;
services come in a stable order (kube-proxy walks a Go map). A full sync of a fresh
node deletes no stale chains, so no ``-X`` lines appear.

The restore input does not touch the built-in chains. kube-proxy installs those jumps
itself before each full sync, one ``iptables`` call at a time:
``EnsureChain`` (``iptables -t T -N CHAIN``, ignoring "exists") and then
``EnsureRule(Prepend, ...)`` (``iptables -t T -C CHAIN ARGS`` and, if missing,
``iptables -t T -I CHAIN ARGS``), for the list ``iptablesJumpChains`` followed by the
kubelet-owned KUBE-FIREWALL jumps. Because every jump is *inserted* at the top, the
final order in a built-in chain is the reverse of the list order. ``jump_rules()``
returns them as ``JumpRule`` objects (``new_chain_argv``/``check_argv``/``insert_argv``
replay kube-proxy's calls); ``jump_rules_restore_input()`` gives the same result as one
``iptables-restore --noflush`` input that declares the target chains and inserts the
jumps. Apply it once, *before* the proxier's input, as kube-proxy orders things: the
proxier's input then re-declares (empties) and fills the KUBE-* chains while the jumps
in the built-in chains stay. kube-proxy's ``iptables.Monitor`` also creates an empty
``KUBE-PROXY-CANARY`` chain in the mangle, nat and filter tables (``canary_chains()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.kubeproxy import names
from netlab.kubeproxy.endpoints import (
    EndpointInfo, ServicePortInfo, categorize_endpoints, endpoints_map, service_port_map,
)
from netlab.kubeproxy.model import NodeEnv
from netlab.kubeproxy.netutil import parse_ip
from netlab.kubeproxy.nodeports import NodePortAddresses

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_PROXY_CANARY = "KUBE-PROXY-CANARY"
KUBE_FIREWALL = "KUBE-FIREWALL"

LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000
NFACCT_CT_STATE_INVALID_DROPPED = "ct_state_invalid_dropped_pkts"
NFACCT_LOCALHOST_NODEPORT_ACCEPTED = "localhost_nps_accepted_pkts"
NFACCT_COUNTERS = (NFACCT_CT_STATE_INVALID_DROPPED, NFACCT_LOCALHOST_NODEPORT_ACCEPTED)
NODEPORTS_LAST_RULE_COMMENT = '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"'


def compute_probability(n: int) -> str:
    """``computeProbability``: ``fmt.Sprintf("%0.10f", 1.0/float64(n))``."""
    return f"{1.0 / n:0.10f}"


def make_chain_line(chain: str) -> str:
    return f":{chain} - [0:0]"


class LineBuffer:
    """``proxyutil.LineBuffer``: words (or lists of words) joined by spaces, one per line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, *parts) -> None:
        words: list[str] = []
        for part in parts:
            if part.__class__ is str:
                words.append(part)
            elif isinstance(part, (list, tuple)):
                words.extend([p if p.__class__ is str else str(p) for p in part])
            else:
                words.append(str(part))
        self.lines.append(" ".join(words))


@dataclass(frozen=True)
class JumpRule:
    """A rule kube-proxy puts in a built-in chain with ``iptables -I``."""

    table: str
    chain: str
    args: tuple[str, ...]

    @property
    def target(self) -> str:
        return self.args[-1]

    def new_chain_argv(self, binary: str = "iptables") -> list[str]:
        """``EnsureChain``: ``iptables -N``; exit status 1 means it already exists."""
        return [binary, "-t", self.table, "-N", self.target]

    def check_argv(self, binary: str = "iptables") -> list[str]:
        return [binary, "-t", self.table, "-C", self.chain, *self.args]

    def insert_argv(self, binary: str = "iptables") -> list[str]:
        return [binary, "-t", self.table, "-I", self.chain, *self.args]

    def restore_line(self) -> str:
        return " ".join(["-I", self.chain, *(_quote(a) for a in self.args)])


def _quote(word: str) -> str:
    return f'"{word}"' if " " in word else word


@dataclass
class IPTablesRuleset:
    """Everything kube-proxy's iptables proxier programs on one node."""

    filter_chains: list[str]
    filter_rules: list[str]
    nat_chains: list[str]
    nat_rules: list[str]
    jumps: list[JumpRule] = field(default_factory=list)
    nfacct_counters: list[str] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)

    def restore_input(self) -> str:
        """The exact bytes kube-proxy hands to ``iptables-restore --noflush --counters``."""
        parts = ["*filter", *self.filter_chains, *self.filter_rules, "COMMIT",
                 "*nat", *self.nat_chains, *self.nat_rules, "COMMIT"]
        return "\n".join(parts) + "\n"

    def jump_rules(self) -> list[JumpRule]:
        return list(self.jumps)

    def jump_rules_restore_input(self) -> str:
        return jump_rules_restore_input(self.jumps)

    def canary_chains(self) -> list[tuple[str, str]]:
        return [(t, KUBE_PROXY_CANARY) for t in ("mangle", "nat", "filter")]


# --- built-in chain jumps --------------------------------------------------------------

_NEW = ("-m", "conntrack", "--ctstate", "NEW")
# (table, dstChain, srcChain, comment, extraArgs): iptablesJumpChains then
# iptablesKubeletJumpChains, in kube-proxy's order.
_JUMP_CHAINS = (
    ("filter", KUBE_EXTERNAL_SERVICES, "INPUT", "kubernetes externally-visible service portals", _NEW),
    ("filter", KUBE_EXTERNAL_SERVICES, "FORWARD", "kubernetes externally-visible service portals", _NEW),
    ("filter", KUBE_NODEPORTS, "INPUT", "kubernetes health check service ports", ()),
    ("filter", KUBE_SERVICES, "FORWARD", "kubernetes service portals", _NEW),
    ("filter", KUBE_SERVICES, "OUTPUT", "kubernetes service portals", _NEW),
    ("filter", KUBE_FORWARD, "FORWARD", "kubernetes forwarding rules", ()),
    ("filter", KUBE_PROXY_FIREWALL, "INPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", KUBE_PROXY_FIREWALL, "OUTPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", KUBE_PROXY_FIREWALL, "FORWARD", "kubernetes load balancer firewall", _NEW),
    ("nat", KUBE_SERVICES, "OUTPUT", "kubernetes service portals", ()),
    ("nat", KUBE_SERVICES, "PREROUTING", "kubernetes service portals", ()),
    ("nat", KUBE_POSTROUTING, "POSTROUTING", "kubernetes postrouting rules", ()),
    ("filter", KUBE_FIREWALL, "INPUT", "", ()),
    ("filter", KUBE_FIREWALL, "OUTPUT", "", ()),
)


def jump_rules() -> list[JumpRule]:
    """The built-in chain jumps, in the order kube-proxy runs ``EnsureRule(Prepend)``."""
    rules = []
    for table, dst, src, comment, extra in _JUMP_CHAINS:
        args = list(extra)
        if comment:
            args += ["-m", "comment", "--comment", comment]
        rules.append(JumpRule(table, src, tuple(args + ["-j", dst])))
    return rules


def jump_rules_restore_input(jumps: list[JumpRule]) -> str:
    """``iptables-restore --noflush`` input with the effect of kube-proxy's ``EnsureChain``
    and ``-I`` calls on a fresh node: every target chain declared, then the jumps.

    Declaring a chain with ``--noflush`` empties it, so load this once, before the
    proxier's restore input (which fills the chains again)."""
    out: list[str] = []
    for table in ("filter", "nat"):
        mine = [j for j in jumps if j.table == table]
        if not mine:
            continue
        targets = list(dict.fromkeys(j.target for j in mine))
        out += [f"*{table}", *(make_chain_line(t) for t in targets),
                *(j.restore_line() for j in mine), "COMMIT"]
    return "\n".join(out) + "\n"


# --- the proxier -----------------------------------------------------------------------

class _Sync:
    """State of one ``syncProxyRules`` run (the four line buffers and flags)."""

    def __init__(self, env: NodeEnv, total_endpoints: int) -> None:
        self.env = env
        self.mark = env.mark
        self.filter_chains = LineBuffer()
        self.filter_rules = LineBuffer()
        self.nat_chains = LineBuffer()
        self.nat_rules = LineBuffer()
        self.large_cluster = total_endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD
        self.npa = NodePortAddresses(env.ip_family, env.node_port_addresses)
        self.localhost_node_ports = (env.localhost_node_ports
                                     and self.npa.contains_ipv4_loopback)
        self.nfacct = env.nfacct

    def service_comment(self, args: list[str], comment: str) -> list[str]:
        """``appendServiceCommentLocked``: comments vanish in large-cluster mode."""
        if self.large_cluster:
            return args
        return args + ["-m", "comment", "--comment", comment]

    def rule_head(self, chain: str, comment: str) -> str:
        """``-A CHAIN`` and the service comment, as one string."""
        if self.large_cluster:
            return f"-A {chain}"
        return f"-A {chain} -m comment --comment {comment}"


def _write_static_head(s: _Sync) -> None:
    for chain in (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS,
                  KUBE_PROXY_FIREWALL):
        s.filter_chains.write(make_chain_line(chain))
    for chain in (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ):
        s.nat_chains.write(make_chain_line(chain))
    s.nat_rules.write("-A", KUBE_POSTROUTING, "-m", "mark", "!", "--mark",
                      f"{s.mark}/{s.mark}", "-j", "RETURN")
    # Clear the mark so the packet is not masqueraded again if it re-traverses the stack.
    s.nat_rules.write("-A", KUBE_POSTROUTING, "-j", "MARK", "--xor-mark", s.mark)
    masq = ["-A", KUBE_POSTROUTING, "-m", "comment", "--comment",
            '"kubernetes service traffic requiring SNAT"', "-j", "MASQUERADE"]
    if s.env.has_random_fully:
        masq.append("--random-fully")
    s.nat_rules.write(masq)
    s.nat_rules.write("-A", KUBE_MARK_MASQ, "-j", "MARK", "--or-mark", s.mark)
    if not s.env.is_ipv6 and s.localhost_node_ports:
        # route_localnet opens NodePorts on 127.0.0.1; this (kubelet-identical) rule
        # closes the resulting hole for non-local sources (issue 90259).
        s.filter_chains.write(make_chain_line(KUBE_FIREWALL))
        s.filter_rules.write("-A", KUBE_FIREWALL, "-m", "comment", "--comment",
                             '"block incoming localnet connections"',
                             "-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8",
                             "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT",
                             "-j", "DROP")


@dataclass
class _Plan:
    """The per-service decisions of ``syncProxyRules`` before any rule is written."""

    svc: ServicePortInfo
    cluster_chain: str
    local_chain: str
    external_chain: str
    fw_chain: str
    cluster_eps: list[EndpointInfo] | None
    local_eps: list[EndpointInfo] | None
    all_reachable: list[EndpointInfo]
    has_endpoints: bool
    has_internal: bool
    has_external: bool
    internal_chain: str
    external_policy_chain: str
    uses_external_chain: bool
    uses_fw_chain: bool
    lb_chain: str
    internal_target: str = ""
    internal_comment: str = ""
    external_target: str = ""
    external_comment: str = ""

    @property
    def uses_cluster_chain(self) -> bool:
        return bool(self.cluster_eps) and self.svc.uses_cluster_endpoints

    @property
    def uses_local_chain(self) -> bool:
        return bool(self.local_eps) and self.svc.uses_local_endpoints


def _plan(svc: ServicePortInfo, eps: list[EndpointInfo]) -> _Plan:
    name, proto = svc.name_string, svc.proto
    cat = categorize_endpoints(eps, svc)
    cluster_chain = names.service_port_policy_cluster_chain(name, proto)
    local_chain = names.service_port_policy_local_chain(name, proto)
    external_chain = names.service_external_chain(name, proto)
    fw_chain = names.service_firewall_chain(name, proto)
    has_internal = cat.has_any and not (svc.internal_policy_local and not cat.local)
    has_external = cat.has_any and not (svc.external_policy_local and not cat.local)
    uses_fw = (cat.has_any and bool(svc.load_balancer_vips)
               and bool(svc.load_balancer_source_ranges))
    plan = _Plan(
        svc=svc, cluster_chain=cluster_chain, local_chain=local_chain,
        external_chain=external_chain, fw_chain=fw_chain,
        cluster_eps=cat.cluster, local_eps=cat.local, all_reachable=cat.all_reachable,
        has_endpoints=cat.has_any, has_internal=has_internal, has_external=has_external,
        internal_chain=local_chain if svc.internal_policy_local else cluster_chain,
        external_policy_chain=local_chain if svc.external_policy_local else cluster_chain,
        uses_external_chain=cat.has_any and svc.externally_accessible,
        uses_fw_chain=uses_fw, lb_chain=fw_chain if uses_fw else external_chain,
    )
    _set_filter_targets(plan)
    return plan


def _set_filter_targets(p: _Plan) -> None:
    name = p.svc.name_string
    if not p.has_endpoints:
        p.internal_target = p.external_target = "REJECT"
        p.internal_comment = p.external_comment = f'"{name} has no endpoints"'
        return
    if not p.has_internal:
        p.internal_target, p.internal_comment = "DROP", f'"{name} has no local endpoints"'
    if not p.has_external:
        p.external_target, p.external_comment = "DROP", f'"{name} has no local endpoints"'


def _match(svc: ServicePortInfo, dest: str, port: int) -> list[str]:
    return ["-m", svc.proto, "-p", svc.proto, "-d", dest, "--dport", str(port)]


def _write_capture_rules(s: _Sync, p: _Plan) -> None:
    """Rules in KUBE-SERVICES, KUBE-NODEPORTS and the filter chains for one port."""
    svc, name = p.svc, p.svc.name_string
    if p.has_internal:
        s.nat_rules.write("-A", KUBE_SERVICES, "-m", "comment", "--comment",
                          f'"{name} cluster IP"', _match(svc, svc.cluster_ip, svc.port),
                          "-j", p.internal_chain)
    else:
        s.filter_rules.write("-A", KUBE_SERVICES, "-m", "comment", "--comment",
                             p.internal_comment, _match(svc, svc.cluster_ip, svc.port),
                             "-j", p.internal_target)
    for ext_ip in svc.external_ips:
        if p.has_endpoints:
            s.nat_rules.write("-A", KUBE_SERVICES, "-m", "comment", "--comment",
                              f'"{name} external IP"', _match(svc, ext_ip, svc.port),
                              "-j", p.external_chain)
        if not p.has_external:
            s.filter_rules.write("-A", KUBE_EXTERNAL_SERVICES, "-m", "comment", "--comment",
                                 p.external_comment, _match(svc, ext_ip, svc.port),
                                 "-j", p.external_target)
    _write_lb_capture(s, p)
    _write_nodeport_capture(s, p)
    if svc.health_check_node_port:
        s.filter_rules.write("-A", KUBE_NODEPORTS, "-m", "comment", "--comment",
                             f'"{name} health check node port"', "-m", "tcp", "-p", "tcp",
                             "--dport", str(svc.health_check_node_port), "-j", "ACCEPT")


def _write_lb_capture(s: _Sync, p: _Plan) -> None:
    svc, name = p.svc, p.svc.name_string
    for lbip in svc.load_balancer_vips:
        if p.has_endpoints:
            s.nat_rules.write("-A", KUBE_SERVICES, "-m", "comment", "--comment",
                              f'"{name} loadbalancer IP"', _match(svc, lbip, svc.port),
                              "-j", p.lb_chain)
        if p.uses_fw_chain:
            s.filter_rules.write("-A", KUBE_PROXY_FIREWALL, "-m", "comment", "--comment",
                                 f'"{name} traffic not accepted by {p.fw_chain}"',
                                 _match(svc, lbip, svc.port), "-j", "DROP")
    if not p.has_external:
        for lbip in svc.load_balancer_vips:
            s.filter_rules.write("-A", KUBE_EXTERNAL_SERVICES, "-m", "comment", "--comment",
                                 p.external_comment, _match(svc, lbip, svc.port),
                                 "-j", p.external_target)


def _write_nodeport_capture(s: _Sync, p: _Plan) -> None:
    svc, name, proto = p.svc, p.svc.name_string, p.svc.proto
    if not svc.node_port:
        return
    if p.has_endpoints:
        if s.localhost_node_ports and not s.env.is_ipv6 and s.nfacct:
            s.nat_rules.write("-A", KUBE_NODEPORTS, "-m", "comment", "--comment", name,
                              "-m", proto, "-p", proto, "-d", "127.0.0.0/8",
                              "--dport", str(svc.node_port),
                              "-m", "nfacct", "--nfacct-name",
                              NFACCT_LOCALHOST_NODEPORT_ACCEPTED, "-j", p.external_chain)
        s.nat_rules.write("-A", KUBE_NODEPORTS, "-m", "comment", "--comment", name,
                          "-m", proto, "-p", proto, "--dport", str(svc.node_port),
                          "-j", p.external_chain)
    if not p.has_external:
        s.filter_rules.write("-A", KUBE_EXTERNAL_SERVICES, "-m", "comment", "--comment",
                             p.external_comment, "-m", "addrtype", "--dst-type", "LOCAL",
                             "-m", proto, "-p", proto, "--dport", str(svc.node_port),
                             "-j", p.external_target)


def _write_internal_chain(s: _Sync, p: _Plan) -> None:
    svc = p.svc
    if not p.has_internal:
        return
    args = ["-m", "comment", "--comment", f'"{svc.name_string} cluster IP"',
            *_match(svc, svc.cluster_ip, svc.port)]
    if s.env.masquerade_all:
        s.nat_rules.write("-A", p.internal_chain, args, "-j", KUBE_MARK_MASQ)
    elif s.env.local_detector.implemented:
        # Masquerade off-cluster traffic to the service VIP: it may bounce off-node.
        s.nat_rules.write("-A", p.internal_chain, args, s.env.local_detector.if_not_local(),
                          "-j", KUBE_MARK_MASQ)


def _write_external_chain(s: _Sync, p: _Plan) -> None:
    if not p.uses_external_chain:
        return
    name, ext = p.svc.name_string, p.external_chain
    s.nat_chains.write(make_chain_line(ext))
    if not p.svc.external_policy_local:
        s.nat_rules.write("-A", ext, "-m", "comment", "--comment",
                          f'"masquerade traffic for {name} external destinations"',
                          "-j", KUBE_MARK_MASQ)
    else:
        if s.env.local_detector.implemented:
            # Pod -> external IP is short-circuited to all endpoints, as if it had
            # gone out to the load balancer and come back.
            s.nat_rules.write("-A", ext, "-m", "comment", "--comment",
                              f'"pod traffic for {name} external destinations"',
                              s.env.local_detector.if_local(), "-j", p.cluster_chain)
        s.nat_rules.write("-A", ext, "-m", "comment", "--comment",
                          f'"masquerade LOCAL traffic for {name} external destinations"',
                          "-m", "addrtype", "--src-type", "LOCAL", "-j", KUBE_MARK_MASQ)
        s.nat_rules.write("-A", ext, "-m", "comment", "--comment",
                          f'"route LOCAL traffic for {name} external destinations"',
                          "-m", "addrtype", "--src-type", "LOCAL", "-j", p.cluster_chain)
    if p.has_external:
        s.nat_rules.write("-A", ext, "-j", p.external_policy_chain)


def _write_firewall_chain(s: _Sync, p: _Plan) -> None:
    if not p.uses_fw_chain:
        return
    svc, fw = p.svc, p.fw_chain
    s.nat_chains.write(make_chain_line(fw))
    args = ["-A", fw, "-m", "comment", "--comment", f'"{svc.name_string} loadbalancer IP"']
    allow_from_node = False
    node_ip = s.env.node_ip
    for cidr in svc.load_balancer_source_ranges:
        s.nat_rules.write(args, "-s", str(cidr), "-j", p.external_chain)
        if node_ip and _contains(cidr, node_ip):
            allow_from_node = True
    if allow_from_node:
        # A node talking to a VIP-style LB IP that is local loops back with the LB IP
        # as source; let that through too.
        for lbip in svc.load_balancer_vips:
            s.nat_rules.write(args, "-s", lbip, "-j", p.external_chain)
    s.nat_rules.write("-A", fw, "-m", "comment", "--comment",
                      f'"other traffic to {svc.name_string} will be dropped by KUBE-PROXY-FIREWALL"')


def _contains(cidr, ip: str) -> bool:
    addr = parse_ip(ip)
    return addr is not None and addr.version == cidr.version and addr in cidr


def _write_service_to_endpoint_rules(s: _Sync, svc: ServicePortInfo, chain: str,
                                     eps: list[EndpointInfo]) -> None:
    # One rule per endpoint, 100,000 of them at 10,000 Services: whole lines, not words.
    name, proto = svc.name_string, svc.proto
    heads = [s.rule_head(chain, f'"{name} -> {ep.endpoint}"') for ep in eps]
    seps = [names.service_port_endpoint_chain(name, proto, ep.endpoint) for ep in eps]
    append = s.nat_rules.lines.append
    if svc.session_affinity_client_ip:
        seconds = svc.sticky_max_age_seconds
        for head, sep in zip(heads, seps):
            append(f"{head} -m recent --name {sep} --rcheck --seconds {seconds} --reap -j {sep}")
    last = len(eps) - 1
    for i, (head, sep) in enumerate(zip(heads, seps)):
        if i < last:
            append(f"{head} -m statistic --mode random --probability "
                   f"{compute_probability(last + 1 - i)} -j {sep}")
        else:
            append(f"{head} -j {sep}")


def _write_endpoint_chains(s: _Sync, p: _Plan) -> None:
    svc = p.svc
    name, proto = svc.name_string, svc.proto
    recent = " -m recent --name {} --set" if svc.session_affinity_client_ip else ""
    add_chain, append = s.nat_chains.lines.append, s.nat_rules.lines.append
    for ep in p.all_reachable:
        sep = names.service_port_endpoint_chain(name, proto, ep.endpoint)
        add_chain(make_chain_line(sep))
        head = s.rule_head(sep, name)
        # Hairpin: an endpoint reaching itself through the service must be SNATed.
        append(f"{head} -s {ep.ip} -j {KUBE_MARK_MASQ}")
        append(f"{head}{recent.format(sep)} -m {proto} -p {proto} -j DNAT "
               f"--to-destination {ep.endpoint}")


def _write_service(s: _Sync, p: _Plan) -> None:
    _write_capture_rules(s, p)
    _write_internal_chain(s, p)
    _write_external_chain(s, p)
    _write_firewall_chain(s, p)
    if p.uses_cluster_chain:
        s.nat_chains.write(make_chain_line(p.cluster_chain))
        _write_service_to_endpoint_rules(s, p.svc, p.cluster_chain, p.cluster_eps or [])
    if p.uses_local_chain:
        s.nat_chains.write(make_chain_line(p.local_chain))
        _write_service_to_endpoint_rules(s, p.svc, p.local_chain, p.local_eps or [])
    _write_endpoint_chains(s, p)


def _write_nodeports_jump(s: _Sync) -> None:
    """The last rule of nat KUBE-SERVICES, sending local destinations to KUBE-NODEPORTS."""
    if s.npa.match_all:
        dest = ["-m", "addrtype", "--dst-type", "LOCAL"]
        if s.env.is_ipv6:
            dest += ["!", "-d", "::1/128"]
        elif not s.localhost_node_ports:
            dest += ["!", "-d", "127.0.0.0/8"]
        s.nat_rules.write("-A", KUBE_SERVICES, "-m", "comment", "--comment",
                          NODEPORTS_LAST_RULE_COMMENT, dest, "-j", KUBE_NODEPORTS)
        return
    for ip in s.npa.node_ips(s.env.interface_addresses):
        if ip.is_loopback and (s.env.is_ipv6 or not s.localhost_node_ports):
            continue
        s.nat_rules.write("-A", KUBE_SERVICES, "-m", "comment", "--comment",
                          NODEPORTS_LAST_RULE_COMMENT, "-d", str(ip), "-j", KUBE_NODEPORTS)


def _write_forward_rules(s: _Sync) -> None:
    if not s.env.conntrack_tcp_liberal:
        # INVALID packets would reset connections unless the kernel is liberal.
        rule = ["-A", KUBE_FORWARD, "-m", "conntrack", "--ctstate", "INVALID"]
        if s.nfacct:
            rule += ["-m", "nfacct", "--nfacct-name", NFACCT_CT_STATE_INVALID_DROPPED]
        s.filter_rules.write(rule, "-j", "DROP")
    s.filter_rules.write("-A", KUBE_FORWARD, "-m", "comment", "--comment",
                         '"kubernetes forwarding rules"', "-m", "mark", "--mark",
                         f"{s.mark}/{s.mark}", "-j", "ACCEPT")
    s.filter_rules.write("-A", KUBE_FORWARD, "-m", "comment", "--comment",
                         '"kubernetes forwarding conntrack rule"', "-m", "conntrack",
                         "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")


def render_iptables(services, slices, env: NodeEnv) -> IPTablesRuleset:
    """What kube-proxy's iptables proxier writes for ``services``/``slices`` on ``env``."""
    svc_map = service_port_map(services, env)
    eps_map = endpoints_map(slices, env)
    total = sum(len(eps_map.get(spn, [])) for spn in svc_map)
    s = _Sync(env, total)
    _write_static_head(s)
    for spn, svc in svc_map.items():
        _write_service(s, _plan(svc, eps_map.get(spn, [])))
    _write_nodeports_jump(s)
    _write_forward_rules(s)
    sysctls = {"net.ipv4.conf.all.route_localnet": "1"} if (
        s.localhost_node_ports and not env.is_ipv6) else {}
    return IPTablesRuleset(
        filter_chains=s.filter_chains.lines, filter_rules=s.filter_rules.lines,
        nat_chains=s.nat_chains.lines, nat_rules=s.nat_rules.lines,
        jumps=jump_rules(),
        nfacct_counters=list(NFACCT_COUNTERS) if env.nfacct else [],
        sysctls=sysctls,
    )
