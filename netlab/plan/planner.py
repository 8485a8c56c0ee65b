"""The planner: a resolved lab → its whole plan, assembled from the registries.

Order (what the kernel accepts: namespaces and devices before the addresses and routes
that use them, routes before the processes that serve):

1. every cloud object's `fabric` (VPC routers and subnets, ...);
2. every cluster: its network model's ops (`netlab.models`), then kube-proxy on each of its
   nodes (`netlab.proxy`);
3. the cloud objects' `machines`, `routes` and `edge` stages;
4. link impairments (tc netem);
5. the pod agent (one per lab: it serves every pod's and host's ports,
   `netlab.probe.agent`), then the cloud objects' `processes` (nginx, the ELBs' health
   checker, which probes what the agent serves).

A lab split across machines (`lab.placement`) keeps this machine's part of that plan
(`netlab.plan.placement`).

Pure: nothing here touches the kernel.
"""

from __future__ import annotations

from netlab import cloud, models, paths, proxy
from netlab.lab.model import Lab
from netlab.plan import placement
from netlab.plan.ops import Netem, Op, Plan, StartProcess, WriteFile
from netlab.probe import listeners


def cluster_ops(lab: Lab) -> list[Op]:
    out: list[Op] = []
    for cluster in lab.clusters:
        out += models.get(cluster.model).ops(lab, cluster)
        out += proxy.cluster_ops(lab, cluster)
    return out


def agent_ops(lab: Lab) -> list[Op]:
    """The pod agent and its listener table (`netlab.probe.listeners`)."""
    table = str(paths.lab_dir(lab.name) / listeners.AGENT_FILE)
    return [WriteFile(lab.vpc.netns, table, listeners.table(lab)),
            StartProcess(lab.vpc.netns, name="agent", argv=("netlab-agent", lab.name), ready_file="agent.ready")]


def build(lab: Lab) -> Plan:
    plan = Plan(lab.name)
    objects = cloud.registry()
    plan.ops += [op for obj in objects for op in obj.fabric(lab)]
    plan.ops += cluster_ops(lab)
    for stage in ("machines", "routes", "edge"):
        plan.ops += [op for obj in objects for op in getattr(obj, stage)(lab)]
    plan.ops += [Netem(i.netns, i.ifname, tuple(i.netem_args())) for i in lab.impairments]
    plan.ops += agent_ops(lab)  # first: the cloud's processes (health checks) probe what it serves
    plan.ops += [op for obj in objects for op in obj.processes(lab)]
    if lab.placement is not None:
        plan.ops = placement.localize(lab, plan.ops)
    return plan
