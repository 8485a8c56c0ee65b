"""The resolved lab: every name, address and route decided, nothing left to default.

`resolve` produces it from a scenario; `plan` turns it into operations; the state
directory stores it as lab.json so that `check`, `status` and `down` work from it alone.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SerializeAsAny

from netlab.scenario.security_groups import SecurityGroup
from netlab.scenario.types import Check, Ingress, Port, Service

Kind = Literal["vpc", "internet", "igw", "natgw", "elb", "host", "node", "pod"]


class Resolved(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelInfo(Resolved):
    """A network model's own resolved data for a cluster, node or pod (what it decided at
    resolve time and needs again to plan, check or show). Each model subclasses it in its
    own module; `type` names the subclass so that lab.json reads back into it."""

    type: str
    _types: ClassVar[dict[str, type[ModelInfo]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        ModelInfo._types[cls.model_fields["type"].default] = cls


def _model_info(value: Any) -> Any:
    if isinstance(value, dict):
        from netlab.models import registry

        registry()  # imports every model module, which registers its info types

        kind = ModelInfo._types.get(value.get("type", ""))
        if kind is None:
            raise ValueError(f"unknown model data type {value.get('type')!r}")
        return kind.model_validate(value)
    return value


# A field holding some model's ModelInfo subclass, read back as that subclass.
Network = Annotated[SerializeAsAny[ModelInfo] | None, BeforeValidator(_model_info)]


class Attachment(Resolved):
    """A machine's port on a VPC subnet: `eth0` in its namespace, `port` on the subnet bridge."""

    subnet: str
    address: IPv4Interface
    gateway: IPv4Address
    port: str  # ifname of the veth peer inside the VPC router namespace

    @property
    def ip(self) -> IPv4Address:
        return self.address.ip


class SubnetInfo(Resolved):
    name: str
    cidr: IPv4Network
    gateway: IPv4Interface
    bridge: str


class VpcRoute(Resolved):
    destination: IPv4Network
    nexthop: IPv4Address
    owner: str  # what asked for it, e.g. "c1/node-1", "vpc.routes[0]", "natgw/ngw"
    target: str | None = None  # a named next hop: "peering/<name>", "natgw/<name>"


class VpcInfo(Resolved):
    name: str
    netns: str
    cidr: IPv4Network
    route_quota: int
    subnets: list[SubnetInfo]
    routes: list[VpcRoute] = Field(default_factory=list)

    def subnet(self, name: str) -> SubnetInfo:
        return next(s for s in self.subnets if s.name == name)

    def lookup(self, ip: IPv4Address) -> SubnetInfo | VpcRoute | None:
        """Where the route table sends a packet for `ip`: one of its subnets, the longest
        matching route (a node's pod CIDR, a peering, the NAT gateway), or nowhere."""
        local = next((s for s in self.subnets if ip in s.cidr), None)
        if local is not None:
            return local
        matches = [r for r in self.routes if ip in r.destination]
        return max(matches, key=lambda r: r.destination.prefixlen, default=None)


class HostInfo(Resolved):
    name: str
    netns: str
    eth0: Attachment
    ports: list[Port]
    security_groups: list[str] = Field(default_factory=list)  # bound to its port; none: unfiltered


class NodeInfo(Resolved):
    name: str
    cluster: str
    netns: str
    eth0: Attachment
    pod_cidr: IPv4Network | None = None
    pod_gateway: IPv4Address | None = None
    network: Network = None  # the model's own per-node data
    security_groups: list[str] = Field(default_factory=list)  # bound to its port (eth0's VPC side)


class PodInfo(Resolved):
    name: str
    namespace: str = "default"
    cluster: str
    node: str
    netns: str
    ip: IPv4Address
    host_ifname: str  # the node-side end of the pod's interface
    labels: dict[str, str]
    ports: list[Port]
    set: str | None = None  # the pod set it belongs to, if any
    hostNetwork: bool = False  # in its node's namespace, on the node IP (netns, ip are the node's)
    network: Network = None  # the model's own per-pod data


class PodSetInfo(Resolved):
    """A pod set as declared (what `netlab scale` needs to add or remove replicas)."""

    name: str
    namespace: str
    nodes: list[str]
    replicas: int
    labels: dict[str, str]
    ports: list[Port]
    hostNetwork: bool = False


class LoadBalancerIngressInfo(Resolved):
    """An entry of a Service's `status.loadBalancer.ingress`, as the cloud controller
    publishes it: `ip_mode` Proxy (KEP-1860) when the traffic must go through the load
    balancer (`kubernetes.io/elb.pass-through`), so kube-proxy does not short-circuit it."""

    ip: IPv4Address
    ip_mode: Literal["VIP", "Proxy"] | None = None


