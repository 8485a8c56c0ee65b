"""Typed inputs of the kube-proxy renderers: Service, EndpointSlice and the node's view.

Only the fields kube-proxy consumes are modelled, with the API server's defaults already
applied (``manifests.py`` does that when it reads YAML):

- ``Service`` (core/v1): type, clusterIP(s), ports, externalIPs,
  ``status.loadBalancer.ingress``, loadBalancerSourceRanges, external/internal traffic
  policy, session affinity and its timeout, healthCheckNodePort.
  ``spec.loadBalancerIP`` is kept for the lab but kube-proxy never reads it: it programs
  the IPs the cloud provider publishes in ``status.loadBalancer.ingress``.
- ``EndpointSlice`` (discovery.k8s.io/v1): addressType, endpoints (addresses,
  ready/serving/terminating, nodeName, zone) and ports.
- ``NodeEnv``: what kube-proxy knows about its node and its own configuration
  (hostname, node IPs, local-traffic detector, masquerade mark, nodePortAddresses, ...).

How kube-proxy turns these into per-port service info and picks endpoints lives in
``endpoints.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.kubeproxy.netutil import (
    IPV4, IPV6, cidr_family, ip_family, parse_cidr,
)

PROTOCOLS = ("TCP", "UDP", "SCTP")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
TRAFFIC_POLICIES = ("Cluster", "Local")
AFFINITIES = ("None", "ClientIP")
ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
DEFAULT_AFFINITY_TIMEOUT = 10800
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Source:
    """Where an object came from, for error messages."""

    file: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class ServicePort:
    name: str = ""
    protocol: str = "TCP"
    port: int = 0
    target_port: int | str | None = None
    node_port: int = 0


@dataclass(frozen=True)
class LoadBalancerIngress:
    ip: str = ""
    hostname: str = ""
    ip_mode: str | None = None  # "VIP" (default) or "Proxy"


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    type: str = "ClusterIP"
    cluster_ip: str = ""
    cluster_ips: tuple[str, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    selector: tuple[tuple[str, str], ...] = ()
    external_ips: tuple[str, ...] = ()
    load_balancer_ip: str = ""
    load_balancer_ingress: tuple[LoadBalancerIngress, ...] = ()
    load_balancer_source_ranges: tuple[str, ...] = ()
    external_traffic_policy: str = ""
    internal_traffic_policy: str | None = None
    session_affinity: str = "None"
    session_affinity_timeout: int = DEFAULT_AFFINITY_TIMEOUT
    health_check_node_port: int = 0
    source: Source = field(default=Source(), compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class EndpointConditions:
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


@dataclass(frozen=True)
class Endpoint:
    addresses: tuple[str, ...]
    conditions: EndpointConditions = EndpointConditions()
    node_name: str | None = None
    zone: str | None = None


@dataclass(frozen=True)
class EndpointPort:
    name: str | None = ""
    port: int | None = None
    protocol: str = "TCP"


@dataclass(frozen=True)
class EndpointSlice:
    namespace: str
    name: str
    service_name: str
    address_type: str = "IPv4"
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[EndpointPort, ...] = ()
    source: Source = field(default=Source(), compare=False)


# --- the node's view --------------------------------------------------------------------

LOCAL_MODES = ("ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix", "")


@dataclass(frozen=True)
class LocalDetector:
    """``proxyutil.LocalTrafficDetector``: how kube-proxy tells pod traffic apart.

    ``mode`` "ClusterCIDR" uses ``cidr`` (the cluster CIDR of the family), "NodeCIDR"
    the node's pod CIDR, "BridgeInterface"/"InterfaceNamePrefix" use ``interface``.
    With no CIDR/interface the detector is a no-op, as in kube-proxy.
    """

    mode: str = "ClusterCIDR"
    cidr: str = ""
    interface: str = ""

    @property
    def implemented(self) -> bool:
        if self.mode in ("ClusterCIDR", "NodeCIDR"):
            return bool(self.cidr)
        if self.mode in ("BridgeInterface", "InterfaceNamePrefix"):
            return bool(self.interface)
        return False

    def if_local(self) -> list[str]:
        if not self.implemented:
            return []
        if self.mode in ("ClusterCIDR", "NodeCIDR"):
            return ["-s", self._cidr()]
        return ["-i", self._iface("+")]

    def if_not_local(self) -> list[str]:
        return ["!", *self.if_local()] if self.implemented else []

    def if_local_nft(self) -> list[str]:
        if not self.implemented:
            return []
        if self.mode in ("ClusterCIDR", "NodeCIDR"):
            return [self._nft_family(), "saddr", self._cidr()]
        return ["iif", self._iface("*")]

    def if_not_local_nft(self) -> list[str]:
        if not self.implemented:
            return []
        if self.mode in ("ClusterCIDR", "NodeCIDR"):
            return [self._nft_family(), "saddr", "!=", self._cidr()]
        return ["iif", "!=", self._iface("*")]

    def _cidr(self) -> str:
        net = parse_cidr(self.cidr)
        return str(net) if net is not None else self.cidr

    def _nft_family(self) -> str:
        return "ip6" if cidr_family(self.cidr) == IPV6 else "ip"

    def _iface(self, wildcard: str) -> str:
        if self.mode == "InterfaceNamePrefix":
            return self.interface + wildcard
        return self.interface


DEFAULT_MASQUERADE_BIT = 14


@dataclass(frozen=True)
class NodeEnv:
    """What kube-proxy on one node knows: node facts plus its configuration.

    ``masquerade_mark`` overrides the mark kube-proxy derives from ``masquerade_bit``
    (``fmt.Sprintf("%#08x", 1<<bit)``, i.e. ``0x004000`` for bit 14); kube-proxy's unit
    tests use the literal ``0x4000``. ``node_port_addresses`` None means kube-proxy's
    default for the mode (all addresses for iptables/ipvs, the node's primary IP for
    nftables). ``nfacct`` says whether both nfacct counters exist (kube-proxy creates
    them when the kernel supports nfacct). ``has_random_fully`` is what kube-proxy
    detects from the iptables version (true for iptables >= 1.6.2).
    """

    hostname: str = ""
    node_ips: tuple[str, ...] = ()
    ip_family: str = IPV4
    local_detector: LocalDetector = LocalDetector()
    masquerade_bit: int = DEFAULT_MASQUERADE_BIT
    masquerade_mark: str | None = None
    masquerade_all: bool = False
    localhost_node_ports: bool = True
    node_port_addresses: tuple[str, ...] | None = None
    nfacct: bool = False
    has_random_fully: bool = True
    conntrack_tcp_liberal: bool = False
    service_cidrs: tuple[str, ...] = ()
    ipvs_scheduler: str = "rr"
    ipvs_strict_arp: bool = False

    @property
    def mark(self) -> str:
        if self.masquerade_mark:
            return self.masquerade_mark
        return f"{1 << self.masquerade_bit:#08x}"

    @property
    def node_ip(self) -> str | None:
        """The primary node IP of this proxier's family (the first one given)."""
        for ip in self.node_ips:
            if ip_family(ip) == self.ip_family:
                return ip
        return None

    @property
    def family_node_ips(self) -> list[str]:
        return [ip for ip in self.node_ips if ip_family(ip) == self.ip_family]

    @property
    def interface_addresses(self) -> list[str]:
        """Addresses ``NetworkInterfacer.InterfaceAddrs`` would list: lo, then the node's."""
        seen: list[str] = []
        for ip in ("127.0.0.1", "::1", *self.node_ips):
            if ip not in seen:
                seen.append(ip)
        return seen

    @property
    def family_service_cidrs(self) -> list[str]:
        return [c for c in self.service_cidrs if cidr_family(c) == self.ip_family]

    @property
    def is_ipv6(self) -> bool:
        return self.ip_family == IPV6


__all__ = [
    "ADDRESS_TYPES", "AFFINITIES", "DEFAULT_AFFINITY_TIMEOUT", "DEFAULT_MASQUERADE_BIT",
    "Endpoint", "EndpointConditions", "EndpointPort", "EndpointSlice", "IPV4", "IPV6",
    "LOCAL_MODES", "LoadBalancerIngress", "LocalDetector", "NodeEnv", "PROTOCOLS",
    "SERVICE_NAME_LABEL", "SERVICE_TYPES", "Service", "ServicePort", "Source",
    "TRAFFIC_POLICIES",
]
