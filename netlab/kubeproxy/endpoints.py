"""What kube-proxy's shared ``pkg/proxy`` code makes of Services and EndpointSlices.

Mirrors, for one IP family:

- ``ServiceChangeTracker``/``newBaseServiceInfo`` (service.go, serviceport.go): one
  ``ServicePortInfo`` per Service port; headless and ExternalName Services are skipped;
  external IPs, load-balancer VIPs (``ipMode`` Proxy excluded) and source ranges are
  filtered to the family; source ranges are whitespace-trimmed; the health-check node
  port only counts for ``type: LoadBalancer`` with ``externalTrafficPolicy: Local``.
- ``EndpointSliceCache`` (endpointslicecache.go): slices of the proxier's address type,
  grouped by (service, port name, protocol); endpoint IPs normalised; duplicates merged
  preferring non-terminating ones; endpoints sorted by their ``ip:port`` string.
- ``CategorizeEndpoints`` (topology.go): Ready endpoints, falling back to
  serving+terminating ones, separately for Cluster and Local policy. Topology hints are
  not considered: the lab's nodes carry no zone label, and with no zone kube-proxy
  ignores zone hints too (PreferSameNode hints need a feature gate we do not model).

Services are iterated in a stable order (sorted by port name string and protocol);
kube-proxy iterates a Go map, so its raw output order differs, which is why its tests
sort before comparing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.kubeproxy.model import EndpointSlice, NodeEnv, Service
from netlab.kubeproxy.netutil import (
    IPNetwork, family_of, ip_family, join_host_port, normalize_ip, parse_cidr, parse_ip,
)


@dataclass(frozen=True, order=True)
class ServicePortName:
    """``proxy.ServicePortName``; ``str()`` is ``ns/name`` plus ``:port`` when named."""

    namespace: str
    name: str
    port: str
    protocol: str = "TCP"

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base


@dataclass
class ServicePortInfo:
    """``BaseServicePortInfo`` for one port of one Service, in one IP family."""

    spn: ServicePortName
    cluster_ip: str
    port: int
    protocol: str
    node_port: int = 0
    external_ips: list[str] = field(default_factory=list)
    load_balancer_vips: list[str] = field(default_factory=list)
    load_balancer_source_ranges: list[IPNetwork] = field(default_factory=list)
    session_affinity_client_ip: bool = False
    sticky_max_age_seconds: int = 0
    health_check_node_port: int = 0
    external_policy_local: bool = False
    internal_policy_local: bool = False
    target_port: int | str | None = None

    @property
    def name_string(self) -> str:
        return str(self.spn)

    @property
    def proto(self) -> str:
        """The lowercase protocol used in rules (``strings.ToLower``)."""
        return self.protocol.lower()

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.load_balancer_vips or self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        return not self.internal_policy_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (
            self.external_policy_local and self.externally_accessible)


@dataclass(frozen=True)
class EndpointInfo:
    """``BaseEndpointInfo``: one endpoint of one service port."""

    ip: str
    port: int
    is_local: bool = False
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""
    zone: str = ""
    endpoint: str = field(init=False, repr=False, compare=False)  # "ip:port", used everywhere

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", join_host_port(self.ip, self.port))

    def __str__(self) -> str:
        return self.endpoint


# --- services --------------------------------------------------------------------------

def _cluster_ip_for_family(svc: Service, family: str) -> str:
    """``proxyutil.GetClusterIPByFamily``."""
    if not svc.cluster_ips:
        return svc.cluster_ip if ip_family(svc.cluster_ip) == family else ""
    for ip in svc.cluster_ips:
        if ip_family(ip) == family:
            return ip
    return ""


def _skip_service(svc: Service) -> bool:
    """``proxyutil.ShouldSkipService``: no cluster IP, headless, or ExternalName."""
    return svc.type == "ExternalName" or svc.cluster_ip in ("", "None")


def external_policy_local(svc: Service) -> bool:
    """``apiservice.ExternalPolicyLocal``."""
    return (svc.type in ("NodePort", "LoadBalancer")
            and svc.external_traffic_policy == "Local")


def needs_health_check(svc: Service) -> bool:
    """``apiservice.NeedsHealthCheck``."""
    return svc.type == "LoadBalancer" and external_policy_local(svc)


def _family_ips(ips, family: str) -> list[str]:
    return [normalize_ip(ip) for ip in ips if ip_family(ip) == family]


def _source_ranges(svc: Service, family: str) -> list[IPNetwork]:
    nets = [parse_cidr(r.strip()) for r in svc.load_balancer_source_ranges]
    return [n for n in nets if n is not None and family_of(n) == family]


def _lb_vips(svc: Service, family: str) -> list[str]:
    vips = []
    for ing in svc.load_balancer_ingress:
        if not ing.ip or (ing.ip_mode is not None and ing.ip_mode != "VIP"):
            continue
        if ip_family(ing.ip) == family:
            vips.append(normalize_ip(ing.ip))
    return vips


def service_port_infos(svc: Service, family: str) -> list[ServicePortInfo]:
    """``serviceToServiceMap`` for one Service: one info per port (empty if skipped)."""
    if _skip_service(svc):
        return []
    cluster_ip = _cluster_ip_for_family(svc, family)
    if not cluster_ip:
        return []
    infos = []
    for port in svc.ports:
        spn = ServicePortName(svc.namespace, svc.name, port.name, port.protocol)
        infos.append(ServicePortInfo(
            spn=spn,
            cluster_ip=normalize_ip(cluster_ip),
            port=port.port,
            protocol=port.protocol,
            node_port=port.node_port,
            external_ips=_family_ips(svc.external_ips, family),
            load_balancer_vips=_lb_vips(svc, family),
            load_balancer_source_ranges=_source_ranges(svc, family),
            session_affinity_client_ip=svc.session_affinity == "ClientIP",
            sticky_max_age_seconds=(svc.session_affinity_timeout
                                    if svc.session_affinity == "ClientIP" else 0),
            health_check_node_port=(svc.health_check_node_port
                                    if needs_health_check(svc) else 0),
            external_policy_local=external_policy_local(svc),
            internal_policy_local=svc.internal_traffic_policy == "Local",
            target_port=port.target_port,
        ))
    return infos


def service_port_map(services, env: NodeEnv) -> dict[ServicePortName, ServicePortInfo]:
    """``ServicePortMap`` for the proxier's family, in a stable order."""
    infos: dict[ServicePortName, ServicePortInfo] = {}
    for svc in services:
        for info in service_port_infos(svc, env.ip_family):
            infos[info.spn] = info
    return dict(sorted(infos.items(), key=lambda kv: (str(kv[0]), kv[0].protocol)))


