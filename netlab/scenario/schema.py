"""The scenario schema: what a user may write in a scenario YAML file.

Strict pydantic models (unknown keys are errors). Field names follow the design's sketch
and, for Kubernetes objects, Kubernetes' own spelling. Defaults are the service's default
address plan (ARCHITECTURE.md section 1). Checks that need the whole file (names that must
exist, CIDRs that must not overlap, quotas) live in `netlab.lab.resolve`, which reports them
with the same file:line precision.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from netlab.models import MODEL_NAMES

# A DNS label, as Kubernetes object names are (RFC 1123), kept short enough that
# namespace names stay readable.
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)]
LabName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=24)]

ModelName = Literal[MODEL_NAMES]  # type: ignore[valid-type]
ProxyMode = Literal["iptables", "nftables", "ipvs"]
Switch = Literal["ovs", "linux-bridge"]
OvsDatapath = Literal["auto", "system", "netdev"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Port(Strict):
    """A port a pod or host serves (Kubernetes ContainerPort: port, protocol, name)."""

    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP"] = "TCP"
    name: Name | None = None


class Subnet(Strict):
    name: Name
    cidr: IPv4Network


class Vpc(Strict):
    cidr: IPv4Network = IPv4Network("192.168.0.0/16")
    route_quota: int = Field(default=200, ge=0, description="routes the VPC route table may hold")
    subnets: list[Subnet] = Field(
        default_factory=lambda: [Subnet(name="nodes", cidr=IPv4Network("192.168.0.0/24"))],
        min_length=1,
    )


class Host(Strict):
    """A VPC machine outside any cluster (an intranet client or server)."""

    name: Name
    subnet: Name | None = Field(default=None, description="default: the first subnet")
    ip: IPv4Address | None = Field(default=None, description="default: next free address")
    ports: list[Port] = Field(default_factory=lambda: [Port(port=80)])


class Node(Strict):
    name: Name
    subnet: Name | None = Field(default=None, description="default: the first subnet")
    ip: IPv4Address | None = Field(default=None, description="default: next free address")


class Pod(Strict):
    """A pod, or with `replicas` a pod set (`<name>-0` … spread round-robin over `node`)."""

    name: Name
    namespace: Name = "default"
    node: Name | list[Name] = Field(description="a node; for a pod set, one node or a list to spread over")
    replicas: int | None = Field(default=None, ge=0, le=1000,
                                 description="make this a pod set of N pods; `netlab scale` changes N")
    labels: dict[str, str] = Field(default_factory=dict)
    ports: list[Port] = Field(default_factory=list)


class ServicePort(Strict):
    name: Name | None = None
    protocol: Literal["TCP", "UDP"] = "TCP"
    port: int = Field(ge=1, le=65535)
    targetPort: int | Name | None = Field(default=None, description="default: port")
    nodePort: int | None = Field(default=None, ge=1, le=65535, description="default: allocated (NodePort, LoadBalancer)")


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
    clusterIP: IPv4Address | None = Field(default=None, description="default: allocated from service_cidr")
    externalTrafficPolicy: Literal["Cluster", "Local"] = "Cluster"
    internalTrafficPolicy: Literal["Cluster", "Local"] = "Cluster"
    sessionAffinity: Literal["None", "ClientIP"] = "None"
    sessionAffinityConfig: SessionAffinityConfig | None = None
    externalIPs: list[IPv4Address] = Field(default_factory=list)
    loadBalancerIP: IPv4Address | None = None
    loadBalancerSourceRanges: list[IPv4Network] = Field(default_factory=list)
    healthCheckNodePort: int | None = Field(default=None, ge=1, le=65535)


class Cluster(Strict):
    name: Name
    model: ModelName  # type: ignore[valid-type]
    container_cidr: IPv4Network = IPv4Network("172.16.0.0/16")
    service_cidr: IPv4Network = IPv4Network("10.247.0.0/16")
    pod_cidr_size: int = Field(default=24, ge=8, le=29, description="prefix length of each node's pod CIDR")
    proxy_mode: ProxyMode = "iptables"
    nodes: list[Node] = Field(min_length=1)
    pods: list[Pod] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    # model: tunnel only (see MODEL_FIELDS)
    switch: Switch = Field(default="ovs", description="tunnel model: the virtual switch on each node "
                                                      "(ovs: Open vSwitch; linux-bridge: kernel VXLAN as Flannel)")
    vni: int = Field(default=1, ge=1, le=16777215, description="tunnel model: the VXLAN network identifier")
    ovs_datapath: OvsDatapath = Field(
        default="auto", description="tunnel model with switch ovs: system (the openvswitch kernel module), "
                                    "netdev (userspace), or auto (system when the kernel has it)")


# Cluster fields that only some models accept; resolve rejects them elsewhere.
MODEL_FIELDS: dict[str, tuple[str, ...]] = {"switch": ("tunnel",), "vni": ("tunnel",),
                                            "ovs_datapath": ("tunnel",)}


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
    proto: Literal["tcp", "udp", "icmp"] | None = Field(
        default=None, description="default: the Service port's protocol, tcp when a port is given, else icmp")
    expect: Literal["reach", "blocked", "refused", "rejected", "unreachable", "dropped"] = Field(
        default="reach",
        description="reach; blocked (rejected, unreachable or dropped: any refusal by the network); "
                    "refused (the target answered that nothing listens); rejected (a rule on the way "
                    "answered); unreachable (no route, ICMP net/host unreachable); dropped (silence)")
    source: str | list[str] | None = Field(
        default=None, description="the source address (or object) the server must see; a list: any of them")
    backend: str | list[str] | None = Field(
        default=None, description="the pod (or host) that must answer; a list: any of them. Default: "
                                  "the destination itself, or any endpoint of a Service or NodePort")


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


class Scenario(Strict):
    name: LabName
    description: str = ""
    vpc: Vpc = Field(default_factory=Vpc)
    hosts: list[Host] = Field(default_factory=list)
    clusters: list[Cluster] = Field(default_factory=list)
    impair: list[Impairment] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)


def json_schema() -> dict:
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "netlab scenario"
    return schema
