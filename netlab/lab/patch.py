"""Change a Kubernetes object of a running lab as `kubectl patch` does (pure): a Service or
an Ingress, shown and patched in its Kubernetes shape, and the operations that bring the
datapath in line with it, without rebuilding anything else.

A patch is a JSON merge patch (RFC 7386, `kubectl patch --type merge`: objects merge, a
`null` removes a key, a list is replaced whole) or a JSON patch (RFC 6902, `--type json`:
`[{"op": "replace", "path": "/spec/rules/0/http/paths/0/pathType", "value": "Prefix"}]`).

What a running lab can change, and what follows:

- a Service's `spec.selector`, `spec.ports[].targetPort`, `spec.externalTrafficPolicy`
  (not of a LoadBalancer Service: its healthCheckNodePort would change),
  `spec.internalTrafficPolicy`, `spec.sessionAffinity` and `sessionAffinityConfig`: the
  EndpointSlices are recomputed and every node's kube-proxy re-synced (a full sync, loaded
  atomically, as after `netlab scale`), then the cloud objects whose rules name pods;
- an Ingress's `spec.rules` and `spec.defaultBackend`, over the backends it already has
  (each is a backend server group of its ELB): the nginx that serves it (the ELB's layer
  7, or the NGINX Ingress Controller's pods) gets its configuration re-rendered and reloads.

Anything else (a Service's type, ports or clusterIP; an Ingress's class, TLS, annotations
or a new backend) is what the API server or the cloud would do with a new object: a
`PatchError` names the field and what may change.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from netlab import cloud, proxy
from netlab.lab.model import ClusterInfo, IngressInfo, Lab, ServiceInfo
from netlab.lab.services import service_object
from netlab.plan.ops import Op
from netlab.scenario.types import Ingress, Service

TYPES = ("merge", "json")
SERVICE_FIELDS = ("selector", "ports", "externalTrafficPolicy", "internalTrafficPolicy", "sessionAffinity",
                  "sessionAffinityConfig")
INGRESS_FIELDS = ("rules", "defaultBackend")


class PatchError(ValueError):
    pass


@dataclass
class Patched:
    lab: Lab
    ref: str  # the object as written: `c1/svc/web`, `c1/ingress/shop`
    before: dict
    after: dict
    steps: list[list[Op]]

    @property
    def ops(self) -> list[Op]:
        return [op for step in self.steps for op in step]


# -- finding and showing objects --------------------------------------------------------------

def find(lab: Lab, ref: str) -> tuple[ClusterInfo, ServiceInfo | IngressInfo]:
    """`CLUSTER/svc/NAME` or `CLUSTER/ingress/NAME` (`NAMESPACE/NAME` for another namespace)."""
    cluster_name, _, rest = ref.partition("/")
    kind, _, name = rest.partition("/")
    cluster = next((c for c in lab.clusters if c.name == cluster_name), None)
    if cluster is None or kind not in ("svc", "ingress") or not name:
        raise PatchError(f"'{ref}': write CLUSTER/svc/NAME or CLUSTER/ingress/NAME; clusters: "
                         + (", ".join(c.name for c in lab.clusters) or "none"))
    namespace, _, short = name.rpartition("/")
    namespace = namespace or "default"
    if kind == "svc":
        found = next((s for s in cluster.services if (s.spec.namespace, s.spec.name) == (namespace, short)), None)
        listed = ", ".join(s.spec.name for s in cluster.services)
    else:
        found = next((i for i in cluster.ingresses
                      if (i.spec.metadata.namespace, i.name) == (namespace, short)), None)
        listed = ", ".join(i.name for i in cluster.ingresses)
    if found is None:
        what = "Service" if kind == "svc" else "Ingress"
        raise PatchError(f"cluster '{cluster.name}' has no {what} {namespace}/{short}; "
                         f"{what}s: {listed or 'none'}")
    return cluster, found


def as_object(obj: ServiceInfo | IngressInfo) -> dict:
    """The object as `kubectl get -o yaml` shows it."""
    if isinstance(obj, ServiceInfo):
        return service_object(obj)
    return obj.spec.model_dump(mode="json", exclude_defaults=True, by_alias=True)


# -- patches -----------------------------------------------------------------------------------

def parse(text: str, kind: str) -> Any:
    """A patch as `kubectl patch -p` takes it (JSON; YAML flow style is JSON's superset)."""
    if kind not in TYPES:
        raise PatchError(f"--type: '{kind}' is not a patch type; write merge or json")
    try:
        value = json.loads(text)
    except ValueError as e:
        raise PatchError(f"the patch is not JSON: {e}") from None
    if kind == "merge" and not isinstance(value, dict):
        raise PatchError("a merge patch is a JSON object, e.g. '{\"spec\": {\"selector\": {\"app\": \"web\"}}}'")
    if kind == "json" and not (isinstance(value, list) and all(isinstance(o, dict) for o in value)):
        raise PatchError("a JSON patch is a list of operations, e.g. "
                         "'[{\"op\": \"replace\", \"path\": \"/spec/selector/app\", \"value\": \"web\"}]'")
    return value


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def apply_patch(obj: dict, patch: Any, kind: str) -> dict:
    if kind == "merge":
        return merge(obj, patch)
    import jsonpatch

    try:
        return jsonpatch.apply_patch(obj, patch)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
        raise PatchError(f"the JSON patch does not apply: {e}") from None


def patch(lab: Lab, ref: str, value: Any, kind: str = "merge") -> Patched:
    """The lab with the object patched, and the ops that re-sync what serves it."""
    cluster, obj = find(lab, ref)
    before = as_object(obj)
    after = apply_patch(before, value, kind)
    if isinstance(obj, ServiceInfo):
        new_lab, steps = _service(lab, cluster, obj, before, after)
    else:
        new_lab, steps = _ingress(lab, cluster, obj, before, after)
    new_cluster, new_obj = find(new_lab, ref)
    return Patched(new_lab, ref, before, as_object(new_obj), steps)


def _changed(before: dict, after: dict, allowed: tuple[str, ...], where: str) -> None:
    """Only `allowed` keys of `where` (a dotted path) may differ; everything else must not."""
    def at(obj: dict) -> dict:
        for part in where.split("."):
            obj = obj.get(part) or {}
        return obj

    rest_before = {k: v for k, v in before.items() if k != where.split(".")[0]}
    rest_after = {k: v for k, v in after.items() if k != where.split(".")[0]}
    for key in sorted(set(rest_before) | set(rest_after)):
        if rest_before.get(key) != rest_after.get(key):
            raise PatchError(f"{key}: cannot change on a running lab; a patch may change "
                             + ", ".join(f"{where}.{f}" for f in allowed))
    inner_before, inner_after = at(before), at(after)
    for key in sorted(set(inner_before) | set(inner_after)):
        if key not in allowed and inner_before.get(key) != inner_after.get(key):
            raise PatchError(f"{where}.{key}: cannot change on a running lab; a patch may change "
                             + ", ".join(f"{where}.{f}" for f in allowed))


def _invalid(e: ValidationError, head: str) -> PatchError:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return PatchError(f"{head}.{loc}: {err['msg'].removeprefix('Value error, ')}" if loc else f"{head}: {err['msg']}")


def _service(lab: Lab, cluster: ClusterInfo, info: ServiceInfo, before: dict, after: dict):
    _changed({k: v for k, v in before.items() if k != "status"}, {k: v for k, v in after.items() if k != "status"},
             SERVICE_FIELDS, "spec")
    old_ports, new_ports = before["spec"]["ports"], after["spec"].get("ports")
    if not isinstance(new_ports, list) or len(new_ports) != len(old_ports) or any(
            not isinstance(n, dict) or {k: v for k, v in n.items() if k != "targetPort"}
            != {k: v for k, v in o.items() if k != "targetPort"} for o, n in zip(old_ports, new_ports)):
        raise PatchError("spec.ports: only a port's targetPort can change on a running lab")
    spec = after["spec"]
    svc = info.spec
    if svc.type == "LoadBalancer" and spec.get("externalTrafficPolicy", "Cluster") != svc.externalTrafficPolicy:
        raise PatchError("spec.externalTrafficPolicy: a LoadBalancer Service's cannot change on a running lab "
                         "(its healthCheckNodePort and ELB members would)")
    update = {
        "selector": spec.get("selector") or {},
        "ports": [p.model_copy(update={"targetPort": n.get("targetPort", p.port)}).model_dump()
                  for p, n in zip(svc.ports, new_ports)],
        "externalTrafficPolicy": spec.get("externalTrafficPolicy", svc.externalTrafficPolicy),
        "internalTrafficPolicy": spec.get("internalTrafficPolicy", "Cluster"),
        "sessionAffinity": spec.get("sessionAffinity", "None"),
        "sessionAffinityConfig": spec.get("sessionAffinityConfig") if spec.get("sessionAffinity") == "ClientIP" else None,
    }
    try:
        new_svc = Service.model_validate({**svc.model_dump(), **update})
    except ValidationError as e:
        raise _invalid(e, "spec") from None
    if new_svc.externalTrafficPolicy == "Local" and new_svc.type == "ClusterIP":
        raise PatchError("spec.externalTrafficPolicy: Local needs type NodePort or LoadBalancer")
    new_info = info.model_copy(update={"spec": new_svc})
    new_cluster = cluster.model_copy(update={"services": [new_info if s is info else s for s in cluster.services]})
    new_lab = _with_cluster(lab, new_cluster)
    steps = [[op for obj in cloud.registry() for op in obj.resync(new_lab)],
             proxy.cluster_ops(new_lab, new_cluster, resync=True)]
    return new_lab, steps


def _ingress(lab: Lab, cluster: ClusterInfo, info: IngressInfo, before: dict, after: dict):
    from netlab.cloud import ingress as ingress_mod
    from netlab.ingress.routes import RouteError, servers

    _changed(before, after, INGRESS_FIELDS, "spec")
    try:
        new_spec = Ingress.model_validate(after)
    except ValidationError as e:
        raise _invalid(e, "ingress") from None
    def backends(ing: Ingress):
        for where, backend in ingress_mod.all_backends(ing):
            svc, index, problem = ingress_mod.backend_service(cluster, backend, ing.metadata.namespace)
            yield ".".join(map(str, where)), svc, index, problem

    known = {(svc.spec.name, index) for _, svc, index, _ in backends(info.spec)}
    for where, svc, index, problem in backends(new_spec):
        if problem:
            raise PatchError(f"{where}.service: {problem}")
        if (svc.spec.name, index) not in known:
            raise PatchError(f"{where}.service: Service {svc.spec.name} port {svc.spec.ports[index].port} is not "
                             f"yet a backend of Ingress {info.name}: a new backend needs a new lab")
    try:
        servers([new_spec], lambda backend, namespace: "probe")
    except RouteError as e:
        raise PatchError(f"spec.{'.'.join(map(str, e.field))}: {e}" if e.field else str(e)) from None
    new_info = info.model_copy(update={"spec": new_spec})
    new_cluster = cluster.model_copy(update={"ingresses": [new_info if i is info else i for i in cluster.ingresses]})
    new_lab = _with_cluster(lab, new_cluster)
    return new_lab, [ingress_mod.reload_ops(new_lab, new_cluster, new_info)]


def _with_cluster(lab: Lab, cluster: ClusterInfo) -> Lab:
    return lab.model_copy(update={"clusters": [cluster if c.name == cluster.name else c for c in lab.clusters]})