class ServiceInfo(Resolved):
    """A Service with what the API server would have filled in: clusterIP, nodePorts,
    healthCheckNodePort; and what the cloud controller fills in: its ELB and
    `status.loadBalancer.ingress`."""

    spec: Service
    cluster_ip: IPv4Address
    elb: str | None = None  # the ELB carrying its listeners (LoadBalancer Services)
    load_balancer: list[LoadBalancerIngressInfo] = Field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name


class ClusterInfo(Resolved):
    name: str
    model: str
    container_cidr: IPv4Network  # where pods take their addresses (kube-proxy's cluster CIDR)
    service_cidr: IPv4Network
    pod_cidr_size: int | None = None  # per-node pod CIDR blocks, for models that cut them
    proxy_mode: str
    mtu: int
    nodes: list[NodeInfo]
    pods: list[PodInfo]
    pod_sets: list[PodSetInfo] = Field(default_factory=list)
    services: list[ServiceInfo] = Field(default_factory=list)
    ingresses: list[IngressInfo] = Field(default_factory=list)
    network: Network = None  # the model's own per-cluster data (e.g. the tunnel's VNI)
    node_group: str | None = None  # the default node security group the service created for it

    def node(self, name: str) -> NodeInfo:
        return next(n for n in self.nodes if n.name == name)

    def netns_pods(self) -> list[PodInfo]:
        """The pods with a network namespace of their own (hostNetwork pods share their node's)."""
        return [p for p in self.pods if not p.hostNetwork]

    def pods_on(self, node: str) -> list[PodInfo]:
        """The pods on a node that have a network of their own (what a model wires)."""
        return [p for p in self.pods if p.node == node and not p.hostNetwork]


class IngressInfo(Resolved):
    """An Ingress and who serves it: class `cce` on an ELB listener (layer 7 of the ELB),
    class `nginx` on the cluster's NGINX Ingress Controller pods (behind their own ELB)."""

    spec: Ingress
    ingress_class: Literal["cce", "nginx"]
    elb: str  # the ELB a client reaches it through
    port: int  # that ELB's listener port (class nginx: the controller Service's port)
    tls: bool  # served over HTTPS on `port`

    @property
    def name(self) -> str:
        return self.spec.metadata.name


class Link(Resolved):
    """A point-to-point veth between two lab namespaces (the cloud's own links: internet
    gateway, NAT gateway, peering), addressed from the transit range 169.254.0.0/16."""

    netns: str
    ifname: str
    address: IPv4Interface
    peer_netns: str
    peer_ifname: str
    peer_address: IPv4Interface


class PublicHostInfo(Resolved):
    """A client or server on the internet (`internet/<name>`): its own namespace, `eth0` on
    the internet's bridge."""

    name: str
    netns: str
    eth0: Attachment  # subnet "internet"; port: the bridge port in the internet namespace
    ports: list[Port]

    @property
    def ref(self) -> str:
        return f"internet/{self.name}"


class InternetInfo(Resolved):
    name: str = "internet"
    netns: str
    cidr: IPv4Network  # public hosts' addresses
    gateway: IPv4Interface  # on the bridge
    bridge: str
    eip_pool: IPv4Network
    hosts: list[PublicHostInfo] = Field(default_factory=list)


class IgwInfo(Resolved):
    """A VPC's internet gateway: a namespace between its router and the internet, where EIPs
    are translated 1:1."""

    vpc: str
    netns: str
    vpc_link: Link  # igw side first; the peer end is in the VPC router
    internet_link: Link  # igw side first; the peer end is in the internet namespace

    @property
    def ref(self) -> str:
        return f"igw/{self.vpc}"


class EipInfo(Resolved):
    ip: IPv4Address
    bind: str  # as written: "c1/node-1", "ecs-1", "c1/web-0", "natgw/ngw", "elb/lb-1"
    kind: Literal["node", "host", "pod", "natgw", "elb"]
    private: IPv4Address | None  # the bound port's address (None for a NAT gateway's own)
    vpc: str


class SnatRuleInfo(Resolved):
    source: IPv4Network
    subnet: str  # the VPC subnet it covers
    eip: IPv4Address


class NatGatewayInfo(Resolved):
    name: str
    vpc: str
    netns: str
    eips: list[IPv4Address]
    snat_rules: list[SnatRuleInfo] = Field(default_factory=list)
    vpc_link: Link  # natgw side first; the peer end is in the VPC router
    igw_link: Link  # natgw side first; the peer end is in the VPC's internet gateway

    @property
    def ref(self) -> str:
        return f"natgw/{self.name}"


