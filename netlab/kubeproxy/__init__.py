"""kube-proxy, rendered: the rules kube-proxy programs for Services, without kube-proxy.

Pure code (no subprocess, no netlink): Services and EndpointSlices plus the node's view
go in, text and typed data come out, for the lab's apply layer to load.

Which kube-proxy this follows
-----------------------------
kubernetes/kubernetes ``pkg/proxy`` at commit
``531be81208e2274ef42e72525a26610a9622bcdf`` (the anchor of the shared conformance
fixture; a 2025 master commit of the v1.33/v1.34 line: it has nfacct counters,
``OnServiceCIDRsChanged``, PreferSameTrafficDistribution). The iptables and nftables
proxiers were read at that commit; the nftables expectations come from the test file at
``81810de635aa13aa0a32992f6def3aa9d6025ebc``; the IPVS proxier and its tests from the
current upstream layout (KUBE-IPVS-FILTER, KUBE-IPVS-OUT-FILTER,
KUBE-SOURCE-RANGES-FIREWALL). Only the first full sync of a fresh kube-proxy is
rendered: no stale-chain cleanup, no partial syncs.

Modules
-------
- ``model``: typed inputs (Service, EndpointSlice, NodeEnv); ``endpoints``: what
  pkg/proxy makes of them (per-port service info, endpoint maps, CategorizeEndpoints).
- ``manifests``: YAML manifests -> model, with file:line errors; ``config``:
  KubeProxyConfiguration -> NodeEnv.
- ``names``: chain and set name hashing; ``nodeports``: --nodeport-addresses.
- ``iptables``, ``nftables`` (+ ``nftx``, a tiny knftables), ``ipvs``: the renderers.
- ``iptdump``: iptables-restore parser and kube-proxy's sortIPTablesRules.
- ``trace``: tracePacket for iptables and nftables.
- ``render``: one entry point per task; ``fixture``: conformance case directories.

Public API (what the lab calls)
------------------------------
Inputs: ``load_manifests(paths) -> Inputs`` (``.services``, ``.endpoint_slices``),
``load_config(path) -> KubeProxyConfig``, ``node_env(mode, config, hostname=,
node_ips=, service_cidrs=, nfacct=, pod_cidrs=, ip_family_=) -> NodeEnv``.

iptables: ``render_iptables(services, slices, env) -> IPTablesRuleset``. Apply in
kube-proxy's order: ``nfacct add`` each of ``.nfacct_counters``; load
``.jump_rules_restore_input()`` once (declares the KUBE-* targets and ``-I``s the jumps
into INPUT/FORWARD/OUTPUT/PREROUTING/POSTROUTING; ``.jumps`` has the same as
``JumpRule``s with ``new_chain_argv``/``check_argv``/``insert_argv``); then
``.restore_input()`` with ``iptables-restore --noflush --counters`` (``ip6tables-restore``
for an IPv6 env); set ``.sysctls``.

nftables: ``render_nftables(...) -> NFTablesRuleset``; ``.transaction()`` is the
``nft -f`` input (``replace=True`` deletes an old table first), ``.dump()`` the result
in knftables' Fake.Dump form, ``.delete_table_transaction()`` removes it.

ipvs: ``render_ipvs(...) -> IPVSRuleset``: ``.virtual_servers`` (``VirtualServer`` with
``.real_servers``; also ``.ipvsadm_restore_input()``), ``.dummy_device`` and
``.dummy_addresses()`` (kube-ipvs0, a dummy link), ``.ipset_restore_input()``
(``ipset restore -exist``), ``.jump_rules_restore_input()`` then
``.iptables_restore_input()``, ``.sysctls`` and ``.kernel_modules``.

Either mode: ``render(mode, ...)``; ``trace(ruleset, src, dst, dport, proto,
local_ips) -> TraceResult`` (iptables and nftables); ``sort_iptables_rules`` and
``sort_nftables_transaction`` for comparisons.
"""

from netlab.kubeproxy.config import KubeProxyConfig, load_config, node_env
from netlab.kubeproxy.iptables import IPTablesRuleset, JumpRule, render_iptables
from netlab.kubeproxy.iptdump import sort_iptables_rules
from netlab.kubeproxy.ipvs import IPSet, IPVSRuleset, RealServer, VirtualServer, render_ipvs
from netlab.kubeproxy.manifests import Inputs, load_manifest_text, load_manifests
from netlab.kubeproxy.model import (
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, LoadBalancerIngress,
    LocalDetector, NodeEnv, Service, ServicePort,
)
from netlab.kubeproxy.nftables import NFTablesRuleset, render_nftables
from netlab.kubeproxy.nftx import sort_nftables_transaction
from netlab.kubeproxy.render import MODES, render, trace
from netlab.kubeproxy.trace import TraceResult, trace_iptables, trace_nftables

KUBE_PROXY_COMMIT = "531be81208e2274ef42e72525a26610a9622bcdf"

__all__ = [
    "Endpoint", "EndpointConditions", "EndpointPort", "EndpointSlice", "IPSet",
    "IPTablesRuleset", "IPVSRuleset", "Inputs", "JumpRule", "KUBE_PROXY_COMMIT",
    "KubeProxyConfig", "LoadBalancerIngress", "LocalDetector", "MODES", "NFTablesRuleset",
    "NodeEnv", "RealServer", "Service", "ServicePort", "TraceResult", "VirtualServer",
    "load_config", "load_manifest_text", "load_manifests", "node_env", "render",
    "render_iptables", "render_ipvs", "render_nftables", "sort_iptables_rules",
    "sort_nftables_transaction", "trace", "trace_iptables", "trace_nftables",
]
