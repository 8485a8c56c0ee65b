"""Registry of container network models: the one place that lists them.

Each model is a module here with one `NetworkModel` subclass (`netlab.models.base`) bound to
the module-level name `MODEL`. Adding a model means adding its module and its name below;
the scenario schema (its cluster section), resolve, the planner, the checks and `show` find
it through `get`.
"""

from __future__ import annotations

import importlib
from functools import cache

from netlab.models.base import NetworkModel

MODEL_NAMES = ("tunnel", "vpc")


@cache
def registry() -> dict[str, NetworkModel]:
    return {name: importlib.import_module(f"netlab.models.{name}").MODEL for name in MODEL_NAMES}


def get(name: str) -> NetworkModel:
    try:
        return registry()[name]
    except KeyError:
        raise KeyError(f"unknown network model {name!r}; models: {', '.join(MODEL_NAMES)}") from None
