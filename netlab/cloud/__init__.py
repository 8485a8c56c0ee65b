"""Cloud objects around the clusters: the one place that lists them.

One module per cloud object, each with a `CloudObject` subclass (`netlab.cloud.base`) bound
to the module-level name `OBJECT`; the planner asks each, in this order, for its ops at
every stage. The VPC is here today; the internet gateway, EIPs, NAT gateway, ELB, peering
and security groups join as modules beside it.
"""

from __future__ import annotations

import importlib
from functools import cache

from netlab.cloud.base import CloudObject

OBJECT_NAMES = ("vpc",)


@cache
def registry() -> tuple[CloudObject, ...]:
    return tuple(importlib.import_module(f"netlab.cloud.{name}").OBJECT for name in OBJECT_NAMES)
