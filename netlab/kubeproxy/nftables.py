"""kube-proxy's nftables mode: the ``ip kube-proxy`` table transaction of a full sync.

Follows ``setupNFTables`` and ``syncProxyRules`` in pkg/proxy/nftables/proxier.go
(commit 531be81) operation by operation, for the first sync of a fresh kube-proxy
(``flushed`` false, so each base chain is first added and deleted, which lets a later
sync change chain properties). The transaction is in kube-proxy's own operation order:
every chain, set and map is added before a rule or element refers to it, so ``nft -f``
accepts it as is (kube-proxy itself feeds the same text to ``nft -f``).

Differences from a running kube-proxy, all about later syncs: existing elements and
chains are not listed (a fresh table is assumed), so no stale objects are flushed or
deleted. For re-applying to a table that may hold older state,
``NFTablesRuleset.transaction(replace=True)`` prefixes ``add table`` + ``delete table``,
making the whole load atomic and complete.

Names come from ``names.py`` (``service-``, ``local-``, ``external-``, ``firewall-``,
``endpoint-``, ``affinity-`` prefixes on ``hashAndTruncate`` bases).
"""

from __future__ import annotations

from dataclasses import dataclass

from netlab.kubeproxy import names
from netlab.kubeproxy.endpoints import (
    EndpointInfo, ServicePortInfo, categorize_endpoints, endpoints_map, service_port_map,
)
from netlab.kubeproxy.model import NodeEnv
from netlab.kubeproxy.netutil import parse_ip
from netlab.kubeproxy.nftx import Transaction, concat, sort_nftables_transaction
from netlab.kubeproxy.nodeports import NodePortAddresses, expand_keywords

TABLE = "kube-proxy"

FILTER_PREROUTING_PRE_DNAT = "filter-prerouting-pre-dnat"
FILTER_OUTPUT_PRE_DNAT = "filter-output-pre-dnat"
FILTER_INPUT = "filter-input"
FILTER_FORWARD = "filter-forward"
FILTER_OUTPUT = "filter-output"
NAT_PREROUTING = "nat-prerouting"
NAT_OUTPUT = "nat-output"
NAT_POSTROUTING = "nat-postrouting"
SERVICES = "services"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NODEPORT_IPS = "nodeport-ips"
CLUSTER_IPS = "cluster-ips"
SERVICE_ENDPOINTS_CHECK = "service-endpoints-check"
NODEPORT_ENDPOINTS_CHECK = "nodeport-endpoints-check"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
REJECT_CHAIN = "reject-chain"
CLUSTER_IPS_CHECK = "cluster-ips-check"
FIREWALL_IPS = "firewall-ips"
FIREWALL_CHECK = "firewall-check"
MARK_MASQ = "mark-for-masquerade"
MASQUERADING = "masquerading"

# (name, type, hook, priority): nftablesBaseChains
BASE_CHAINS = (
    (FILTER_PREROUTING_PRE_DNAT, "filter", "prerouting", "dstnat-10"),
    (FILTER_OUTPUT_PRE_DNAT, "filter", "output", "dstnat-10"),
    (FILTER_INPUT, "filter", "input", "filter"),
    (FILTER_FORWARD, "filter", "forward", "filter"),
    (FILTER_OUTPUT, "filter", "output", "filter"),
    (NAT_PREROUTING, "nat", "prerouting", "dstnat"),
    (NAT_OUTPUT, "nat", "output", "dstnat"),
    (NAT_POSTROUTING, "nat", "postrouting", "srcnat"),
)

