"""Read Services and EndpointSlices from multi-document YAML, as ``kubectl get -o yaml`` prints.

Rules (documented for users in ``netlab kube-proxy render --help``):

- ``v1 Service`` and ``discovery.k8s.io/v1 EndpointSlice`` are read; a ``List`` (or any
  ``*List`` kind) is expanded through its ``items``.
- Any other kind (Deployment, Pod, v1 Endpoints, ...) is *ignored*: kube-proxy does not
  watch it. Ignored objects are listed in ``Inputs.ignored`` so the CLI can say so.
  A ``KubeProxyConfiguration`` among the manifests is an error (pass it with
  ``--config``), as is an EndpointSlice of another API version.
- An EndpointSlice without the ``kubernetes.io/service-name`` label is ignored, as
  kube-proxy ignores it.
- Only the fields kube-proxy uses are checked; everything else (``managedFields``,
  ``status.conditions``, ...) passes untouched. Missing optional fields get the API
  server's defaults (type ClusterIP, protocol TCP, externalTrafficPolicy Cluster for
  NodePort/LoadBalancer, session affinity timeout 10800 s, endpoint conditions unset
  meaning ready).
- A non-headless, non-ExternalName Service must carry its allocated ``clusterIP``:
  kube-proxy only ever sees allocated Services.

Errors are ``ManifestError``s: ``file:line: Service ns/name: spec.ports[0].port: message``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab import yamlsrc
from netlab.errors import ManifestError
from netlab.inputfile import MANIFEST_LIMIT, read_text
from netlab.kubeproxy.fields import Fields
from netlab.kubeproxy.halves import read_in_halves
from netlab.kubeproxy.model import (
    ADDRESS_TYPES, AFFINITIES, DEFAULT_AFFINITY_TIMEOUT, PROTOCOLS, SERVICE_NAME_LABEL,
    SERVICE_TYPES, TRAFFIC_POLICIES, Endpoint, EndpointConditions, EndpointPort,
    EndpointSlice, LoadBalancerIngress, Service, ServicePort, Source,
)
from netlab.kubeproxy.netutil import ip_family, parse_cidr, parse_ip
from netlab.yamlsrc import MarkedDict, MarkedList


@dataclass
class Inputs:
    services: list[Service] = field(default_factory=list)
    endpoint_slices: list[EndpointSlice] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def extend(self, other: "Inputs") -> None:
        self.services += other.services
        self.endpoint_slices += other.endpoint_slices
        self.ignored += other.ignored


def load_manifests(paths, two_processes: bool = False) -> Inputs:
    """Read every file in ``paths``; duplicate objects are an error. ``two_processes``:
    read the second half of a large file in a forked child (``halves``); for a
    command-line process, not for one with threads."""
    inputs = Inputs()
    for path in paths:
        text = read_text(path, limit=MANIFEST_LIMIT, error=ManifestError, what="manifest")
        file = str(path)
        if two_processes:
            inputs.extend(read_in_halves(text, lambda t: load_manifest_text(t, file), _joined))
        else:
            inputs.extend(load_manifest_text(text, file))
    _check_duplicates(inputs)
    return inputs


def _joined(first: Inputs, second: Inputs) -> Inputs:
    first.extend(second)
    return first


def load_manifest_text(text: str, file: str = "<manifest>") -> Inputs:
    inputs = Inputs()
    for doc in yamlsrc.documents(text, file, error=ManifestError):
        if doc is not None:
            _load_object(doc, file, inputs)
    return inputs


def _where(file: str, obj) -> str:
    return f"{file}:{obj.line}" if isinstance(obj, MarkedDict) else file


def _load_object(obj, file: str, inputs: Inputs) -> None:
    f = Fields(file, "")
    if not isinstance(obj, dict):
        raise ManifestError("a document must be a Kubernetes object (a mapping)", file=file,
                            line=getattr(obj, "line", None))
    kind = f.get(obj, "kind", "kind", str)
    api = f.get(obj, "apiVersion", "apiVersion", str, "")
    if kind.endswith("List") and "items" in obj:
        for _, item, _ in f.items(obj, "items", "items"):
            _load_object(item, file, inputs)
        return
    if kind == "Service" and api == "v1":
        inputs.services.append(parse_service(obj, file))
    elif kind == "EndpointSlice":
        if api != "discovery.k8s.io/v1":
            raise f.error(f"EndpointSlice {api!r} is not supported; use "
                          "discovery.k8s.io/v1 (what kube-proxy reads)", obj, "apiVersion",
                          "apiVersion")
        _load_slice(obj, file, inputs)
    elif kind == "KubeProxyConfiguration":
        raise f.error("a KubeProxyConfiguration is not a manifest; pass it with --config",
                      obj, "kind", "kind")
    else:
        inputs.ignored.append(f"{api or '?'} {kind} {_name_of(obj)} ({_where(file, obj)})")


def _name_of(obj: dict) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    ns, name = meta.get("namespace"), meta.get("name")
    return f"{ns}/{name}" if ns else str(name)


def _meta(obj, file: str, kind: str) -> tuple[str, str, MarkedDict]:
    f = Fields(file, kind)
    meta = f.mapping(obj, "metadata", "metadata")
    name = f.get(meta, "name", "metadata.name", str)
    namespace = f.get(meta, "namespace", "metadata.namespace", str, "default")
    return namespace, name, meta


# --- Service ---------------------------------------------------------------------------

def parse_service(obj, file: str) -> Service:
    namespace, name, _ = _meta(obj, file, "Service")
    f = Fields(file, f"Service {namespace}/{name}")
    spec = f.mapping(obj, "spec", "spec")
    svc_type = f.enum(spec, "type", "spec.type", SERVICE_TYPES, "ClusterIP")
    cluster_ip, cluster_ips = _cluster_ips(f, spec, svc_type)
    ports = _service_ports(f, spec)
    etp_default = "Cluster" if svc_type in ("NodePort", "LoadBalancer") else ""
    affinity = f.enum(spec, "sessionAffinity", "spec.sessionAffinity", AFFINITIES, "None")
    return Service(
        namespace=namespace, name=name, type=svc_type,
        cluster_ip=cluster_ip, cluster_ips=cluster_ips, ports=ports,
        selector=_selector(f, spec),
        external_ips=tuple(_ip_list(f, spec, "externalIPs", "spec.externalIPs")),
        load_balancer_ip=_optional_ip(f, spec, "loadBalancerIP", "spec.loadBalancerIP"),
        load_balancer_ingress=_lb_ingress(f, obj),
        load_balancer_source_ranges=_source_ranges(f, spec),
        external_traffic_policy=f.enum(spec, "externalTrafficPolicy",
                                       "spec.externalTrafficPolicy",
                                       TRAFFIC_POLICIES + ("",), etp_default),
        internal_traffic_policy=f.enum(spec, "internalTrafficPolicy",
                                       "spec.internalTrafficPolicy", TRAFFIC_POLICIES,
                                       "Cluster"),
        session_affinity=affinity,
        session_affinity_timeout=_affinity_timeout(f, spec),
        health_check_node_port=f.int_in(spec, "healthCheckNodePort",
                                        "spec.healthCheckNodePort", 0, 65535, 0),
        source=Source(file, obj.line if isinstance(obj, MarkedDict) else None),
    )


def _cluster_ips(f: Fields, spec, svc_type: str) -> tuple[str, tuple[str, ...]]:
    cluster_ip = f.get(spec, "clusterIP", "spec.clusterIP", str, "")
    ips = []
    for i, ip, lst in f.items(spec, "clusterIPs", "spec.clusterIPs"):
        ips.append(_check_ip(f, ip, lst, i, f"spec.clusterIPs[{i}]", allow_none=True))
    if not cluster_ip and ips:
        cluster_ip = ips[0]
    if svc_type == "ExternalName" or cluster_ip == "None":
        return cluster_ip, tuple(ips)
    if not cluster_ip:
        raise f.error("missing; kube-proxy only programs Services with an allocated "
                      "ClusterIP (set it, or use 'None' for a headless Service)",
                      spec, "clusterIP", "spec.clusterIP")
    _check_ip(f, cluster_ip, spec, "clusterIP", "spec.clusterIP")
    if ips and parse_ip(ips[0]) != parse_ip(cluster_ip):
        raise f.error(f"must equal spec.clusterIP ({cluster_ip})", spec, "clusterIPs",
                      "spec.clusterIPs[0]")
    return cluster_ip, tuple(ips)


def _check_ip(f: Fields, value, container, key, path: str, allow_none: bool = False) -> str:
    if allow_none and value == "None":
        return value
    if not isinstance(value, str) or parse_ip(value) is None:
        raise f.error(f"{value!r} is not a valid IP address", container, key, path)
    return value


def _optional_ip(f: Fields, spec, key: str, path: str) -> str:
    value = f.get(spec, key, path, str, "")
    return _check_ip(f, value, spec, key, path) if value else ""


def _ip_list(f: Fields, spec, key: str, path: str) -> list[str]:
    return [_check_ip(f, ip, lst, i, f"{path}[{i}]") for i, ip, lst in f.items(spec, key, path)]


def _service_ports(f: Fields, spec) -> tuple[ServicePort, ...]:
    ports = []
    for i, item, lst in f.items(spec, "ports", "spec.ports"):
        path = f"spec.ports[{i}]"
        if not isinstance(item, dict):
            raise f.error("must be a mapping", lst, i, path)
        port = f.int_in(item, "port", f"{path}.port", 1, 65535)
        ports.append(ServicePort(
            name=f.get(item, "name", f"{path}.name", str, ""),
            protocol=f.enum(item, "protocol", f"{path}.protocol", PROTOCOLS, "TCP"),
            port=port,
            target_port=_target_port(f, item, f"{path}.targetPort", port),
            node_port=f.int_in(item, "nodePort", f"{path}.nodePort", 0, 65535, 0),
        ))
        _check_port_names(f, ports, lst, i, path)
    return tuple(ports)


def _target_port(f: Fields, item, path: str, port: int) -> int | str:
    value = f.get(item, "targetPort", path, (int, str), port)
    if value == "" or (isinstance(value, int) and not 1 <= value <= 65535):
        raise f.error(f"{value!r} is not a port number (1-65535) or a port name", item,
                      "targetPort", path)
    return value


def _check_port_names(f: Fields, ports: list[ServicePort], lst, i: int, path: str) -> None:
    if len(ports) > 1 and any(not p.name for p in ports):
        raise f.error("every port needs a name when a Service has more than one port",
                      lst, i, f"{path}.name")
    names = [p.name for p in ports]
    if len(names) != len(set(names)):
        raise f.error(f"duplicate port name {ports[-1].name!r}", lst, i, f"{path}.name")


def _selector(f: Fields, spec) -> tuple[tuple[str, str], ...]:
    sel = f.mapping(spec, "selector", "spec.selector")
    return tuple(sorted((str(k), str(v)) for k, v in sel.items()))


def _lb_ingress(f: Fields, obj) -> tuple[LoadBalancerIngress, ...]:
    status = f.mapping(obj, "status", "status")
    lb = f.mapping(status, "loadBalancer", "status.loadBalancer")
    out = []
    for i, item, lst in f.items(lb, "ingress", "status.loadBalancer.ingress"):
        path = f"status.loadBalancer.ingress[{i}]"
        if not isinstance(item, dict):
            raise f.error("must be a mapping", lst, i, path)
        out.append(LoadBalancerIngress(
            ip=_optional_ip(f, item, "ip", f"{path}.ip"),
            hostname=f.get(item, "hostname", f"{path}.hostname", str, ""),
            ip_mode=f.enum(item, "ipMode", f"{path}.ipMode", ("VIP", "Proxy"), "VIP")
            if "ipMode" in item else None,
        ))
    return tuple(out)


def _source_ranges(f: Fields, spec) -> tuple[str, ...]:
    out = []
    path = "spec.loadBalancerSourceRanges"
    for i, item, lst in f.items(spec, "loadBalancerSourceRanges", path):
        # kube-proxy trims whitespace (validation once allowed it) before parsing.
        if not isinstance(item, str) or parse_cidr(item.strip()) is None:
            raise f.error(f"{item!r} is not a valid CIDR (for example 203.0.113.0/24)",
                          lst, i, f"{path}[{i}]")
        out.append(item)
    return tuple(out)


def _affinity_timeout(f: Fields, spec) -> int:
    config = f.mapping(spec, "sessionAffinityConfig", "spec.sessionAffinityConfig")
    client_ip = f.mapping(config, "clientIP", "spec.sessionAffinityConfig.clientIP")
    return f.int_in(client_ip, "timeoutSeconds",
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 1, 86400,
                    DEFAULT_AFFINITY_TIMEOUT)


# --- EndpointSlice ---------------------------------------------------------------------

def _load_slice(obj, file: str, inputs: Inputs) -> None:
    namespace, name, meta = _meta(obj, file, "EndpointSlice")
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    if not labels.get(SERVICE_NAME_LABEL):
        inputs.ignored.append(f"discovery.k8s.io/v1 EndpointSlice {namespace}/{name} "
                              f"({_where(file, obj)}): no {SERVICE_NAME_LABEL} label")
        return
    inputs.endpoint_slices.append(parse_endpoint_slice(obj, file))


def parse_endpoint_slice(obj, file: str) -> EndpointSlice:
    namespace, name, meta = _meta(obj, file, "EndpointSlice")
    f = Fields(file, f"EndpointSlice {namespace}/{name}")
    labels = f.mapping(meta, "labels", "metadata.labels")
    service = f.get(labels, SERVICE_NAME_LABEL, f"metadata.labels[{SERVICE_NAME_LABEL}]", str)
    address_type = f.enum(obj, "addressType", "addressType", ADDRESS_TYPES, "")
    return EndpointSlice(
        namespace=namespace, name=name, service_name=service, address_type=address_type,
        endpoints=tuple(_endpoints(f, obj, address_type)),
        ports=tuple(_endpoint_ports(f, obj)),
        source=Source(file, obj.line if isinstance(obj, MarkedDict) else None),
    )


def _endpoints(f: Fields, obj, address_type: str) -> list[Endpoint]:
    out = []
    for i, item, lst in f.items(obj, "endpoints", "endpoints"):
        endpoint = _plain_endpoint(item, address_type)
        out.append(endpoint if endpoint is not None
                   else _checked_endpoint(f, item, lst, i, address_type))
    return out


# Most endpoints share one of a few condition triples; the objects are frozen.
_CONDITIONS: dict[tuple, EndpointConditions] = {}
_NOT_SET = (type(None), bool)


def _plain_endpoint(item, address_type: str) -> Endpoint | None:
    """The Endpoint of an item whose every field kube-proxy reads is present with its
    exact type or absent (nearly all of them, and 100,000 of them at 10,000 Services);
    None for anything else, which `_checked_endpoint` reads and names. Both give the
    same Endpoint for an item they both accept."""
    if item.__class__ is not MarkedDict:
        return None
    addresses = item.get("addresses")
    if addresses.__class__ is not MarkedList or not addresses:
        return None
    for addr in addresses:
        if addr.__class__ is not str or not (
                addr if address_type == "FQDN" else ip_family(addr) == address_type):
            return None
    cond = item.get("conditions")
    if cond is None:
        flags = (None, None, None)
    elif cond.__class__ is MarkedDict:
        flags = (cond.get("ready"), cond.get("serving"), cond.get("terminating"))
        if not all(flag.__class__ in _NOT_SET for flag in flags):
            return None
    else:
        return None
    node_name, zone = item.get("nodeName"), item.get("zone")
    if not (node_name is None or node_name.__class__ is str) \
            or not (zone is None or zone.__class__ is str):
        return None
    conditions = _CONDITIONS.get(flags)
    if conditions is None:
        conditions = _CONDITIONS.setdefault(flags, EndpointConditions(*flags))
    return Endpoint(tuple(addresses), conditions, node_name, zone)


def _checked_endpoint(f: Fields, item, lst, i: int, address_type: str) -> Endpoint:
    path = f"endpoints[{i}]"
    if not isinstance(item, dict):
        raise f.error("must be a mapping", lst, i, path)
    addresses = []
    for j, addr, alst in f.items(item, "addresses", f"{path}.addresses"):
        addresses.append(_endpoint_address(f, addr, alst, j, f"{path}.addresses[{j}]",
                                           address_type))
    if not addresses:
        raise f.error("needs at least one address", item, "addresses", f"{path}.addresses")
    cond = f.mapping(item, "conditions", f"{path}.conditions")
    return Endpoint(
        addresses=tuple(addresses),
        conditions=EndpointConditions(
            ready=f.get(cond, "ready", f"{path}.conditions.ready", bool, None),
            serving=f.get(cond, "serving", f"{path}.conditions.serving", bool, None),
            terminating=f.get(cond, "terminating", f"{path}.conditions.terminating",
                              bool, None)),
        node_name=f.get(item, "nodeName", f"{path}.nodeName", str, None),
        zone=f.get(item, "zone", f"{path}.zone", str, None),
    )


def _endpoint_address(f: Fields, addr, lst, j: int, path: str, address_type: str) -> str:
    if address_type == "FQDN":
        if not isinstance(addr, str) or not addr:
            raise f.error(f"{addr!r} is not a valid FQDN", lst, j, path)
        return addr
    if not isinstance(addr, str) or ip_family(addr) != address_type:
        raise f.error(f"{addr!r} is not a valid {address_type} address (addressType is "
                      f"{address_type})", lst, j, path)
    return addr


def _endpoint_ports(f: Fields, obj) -> list[EndpointPort]:
    out = []
    for i, item, lst in f.items(obj, "ports", "ports"):
        path = f"ports[{i}]"
        if not isinstance(item, dict):
            raise f.error("must be a mapping", lst, i, path)
        out.append(EndpointPort(
            name=f.get(item, "name", f"{path}.name", str, ""),
            port=f.int_in(item, "port", f"{path}.port", 0, 65535, None),
            protocol=f.enum(item, "protocol", f"{path}.protocol", PROTOCOLS, "TCP"),
        ))
    return out


# --- whole-input checks ----------------------------------------------------------------

def _check_duplicates(inputs: Inputs) -> None:
    seen: dict[tuple, Source] = {}
    for kind, objs in (("Service", inputs.services),
                       ("EndpointSlice", inputs.endpoint_slices)):
        for o in objs:
            key = (kind, o.namespace, o.name)
            if key in seen:
                first = seen[key]
                raise ManifestError(f"defined twice (first at {first.file}:{first.line})",
                                    file=o.source.file, line=o.source.line,
                                    field=f"{kind} {o.namespace}/{o.name}")
            seen[key] = o.source

