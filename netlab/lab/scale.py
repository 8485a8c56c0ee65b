"""Scale a pod set of a running lab (pure): the lab after the change and the operations
that get there, without rebuilding anything that stays.

New replicas are placed round-robin like the first ones and take the first free address of
their node's pod CIDR; removed replicas are the highest-numbered, as a StatefulSet scales
down.
"""

from __future__ import annotations

from dataclasses import dataclass

from netlab import models, proxy
from netlab.errors import UserError
from netlab.lab.model import Lab, PodInfo
from netlab.lab.pods import PodRequest, placement, replica_name
from netlab.models.common import pod_info
from netlab.plan.ops import Op


@dataclass
class Change:
    lab: Lab
    added: list[PodInfo]
    removed: list[PodInfo]
    # In order: build the new pods, re-sync kube-proxy on every node, remove the old pods.
    steps: list[list[Op]]

    @property
    def ops(self) -> list[Op]:
        return [op for step in self.steps for op in step]


def scale(lab: Lab, ref: str, replicas: int) -> Change:
    cluster_name, _, set_name = ref.partition("/")
    cluster = next((c for c in lab.clusters if c.name == cluster_name), None)
    if cluster is None or not set_name:
        raise UserError(f"'{ref}': write CLUSTER/POD-SET; clusters: {', '.join(c.name for c in lab.clusters)}")
    pod_set = next((s for s in cluster.pod_sets if s.name == set_name), None)
    if pod_set is None:
        sets = ", ".join(s.name for s in cluster.pod_sets) or "none (give a pod `replicas` in the scenario)"
        raise UserError(f"cluster '{cluster_name}' has no pod set '{set_name}'; pod sets: {sets}")
    if not 0 <= replicas <= 1000:
        raise UserError("--replicas must be between 0 and 1000")
    model = models.get(cluster.model)
    members = {p.name: p for p in cluster.pods if p.set == set_name}
    removed = [members[replica_name(set_name, i)] for i in range(replicas, pod_set.replicas)]
    used = {p.ip for p in cluster.pods if p not in removed}
    added = []
    for i in range(pod_set.replicas, replicas):
        req = PodRequest(replica_name(set_name, i), pod_set.namespace, placement(pod_set.nodes, i),
                         pod_set.labels, pod_set.ports, set_name, ())
        ip = model.pod_address(cluster, cluster.node(req.node), used)
        if ip is None:
            raise UserError(f"node '{req.node}' has no pod address left for {req.name}")
        used.add(ip)
        added.append(pod_info(lab.name, cluster.name, req, ip))

    new_cluster = cluster.model_copy(update={
        "pods": [p for p in cluster.pods if p not in removed] + added,
        "pod_sets": [s.model_copy(update={"replicas": replicas}) if s.name == set_name else s
                     for s in cluster.pod_sets]})
    new_lab = lab.model_copy(update={"clusters": [new_cluster if c.name == cluster.name else c
                                                  for c in lab.clusters]})
    build = [op for pod in added for op in model.pod_ops(new_lab, new_cluster, pod)]
    remove = [op for pod in removed for op in model.pod_remove_ops(new_lab, new_cluster, pod)]
    sync = proxy.cluster_ops(new_lab, new_cluster, resync=True) if added or removed else []
    return Change(new_lab, added, removed, [build, sync, remove])
