"""kube-proxy on the lab's nodes (pure): for each node, the environment kube-proxy would run
with, its rendered rules (`netlab.kubeproxy`), and the plan operations that install them.

Every node runs kube-proxy, Services or not, as on a real cluster. The order follows
kube-proxy's own start-up: sysctls, nfacct counters, the jumps from the built-in chains,
then one full sync loaded atomically (iptables-restore, `nft -f`, or for IPVS the dummy
`kube-ipvs0` addresses, ipsets, iptables rules and the virtual servers). A re-sync (after
`netlab scale`) loads a new full sync the same way; stale chains are removed as kube-proxy
removes them (iptables), or the table is replaced in one transaction (nftables).
"""

from __future__ import annotations

from ipaddress import IPv4Interface

from netlab.kubeproxy import KubeProxyConfig, node_env, render
from netlab.kubeproxy.manifests import parse_endpoint_slice, parse_service
from netlab.lab import services
from netlab.lab.model import ClusterInfo, Lab, NodeInfo
from netlab.plan.ops import (AddAddress, AddLink, IpsetRestore, IptablesRestore, IpvsRestore, LoadModule,
                         NfacctAdd, NftApply, Op, Sysctl)

# Chains a full iptables sync owns: any of these not in the new sync is stale.
STALE_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-")


def inputs(cluster: ClusterInfo) -> tuple[list, list]:
    """The cluster's Services and EndpointSlices as kube-proxy's informers deliver them."""
    svcs, slices = [], []
    for obj in services.objects(cluster):
        if obj["kind"] == "Service":
            svcs.append(parse_service(obj, f"<lab cluster {cluster.name}>"))
        else:
            slices.append(parse_endpoint_slice(obj, f"<lab cluster {cluster.name}>"))
    return svcs, slices


def environment(lab: Lab, cluster: ClusterInfo, node: NodeInfo):
    config = KubeProxyConfig(mode=cluster.proxy_mode, cluster_cidr=str(cluster.container_cidr),
                             detect_local_mode="ClusterCIDR")
    return node_env(cluster.proxy_mode, config, hostname=node.name, node_ips=[str(node.eth0.ip)],
                    service_cidrs=[str(cluster.service_cidr)], nfacct="nfacct" in lab.features,
                    pod_cidrs=[str(node.pod_cidr)] if node.pod_cidr else [])


def ruleset(lab: Lab, cluster: ClusterInfo, node: NodeInfo, parsed: tuple[list, list] | None = None):
    svcs, slices = parsed or inputs(cluster)
    return render(cluster.proxy_mode, svcs, slices, environment(lab, cluster, node))


def node_ops(lab: Lab, cluster: ClusterInfo, node: NodeInfo, *, resync: bool = False,
             parsed: tuple[list, list] | None = None) -> list[Op]:
    rs = ruleset(lab, cluster, node, parsed)
    ns = node.netns
    mode = cluster.proxy_mode
    ops: list[Op] = []
    if not resync:
        if mode == "ipvs":
            ops += [LoadModule(ns, m) for m in rs.kernel_modules]
        ops += [Sysctl(ns, k, str(v)) for k, v in getattr(rs, "sysctls", {}).items()]
        if getattr(rs, "nfacct_counters", None):
            ops.append(NfacctAdd(ns, tuple(rs.nfacct_counters)))
    if mode == "iptables":
        if not resync:
            ops.append(IptablesRestore(ns, rs.jump_rules_restore_input(), purpose="kube-proxy: jumps from built-in chains"))
        ops.append(IptablesRestore(ns, rs.restore_input(), purpose="kube-proxy: full sync",
                                   prune=STALE_PREFIXES if resync else ()))
    elif mode == "nftables":
        ops.append(NftApply(ns, rs.transaction(replace=resync), purpose="kube-proxy: table ip kube-proxy"))
    else:
        if not resync:
            ops.append(AddLink(ns, rs.dummy_device, "dummy"))  # kube-proxy keeps it down
        ops += [AddAddress(ns, rs.dummy_device, IPv4Interface(a)) for a in rs.dummy_addresses()
                if not resync]
        ops.append(IpsetRestore(ns, rs.ipset_restore_input(), purpose="kube-proxy: ipsets"))
        if not resync:
            ops.append(IptablesRestore(ns, rs.jump_rules_restore_input(), purpose="kube-proxy: jumps from built-in chains"))
        ops.append(IptablesRestore(ns, rs.iptables_restore_input(), purpose="kube-proxy: IPVS-mode rules",
                                   prune=STALE_PREFIXES if resync else ()))
        ops.append(IpvsRestore(ns, rs.ipvsadm_restore_input(), replace=resync,
                               purpose=f"kube-proxy: {len(rs.virtual_servers)} virtual servers"))
    return ops


def cluster_ops(lab: Lab, cluster: ClusterInfo, *, resync: bool = False) -> list[Op]:
    parsed = inputs(cluster)  # parsed once, rendered per node
    out: list[Op] = []
    for node in cluster.nodes:
        out += node_ops(lab, cluster, node, resync=resync, parsed=parsed)
    return out
