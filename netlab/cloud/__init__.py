"""Cloud objects around the clusters: the one place that lists them.

One module per cloud object, each with a `CloudObject` subclass (`netlab.cloud.base`) bound
to the module-level name `OBJECT`; the planner asks each, in this order, for its ops at
every stage, in this order (each stage's ops may use what an earlier object made): the VPCs,
the internet and its gateways, EIPs, NAT gateways, peering connections, ELBs (which bind
their own EIPs), and the Ingresses they and the clusters' nginx serve. Security groups join
as a module beside them.
"""

from __future__ import annotations

import importlib
from functools import cache

from netlab.cloud.base import CloudObject

OBJECT_NAMES = ("vpc", "internet", "eip", "natgw", "peering", "elb", "ingress")


@cache
def registry() -> tuple[CloudObject, ...]:
    return tuple(importlib.import_module(f"netlab.cloud.{name}").OBJECT for name in OBJECT_NAMES)
