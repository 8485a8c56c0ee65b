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

Public API
----------
``render_iptables(services, slices, env) -> IPTablesRuleset``,
``render_nftables(...) -> NFTablesRuleset``, ``render_ipvs(...) -> IPVSRuleset``,
``render(mode, ...)``, ``trace(ruleset, src, dst, dport, proto, local_ips)``,
``load_manifests(paths) -> Inputs``, ``load_config(path)``, ``node_env(mode, config, ...)``.
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
