"""The classroom on Kubernetes: manifests valid against the Kubernetes API schema, and
played for real by `podman kube play` — one lab per trainee pod, each passing its checks,
nothing left on the host after `podman kube down`."""

from __future__ import annotations

import re
import time
from pathlib import Path

import kubernetes_validate
import pytest

from netlab.lab.resolve import resolve
from netlab.scenario import loader
from tests.container import kube
from tests.container.conftest import alive, host_netns_inodes, lab_netns_inodes, processes_in_pidns

TRAINEES = 3


@pytest.mark.parametrize("overlay", ["classroom", "ci"])
def test_manifests_are_valid_kubernetes_objects(overlay):
    docs = kube.render(overlay)
    for doc in docs:
        kubernetes_validate.validate(doc, kube.KUBERNETES_VERSION, strict=True)
    kinds = sorted(d["kind"] for d in docs)
    if overlay == "classroom":
        assert kinds == ["ConfigMap", "Namespace", "Service", "StatefulSet"]
        sts = next(d for d in docs if d["kind"] == "StatefulSet")
        assert sts["spec"]["replicas"] == TRAINEES
        c = sts["spec"]["template"]["spec"]["containers"][0]
        assert c["securityContext"]["privileged"] is True
        assert c["readinessProbe"]["exec"]["command"] == ["netlab-pod", "check"]
        assert c["lifecycle"]["preStop"]["exec"]["command"] == ["netlab-pod", "down"]
        # The ConfigMap the pods mount is a scenario netlab accepts.
        cm = next(d for d in docs if d["kind"] == "ConfigMap")
        volume = sts["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
        assert volume == cm["metadata"]["name"]   # kustomize's hashed name, on both sides
        scenario, source = loader.load_text(cm["data"]["scenario.yaml"], "scenario.yaml")
        assert resolve(scenario, source, None).clusters
    else:
        assert kinds == ["Job", "Namespace"]
        job = next(d for d in docs if d["kind"] == "Job")
        assert job["spec"]["completionMode"] == "Indexed"
        env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        files = env["NETLAB_SCENARIOS"].split()
        assert job["spec"]["completions"] == len(files)
        for f in files:   # the image's /src is this checkout
            assert (kube.REPO / Path(f).relative_to("/src")).is_file(), f


def _wait_ready(podman, container: str, timeout: float = 180) -> str:
    """Poll the readiness probe's command until it passes; its output."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = podman("exec", container, "netlab-pod", "check", check=False)
        if last.returncode == 0:
            return last.stdout
        time.sleep(2)
    raise AssertionError(f"{container} never ready: {last.stdout[-2000:] if last else ''}"
                         f"{podman('logs', container, check=False).stderr[-2000:]}")


@pytest.mark.container
def test_classroom_of_three_with_podman_kube_play(podman, tmp_path):
    docs = kube.as_pods(kube.render("classroom"), replicas=TRAINEES)
    pods = [d["metadata"]["name"] for d in docs if d["kind"] == "Pod"]
    assert pods == [f"lab-{i}" for i in range(TRAINEES)]
    manifest = tmp_path / "classroom.yaml"
    manifest.write_text(kube.dump(docs))
    host_before = set(host_netns_inodes())
    start = time.monotonic()
    # --network none: the labs need no pod network, and Podman's would put a bridge and
    # firewall rules in the host's namespace.
    podman.kube_files.append(str(manifest))
    podman("kube", "play", "--network", "none", str(manifest))
    containers = [f"{p}-lab" for p in pods]
    for c in containers:
        out = _wait_ready(podman, c)
        assert re.search(r"^\d+ passed, 0 failed$", out, re.M), out[-2000:]
    ready = time.monotonic() - start
    labs = {c: lab_netns_inodes(podman, c) for c in containers}
    inodes = [set(v) for v in labs.values()]
    assert all(inodes) and sum(len(i) for i in inodes) == len(set().union(*inodes)), labs
    assert not set().union(*inodes) & set(host_netns_inodes())
    pids = set()
    for c in containers:
        pids |= processes_in_pidns(int(podman("inspect", "--format", "{{.State.Pid}}", c).stdout))
    podman("kube", "down", str(manifest))
    podman.kube_files.remove(str(manifest))
    print(f"\nclassroom: {TRAINEES} trainee labs ready (checks passed) {ready:.1f} s after kube play")
    left = podman("ps", "--all", "--format", "{{.Names}}").stdout.split()
    assert not [n for n in left if n in containers or n.startswith(tuple(pods))], left
    assert not podman("pod", "exists", pods[0], check=False).returncode == 0
    assert not alive(pids), f"processes outlived the pods: {alive(pids)}"
    assert not (set(host_netns_inodes()) - host_before) & set().union(*inodes)
    for v in podman.new_volumes():   # the ConfigMap's, which kube down keeps
        podman("volume", "rm", v)


@pytest.mark.container
def test_ci_job_checks_every_scenario_with_podman_kube_play(podman, tmp_path):
    docs = kube.as_pods(kube.render("ci"))
    job = next(d for d in kube.render("ci") if d["kind"] == "Job")
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    scenarios = [Path(f).stem for f in env["NETLAB_SCENARIOS"].split()]
    manifest = tmp_path / "ci.yaml"
    manifest.write_text(kube.dump(docs))
    podman.kube_files.append(str(manifest))
    podman("kube", "play", "--network", "none", str(manifest))
    containers = [f"netlab-ci-{i}-check" for i in range(len(scenarios))]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        states = [podman("inspect", "--format", "{{.State.Status}}", c).stdout.strip() for c in containers]
        if all(s == "exited" for s in states):
            break
        time.sleep(3)
    else:
        raise AssertionError(f"the Job's pods did not finish: {states}")
    for c, name in zip(containers, scenarios, strict=True):
        code = podman("inspect", "--format", "{{.State.ExitCode}}", c).stdout.strip()
        logs = podman("logs", c).stdout
        assert code == "0", logs[-3000:]
        assert f"{name}.yaml: check exited 0" in logs
        junit = podman("cp", f"{c}:/results/{name}.xml", "-").stdout   # a tar stream
        assert re.search(r'<testsuite name="netlab\.job-\d" tests="\d+" failures="0"', junit), junit[:500]
