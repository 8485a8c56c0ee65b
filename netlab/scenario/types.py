"""The building blocks of the scenario schema, shared by every part of it.

Strict pydantic models (unknown keys are errors). Field names follow the design's sketch
and, for Kubernetes objects, Kubernetes' own spelling. Defaults are the service's default
address plan (ARCHITECTURE.md section 1). Addresses, CIDRs and names are strings checked
against patterns that the JSON Schema (`netlab schema`) states too, so an editor's
validator accepts exactly what netlab accepts. `netlab.scenario.schema` assembles the whole
scenario from these and from each network model's own cluster section.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema, model_validator

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A DNS label, as Kubernetes object names are (RFC 1123), kept short enough that
# namespace and interface names stay readable.
NAME_MAX = 40
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=NAME_MAX)]
LAB_NAME_MAX = 24
LabName = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=LAB_NAME_MAX)]

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"^{_OCTET}(\.{_OCTET}){{3}}$"
CIDR_PATTERN = rf"^{_OCTET}(\.{_OCTET}){{3}}/(3[0-2]|[12]?[0-9])$"


def _address(value: Any) -> Any:
    if isinstance(value, IPv4Address):
        return value
    if not isinstance(value, str) or not re.match(IPV4_PATTERN, value):
        raise ValueError(f"{value!r} is not an IPv4 address such as 192.168.0.10")
    return IPv4Address(value)


def _cidr(value: Any) -> Any:
    if isinstance(value, IPv4Network):
        return value
    if not isinstance(value, str) or not re.match(CIDR_PATTERN, value):
        raise ValueError(f"{value!r} is not an IPv4 CIDR such as 192.168.0.0/24")
    try:
        net = IPv4Network(value)
    except ValueError:
        net = IPv4Network(value, strict=False)
        raise ValueError(f"{value!r} has host bits set; the network is {net}") from None
    reserved = next((r for r in _NOT_UNICAST if net.subnet_of(r)), None)
    if reserved is not None:
        raise ValueError(f"{value!r} is inside {reserved} ({_NOT_UNICAST[reserved]}); use a "
                         "unicast range such as 192.168.0.0/24")
    return net


# Address space no lab network may use (0.0.0.0/0 and other covering ranges stay valid).
_NOT_UNICAST = {IPv4Network("0.0.0.0/8"): "'this network'", IPv4Network("127.0.0.0/8"): "loopback",
                IPv4Network("169.254.0.0/16"): "link-local", IPv4Network("224.0.0.0/4"): "multicast",
                IPv4Network("240.0.0.0/4"): "reserved"}


Address = Annotated[IPv4Address, BeforeValidator(_address),
                    WithJsonSchema({"type": "string", "pattern": IPV4_PATTERN, "examples": ["192.168.0.10"]})]
Cidr = Annotated[IPv4Network, BeforeValidator(_cidr),
                 WithJsonSchema({"type": "string", "pattern": CIDR_PATTERN, "examples": ["192.168.0.0/24"]})]
PortNumber = Annotated[int, Field(ge=1, le=65535)]
NODE_PORT_MIN, NODE_PORT_MAX = 30000, 32767  # kube-apiserver's default --service-node-port-range
NodePort = Annotated[int, Field(ge=NODE_PORT_MIN, le=NODE_PORT_MAX)]

ProxyMode = Literal["iptables", "nftables", "ipvs"]
MAX_PORT_GROUPS = 5  # security groups one port (an ENI) may hold, as on the service

# Where a value sits in a scenario file: keys and list indexes from the top, e.g.
# ("clusters", 0, "nodes", 1, "ip"); errors turn it into `clusters[0].nodes[1].ip`.
Path_ = tuple[str | int, ...]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Port(Strict):
    """A port a pod or host serves (Kubernetes ContainerPort: port, protocol, name)."""

    port: PortNumber
    protocol: Literal["TCP", "UDP"] = "TCP"
    name: Name | None = None


class Subnet(Strict):
    name: Name
    cidr: Cidr


class RouteEntry(Strict):
    """A custom route of a VPC route table, as the service's route table holds them: a
    destination and a named next hop (the route entries a peering needs are written by hand,
    as in the service)."""

    destination: Cidr
    nexthop: str = Field(examples=["peering/vpc-peer"],
                         description="peering/<name> (a VPC peering connection) or natgw/<name> "
                                     "(a NAT gateway of this VPC)")


class Vpc(Strict):
    name: Name = Field(default="vpc", description="the VPC's name (its router's namespace)")
    cidr: Cidr = IPv4Network("192.168.0.0/16")
    route_quota: int = Field(default=200, ge=0, description="routes the VPC route table may hold")
    subnets: list[Subnet] = Field(
        default_factory=lambda: [Subnet(name="nodes", cidr=IPv4Network("192.168.0.0/24"))],
        min_length=1,
    )
    routes: list[RouteEntry] = Field(default_factory=list,
                                     description="custom routes (peering, NAT gateway) of the VPC route table")


class Host(Strict):
    """A VPC machine outside any cluster (an intranet client or server)."""

    name: Name
    subnet: Name | None = Field(default=None, description="default: the first subnet")
    ip: Address | None = Field(default=None, description="default: next free address")
    ports: list[Port] = Field(default_factory=lambda: [Port(port=80)])
    security_groups: list[Name] = Field(
        default_factory=list, max_length=MAX_PORT_GROUPS,
        description="security groups bound to its port (default: none, nothing is filtered)")


class Node(Strict):
    name: Name
    subnet: Name | None = Field(default=None, description="default: the first subnet")
    ip: Address | None = Field(default=None, description="default: next free address")
    security_groups: list[Name] | None = Field(
        default=None, min_length=1, max_length=MAX_PORT_GROUPS,
        description="security groups bound to its port, instead of the cluster's node groups")


class Pod(Strict):
    """A pod, or with `replicas` a pod set (`<name>-0` … spread round-robin over `node`)."""

    name: Name
    namespace: Name = "default"
    node: Name | list[Name] = Field(description="a node; for a pod set, one node or a list to spread over")
    replicas: int | None = Field(default=None, ge=0, le=1000,
                                 description="make this a pod set of N pods; `netlab scale` changes N")
    labels: dict[str, str] = Field(default_factory=dict)
    ports: list[Port] = Field(default_factory=list)
    hostNetwork: bool = Field(default=False, description="run in the node's own network namespace on the "
                                                         "node IP, without a pod network (as Kubernetes does)")


class ServicePort(Strict):
    name: Name | None = None
    protocol: Literal["TCP", "UDP"] = "TCP"
    port: PortNumber
    targetPort: PortNumber | Name | None = Field(default=None, description="a port number or a pod port's name; default: port")
    nodePort: NodePort | None = Field(default=None, description="30000-32767; default: allocated (NodePort, LoadBalancer)")


class ClientIPConfig(Strict):
    timeoutSeconds: int = Field(default=10800, ge=1, le=86400)


class SessionAffinityConfig(Strict):
    clientIP: ClientIPConfig = Field(default_factory=ClientIPConfig)


class Service(Strict):
    """A Kubernetes v1 Service: the fields kube-proxy acts on, same names and meaning."""

    name: Name
    namespace: Name = "default"
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    selector: dict[str, str] = Field(default_factory=dict)
    ports: list[ServicePort] = Field(min_length=1)
    clusterIP: Address | None = Field(default=None, description="default: allocated from service_cidr")
    externalTrafficPolicy: Literal["Cluster", "Local"] = "Cluster"
    internalTrafficPolicy: Literal["Cluster", "Local"] = "Cluster"
    sessionAffinity: Literal["None", "ClientIP"] = "None"
    sessionAffinityConfig: SessionAffinityConfig | None = None
    externalIPs: list[Address] = Field(default_factory=list)
    loadBalancerIP: Address | None = None
    loadBalancerSourceRanges: list[Cidr] = Field(default_factory=list)
    healthCheckNodePort: NodePort | None = None
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="metadata.annotations; a LoadBalancer Service takes its ELB from kubernetes.io/elb.id "
                    "(or kubernetes.io/elb.autocreate) and kubernetes.io/elb.class, as on the service")


# -- Ingress (networking.k8s.io/v1), as full Kubernetes objects -------------------------------

# An Ingress rule's host: a DNS name (RFC 1123 subdomain), or `*.` followed by one; as the API
# server validates `spec.rules[].host` (no IP address, no port).
HOST_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
IngressHost = Annotated[str, StringConstraints(pattern=HOST_PATTERN, max_length=253)]


class ObjectMeta(Strict):
    name: Name
    namespace: Name = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ServiceBackendPort(Strict):
    """`number` or `name` (a port name of the Service), exactly one."""

    number: PortNumber | None = None
    name: Name | None = None


class IngressServiceBackend(Strict):
    name: Name
    port: ServiceBackendPort


class IngressBackend(Strict):
    service: IngressServiceBackend


class HTTPIngressPath(Strict):
    path: str | None = Field(default=None, description="an absolute path; required for Exact and Prefix")
    pathType: Literal["Exact", "Prefix", "ImplementationSpecific"]
    backend: IngressBackend


class HTTPIngressRuleValue(Strict):
    paths: list[HTTPIngressPath] = Field(min_length=1)


class IngressRule(Strict):
    host: IngressHost | None = Field(default=None, description="a DNS name, or *.<name> (one label); "
                                                               "default: every host")
    http: HTTPIngressRuleValue | None = None


class IngressTLS(Strict):
    hosts: list[IngressHost] = Field(default_factory=list)
    secretName: Name | None = Field(default=None, description="a kubernetes.io/tls Secret; the lab generates it")


class IngressSpec(Strict):
    ingressClassName: Name | None = Field(default=None, description="cce (the ELB's layer 7) or nginx "
                                                                     "(the NGINX Ingress Controller add-on)")
    defaultBackend: IngressBackend | None = None
    tls: list[IngressTLS] = Field(default_factory=list)
    rules: list[IngressRule] = Field(default_factory=list)


class Ingress(Strict):
    """A networking.k8s.io/v1 Ingress, as `kubectl apply` takes it."""

    apiVersion: Literal["networking.k8s.io/v1"]
    kind: Literal["Ingress"]
    metadata: ObjectMeta
    spec: IngressSpec


class NginxIngress(Strict):
    """The NGINX Ingress Controller add-on: nginx pods on the cluster's nodes (namespace
    kube-system) behind a LoadBalancer Service whose annotations choose its ELB."""

    replicas: int = Field(default=2, ge=1, le=20)
    nodes: list[Name] = Field(default_factory=list, description="nodes to spread over; default: all")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="of its LoadBalancer Service: kubernetes.io/elb.id or "
                                          "kubernetes.io/elb.autocreate, kubernetes.io/elb.class")
    externalTrafficPolicy: Literal["Cluster", "Local"] = "Cluster"


class ClusterBase(Strict):
    """What every cluster has, whatever its network model; each model's section adds its own
    fields (`netlab.models.<model>.Cluster`)."""

    name: Name
    model: str
    service_cidr: Cidr = IPv4Network("10.247.0.0/16")
    proxy_mode: ProxyMode = "iptables"
    nodes: list[Node] = Field(min_length=1)
    pods: list[Pod] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    ingresses: list[Ingress] = Field(default_factory=list, description="networking.k8s.io/v1 Ingress objects")
    nginx_ingress: NginxIngress | None = Field(default=None, description="the NGINX Ingress Controller add-on "
                                                                         "(serves ingressClassName: nginx)")
    node_security_groups: list[Name] | None = Field(
        default=None, min_length=1, max_length=MAX_PORT_GROUPS,
        description="security groups of the cluster's nodes instead of the default node group the service "
                    "creates (<cluster>-cce-node, which may be named here too)")


class NodeCidrFields(BaseModel):
    """The container CIDR cut into one block per node (the vpc and tunnel models)."""

    container_cidr: Cidr = IPv4Network("172.16.0.0/16")
    pod_cidr_size: int = Field(default=24, ge=8, le=29, description="prefix length of each node's pod CIDR")


class Check(Strict):
    """An explicit check on top of the generated matrix.

    `from` names a lab object: a host (`ecs-1`), a cluster's node or pod (`c1/web-1`).
    `to` names a destination as users think of it: a pod, node or host, optionally with a
    port (`c1/web-1:8080`); a Service's ClusterIP (`c1/svc/web`, `c1/svc/web:80`); a
    NodePort (`c1/node-1:30080`, or `c1/svc/web:nodeport` through the cluster's first node);
    or a lab address. What is asserted about the answer is separate: `backend` (who may
    answer) and `source` (what the server must see).
    """

    from_: str = Field(alias="from")
    to: str
    proto: Literal["tcp", "udp", "icmp", "http", "https"] | None = Field(
        default=None, description="default: the Service port's protocol, tcp when a port is given, else icmp")
    expect: Literal["reach", "blocked", "refused", "rejected", "unreachable", "dropped"] = Field(
        default="reach",
        description="reach; blocked (rejected, unreachable or dropped: any refusal by the network); "
                    "refused (the target answered that nothing listens); rejected (a rule on the way "
                    "answered); unreachable (no route, ICMP net/host unreachable); dropped (silence)")
    source: str | list[str] | None = Field(
        default=None, description="the source address (or object) the server must see; a list: any of them")
    host: IngressHost | None = Field(default=None, description="http/https: the Host header (and SNI)")
    path: str | None = Field(default=None, description="http/https: the request path (default /)")
    backend: str | list[str] | None = Field(
        default=None, description="the pod (or host) that must answer; a list: any of them. Default: "
                                  "the destination itself, or any endpoint of a Service or NodePort")
    size: int | None = Field(
        default=None, ge=28, le=65535,
        description="icmp: the IP packet's total length, sent with DF set (what a path MTU lets through)")

    @model_validator(mode="after")
    def _size_is_icmp(self) -> Check:
        if self.size is not None and self.proto != "icmp":
            raise ValueError("size: needs proto: icmp (a ping of that many bytes, DF set)")
        return self


Duration = Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?(us|ms|s)$")]
Percent = Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?%$")]
Rate = Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?(bit|kbit|mbit|gbit)$")]


class Impairment(Strict):
    """tc netem on the egress of one interface of a lab object (needs the netem module)."""

    link: str = Field(description="OBJECT:IFNAME, e.g. c1/node-1:eth0, ecs-1:eth0, vpc:v-c1-node-1")
    delay: Duration | None = Field(default=None, description="e.g. 20ms")
    jitter: Duration | None = Field(default=None, description="needs delay; e.g. 5ms")
    loss: Percent | None = Field(default=None, description="e.g. 1%")
    rate: Rate | None = Field(default=None, description="e.g. 100mbit")
