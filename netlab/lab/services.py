"""Services as the API server would store them, and their EndpointSlices (pure).

`resolve_services` validates a cluster's Services as the API server does and fills in what
it would allocate: a clusterIP from the Service CIDR, nodePorts from 30000-32767, a
healthCheckNodePort for LoadBalancer Services with externalTrafficPolicy Local.
`endpoint_slices` is the endpoint controller: pods whose labels match a Service's selector,
grouped by the ports their targetPorts resolve to, one EndpointSlice per group. Both emit
Kubernetes objects (dicts shaped like `kubectl get -o yaml` output) for the kube-proxy
renderers.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address

from netlab.lab.model import ClusterInfo, PodInfo, ServiceInfo
from netlab.scenario.types import ClusterBase as Cluster, Path_, Service, ServicePort

NODE_PORT_RANGE = range(30000, 32768)  # kube-apiserver's default --service-node-port-range
FIRST_CLUSTER_IP_OFFSET = 10  # .1 is the `kubernetes` Service's in a real cluster


def resolve_services(spec: Cluster, path: Path_, ctx) -> list[ServiceInfo]:
    taken_ips: dict[IPv4Address, Path_] = {}
    taken_ports: dict[tuple[int, str], Path_] = {}
    names: dict[tuple[str, str], int] = {}
    for i, svc in enumerate(spec.services):
        where = path + ("services", i)
        key = (svc.namespace, svc.name)
        if key in names:
            raise ctx.error(where + ("name",), f"duplicate Service {svc.namespace}/{svc.name} "
                                               f"(first on line {ctx.source.line(path + ('services', names[key]))})")
        names[key] = i
        _validate(svc, where, ctx)
        if svc.clusterIP is not None:
            _claim_ip(svc.clusterIP, spec, where + ("clusterIP",), taken_ips, ctx)
        for j, port in enumerate(svc.ports):
            if port.nodePort is not None:
                _claim_port(port.nodePort, port.protocol, where + ("ports", j, "nodePort"), taken_ports, ctx)
        if svc.healthCheckNodePort is not None:
            _claim_port(svc.healthCheckNodePort, "TCP", where + ("healthCheckNodePort",), taken_ports, ctx)

    free_ip = _free_ips(spec, taken_ips)
    out = []
    for i, svc in enumerate(spec.services):
        where = path + ("services", i)
        ip = svc.clusterIP or next(free_ip, None)
        if ip is None:
            raise ctx.error(where, f"service_cidr {spec.service_cidr} has no free clusterIP left")
        ports = [p if p.nodePort or svc.type == "ClusterIP"
                 else p.model_copy(update={"nodePort": _next_port(p.protocol, taken_ports, where, ctx)})
                 for p in svc.ports]
        update: dict = {"ports": ports, "clusterIP": ip}
        if svc.type == "LoadBalancer" and svc.externalTrafficPolicy == "Local" and svc.healthCheckNodePort is None:
            update["healthCheckNodePort"] = _next_port("TCP", taken_ports, where, ctx)
        out.append(ServiceInfo(spec=svc.model_copy(update=update), cluster_ip=ip))
    return out


def _validate(svc: Service, where: Path_, ctx) -> None:
    """The API server's own refusals for the fields kube-proxy reads."""
    port_names = [p.name for p in svc.ports]
    if len(svc.ports) > 1 and None in port_names:
        raise ctx.error(where + ("ports",), "every port needs a name when a Service has several ports")
    if len(set(port_names)) != len(port_names):
        raise ctx.error(where + ("ports",), "port names must be unique within a Service")
    external = svc.type in ("NodePort", "LoadBalancer")
    for j, p in enumerate(svc.ports):
        if p.nodePort is not None and not external:
            raise ctx.error(where + ("ports", j, "nodePort"), "nodePort may only be set for type NodePort or LoadBalancer")
        if p.nodePort is not None and p.nodePort not in NODE_PORT_RANGE:
            raise ctx.error(where + ("ports", j, "nodePort"),
                            f"{p.nodePort} is outside the node port range 30000-32767")
    if svc.externalTrafficPolicy == "Local" and not external:
        raise ctx.error(where + ("externalTrafficPolicy",), "Local needs type NodePort or LoadBalancer")
    if svc.healthCheckNodePort is not None and not (svc.type == "LoadBalancer" and svc.externalTrafficPolicy == "Local"):
        raise ctx.error(where + ("healthCheckNodePort",),
                        "may only be set for type LoadBalancer with externalTrafficPolicy Local")
    if svc.sessionAffinityConfig is not None and svc.sessionAffinity != "ClientIP":
        raise ctx.error(where + ("sessionAffinityConfig",), "needs sessionAffinity: ClientIP")
    for field in ("loadBalancerIP", "loadBalancerSourceRanges"):
        if getattr(svc, field) and svc.type != "LoadBalancer":
            raise ctx.error(where + (field,), "may only be set for type LoadBalancer")


def _claim_ip(ip: IPv4Address, spec: Cluster, where: Path_, taken: dict, ctx) -> None:
    net = spec.service_cidr
    if ip not in net or ip in (net.network_address, net.broadcast_address):
        raise ctx.error(where, f"{ip} is not a usable address of service_cidr {net}")
    if ip in taken:
        raise ctx.error(where, f"{ip} is already the clusterIP of the Service on line {ctx.source.line(taken[ip])}")
    taken[ip] = where


