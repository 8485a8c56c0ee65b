"""Likely mistakes in a valid scenario (pure): what `validate` and `up` warn about.

A scenario can be valid and still not say what its author meant: a selector with a typo
selects no pod, so the Service has no endpoints and the generated matrix then expects
kube-proxy's REJECT; a named targetPort that no selected pod declares leaves the Service
without endpoints for that port; a check to a port nobody serves is refused by the target.
Each warning names the file, line and field, like an error; `--strict` makes them errors.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass

from netlab.ingress.addon import is_controller
from netlab.lab import refs
from netlab.lab.model import ClusterInfo, Lab, PodInfo, ServiceInfo
from netlab.lab.services import selected, target_port
from netlab.scenario.loader import Path_, Source
from netlab.scenario.types import ServicePort


@dataclass(frozen=True)
class LabWarning:
    path: Path_
    message: str

    def render(self, source: Source) -> str:
        return str(source.error(self.path, self.message))


def find(lab: Lab) -> list[LabWarning]:
    out: list[LabWarning] = []
    for ci, cluster in enumerate(lab.clusters):
        for si, info in enumerate(cluster.services):
            out += _service(cluster, info, ("clusters", ci, "services", si))
    for i, check in enumerate(lab.checks):
        out += _check(lab, check, ("checks", i))
    return out


def _labels(pods: list[PodInfo]) -> str:
    tally = Counter(", ".join(f"{k}={v}" for k, v in sorted(p.labels.items())) or "(no labels)" for p in pods)
    return "; ".join(f"{labels} ({n} pod{'s' if n != 1 else ''})" for labels, n in tally.most_common(4))


def _service(cluster: ClusterInfo, info: ServiceInfo, path: Path_) -> list[LabWarning]:
    svc = info.spec
    name = f"Service {svc.namespace}/{svc.name}"
    if not svc.selector:
        return [LabWarning(path + ("selector",), f"{name} has no selector, so it gets no endpoints (netlab takes "
                                              "no hand-written EndpointSlices): kube-proxy will reject it")]
    pods = selected(info, cluster.pods)
    if not pods:
        return [LabWarning(path + ("selector",), _no_pod(cluster, info))]
    if is_controller(info):
        return []  # nginx serves the ingress controller's ports, not the pod agent
    out = []
    for pi, port in enumerate(svc.ports):
        out += _target_port(name, port, pods, path + ("ports", pi))
    return out


def _no_pod(cluster: ClusterInfo, info: ServiceInfo) -> str:
    svc = info.spec
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(svc.selector.items()))
    same_ns = [p for p in cluster.pods if p.namespace == svc.namespace]
    elsewhere = [p for p in cluster.pods if p.namespace != svc.namespace
                 and all(p.labels.get(k) == v for k, v in svc.selector.items())]
    text = f"Service {svc.namespace}/{svc.name} selects no pod ({wanted})"
    if elsewhere:
        return (text + f": the pods with these labels are in namespace {elsewhere[0].namespace}, and a "
                       "Service selects pods of its own namespace only")
    hint = _did_you_mean(svc.selector, same_ns)
    text += f": pods in namespace {svc.namespace}: {_labels(same_ns)}" if same_ns else \
        f": cluster {cluster.name} has no pod in namespace {svc.namespace}"
    return text + hint + "; with no endpoints, kube-proxy rejects its connections"


def _did_you_mean(selector: dict[str, str], pods: list[PodInfo]) -> str:
    values = {(k, v) for p in pods for k, v in p.labels.items()}
    for key, value in selector.items():
        if (key, value) in values:
            continue
        close = difflib.get_close_matches(value, sorted({v for k, v in values if k == key}), n=1)
        if close:
            return f" (did you mean {key}: {close[0]}?)"
        keys = {k for k, _ in values}
        close = difflib.get_close_matches(key, sorted(keys), n=1) if key not in keys else []
        if close:
            return f" (did you mean the label key {close[0]}?)"
    return ""


def _declared(pod: PodInfo) -> str:
    return ", ".join(f"{p.name + ' ' if p.name else ''}{p.port}/{p.protocol}" for p in pod.ports) or "none"


def _target_port(name: str, port: ServicePort, pods: list[PodInfo], path: Path_) -> list[LabWarning]:
    label = f"port {port.port}/{port.protocol}"
    if isinstance(port.targetPort, str):
        missing = [p for p in pods if target_port(port, p) is None]
        if len(missing) == len(pods):
            close = difflib.get_close_matches(port.targetPort, sorted({q.name for p in pods for q in p.ports
                                                                        if q.name}), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return [LabWarning(path + ("targetPort",),
                            f"{name} {label}: targetPort '{port.targetPort}' names no {port.protocol} port of the "
                            f"{len(pods)} selected pods (their ports: {_declared(pods[0])}){hint}; this port "
                            "gets no endpoints")]
        if missing:
            return [LabWarning(path + ("targetPort",),
                            f"{name} {label}: targetPort '{port.targetPort}' names no port of "
                            f"{', '.join(p.name for p in missing[:3])}{' …' if len(missing) > 3 else ''}: "
                            f"{len(missing)} of {len(pods)} selected pods are not endpoints of this port")]
        return []
    number = port.targetPort if port.targetPort is not None else port.port
    serving = [p for p in pods if any(q.port == number and q.protocol == port.protocol for q in p.ports)]
    if len(serving) < len(pods):
        field = "targetPort" if port.targetPort is not None else "port"
        idle = [p for p in pods if p not in serving]
        return [LabWarning(path + (field,),
                        f"{name} {label}: {len(idle)} of {len(pods)} selected pods declare no {number}/"
                        f"{port.protocol} ({idle[0].name}'s ports: {_declared(idle[0])}); they are endpoints "
                        "all the same, and connections sent to them are refused")]
    return []


def _check(lab: Lab, check, path: Path_) -> list[LabWarning]:
    dst = refs.destination(lab, check.to, check.proto)
    proto = check.proto or dst.proto or ("tcp" if dst.port else "icmp")
    out = []
    if dst.port is not None and proto in ("tcp", "udp") and check.expect != "refused":
        served = _served(dst, proto)
        if served is not None:
            out.append(LabWarning(path + ("to",), f"nothing serves {dst.label}/{proto} ({served}): the check will be "
                                                "refused by the target, not reach or be blocked by the network"
                                                + ("; write expect: refused if that is the point"
                                                   if check.expect != "reach" else "")))
    if dst.kind in ("service", "nodeport") and check.expect == "reach":
        if not dst.endpoints:
            out.append(LabWarning(path + ("to",), f"{dst.label} has no endpoints"
                                               + (" on this node" if dst.kind == "nodeport" else "")
                                               + ": it cannot reach"))
        elif check.backend:
            members = {f"{dst.target.cluster.name}/{p.name}" for p in dst.endpoints}
            outside = [b for b in refs.as_list(check.backend) if b not in members]
            if outside:
                out.append(LabWarning(path + ("backend",),
                                   f"{', '.join(outside)} is not an endpoint of {dst.label} (endpoints: "
                                   f"{', '.join(sorted(members))}): only endpoints answer"))
    return out


def _served(dst: refs.Destination, proto: str) -> str | None:
    """None when something serves the destination port; else what the object does serve."""
    if dst.kind in ("service", "nodeport", "ip"):
        return None
    if dst.kind == "node":
        return f"{dst.name} runs no server of its own, and no Service of its cluster has nodePort {dst.port}"
    if dst.kind == "elb":  # its listeners serve
        listeners = dst.target.obj.listeners
        if any(ln.port == dst.port and ln.protocol.lower() in (proto, "http", "https") for ln in listeners):
            return None
        return f"{dst.name} listens on {', '.join(f'{ln.port}/{ln.protocol}' for ln in listeners) or 'no port'}"
    ports = getattr(dst.target.obj, "ports", [])
    if any(p.port == dst.port and p.protocol.lower() == proto for p in ports):
        return None
    return f"{dst.name} declares {', '.join(f'{p.port}/{p.protocol}' for p in ports) or 'no ports'}"