# (dstChain, srcChain, extraArgs): nftablesJumpChains
JUMP_CHAINS = (
    (NODEPORT_ENDPOINTS_CHECK, FILTER_INPUT, "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, FILTER_INPUT, "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, FILTER_FORWARD, "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, FILTER_OUTPUT, "ct state new"),
    (FIREWALL_CHECK, FILTER_PREROUTING_PRE_DNAT, "ct state new"),
    (FIREWALL_CHECK, FILTER_OUTPUT_PRE_DNAT, "ct state new"),
    (SERVICES, NAT_OUTPUT, ""),
    (SERVICES, NAT_PREROUTING, ""),
    (MASQUERADING, NAT_POSTROUTING, ""),
    (CLUSTER_IPS_CHECK, FILTER_FORWARD, "ct state new"),
    (CLUSTER_IPS_CHECK, FILTER_OUTPUT, "ct state new"),
)


@dataclass
class NFTablesRuleset:
    """Everything kube-proxy's nftables proxier programs on one node."""

    tx: Transaction

    @property
    def family(self) -> str:
        return self.tx.family

    def transaction(self, replace: bool = False) -> str:
        """``nft -f`` input. ``replace`` first deletes any existing ``kube-proxy`` table."""
        head = ""
        if replace:
            head = (f"add table {self.tx.family} {self.tx.table}\n"
                    f"delete table {self.tx.family} {self.tx.table}\n")
        return head + self.tx.text()

    def dump(self) -> str:
        """The table after the transaction, as knftables' ``Fake.Dump()`` prints it."""
        return self.tx.dump()

    def sorted_dump(self) -> str:
        return sort_nftables_transaction(self.dump())

    def delete_table_transaction(self) -> str:
        return f"delete table {self.tx.family} {self.tx.table}\n"


class _Sync:
    def __init__(self, env: NodeEnv) -> None:
        self.env = env
        self.ip = "ip6" if env.is_ipv6 else "ip"
        self.addr_type = "ipv6_addr" if env.is_ipv6 else "ipv4_addr"
        self.no_localhost = "ip6 daddr != ::1" if env.is_ipv6 else "ip daddr != 127.0.0.0/8"
        self.tx = Transaction("ip6" if env.is_ipv6 else "ip", TABLE)
        npa = env.node_port_addresses
        if npa is None:
            npa = ("primary",)  # kube-proxy's default in nftables mode
        self.npa = NodePortAddresses(env.ip_family,
                                     expand_keywords(npa, env.family_node_ips))
        self.created: set[str] = set()

    def ensure_chain(self, chain: str) -> None:
        if chain in self.created:
            return
        self.created.add(chain)
        self.tx.add_chain(chain)
        self.tx.flush_chain(chain)


def _setup(s: _Sync) -> None:
    tx, ip = s.tx, s.ip
    tx.add_table("rules for kube-proxy")
    for name, *_ in BASE_CHAINS:
        tx.add_chain(name)
        tx.delete_chain(name)
    for name, ctype, hook, priority in BASE_CHAINS:
        tx.add_chain(name, ctype, hook, priority)
        tx.flush_chain(name)
    for dst, src, extra in JUMP_CHAINS:
        s.ensure_chain(dst)
        tx.add_rule(src, concat(extra, "jump", dst))
    for chain in (SERVICES, CLUSTER_IPS_CHECK, MASQUERADING, MARK_MASQ):
        s.ensure_chain(chain)
    mark = s.env.mark
    tx.add_rule(MARK_MASQ, concat("mark", "set", "mark", "or", mark))
    tx.add_rule(MASQUERADING, concat("mark", "and", mark, "==", "0", "return"))
    tx.add_rule(MASQUERADING, concat("mark", "set", "mark", "xor", mark))
    tx.add_rule(MASQUERADING, "masquerade fully-random")
    tx.add_set(CLUSTER_IPS, s.addr_type, comment="Active ClusterIPs")
    tx.add_rule(CLUSTER_IPS_CHECK, concat(ip, "daddr", "@", CLUSTER_IPS, "reject"),
                comment="Reject traffic to invalid ports of ClusterIPs")
    cidrs = ",".join(s.env.family_service_cidrs)
    if cidrs:
        tx.add_rule(CLUSTER_IPS_CHECK, concat(ip, "daddr", "{", cidrs, "}", "drop"),
                    comment="Drop traffic to unallocated ClusterIPs")
    _setup_nodeport_ips(s)
    _setup_maps_and_dispatch(s)


def _setup_nodeport_ips(s: _Sync) -> None:
    tx = s.tx
    tx.add_set(NODEPORT_IPS, s.addr_type, comment="IPs that accept NodePort traffic")
    if s.npa.match_all:
        tx.delete_set(NODEPORT_IPS)
        return
    tx.flush_set(NODEPORT_IPS)
    for addr in s.npa.node_ips(s.env.interface_addresses):
        if not addr.is_loopback:
            tx.add_element(NODEPORT_IPS, [str(addr)])


def _setup_maps_and_dispatch(s: _Sync) -> None:
    tx, ip, at = s.tx, s.ip, s.addr_type
    tx.add_map(NO_ENDPOINT_SERVICES, f"{at} . inet_proto . inet_service : verdict",
               comment="vmap to drop or reject packets to services with no endpoints")
    tx.add_map(NO_ENDPOINT_NODEPORTS, "inet_proto . inet_service : verdict",
               comment="vmap to drop or reject packets to service nodeports with no endpoints")
    tx.add_chain(REJECT_CHAIN, comment="helper for @no-endpoint-services / @no-endpoint-nodeports")
    tx.flush_chain(REJECT_CHAIN)
    tx.add_rule(REJECT_CHAIN, "reject")
    tx.add_rule(SERVICE_ENDPOINTS_CHECK,
                f"{ip} daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}")
    if s.npa.match_all:
        tx.add_rule(NODEPORT_ENDPOINTS_CHECK,
                    f"{s.no_localhost} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}")
    else:
        tx.add_rule(NODEPORT_ENDPOINTS_CHECK, f"{ip} daddr @{NODEPORT_IPS} "
                    f"meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}")
    tx.add_map(FIREWALL_IPS, f"{at} . inet_proto . inet_service : verdict",
               comment="destinations that are subject to LoadBalancerSourceRanges")
    s.ensure_chain(FIREWALL_CHECK)
    tx.add_rule(FIREWALL_CHECK, f"{ip} daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}")
    tx.add_map(SERVICE_IPS, f"{at} . inet_proto . inet_service : verdict",
               comment="ClusterIP, ExternalIP and LoadBalancer IP traffic")
    tx.add_map(SERVICE_NODEPORTS, "inet_proto . inet_service : verdict",
               comment="NodePort traffic")
    tx.add_rule(SERVICES, f"{ip} daddr . meta l4proto . th dport vmap @{SERVICE_IPS}")
    if s.npa.match_all:
        tx.add_rule(SERVICES, f"fib daddr type local {s.no_localhost} "
                    f"meta l4proto . th dport vmap @{SERVICE_NODEPORTS}")
    else:
        tx.add_rule(SERVICES, f"{ip} daddr @{NODEPORT_IPS} "
                    f"meta l4proto . th dport vmap @{SERVICE_NODEPORTS}")


# --- per service -----------------------------------------------------------------------

@dataclass
class _Names:
    cluster: str
    local: str
    external: str
    firewall: str

    @classmethod
    def of(cls, svc: ServicePortInfo) -> "_Names":
        spn = svc.spn
        base = names.service_port_chain_name_base(spn.namespace, spn.name, svc.proto, spn.port)
        return cls(names.NFT_SERVICE_PREFIX + base, names.NFT_LOCAL_PREFIX + base,
                   names.NFT_EXTERNAL_PREFIX + base, names.NFT_FIREWALL_PREFIX + base)


def _endpoint_base(svc: ServicePortInfo, ep: EndpointInfo) -> str:
    spn = svc.spn
    return names.service_port_endpoint_chain_name_base(spn.namespace, spn.name, svc.proto,
                                                       spn.port, ep.endpoint)


def endpoint_chain(svc: ServicePortInfo, ep: EndpointInfo) -> str:
    return names.NFT_ENDPOINT_PREFIX + _endpoint_base(svc, ep)


def affinity_set(svc: ServicePortInfo, ep: EndpointInfo) -> str:
    return names.NFT_AFFINITY_PREFIX + _endpoint_base(svc, ep)


@dataclass
class _Plan:
    svc: ServicePortInfo
    names: _Names
    cluster_eps: list[EndpointInfo] | None
    local_eps: list[EndpointInfo] | None
    all_reachable: list[EndpointInfo]
    has_endpoints: bool
    has_internal: bool
    has_external: bool
    internal_verdict: str = ""
    external_verdict: str = ""

    @property
    def uses_cluster_chain(self) -> bool:
        return bool(self.cluster_eps) and self.svc.uses_cluster_endpoints

    @property
    def uses_local_chain(self) -> bool:
        return bool(self.local_eps) and self.svc.uses_local_endpoints

    @property
    def uses_external_chain(self) -> bool:
        return self.has_endpoints and self.svc.externally_accessible

    @property
    def uses_fw_chain(self) -> bool:
        return bool(self.svc.load_balancer_vips) and bool(self.svc.load_balancer_source_ranges)

    @property
    def internal_chain(self) -> str:
        return self.names.local if self.svc.internal_policy_local else self.names.cluster

    @property
    def external_policy_chain(self) -> str:
        return self.names.local if self.svc.external_policy_local else self.names.cluster


def _plan(svc: ServicePortInfo, eps: list[EndpointInfo]) -> _Plan:
    cat = categorize_endpoints(eps, svc)
    p = _Plan(svc=svc, names=_Names.of(svc), cluster_eps=cat.cluster, local_eps=cat.local,
              all_reachable=cat.all_reachable, has_endpoints=cat.has_any,
              has_internal=cat.has_any and not (svc.internal_policy_local and not cat.local),
              has_external=cat.has_any and not (svc.external_policy_local and not cat.local))
    if not p.has_endpoints:
        p.internal_verdict = p.external_verdict = f"goto {REJECT_CHAIN}"
    else:
        p.internal_verdict = "" if p.has_internal else "drop"
        p.external_verdict = "" if p.has_external else "drop"
    return p


def _ensure_service_chains(s: _Sync, p: _Plan) -> None:
    for ep in p.all_reachable:
        s.ensure_chain(endpoint_chain(p.svc, ep))
    if p.uses_cluster_chain:
        s.ensure_chain(p.names.cluster)
    if p.uses_local_chain:
        s.ensure_chain(p.names.local)
    if p.uses_external_chain:
        s.ensure_chain(p.names.external)


def _dest(ip: str, svc: ServicePortInfo, port: int | None = None) -> list[str]:
    return [ip, svc.proto, str(port if port is not None else svc.port)]


def _write_elements(s: _Sync, p: _Plan) -> None:
    tx, svc, name = s.tx, p.svc, p.svc.name_string
    tx.add_element(CLUSTER_IPS, [svc.cluster_ip])
    if p.has_internal:
        tx.add_element(SERVICE_IPS, _dest(svc.cluster_ip, svc), [f"goto {p.internal_chain}"])
    else:
        tx.add_element(NO_ENDPOINT_SERVICES, _dest(svc.cluster_ip, svc), [p.internal_verdict],
                       comment=name)
    for ext_ip in svc.external_ips:
        if p.has_endpoints:
            tx.add_element(SERVICE_IPS, _dest(ext_ip, svc), [f"goto {p.names.external}"])
        if not p.has_external:
            tx.add_element(NO_ENDPOINT_SERVICES, _dest(ext_ip, svc), [p.external_verdict],
                           comment=name)
    if p.uses_fw_chain:
        s.ensure_chain(p.names.firewall)
    for lbip in svc.load_balancer_vips:
        if p.has_endpoints:
            tx.add_element(SERVICE_IPS, _dest(lbip, svc), [f"goto {p.names.external}"])
        if p.uses_fw_chain:
            tx.add_element(FIREWALL_IPS, _dest(lbip, svc), [f"goto {p.names.firewall}"])
    if not p.has_external:
        for lbip in svc.load_balancer_vips:
            tx.add_element(NO_ENDPOINT_SERVICES, _dest(lbip, svc), [p.external_verdict],
                           comment=name)
    if svc.node_port:
        np_key = [svc.proto, str(svc.node_port)]
        if p.has_endpoints:
            tx.add_element(SERVICE_NODEPORTS, np_key, [f"goto {p.names.external}"])
        if not p.has_external:
            tx.add_element(NO_ENDPOINT_NODEPORTS, np_key, [p.external_verdict], comment=name)


def _write_internal_rules(s: _Sync, p: _Plan) -> None:
    if not p.has_internal:
        return
    svc, det = p.svc, s.env.local_detector
    if s.env.masquerade_all:
        s.tx.add_rule(p.internal_chain, concat(s.ip, "daddr", svc.cluster_ip, "jump", MARK_MASQ))
    elif det.implemented:
        # Masquerade off-cluster traffic to the service VIP: it may bounce off-node.
        s.tx.add_rule(p.internal_chain, concat(s.ip, "daddr", svc.cluster_ip,
                                               det.if_not_local_nft(), "jump", MARK_MASQ))


def _write_external_rules(s: _Sync, p: _Plan) -> None:
    if not p.uses_external_chain:
        return
    tx, ext, det = s.tx, p.names.external, s.env.local_detector
    if not p.svc.external_policy_local:
        tx.add_rule(ext, concat("jump", MARK_MASQ))
    else:
        if det.implemented:
            tx.add_rule(ext, concat(det.if_local_nft(), "goto", p.names.cluster),
                        comment="short-circuit pod traffic")
        tx.add_rule(ext, concat("fib", "saddr", "type", "local", "jump", MARK_MASQ),
                    comment="masquerade local traffic")
        tx.add_rule(ext, concat("fib", "saddr", "type", "local", "goto", p.names.cluster),
                    comment="short-circuit local traffic")
    if p.has_external:
        tx.add_rule(ext, concat("goto", p.external_policy_chain))


def _write_firewall_rule(s: _Sync, p: _Plan) -> None:
    if not p.uses_fw_chain:
        return
    sources: list[str] = []
    allow_from_node = False
    node_ip = parse_ip(s.env.node_ip or "")
    for cidr in p.svc.load_balancer_source_ranges:
        if sources:
            sources.append(",")
        sources.append(str(cidr))
        if node_ip is not None and node_ip.version == cidr.version and node_ip in cidr:
            allow_from_node = True
    if allow_from_node:
        for lbip in p.svc.load_balancer_vips:
            sources += [",", lbip]
    s.tx.add_rule(p.names.firewall, concat(s.ip, "saddr", "!=", "{", sources, "}", "drop"))


def _write_affinity_sets(s: _Sync, p: _Plan) -> None:
    if not p.svc.session_affinity_client_ip:
        return
    for ep in p.all_reachable:
        s.tx.add_set(affinity_set(p.svc, ep), s.addr_type, flags=("dynamic", "timeout"),
                     timeout=p.svc.sticky_max_age_seconds)


def _write_service_to_endpoint_rules(s: _Sync, svc: ServicePortInfo, chain: str,
                                     eps: list[EndpointInfo]) -> None:
    # Per endpoint, 100,000 of them at 10,000 Services: rules formatted directly (what
    # concat() would join: no "@" word stands alone, no word is empty).
    chains = [endpoint_chain(svc, ep) for ep in eps]
    if svc.session_affinity_client_ip:
        for ep, ep_chain in zip(eps, chains):
            s.tx.add_rule(chain, f"{s.ip} saddr @{affinity_set(svc, ep)} goto {ep_chain}")
    vmap = " , ".join([f"{i} : goto {ep_chain}" for i, ep_chain in enumerate(chains)])
    s.tx.add_rule(chain, f"numgen random mod {len(eps)} vmap {{ {vmap} }}" if vmap
                  else f"numgen random mod {len(eps)} vmap {{ }}")


def _write_endpoint_chains(s: _Sync, p: _Plan) -> None:
    svc = p.svc
    add_rule, proto, masq = s.tx.add_rule, svc.proto, f"{s.ip} saddr {{}} jump {MARK_MASQ}"
    for ep in p.all_reachable:
        chain = endpoint_chain(svc, ep)
        # Hairpin: an endpoint reaching itself through the service must be SNATed.
        add_rule(chain, masq.format(ep.ip))
        if svc.session_affinity_client_ip:
            add_rule(chain, f"update @{affinity_set(svc, ep)} {{ {s.ip} saddr }}")
        add_rule(chain, f"meta l4proto {proto} dnat to {ep.endpoint}")


def _write_service(s: _Sync, p: _Plan) -> None:
    _ensure_service_chains(s, p)
    _write_elements(s, p)
    _write_internal_rules(s, p)
    _write_external_rules(s, p)
    _write_firewall_rule(s, p)
    _write_affinity_sets(s, p)
    if p.uses_cluster_chain:
        _write_service_to_endpoint_rules(s, p.svc, p.names.cluster, p.cluster_eps or [])
    if p.uses_local_chain:
        _write_service_to_endpoint_rules(s, p.svc, p.names.local, p.local_eps or [])
    _write_endpoint_chains(s, p)


def render_nftables(services, slices, env: NodeEnv) -> NFTablesRuleset:
    """What kube-proxy's nftables proxier writes for ``services``/``slices`` on ``env``."""
    s = _Sync(env)
    _setup(s)
    svc_map = service_port_map(services, env)
    eps_map = endpoints_map(slices, env)
    for spn, svc in svc_map.items():
        _write_service(s, _plan(svc, eps_map.get(spn, [])))
    return NFTablesRuleset(s.tx)