def _claim_port(port: int, protocol: str, where: Path_, taken: dict, ctx) -> None:
    if (port, protocol) in taken:
        raise ctx.error(where, f"node port {port}/{protocol} is already used on line {ctx.source.line(taken[(port, protocol)])}")
    taken[(port, protocol)] = where


def _free_ips(spec: Cluster, taken: dict):
    net = spec.service_cidr
    ip = net.network_address + FIRST_CLUSTER_IP_OFFSET
    while ip < net.broadcast_address:
        if ip not in taken:
            yield ip
        ip += 1


def _next_port(protocol: str, taken: dict, where: Path_, ctx) -> int:
    for port in NODE_PORT_RANGE:
        if (port, protocol) not in taken:
            taken[(port, protocol)] = where
            return port
    raise ctx.error(where, "no free node port left in 30000-32767")


# -- Kubernetes objects for the renderers --------------------------------------------------

def service_object(info: ServiceInfo) -> dict:
    svc = info.spec
    spec: dict = {
        "type": svc.type,
        "clusterIP": str(info.cluster_ip),
        "clusterIPs": [str(info.cluster_ip)],
        "ports": [_port_object(p, svc) for p in svc.ports],
        "selector": dict(svc.selector),
        "sessionAffinity": svc.sessionAffinity,
        "internalTrafficPolicy": svc.internalTrafficPolicy,
    }
    if svc.type != "ClusterIP":
        spec["externalTrafficPolicy"] = svc.externalTrafficPolicy
    if svc.sessionAffinity == "ClientIP":
        timeout = (svc.sessionAffinityConfig.clientIP.timeoutSeconds if svc.sessionAffinityConfig else 10800)
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": timeout}}
    if svc.externalIPs:
        spec["externalIPs"] = [str(ip) for ip in svc.externalIPs]
    if svc.loadBalancerSourceRanges:
        spec["loadBalancerSourceRanges"] = [str(n) for n in svc.loadBalancerSourceRanges]
    if svc.healthCheckNodePort:
        spec["healthCheckNodePort"] = svc.healthCheckNodePort
    obj = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": svc.name, "namespace": svc.namespace}, "spec": spec}
    if svc.annotations:
        obj["metadata"]["annotations"] = dict(svc.annotations)
    if svc.type == "LoadBalancer" and info.load_balancer:  # what the cloud controller published
        obj["status"] = {"loadBalancer": {"ingress": [
            {"ip": str(i.ip), **({"ipMode": i.ip_mode} if i.ip_mode else {})} for i in info.load_balancer]}}
    elif svc.type == "LoadBalancer" and svc.loadBalancerIP:
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": str(svc.loadBalancerIP)}]}}
    return obj


def _port_object(p: ServicePort, svc: Service) -> dict:
    out: dict = {"protocol": p.protocol, "port": p.port,
                 "targetPort": p.targetPort if p.targetPort is not None else p.port}
    if p.name:
        out["name"] = p.name
    if p.nodePort:
        out["nodePort"] = p.nodePort
    return out


def selected(info: ServiceInfo, pods: list[PodInfo]) -> list[PodInfo]:
    sel = info.spec.selector
    if not sel:
        return []  # a Service without selector has no managed endpoints
    return [p for p in pods if p.namespace == info.spec.namespace
            and all(p.labels.get(k) == v for k, v in sel.items())]


def target_port(port: ServicePort, pod: PodInfo) -> int | None:
    if port.targetPort is None:
        return port.port
    if isinstance(port.targetPort, int):
        return port.targetPort
    found = next((p for p in pod.ports if p.name == port.targetPort and p.protocol == port.protocol), None)
    return found.port if found else None


def endpoint_slices(info: ServiceInfo, cluster: ClusterInfo) -> list[dict]:
    svc = info.spec
    groups: dict[tuple, list[PodInfo]] = {}
    for pod in selected(info, cluster.pods):
        resolved = tuple(target_port(p, pod) for p in svc.ports)
        if all(r is None for r in resolved):
            continue
        groups.setdefault(resolved, []).append(pod)
    slices = []
    for resolved, pods in groups.items():
        suffix = hashlib.sha256(repr((svc.namespace, svc.name, resolved)).encode()).hexdigest()[:5]
        ports = [{"name": p.name or "", "protocol": p.protocol, "port": r}
                 for p, r in zip(svc.ports, resolved, strict=True) if r is not None]
        slices.append({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{svc.name}-{suffix}", "namespace": svc.namespace,
                         "labels": {"kubernetes.io/service-name": svc.name,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [str(p.ip)],
                           "conditions": {"ready": True, "serving": True, "terminating": False},
                           "nodeName": p.node,
                           "targetRef": {"kind": "Pod", "namespace": p.namespace, "name": p.name}}
                          for p in pods],
            "ports": ports,
        })
    return slices


def objects(cluster: ClusterInfo) -> list[dict]:
    """Every Service and EndpointSlice of a cluster, as the API server would serve them."""
    out: list[dict] = []
    for info in cluster.services:
        out.append(service_object(info))
        out += endpoint_slices(info, cluster)
    return out
