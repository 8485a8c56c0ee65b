"""The scenario schema: what a user may write in a scenario YAML file.

The whole file is assembled here from the shared building blocks (`netlab.scenario.types`)
and from each network model's own cluster section: a cluster is one of the models'
`Cluster` classes, chosen by its `model:` field (a discriminated union, `oneOf` in the JSON
Schema), so a model's fields live with the model and a new model adds its section by
registering (`netlab.models`). Checks that need the whole file (names that must exist,
CIDRs that must not overlap, quotas) live in `netlab.lab.resolve`, which reports them with
the same file:line precision.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from netlab.cloud.eip import Eip
from netlab.cloud.elb import Elb
from netlab.cloud.internet import Internet
from netlab.cloud.natgw import NatGateway
from netlab.cloud.peering import Peering
from netlab.models import registry
from netlab.scenario.types import (Check, ClusterBase, Host, Impairment, LabName, Strict, Vpc,  # noqa: F401
                                   LAB_NAME_MAX, NAME_PATTERN, Name, Port, Service, ServicePort)

# One section per registered model, told apart by `model:`.
Cluster = Annotated[Union[tuple(m.Cluster for m in registry().values())],  # type: ignore[misc]
                    Field(discriminator="model")]


class Scenario(Strict):
    name: LabName
    description: str = ""
    vpc: Vpc = Field(default_factory=Vpc, description="the lab's (first) VPC")
    vpcs: list[Vpc] = Field(default_factory=list,
                            description="more VPCs, each with its own name, router and subnets (peering)")
    hosts: list[Host] = Field(default_factory=list)
    clusters: list[Cluster] = Field(default_factory=list)  # type: ignore[valid-type]
    impair: list[Impairment] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    # The cloud around the clusters (netlab/cloud/).
    internet: Internet | None = Field(default=None, description="public clients and servers, and the EIP pool")
    eips: list[Eip] = Field(default_factory=list, description="EIPs bound to nodes, VPC hosts, eni pods")
    nat_gateways: list[NatGateway] = Field(default_factory=list)
    peerings: list[Peering] = Field(default_factory=list)
    elbs: list[Elb] = Field(default_factory=list, description="load balancers (shared or dedicated) for "
                                                               "LoadBalancer Services and Ingress")

    def all_vpcs(self) -> list[Vpc]:
        return [self.vpc] + list(self.vpcs)


def error_path(loc: tuple) -> tuple:
    """A validation error's location as the user wrote it: pydantic inserts the union's tag
    (`clusters[0].tunnel.switch`), which is not a key of the file."""
    out, models = [], set(registry())
    for i, part in enumerate(loc):
        if isinstance(part, str) and part in models and i >= 2 and loc[i - 2] == "clusters":
            continue
        out.append(part)
    return tuple(out)


def model_of_field(key: str) -> list[str]:
    """The models whose cluster section has this field (for 'applies to model X only')."""
    return [name for name, m in registry().items() if key in m.Cluster.model_fields
            and key not in ClusterBase.model_fields]


def json_schema() -> dict:
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "netlab scenario"
    return schema
