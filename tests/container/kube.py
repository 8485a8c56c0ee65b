"""The classroom's Kubernetes manifests, rendered and made playable by `podman kube play`.

`render(dir)` runs kustomize (`kubectl kustomize`, offline) on an overlay of deploy/k8s.
`podman kube play` knows Pods, Deployments and ConfigMaps but no controllers, so
`as_pods` does what the StatefulSet and Job controllers would do with the rendered
objects: a StatefulSet becomes `replicas` Pods named `<name>-<i>` (with the hostname and
label the controller gives them); an Indexed Job becomes `completions` Pods with
`JOB_COMPLETION_INDEX` set. The pod specs themselves are the manifests', untouched.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"   # validated against this API's schema


def render(overlay: str) -> list[dict]:
    done = subprocess.run(["kubectl", "kustomize", str(K8S / overlay)], capture_output=True,
                          text=True, check=True)
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _pod(name: str, namespace: str | None, template: dict, labels: dict | None = None) -> dict:
    meta = copy.deepcopy(template.get("metadata", {}))
    meta["name"] = name
    if namespace:
        meta["namespace"] = namespace
    meta.setdefault("labels", {}).update(labels or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": copy.deepcopy(template["spec"])}


def as_pods(docs: list[dict], *, replicas: int | None = None,
            env: dict[str, str] | None = None) -> list[dict]:
    """ConfigMaps as they are, controllers expanded into their Pods; `replicas` overrides a
    StatefulSet's count, `env` is added to every container (e.g. the lab's name)."""
    out: list[dict] = []
    for d in docs:
        kind, meta = d["kind"], d["metadata"]
        if kind == "ConfigMap":
            out.append(d)
        elif kind == "StatefulSet":
            for i in range(replicas if replicas is not None else d["spec"].get("replicas", 1)):
                pod = _pod(f"{meta['name']}-{i}", meta.get("namespace"), d["spec"]["template"],
                           {"statefulset.kubernetes.io/pod-name": f"{meta['name']}-{i}"})
                pod["spec"]["hostname"] = f"{meta['name']}-{i}"
                out.append(pod)
        elif kind == "Job":
            spec = d["spec"]
            assert spec.get("completionMode") == "Indexed", "only Indexed Jobs are expanded"
            for i in range(spec["completions"]):
                pod = _pod(f"{meta['name']}-{i}", meta.get("namespace"), spec["template"],
                           {"batch.kubernetes.io/job-completion-index": str(i)})
                for c in pod["spec"]["containers"]:
                    c.setdefault("env", []).append({"name": "JOB_COMPLETION_INDEX", "value": str(i)})
                out.append(pod)
    for pod in out:
        if pod["kind"] == "Pod" and env:
            for c in pod["spec"]["containers"]:
                c.setdefault("env", []).extend({"name": k, "value": v} for k, v in env.items())
    return out


def dump(docs: list[dict]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)