class HealthCheckInfo(Resolved):
    """How the ELB probes a backend server group's members (the service's
    `kubernetes.io/elb.health-check-option`: delay = interval, max_retries = threshold)."""

    protocol: Literal["TCP", "UDP", "HTTP"]
    delay: int  # seconds between two probes of a member
    timeout: int  # seconds a probe may take
    max_retries: int  # consecutive results that change a member's state
    path: str = "/"  # HTTP


class MemberInfo(Resolved):
    """A backend server: a node's nodePort, or (passthrough) a pod's targetPort."""

    address: IPv4Address
    port: int
    target: str  # what it is: "c1/node-1", "c1/web-0"

    @property
    def key(self) -> str:
        return f"{self.address}:{self.port}"


class PoolInfo(Resolved):
    """A backend server group: where a listener (or an L7 route) sends its traffic."""

    name: str  # e.g. "c1/default/web:80/TCP"
    protocol: Literal["TCP", "UDP"]
    algorithm: Literal["ROUND_ROBIN", "SOURCE_IP"] = "ROUND_ROBIN"
    members: list[MemberInfo]
    health: HealthCheckInfo | None  # None: health checks off for this group


class ListenerInfo(Resolved):
    """An ELB listener: layer 4 (TCP, UDP: forwarded to a pool) or layer 7 (HTTP, HTTPS: the
    Ingress rules of class cce bound to this port, served by the ELB's nginx)."""

    protocol: Literal["TCP", "UDP", "HTTP", "HTTPS"]
    port: int
    pool: str | None = None  # layer 4
    service: str | None = None  # layer 4: the Service it serves, "c1/default/web"


class ElbInfo(Resolved):
    """A load balancer: a namespace on a VPC subnet holding its private address (VIP);
    `shared` ones reach backends from their backend-side address (100.125.0.0/16),
    `dedicated` ones with the client's own address."""

    name: str
    type: Literal["shared", "dedicated"]
    vpc: str
    netns: str
    eth0: Attachment
    mac: str  # eth0's address: the VPC router steers a dedicated ELB's replies by it
    backend_address: IPv4Address | None = None  # shared: the source backends see
    datapath: Literal["nftables", "ipvs"]  # layer 4
    mark: int  # the VPC router's conntrack mark for this ELB's backend connections
    listeners: list[ListenerInfo] = Field(default_factory=list)
    pools: list[PoolInfo] = Field(default_factory=list)
    autocreated_by: str | None = None  # a Service with kubernetes.io/elb.autocreate

    @property
    def ref(self) -> str:
        return f"elb/{self.name}"

    @property
    def ip(self) -> IPv4Address:
        return self.eth0.ip

    def pool(self, name: str) -> PoolInfo:
        return next(p for p in self.pools if p.name == name)


class PeeringInfo(Resolved):
    name: str
    vpcs: list[str]  # the two VPCs, as written
    link: Link  # the first VPC's side first

    def side(self, vpc: str) -> tuple[str, IPv4Interface, IPv4Address]:
        """(ifname, own address, next hop) of the peering in `vpc`'s router."""
        ln = self.link
        if vpc == self.vpcs[0]:
            return ln.ifname, ln.address, ln.peer_address.ip
        return ln.peer_ifname, ln.peer_address, ln.address.ip


class ImpairmentInfo(Resolved):
    """tc netem on one interface, and the neighbour across that link (for the delay check)."""

    link: str  # as the user wrote it: OBJECT:IFNAME
    netns: str
    ifname: str
    peer: IPv4Address  # the address at the other end of the link
    delay: str | None = None
    jitter: str | None = None
    loss: str | None = None
    rate: str | None = None

    def netem_args(self) -> list[str]:
        args: list[str] = []
        if self.delay:
            args += ["delay", self.delay] + ([self.jitter] if self.jitter else [])
        if self.loss:
            args += ["loss", self.loss]
        if self.rate:
            args += ["rate", self.rate]
        return args

    @property
    def delay_ms(self) -> float:
        return duration_ms(self.delay) if self.delay else 0.0


def duration_ms(text: str) -> float:
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(text)


class MachineInfo(Resolved):
    """One machine of a lab split across several (docs/scale-out.md): its address on the
    network that joins the machines (the VXLAN underlay) and the namespaces it holds."""

    name: str
    address: IPv4Address
    objects: list[str]  # as the placement file names them: `ecs-1`, `c1/node-1`
    netns: list[str]    # theirs, with the pods of its nodes


