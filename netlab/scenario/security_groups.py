"""What a user writes about security groups: the groups (cloud objects, scenario level) and
the Kubernetes objects that bind them to pods.

A group is the VPC's stateful packet filter for the ports bound to it: inbound and outbound
rules (protocol, port range, remote CIDR or remote group), the fields of the cloud's own
API (`remote_ip_prefix`, `remote_group`). A pod's port admits a packet when any rule of any
of its groups does; replies to admitted traffic always pass.

`SecurityGroup` objects (the service's `crd.yangtse.cni/v1` kind, in an eni cluster's
`securityGroups:`) select pods by label and name the groups they get, at most five per pod.
`netlab.cloud.secgroup` renders and enforces them; `netlab.lab.resolve` checks the
references.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from netlab.scenario.types import Cidr, Name, Strict

MAX_GROUPS_PER_POD = 5
ANYWHERE = IPv4Network("0.0.0.0/0")
PORT_RANGE_PATTERN = r"^[0-9]{1,5}-[0-9]{1,5}$"


def _port_spec(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    if isinstance(value, str) and re.match(PORT_RANGE_PATTERN, value):
        return value
    raise ValueError(f"{value!r} is not a port (1-65535) or a range LOW-HIGH such as 8000-8100")


# A port or a range of ports, as the cloud's API takes them: 8080, "8000-8100".
PortSpec = Annotated[int | str, BeforeValidator(_port_spec),
                     WithJsonSchema({"oneOf": [{"type": "integer", "minimum": 1, "maximum": 65535},
                                               {"type": "string", "pattern": PORT_RANGE_PATTERN}]})]


class Rule(Strict):
    """One rule: what it admits (protocol and destination port) from (inbound) or to
    (outbound) where: a CIDR or the members of a group."""

    protocol: Literal["tcp", "udp", "icmp", "all"] = "all"
    port: PortSpec | None = Field(
        default=None, description="tcp/udp: a port or a range LOW-HIGH; default every port")
    remote_ip_prefix: Cidr | None = Field(default=None, description="default 0.0.0.0/0 unless remote_group")
    remote_group: Name | None = Field(default=None, description="the members of this group")
    description: str = ""

    def problem(self) -> tuple[str, str] | None:
        """(field, message) when the fields contradict each other."""
        if self.remote_ip_prefix is not None and self.remote_group is not None:
            return "remote_group", "give remote_ip_prefix or remote_group, not both"
        if self.port is not None and self.protocol not in ("tcp", "udp"):
            return "port", f"a port needs protocol tcp or udp, not {self.protocol}"
        low, high = self.ports
        if not 1 <= low <= high <= 65535:
            return "port", f"port range {self.port} must be LOW-HIGH within 1-65535"
        return None

    @property
    def ports(self) -> tuple[int, int]:
        """(low, high); every port when none is given."""
        if self.port is None:
            return 1, 65535
        if isinstance(self.port, int):
            return self.port, self.port
        low, _, high = self.port.partition("-")
        return int(low), int(high)

    @property
    def remote(self) -> IPv4Network | str:
        """A CIDR, or a group's name."""
        return self.remote_group or self.remote_ip_prefix or ANYWHERE

    def text(self, direction: str) -> str:
        """`tcp 8080 from 192.168.1.0/24`: how the rule reads in reports and comments."""
        port = "" if self.port is None else f" {self.port}"
        where = f"group {self.remote_group}" if self.remote_group else str(self.remote)
        return f"{self.protocol}{port} {'from' if direction == 'inbound' else 'to'} {where}"


def _all_out() -> list[Rule]:
    return [Rule(protocol="all", remote_ip_prefix=ANYWHERE)]


class SecurityGroup(Strict):
    """A security group (a cloud object of the lab)."""

    name: Name
    description: str = ""
    inbound: list[Rule] = Field(default_factory=list, description="default: nothing is admitted")
    outbound: list[Rule] = Field(default_factory=_all_out, description="default: everything may leave")

    def rules(self, direction: str) -> list[Rule]:
        return self.inbound if direction == "inbound" else self.outbound


class LabelSelector(Strict):
    matchLabels: dict[str, str] = Field(default_factory=dict)

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.matchLabels.items())


class SecurityGroupBinding(Strict):
    """The service's `SecurityGroup` object (crd.yangtse.cni/v1): pods of its namespace that
    match `podSelector` get these groups (an empty selector selects every pod)."""

    name: Name
    namespace: Name = "default"
    podSelector: LabelSelector = Field(default_factory=LabelSelector)
    securityGroups: list[Name] = Field(min_length=1, max_length=MAX_GROUPS_PER_POD)
