"""``KubeProxyConfiguration`` (kubeproxy.config.k8s.io/v1alpha1) and the node's view.

``load_config`` reads the file kube-proxy itself reads. Like kube-proxy (strict
decoding), unknown fields are errors; every documented field is accepted, and the ones
that change the rules are used: mode, hostnameOverride, bindAddress, clusterCIDR,
detectLocalMode/detectLocal, iptables.{masqueradeBit,masqueradeAll,localhostNodePorts},
nftables.{masqueradeBit,masqueradeAll}, ipvs.{scheduler,strictARP,excludeCIDRs},
nodePortAddresses (CIDRs or the keywords primary/localhost/all) and
conntrack.tcpBeLiberal (kube-proxy sets nf_conntrack_tcp_be_liberal and then skips its
INVALID drop rule). ``iptables.snatNodeInternalIP`` is newer than the kube-proxy this
renderer follows and is rejected when true.

``node_env`` combines the configuration with what kube-proxy learns from the node (its
name and addresses, the Service CIDRs, whether nfacct works) into a ``NodeEnv``,
applying kube-proxy's defaults: masqueradeBit 14, localhostNodePorts true,
detectLocalMode ClusterCIDR (a no-op without a clusterCIDR), nodePortAddresses "all" in
iptables/ipvs mode and "primary" in nftables mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab import yamlsrc
from netlab.errors import ManifestError, UserError
from netlab.inputfile import CONFIG_LIMIT, read_text
from netlab.kubeproxy.fields import Fields
from netlab.kubeproxy.model import IPV4, LOCAL_MODES, LocalDetector, NodeEnv
from netlab.kubeproxy.netutil import cidr_family, ip_family, parse_cidr, parse_ip
from netlab.kubeproxy.nodeports import KEYWORDS, expand_keywords

API_VERSION = "kubeproxy.config.k8s.io/v1alpha1"
MODES = ("iptables", "ipvs", "nftables")

# Every field of the v1alpha1 type; nested mappings list their own fields.
_TOP_FIELDS = {
    "apiVersion", "kind", "featureGates", "clientConnection", "logging", "hostnameOverride",
    "bindAddress", "healthzBindAddress", "metricsBindAddress", "bindAddressHardFail",
    "enableProfiling", "showHiddenMetricsForVersion", "mode", "iptables", "ipvs", "nftables",
    "winkernel", "detectLocalMode", "detectLocal", "clusterCIDR", "nodePortAddresses",
    "oomScoreAdj", "conntrack", "configSyncPeriod", "portRange", "windowsRunAsService",
}
_NESTED_FIELDS = {
    "iptables": {"masqueradeBit", "masqueradeAll", "localhostNodePorts", "snatNodeInternalIP",
                 "syncPeriod", "minSyncPeriod"},
    "ipvs": {"syncPeriod", "minSyncPeriod", "scheduler", "excludeCIDRs", "strictARP",
             "tcpTimeout", "tcpFinTimeout", "udpTimeout"},
    "nftables": {"masqueradeBit", "masqueradeAll", "syncPeriod", "minSyncPeriod"},
    "conntrack": {"maxPerCore", "min", "tcpEstablishedTimeout", "tcpCloseWaitTimeout",
                  "tcpBeLiberal", "udpTimeout", "udpStreamTimeout"},
    "detectLocal": {"bridgeInterface", "interfaceNamePrefix"},
    "winkernel": {"networkName", "sourceVip", "enableDSR", "rootHnsEndpointName",
                  "forwardHealthCheckVip"},
    "clientConnection": {"kubeconfig", "acceptContentTypes", "contentType", "qps", "burst"},
}
IPVS_SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh")


@dataclass
class KubeProxyConfig:
    mode: str = ""
    hostname_override: str = ""
    bind_address: str = ""
    cluster_cidr: str = ""
    detect_local_mode: str = ""
    bridge_interface: str = ""
    interface_name_prefix: str = ""
    iptables_masquerade_bit: int = 14
    iptables_masquerade_all: bool = False
    localhost_node_ports: bool = True
    nftables_masquerade_bit: int = 14
    nftables_masquerade_all: bool = False
    ipvs_scheduler: str = ""
    ipvs_strict_arp: bool = False
    node_port_addresses: list[str] | None = None
    conntrack_tcp_be_liberal: bool = False
    feature_gates: dict = field(default_factory=dict)


def load_config(path) -> KubeProxyConfig:
    text = read_text(path, limit=CONFIG_LIMIT, error=ManifestError, what="KubeProxyConfiguration")
    docs = [doc for doc in yamlsrc.documents(text, str(path), error=ManifestError)
            if doc is not None]
    if len(docs) != 1:
        raise ManifestError(f"expected one KubeProxyConfiguration document, found {len(docs)}",
                            file=str(path))
    return parse_config(docs[0], str(path))


def _check_known(f: Fields, obj, allowed: set, path: str) -> None:
    for key in obj:
        if key not in allowed:
            valid = ", ".join(sorted(allowed))
            raise f.error(f"unknown field (kube-proxy decodes strictly); valid fields: {valid}",
                          obj, key, f"{path}{key}")


def parse_config(obj, file: str) -> KubeProxyConfig:
    f = Fields(file, "KubeProxyConfiguration")
    if not isinstance(obj, dict):
        raise ManifestError("must be a KubeProxyConfiguration mapping", file=file)
    kind = f.get(obj, "kind", "kind", str)
    api = f.get(obj, "apiVersion", "apiVersion", str)
    if kind != "KubeProxyConfiguration" or api != API_VERSION:
        raise f.error(f"expected kind KubeProxyConfiguration, apiVersion {API_VERSION}; got "
                      f"{kind} {api}", obj, "kind", "kind")
    _check_known(f, obj, _TOP_FIELDS, "")
    for section, allowed in _NESTED_FIELDS.items():
        _check_known(f, f.mapping(obj, section, section), allowed, f"{section}.")
    ipt, nft = f.mapping(obj, "iptables", "iptables"), f.mapping(obj, "nftables", "nftables")
    ipvs, ct = f.mapping(obj, "ipvs", "ipvs"), f.mapping(obj, "conntrack", "conntrack")
    detect = f.mapping(obj, "detectLocal", "detectLocal")
    if f.get(ipt, "snatNodeInternalIP", "iptables.snatNodeInternalIP", bool, False):
        raise f.error("not supported: this renderer follows kube-proxy 531be81, which has "
                      "no snatNodeInternalIP", ipt, "snatNodeInternalIP",
                      "iptables.snatNodeInternalIP")
    return KubeProxyConfig(
        mode=f.enum(obj, "mode", "mode", MODES + ("",), ""),
        hostname_override=f.get(obj, "hostnameOverride", "hostnameOverride", str, ""),
        bind_address=_bind_address(f, obj),
        cluster_cidr=_cluster_cidr(f, obj),
        detect_local_mode=f.enum(obj, "detectLocalMode", "detectLocalMode", LOCAL_MODES, ""),
        bridge_interface=f.get(detect, "bridgeInterface", "detectLocal.bridgeInterface", str, ""),
        interface_name_prefix=f.get(detect, "interfaceNamePrefix",
                                    "detectLocal.interfaceNamePrefix", str, ""),
        iptables_masquerade_bit=f.int_in(ipt, "masqueradeBit", "iptables.masqueradeBit",
                                         0, 31, 14),
        iptables_masquerade_all=f.get(ipt, "masqueradeAll", "iptables.masqueradeAll", bool, False),
        localhost_node_ports=f.get(ipt, "localhostNodePorts", "iptables.localhostNodePorts",
                                   bool, True),
        nftables_masquerade_bit=f.int_in(nft, "masqueradeBit", "nftables.masqueradeBit",
                                         0, 31, 14),
        nftables_masquerade_all=f.get(nft, "masqueradeAll", "nftables.masqueradeAll", bool, False),
        ipvs_scheduler=f.enum(ipvs, "scheduler", "ipvs.scheduler", IPVS_SCHEDULERS + ("",), ""),
        ipvs_strict_arp=f.get(ipvs, "strictARP", "ipvs.strictARP", bool, False),
        node_port_addresses=_node_port_addresses(f, obj),
        conntrack_tcp_be_liberal=f.get(ct, "tcpBeLiberal", "conntrack.tcpBeLiberal", bool, False),
        feature_gates=dict(f.get(obj, "featureGates", "featureGates", dict, {})),
    )


def _bind_address(f: Fields, obj) -> str:
    value = f.get(obj, "bindAddress", "bindAddress", str, "")
    if value and parse_ip(value) is None:
        raise f.error(f"{value!r} is not a valid IP address", obj, "bindAddress", "bindAddress")
    return value


def _cluster_cidr(f: Fields, obj) -> str:
    value = f.get(obj, "clusterCIDR", "clusterCIDR", str, "")
    for part in filter(None, (p.strip() for p in value.split(","))):
        if parse_cidr(part) is None:
            raise f.error(f"{part!r} is not a valid CIDR (comma-separated list allowed, one "
                          "per IP family)", obj, "clusterCIDR", "clusterCIDR")
    return value


def check_cluster_cidr(value: str, flag: str = "--cluster-cidr") -> str:
    """A ``clusterCIDR`` given on the command line: comma-separated CIDRs."""
    for part in filter(None, (p.strip() for p in value.split(","))):
        if parse_cidr(part) is None:
            raise UserError(f"{flag} {part!r} is not a valid CIDR (comma-separated list "
                            "allowed, one per IP family)")
    return value


def _node_port_addresses(f: Fields, obj) -> list[str] | None:
    if obj.get("nodePortAddresses") is None:
        return None
    out = []
    for i, item, lst in f.items(obj, "nodePortAddresses", "nodePortAddresses"):
        if not isinstance(item, str) or (item not in KEYWORDS and parse_cidr(item) is None):
            raise f.error(f"{item!r} is not a CIDR or one of {', '.join(KEYWORDS)}", lst, i,
                          f"nodePortAddresses[{i}]")
        out.append(item)
    return out


# --- NodeEnv ---------------------------------------------------------------------------

def _family_cidr(cidrs: str, family: str) -> str:
    for part in (p.strip() for p in cidrs.split(",")):
        if part and cidr_family(part) == family:
            return str(parse_cidr(part))
    return ""


def local_detector(config: KubeProxyConfig, family: str, pod_cidrs=()) -> LocalDetector:
    mode = config.detect_local_mode or "ClusterCIDR"
    if mode == "ClusterCIDR":
        return LocalDetector(mode, cidr=_family_cidr(config.cluster_cidr, family))
    if mode == "NodeCIDR":
        cidr = _family_cidr(",".join(pod_cidrs), family)
        if not cidr:
            raise UserError("detectLocalMode NodeCIDR needs the node's pod CIDR (--pod-cidr)")
        return LocalDetector(mode, cidr=cidr)
    if mode == "BridgeInterface":
        return LocalDetector(mode, interface=config.bridge_interface)
    return LocalDetector(mode, interface=config.interface_name_prefix)


def node_env(mode: str, config: KubeProxyConfig | None = None, *, hostname: str = "",
             node_ips=(), service_cidrs=(), nfacct: bool = False, pod_cidrs=(),
             ip_family_: str = IPV4, has_random_fully: bool = True) -> NodeEnv:
    """The ``NodeEnv`` kube-proxy in ``mode`` would run with on this node."""
    config = config or KubeProxyConfig()
    for ip in node_ips:
        if parse_ip(ip) is None:
            raise UserError(f"--node-ip {ip!r} is not a valid IP address")
    for cidr in service_cidrs:
        if parse_cidr(cidr) is None:
            raise UserError(f"--service-cidr {cidr!r} is not a valid CIDR")
    node_ips = list(node_ips)
    if not node_ips and config.bind_address and not parse_ip(config.bind_address).is_unspecified:
        node_ips = [config.bind_address]
    nft = mode == "nftables"
    npa = config.node_port_addresses
    return NodeEnv(
        hostname=(config.hostname_override or hostname).strip().lower(),
        node_ips=tuple(node_ips),
        ip_family=ip_family_,
        local_detector=local_detector(config, ip_family_, pod_cidrs),
        masquerade_bit=config.nftables_masquerade_bit if nft else config.iptables_masquerade_bit,
        masquerade_all=config.nftables_masquerade_all if nft else config.iptables_masquerade_all,
        localhost_node_ports=config.localhost_node_ports,
        node_port_addresses=(tuple(expand_keywords(npa, node_ips)) if npa is not None
                             else None),
        nfacct=nfacct,
        has_random_fully=has_random_fully,
        conntrack_tcp_liberal=config.conntrack_tcp_be_liberal,
        service_cidrs=tuple(service_cidrs),
        ipvs_scheduler=config.ipvs_scheduler or "rr",
        ipvs_strict_arp=config.ipvs_strict_arp,
    )


def family_of_node(node_ips) -> str:
    """The family kube-proxy would treat as primary: that of the first node IP."""
    for ip in node_ips:
        fam = ip_family(ip)
        if fam:
            return fam
    return IPV4