# --- endpoints -------------------------------------------------------------------------

def _endpoint_info(ep, port: int, env: NodeEnv) -> EndpointInfo:
    cond = ep.conditions
    return EndpointInfo(
        ip=normalize_ip(ep.addresses[0]),
        port=port,
        is_local=bool(env.hostname) and ep.node_name == env.hostname,
        ready=cond.ready is None or cond.ready,
        serving=cond.serving is None or cond.serving,
        terminating=bool(cond.terminating),
        node_name=ep.node_name or "",
        zone=ep.zone or "",
    )


def _add_slice(by_spn: dict, es: EndpointSlice, env: NodeEnv) -> None:
    for port in sorted(es.ports, key=lambda p: p.port or 0):
        if port.name is None or not port.port:
            continue  # kube-proxy ignores unnamed (nil) and zero ports
        spn = ServicePortName(es.namespace, es.service_name, port.name, port.protocol)
        endpoint_set = by_spn.setdefault(spn, {})
        for ep in es.endpoints:
            if not ep.addresses or parse_ip(ep.addresses[0]) is None:
                continue
            info = _endpoint_info(ep, port.port, env)
            if info.endpoint not in endpoint_set or not info.terminating:
                endpoint_set[info.endpoint] = info


def endpoints_map(slices, env: NodeEnv) -> dict[ServicePortName, list[EndpointInfo]]:
    """``EndpointsMap``: endpoints per service port, sorted by ``ip:port`` string."""
    by_spn: dict[ServicePortName, dict[str, EndpointInfo]] = {}
    for es in slices:
        if es.address_type != env.ip_family or not es.service_name:
            continue
        _add_slice(by_spn, es, env)
    return {spn: sorted(eps.values(), key=lambda e: e.endpoint)
            for spn, eps in by_spn.items() if eps}


# --- endpoint selection ----------------------------------------------------------------

@dataclass
class Categorized:
    """Result of ``CategorizeEndpoints``."""

    cluster: list[EndpointInfo] | None
    local: list[EndpointInfo] | None
    all_reachable: list[EndpointInfo]
    has_any: bool


def _usable_cluster(endpoints: list[EndpointInfo]) -> list[EndpointInfo]:
    ready = [ep for ep in endpoints if ep.ready]
    if ready:
        return ready
    return [ep for ep in endpoints if ep.serving and ep.terminating]


def _usable_local(endpoints: list[EndpointInfo]) -> tuple[list[EndpointInfo] | None, bool, bool]:
    """Local endpoints, whether any endpoint is usable, whether terminating ones are used."""
    has_any = any(ep.ready or (ep.serving and ep.terminating) for ep in endpoints)
    local_ready = [ep for ep in endpoints if ep.is_local and ep.ready]
    if local_ready:
        return local_ready, has_any, False
    local_term = [ep for ep in endpoints if ep.is_local and not ep.ready
                  and ep.serving and ep.terminating]
    if local_term:
        return local_term, has_any, True
    return None, has_any, False


def categorize_endpoints(endpoints: list[EndpointInfo], svc: ServicePortInfo) -> Categorized:
    """``proxy.CategorizeEndpoints`` without topology hints."""
    if not endpoints:
        return Categorized(None, None, [], False)
    cluster = None
    has_any = False
    if svc.uses_cluster_endpoints:
        cluster = _usable_cluster(endpoints)
        has_any = bool(cluster)
    if not svc.uses_local_endpoints:
        return Categorized(cluster, None, cluster or [], has_any)
    local, local_has_any, serving_terminating = _usable_local(endpoints)
    has_any = has_any or local_has_any
    if not svc.uses_cluster_endpoints:
        return Categorized(cluster, local, local or [], has_any)
    if not serving_terminating:
        return Categorized(cluster, local, cluster or [], has_any)
    merged = {ep.endpoint: ep for ep in (cluster or []) + (local or [])}
    return Categorized(cluster, local, sorted(merged.values(), key=lambda e: e.endpoint),
                       has_any)
