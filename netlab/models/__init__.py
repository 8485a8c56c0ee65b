"""Registry of container network models: one module per model, named here.

A model module provides `allocate(cluster, ctx)` (resolve-time IPAM for its pods and the
VPC routes it needs) and `ops(lab, cluster)` (the plan operations that wire its nodes and
pods), plus the `Traits` the checks use to know what the model promises.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODEL_NAMES = ("tunnel", "vpc")


def get(name: str) -> ModuleType:
    if name not in MODEL_NAMES:
        raise KeyError(name)
    return importlib.import_module(f"netlab.models.{name}")
