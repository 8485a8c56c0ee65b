"""Load balancers on real namespaces.

1. `scenarios/ingress.yaml` comes up once: every check passes, and each backend sees the
   source the service's table promises (shared ELB: its backend-side address; dedicated:
   the client's; cce Ingress: a node, the client in X-Forwarded-For; nginx Ingress: the
   controller pod); status lists the ELBs and EIP bindings; a backend's listener stopped is
   taken out of rotation by the health checker (no request reaches it after) and put back
   when it serves again; the host is unchanged after `down`.
2. The Ingress specification on the running nginx: the conformance suite's Ingresses served
   by both classes at once, every case sent as a real HTTP or HTTPS request (SNI, the
   certificate verified against the lab's CA).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from netlab import linux
from netlab.apply.state import StateDir
from netlab.ingress import certs, routes
from netlab.probe.checks import CheckSpec
from netlab.probe.runner import Runner
from netlab.scenario.types import Ingress
from tests.helpers import SCENARIOS, netlab
from tests.integration.conftest import host_state, module_lab
from tests.unit.ingress_cases import CASES, INGRESSES, SERVICES

LAB = "lb-ing"


@pytest.fixture(scope="module")
def ingress_lab():
    yield from module_lab(str(SCENARIOS / "ingress.yaml"), LAB)


def check() -> dict[str, dict]:
    report = json.loads(netlab("check", LAB, "--json").stdout)
    return {c["name"]: c for c in report["checks"]}


def row(rows: dict[str, dict], *parts: str) -> dict:
    found = [c for name, c in rows.items() if all(p in name for p in parts)]
    assert len(found) == 1, (parts, [n for n in rows if all(p in n for p in parts)])
    return found[0]


def test_every_check_passes_with_the_source_each_elb_type_promises(ingress_lab):
    rows = check()
    assert [n for n, c in rows.items() if not c["ok"]] == []
    seen = lambda *parts: set(row(rows, *parts)["seen_source"].split(", "))  # noqa: E731
    # LoadBalancer Services, externalTrafficPolicy Local: what the ELB sent reaches the pod.
    shared, dedicated = "LoadBalancer (shared ELB elb-shared", "LoadBalancer (dedicated ELB elb-dedicated"
    assert seen(shared, "internet/client →") == {"100.125.0.2"}
    assert seen(shared, "ecs-1 →") == {"100.125.0.2"}
    assert seen(shared, "cce/client →") == {"100.125.0.2"}  # pass-through: via the ELB
    assert seen(dedicated, "internet/client →") == {"203.0.113.10"}
    assert seen(dedicated, "ecs-1 →") == {"192.168.1.10"}
    assert seen(dedicated, "cce/client →") == {"172.16.0.7"}  # kube-proxy short-circuits, Local keeps it
    # Ingress: the backend that answers each host and path.
    answered = {(c["to"], c["name"].split(" → ")[1].split(" at ")[0]): c["backend"]
                for c in rows.values() if c["proto"] in ("http", "https")}
    assert answered[("198.51.100.10:80", "http://shop.example.com/cart")] == "cce/cart"
    assert answered[("198.51.100.10:80", "http://shop.example.com/checkout")] == "cce/checkout"
    assert answered[("198.51.100.10:443", "https://pay.example.com/pay")] == "cce/pay"
    assert answered[("198.51.100.10:443", "https://pay.example.com/refund")] == "cce/refund"
    assert answered[("198.51.100.11:443", "https://blog.example.com/")] == "cce/blog"
    assert answered[("198.51.100.11:443", "https://blog.example.com/admin")] == "cce/admin"
    assert answered[("198.51.100.11:80", "http://wild.docs.example.com/v1")] == "cce/docs-v1"
    assert answered[("198.51.100.11:80", "http://wild.docs.example.com/v2")] == "cce/docs-v2"
    # class cce: a node address (NodePort, Cluster); class nginx: the controller pod.
    assert seen("Ingress default/shop", "example.com/cart at") <= {"192.168.0.10", "192.168.0.11", "172.16.0.1", "172.16.1.1"}
    assert seen("Ingress default/sites", "example.com/admin at") <= {"172.16.0.8", "172.16.1.7"}
    assert "X-Forwarded-For 203.0.113.10" in row(rows, "Ingress default/pay", "example.com/pay at")["detail"]
    assert "X-Forwarded-For 203.0.113.10" in row(rows, "Ingress default/sites", "example.com/admin at")["detail"]


def test_status_lists_the_elbs_and_every_eip_binding(ingress_lab):
    data = json.loads(netlab("status", LAB, "--json").stdout)
    assert data["state"] == "up" and data["processes"]["running"] == data["processes"]["expected"] == 5
    elbs = {o["name"]: o for o in data["objects"] if o["kind"] == "elb"}
    assert elbs["elb/elb-shared"]["addresses"] == ["192.168.0.254/24", "100.125.0.2/32", "198.51.100.10/32"]
    assert elbs["elb/elb-dedicated"]["addresses"] == ["192.168.0.253/24", "198.51.100.11/32"]
    assert {(e["ip"], e["bind"], e["private"]) for e in data["eips"]} == {
        ("198.51.100.10", "elb/elb-shared", "192.168.0.254"), ("198.51.100.11", "elb/elb-dedicated", "192.168.0.253")}
    shown = netlab("show", LAB, "elb/elb-dedicated").stdout
    assert "layer-4 datapath: nftables" in shown and "192.168.0.10:30002 (cce/node-1): healthy" in shown


def _events(since: float) -> list[dict]:
    status = json.loads((StateDir(LAB).path / "healthcheck.json").read_text())
    return [e for e in status["events"] if e["time"] >= since and not e["initial"]]


def _wait_for(since: float, state: str, pool: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hit = next((e for e in _events(since) if e["pool"] == pool and e["target"] == "cce/node-1"
                    and e["state"] == state), None)
        if hit:
            return hit
        time.sleep(0.1)
    raise AssertionError(f"{pool}: node-1 not {state} within {timeout} s: {_events(since)}")


def test_a_stopped_backend_leaves_rotation_and_comes_back(ingress_lab):
    pool = "cce/default/web-dedicated:8000/TCP"
    lab = StateDir(LAB).read()
    client = lab.internet.hosts[0]
    through = CheckSpec(name="via the dedicated ELB", src=client.ref, src_netns=client.netns, src_ip=client.eth0.ip,
                        dst="198.51.100.11", dst_ip=lab.eips[1].ip, port=8000, proto="tcp", count=12)
    start = time.time()
    assert netlab("listener", LAB, "cce/web-0:8080", "stop").returncode == 0
    gone = _wait_for(start, "unhealthy", pool)
    # node-1's only local endpoint (externalTrafficPolicy Local) stopped: refused there, so
    # the ELB's check fails; within delay × max_retries (1 s × 2) plus one delay of phase.
    assert gone["time"] - start < 1 * 2 + 1 + 1.5, gone
    result, = Runner().run([through])
    assert result.reached and set(result.backends) == {"cce/web-1"}, result.detail
    start = time.time()
    assert netlab("listener", LAB, "cce/web-0:8080", "start").returncode == 0
    _wait_for(start, "healthy", pool)
    result, = Runner().run([through])
    assert set(result.backends) == {"cce/web-0", "cce/web-1"}, result.detail


def test_down_leaves_the_host_as_it_was(ingress_lab):
    done = netlab("down", LAB)
    assert done.returncode == 0
    assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{LAB}.")]
    assert not Path(f"/run/netlab/{LAB}").exists()
    assert host_state() == ingress_lab


# -- the Ingress specification on the running nginx ----------------------------------------------

CONF = "lb-conf"


def conformance_scenario() -> str:
    docs = yaml.safe_load(INGRESSES.replace("CLASS", "nginx"))
    for d in docs:
        if d["spec"].get("tls"):  # the suite also asks for the host over plain HTTP
            d["metadata"]["annotations"] = {routes.SSL_REDIRECT: "false"}
    cce = yaml.safe_load(INGRESSES.replace("CLASS", "cce"))
    for d in cce:
        d["metadata"]["name"] += "-cce"
        d["metadata"]["annotations"] = {"kubernetes.io/elb.id": "l7", "kubernetes.io/elb.class": "union",
                                        "kubernetes.io/elb.port": "443" if d["spec"].get("tls") else "80"}
    pods = [{"name": s, "node": ["n1", "n2"][i % 2], "labels": {"app": s}, "ports": [{"port": 8080, "name": "http"}]}
            for i, s in enumerate(SERVICES)]
    services = [{"name": s, "type": "NodePort", "selector": {"app": s},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]} for s in SERVICES]
    scenario = {
        "name": CONF, "vpc": {"subnets": [{"name": "nodes", "cidr": "192.168.0.0/24"}]},
        "internet": {"hosts": [{"name": "client", "ports": []}]},
        "elbs": [{"name": "l7", "type": "shared"}, {"name": "ctl", "type": "dedicated"}],
        "eips": [{"bind": "elb/l7"}, {"bind": "elb/ctl"}],
        "clusters": [{"name": "c", "model": "vpc", "nodes": [{"name": "n1"}, {"name": "n2"}], "pods": pods,
                      "services": services, "ingresses": docs + cce,
                      "nginx_ingress": {"replicas": 1, "externalTrafficPolicy": "Local", "annotations": {
                          "kubernetes.io/elb.id": "ctl", "kubernetes.io/elb.class": "performance",
                          # the node without a controller fails its check quickly (Local)
                          "kubernetes.io/elb.health-check-option": '{"delay": "1", "timeout": "1"}'}}}]}
    return yaml.safe_dump(scenario, sort_keys=False)


def request(lab, eip, port: int, host: str, path: str, *, https: bool, want: str | None, verify: bool = True):
    client = lab.internet.hosts[0]
    return CheckSpec(name=f"{'https' if https else 'http'}://{host}{path} at {eip}:{port} → {want or 404}",
                     src=client.ref, src_netns=client.netns, src_ip=client.eth0.ip, dst=str(eip), dst_ip=eip,
                     port=port, proto="https" if https else "http", host=host, path=path,
                     ca_pem=certs.ca_pem(lab.name) if https and verify else None,
                     expect_backend=f"c/{want}" if want else None, expect_status=None if want else 404)


def test_the_running_nginx_matches_as_the_ingress_specification_says(lab, tmp_path):
    file = tmp_path / "conformance.yaml"
    file.write_text(conformance_scenario())
    lab(str(file), CONF)
    resolved = StateDir(CONF).read()
    l7, ctl = (e.ip for e in resolved.eips)
    specs = [request(resolved, ctl, 80, host, path, https=False, want=want) for host, path, want in CASES]
    # TLS with SNI on the controller: the TLS host's own certificate, verified for its name.
    specs += [request(resolved, ctl, 443, "foo.bar.com", "/", https=True, want="foo-bar-com"),
              request(resolved, ctl, 443, "bar.foo.com", "/", https=True, want="wildcard-foo-com", verify=False)]
    # The ELB's layer 7 (class cce): HTTP on 80 (path rules, default backend), HTTPS on 443
    # (host rules): what `routes.match` says for the Ingresses on each listener.
    cluster = resolved.clusters[0]
    for port, https in ((80, False), (443, True)):
        served = [i.spec for i in cluster.ingresses if i.ingress_class == "cce" and i.port == port]
        server_list, _ = routes.servers(served, lambda b, n: b.service.name)
        for host, path, _ in CASES:
            want = routes.match(server_list, host, path).backend
            specs.append(request(resolved, l7, port, host, path, https=https, want=want,
                                 verify=https and host.lower() == "foo.bar.com"))
    results = Runner(timeout=10).run(specs)  # generous: TLS handshakes on a loaded machine
    assert [f"{r.spec.name}: {r.detail}" for r in results if not r.ok] == []
    # A name the certificate does not hold fails verification: SNI picked the default one.
    wrong = request(resolved, ctl, 443, "bar.foo.com", "/", https=True, want="wildcard-foo-com")
    result, = Runner().run([wrong])
    assert not result.reached and "TLS: CERTIFICATE_VERIFY_FAILED" in result.detail, result.detail
    # What the backend got: the path as sent, the Host, HTTP/1.1 from nginx.
    answer = json.loads(netlab("exec", CONF, "internet/client", "--", "curl", "-s", "-H", "Host: prefix-path-rules",
                               f"http://{ctl}/aaa/bbb/ccc").stdout)
    assert (answer["name"], answer["host"], answer["path"]) == ("c/aaa-slash-bbb-prefix", "prefix-path-rules",
                                                                "/aaa/bbb/ccc")
    assert answer["headers"]["X-Forwarded-For"] == "203.0.113.10"


def test_ingress_objects_are_full_kubernetes_objects():
    docs = yaml.safe_load(INGRESSES.replace("CLASS", "nginx"))
    assert all(Ingress.model_validate(d).apiVersion == "networking.k8s.io/v1" for d in docs)
