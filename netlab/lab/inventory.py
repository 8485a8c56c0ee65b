"""What a lab holds, in a newcomer's terms (pure): per pod its node and labels, per Service
its ClusterIP, NodePorts and endpoints (the pods its selector picks, at the ports its
targetPorts resolve to). `netlab status` prints it; `netlab graph` draws it.
"""

from __future__ import annotations

from netlab.lab import services as svc_mod
from netlab.lab.model import ClusterInfo, Lab, PodInfo, ServiceInfo


def pod_facts(pod: PodInfo) -> dict:
    return {"node": pod.node, "labels": dict(pod.labels)}


def service_facts(cluster: ClusterInfo, info: ServiceInfo) -> dict:
    """One Service as `kubectl get svc,endpointslices` would show it."""
    spec = info.spec
    ports = []
    for p in spec.ports:
        ports.append({"name": p.name, "port": p.port, "protocol": p.protocol,
                      "targetPort": p.targetPort if p.targetPort is not None else p.port,
                      "nodePort": p.nodePort})
    endpoints = []
    for pod in svc_mod.selected(info, cluster.pods):
        for p in spec.ports:
            target = svc_mod.target_port(p, pod)
            if target is not None:
                endpoints.append({"pod": f"{cluster.name}/{pod.name}", "node": pod.node,
                                  "address": f"{pod.ip}:{target}", "protocol": p.protocol})
    return {"cluster": cluster.name, "name": spec.name, "namespace": spec.namespace, "type": spec.type,
            "cluster_ip": str(info.cluster_ip), "ports": ports, "endpoints": endpoints,
            "externalTrafficPolicy": spec.externalTrafficPolicy if spec.type != "ClusterIP" else None}


def services(lab: Lab) -> list[dict]:
    return [service_facts(c, s) for c in lab.clusters for s in c.services]


def port_text(port: dict) -> str:
    """`80→8080/TCP` (`, node 30080` for NodePorts)."""
    text = f"{port['port']}→{port['targetPort']}/{port['protocol']}"
    return text + (f" node {port['nodePort']}" if port["nodePort"] else "")


def extend_status(lab: Lab, data: dict) -> dict:
    """Add to `netlab status --json` (keys added, none changed): `node` and `labels` on each
    pod object, and a `services` list."""
    pods = {(c.name, p.name): p for c in lab.clusters for p in c.pods}
    for o in data.get("objects", []):
        if o.get("kind") == "pod" and (o.get("cluster"), o.get("name")) in pods:
            o.update(pod_facts(pods[(o["cluster"], o["name"])]))
    data["services"] = services(lab)
    return data