class PlacementInfo(Resolved):
    """Where a split lab's objects live, and which machine this part is (`machine`).
    Namespaces no machine holds (the VPC routers) are built on every machine."""

    machine: str
    machines: list[MachineInfo]

    def this(self) -> MachineInfo:
        return next(m for m in self.machines if m.name == self.machine)

    def elsewhere(self) -> set[str]:
        return {ns for m in self.machines if m.name != self.machine for ns in m.netns}


class Lab(Resolved):
    name: str
    description: str = ""
    scenario_file: str
    # Kernel features detected when the lab was resolved (netlab.capabilities names); the
    # datapaths chosen from them stay the same for the life of the lab.
    features: list[str] = Field(default_factory=list)
    underlay_mtu: int
    vpcs: list[VpcInfo]
    hosts: list[HostInfo]
    clusters: list[ClusterInfo]
    checks: list[Check]
    impairments: list[ImpairmentInfo] = Field(default_factory=list)
    # The cloud around the clusters (netlab/cloud/): present when the scenario asks.
    internet: InternetInfo | None = None
    igws: list[IgwInfo] = Field(default_factory=list)
    eips: list[EipInfo] = Field(default_factory=list)
    nat_gateways: list[NatGatewayInfo] = Field(default_factory=list)
    peerings: list[PeeringInfo] = Field(default_factory=list)
    elbs: list[ElbInfo] = Field(default_factory=list)
    # The scenario's security groups and those the models create (an eni cluster's default
    # group); which ports they bind to is the binding's data (`netlab.cloud.secgroup.members`).
    security_groups: list[SecurityGroup] = Field(default_factory=list)
    # Set when this is one part of a lab split across machines (`netlab up --placement`).
    placement: PlacementInfo | None = None

    def security_group(self, name: str) -> SecurityGroup | None:
        return next((g for g in self.security_groups if g.name == name), None)

    @property
    def vpc(self) -> VpcInfo:
        """The lab's first VPC (the one a scenario's `vpc:` describes)."""
        return self.vpcs[0]

    def vpc_of_subnet(self, subnet: str) -> VpcInfo:
        return next(v for v in self.vpcs if any(s.name == subnet for s in v.subnets))

    def vpc_named(self, name: str) -> VpcInfo:
        return next(v for v in self.vpcs if v.name == name)

    def vpc_of_cluster(self, cluster: ClusterInfo) -> VpcInfo:
        """The VPC a cluster's nodes live in (that of its first node)."""
        return self.vpc_of_subnet(cluster.nodes[0].eth0.subnet)

    def hosts_in(self, vpc: VpcInfo) -> list[HostInfo]:
        return [h for h in self.hosts if any(s.name == h.eth0.subnet for s in vpc.subnets)]

    def public_hosts(self) -> list[PublicHostInfo]:
        return self.internet.hosts if self.internet else []

    def eips_of(self, bind: str) -> list[IPv4Address]:
        """The EIPs bound to an object (`c1/node-1`, `ecs-1`, `natgw/ngw`)."""
        return [e.ip for e in self.eips if e.bind == bind]

    def subnet(self, name: str) -> SubnetInfo:
        return self.vpc_of_subnet(name).subnet(name)

    def cluster(self, name: str) -> ClusterInfo:
        return next(c for c in self.clusters if c.name == name)

    def elb(self, name: str) -> ElbInfo:
        return next(e for e in self.elbs if e.name == name)

    def netns_names(self) -> list[str]:
        """Every namespace the lab owns (on this machine, for a split lab), in creation order."""
        return [netns for _, _, _, netns in self.objects()]

    def is_local(self, netns: str) -> bool:
        """Whether namespace `netns` is built on this machine (always, unless the lab is split)."""
        return self.placement is None or netns not in self.placement.elsewhere()

    def objects(self) -> list[tuple[Kind, str | None, str, str]]:
        """(kind, cluster, name, netns) for every machine-like object of the lab (on this
        machine, for a split lab)."""
        out: list[tuple[Kind, str | None, str, str]] = [("vpc", None, v.name, v.netns) for v in self.vpcs]
        if self.internet:
            out.append(("internet", None, self.internet.name, self.internet.netns))
        out += [("igw", None, g.ref, g.netns) for g in self.igws]
        out += [("natgw", None, n.ref, n.netns) for n in self.nat_gateways]
        out += [("elb", None, e.ref, e.netns) for e in self.elbs]
        out += [("host", None, h.name, h.netns) for h in self.hosts]
        out += [("host", None, h.ref, h.netns) for h in self.public_hosts()]
        for c in self.clusters:
            out += [("node", c.name, n.name, n.netns) for n in c.nodes]
            out += [("pod", c.name, p.name, p.netns) for p in c.netns_pods()]  # hostNetwork: the node
        return [o for o in out if self.is_local(o[3])]
