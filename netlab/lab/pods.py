"""Pods and pod sets: a scenario's pod entries expanded into the pods a lab runs (pure).

An entry with `replicas: N` is a pod set, like a Deployment's pods: `<name>-0` … `<name>-(N-1)`,
spread round-robin over its nodes. `netlab scale` changes N on a running lab.
"""

from __future__ import annotations

from dataclasses import dataclass

from netlab.scenario.types import ClusterBase as Cluster, Path_, Port


@dataclass(frozen=True)
class PodRequest:
    name: str
    namespace: str
    node: str
    labels: dict[str, str]
    ports: list[Port]
    set: str | None
    path: Path_  # the scenario entry it came from


def replica_name(set_name: str, index: int) -> str:
    return f"{set_name}-{index}"


def placement(nodes: list[str], index: int) -> str:
    return nodes[index % len(nodes)]


def expand(spec: Cluster, path: Path_, ctx) -> list[PodRequest]:
    out = []
    for i, pod in enumerate(spec.pods):
        entry = path + ("pods", i)
        nodes = pod.node if isinstance(pod.node, list) else [pod.node]
        if pod.replicas is None:
            if len(nodes) != 1:
                raise ctx.error(entry + ("node",), "a list of nodes needs `replicas` (a pod set); "
                                                   "a single pod runs on one node")
            out.append(PodRequest(pod.name, pod.namespace, nodes[0], pod.labels, pod.ports, None, entry))
            continue
        if not nodes:
            raise ctx.error(entry + ("node",), "a pod set needs at least one node")
        out += [PodRequest(replica_name(pod.name, r), pod.namespace, placement(nodes, r), pod.labels,
                           pod.ports, pod.name, entry) for r in range(pod.replicas)]
    return out
