"""The NGINX Ingress Controller add-on, as the service installs it (pure): a pod set
`nginx-ingress-controller` in namespace kube-system on the cluster's nodes, and a
LoadBalancer Service of the same name in front of it (ports 80 and 443) whose annotations
choose its ELB. `expand` adds both to a cluster's section before anything is resolved, so
they get addresses, endpoints and kube-proxy rules like any pod and Service; the pods
declare no ports (the pod agent leaves them to nginx, `netlab.cloud.ingress`).
"""

from __future__ import annotations

from netlab.scenario.types import Pod, Service, ServicePort

CONTROLLER = "nginx-ingress-controller"
NAMESPACE = "kube-system"
LABELS = {"app": "nginx-ingress"}


def expand(scenario, ctx):
    clusters = []
    for ci, c in enumerate(scenario.clusters):
        addon = c.nginx_ingress
        if addon is None:
            clusters.append(c)
            continue
        known = [n.name for n in c.nodes]
        for k, name in enumerate(addon.nodes):
            if name not in known:
                raise ctx.error(("clusters", ci, "nginx_ingress", "nodes", k),
                                f"unknown node '{name}'; nodes of cluster '{c.name}': {', '.join(known)}")
        pod = Pod(name=CONTROLLER, namespace=NAMESPACE, node=list(addon.nodes) or known, replicas=addon.replicas,
                  labels=dict(LABELS))
        svc = Service(name=CONTROLLER, namespace=NAMESPACE, type="LoadBalancer", selector=dict(LABELS),
                      externalTrafficPolicy=addon.externalTrafficPolicy, annotations=dict(addon.annotations),
                      ports=[ServicePort(name="http", port=80, targetPort=80),
                             ServicePort(name="https", port=443, targetPort=443)])
        clusters.append(c.model_copy(update={"pods": list(c.pods) + [pod], "services": list(c.services) + [svc]}))
    return scenario.model_copy(update={"clusters": clusters})


def is_controller(svc) -> bool:
    """The add-on's Service (a ServiceInfo): nginx answers it, not the pod agent."""
    return svc.spec.namespace == NAMESPACE and svc.spec.name == CONTROLLER


def controller_pods(cluster) -> list:
    return [p for p in cluster.pods if p.namespace == NAMESPACE and p.set == CONTROLLER]
