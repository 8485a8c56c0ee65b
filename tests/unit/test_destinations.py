"""Check destinations as users think of them: pods, nodes, hosts, Services, NodePorts; and
what explicit checks then assert (backend, source)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from netlab.errors import ScenarioError
from netlab.lab import refs
from netlab.probe import checks
from tests.helpers import load_text

LAB = """\
name: t
hosts: [{name: ecs-1}]
clusters:
  - name: c1
    model: vpc
    nodes: [{name: node-1}, {name: node-2}]
    pods:
      - {name: web, replicas: 2, node: [node-1, node-2], labels: {app: web}, ports: [{port: 8080, name: http}]}
      - {name: solo, node: node-1, labels: {app: solo}, ports: [{port: 8080}]}
      - {name: dns, node: node-2, labels: {app: dns}, ports: [{port: 5353, protocol: UDP}]}
    services:
      - {name: web, type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}
      - {name: local, type: NodePort, externalTrafficPolicy: Local, selector: {app: web},
         ports: [{port: 80, targetPort: 8080, nodePort: 30081}]}
      - {name: dns, selector: {app: dns}, ports: [{port: 53, protocol: UDP, targetPort: 5353}]}
      - {name: empty, selector: {app: nothing}, ports: [{port: 80}]}
checks:
"""


def lab(checks_yaml: str = ""):
    return load_text(LAB + (checks_yaml or "  []\n"))


@pytest.mark.parametrize("text, kind, ip, port, proto, endpoints", [
    ("c1/web-0:8080", "pod", "172.16.0.2", 8080, None, ()),
    ("c1/svc/web", "service", "10.247.0.10", 80, "tcp", ("web-0", "web-1")),
    ("c1/svc/web:80", "service", "10.247.0.10", 80, "tcp", ("web-0", "web-1")),
    ("c1/svc/dns", "service", "10.247.0.12", 53, "udp", ("dns",)),
    ("c1/node-1:30080", "nodeport", "192.168.0.10", 30080, "tcp", ("web-0", "web-1")),
    ("192.168.0.11:30080", "nodeport", "192.168.0.11", 30080, "tcp", ("web-0", "web-1")),
    ("c1/svc/web:nodeport", "nodeport", "192.168.0.10", 30080, "tcp", ("web-0", "web-1")),
    # externalTrafficPolicy Local: only the node's own endpoints answer
    ("c1/node-2:30081", "nodeport", "192.168.0.11", 30081, "tcp", ("web-1",)),
    ("c1/node-1:8080", "node", "192.168.0.10", 8080, None, ()),
    ("ecs-1:80", "host", "192.168.0.12", 80, None, ()),
])
def test_destinations(text, kind, ip, port, proto, endpoints):
    d = refs.destination(lab(), text)
    assert (d.kind, str(d.ip), d.port, d.proto) == (kind, ip, port, proto)
    assert tuple(p.name for p in d.endpoints) == endpoints


@pytest.mark.parametrize("entry, message", [
    ("{from: ecs-1, to: 'c1/svc/web:81'}", "Service c1/svc/web has no port 81; its ports: 80/TCP"),
    ("{from: ecs-1, to: 'c1/svc/dns:nodeport'}", "Service c1/svc/dns has no NodePort (type ClusterIP)"),
    ("{from: ecs-1, to: 'c1/web-0:nodeport'}", "':nodeport' follows a Service"),
    ("{from: ecs-1, to: 'c1/svc/web', backend: c1/svc/dns}", "is not a pod or host (what answers a request)"),
    ("{from: ecs-1, to: 'c1/svc/web', source: c1/nope}", "cluster 'c1' has no node or pod 'nope'"),
    ("{from: c1/svc/web, to: 'ecs-1:80'}", "a check must start from a host, node or pod"),
])
def test_bad_destinations_name_the_field(entry, message):
    with pytest.raises(ScenarioError) as e:
        lab(f"  - {entry}\n")
    assert message in str(e.value) and e.value.line == 18


def test_explicit_nodeport_check_expects_the_services_endpoints():
    (spec,) = checks.matrix(only="scenario", lab=lab("  - {from: ecs-1, to: 'c1/node-1:30080'}\n"))
    assert (spec.dst, spec.dst_ip, spec.port, spec.proto) == ("c1/node-1", IPv4Address("192.168.0.10"), 30080, "tcp")
    assert spec.expect_backend is None and spec.allowed_backends == ("c1/web-0", "c1/web-1")
    assert spec.origin == "scenario" and spec.cluster == "c1" and not spec.rule_rejects
    assert "KUBE-NODEPORTS" not in spec.why and spec.why.startswith("kube-proxy (iptables) on node-1: KUBE-EXT-")


def test_explicit_backend_and_sources():
    specs = checks.matrix(only="scenario", lab=lab("  - {from: ecs-1, to: 'c1/svc/web:nodeport', backend: c1/solo, "
                                "source: [c1/node-1, 172.16.0.1]}\n"
                                "  - {from: c1/solo, to: 'c1/svc/empty', expect: rejected}\n"
                                "  - {from: c1/solo, to: 'c1/web-0:8080', source: c1/solo}\n"))
    backend, empty, pod = specs
    assert backend.expect_backend == "c1/solo" and backend.allowed_backends == ()
    assert backend.allowed_sources == (IPv4Address("192.168.0.10"), IPv4Address("172.16.0.1"))
    assert empty.rule_rejects and empty.proto == "tcp" and empty.port == 80
    assert pod.expect_backend == "c1/web-0" and pod.expect_source == IPv4Address("172.16.0.3")
    assert [s.name for s in specs] == ["scenario check: ecs-1 → c1/svc/web:nodeport tcp",
                                       "scenario check: c1/solo → c1/svc/empty tcp",
                                       "scenario check: c1/solo → c1/web-0:8080 tcp"]


def test_owner_of_names_who_answered():
    lb = lab()
    book = refs.address_book(lb)
    assert book[IPv4Address("172.16.0.1")] == "c1/node-1"  # the node's pod gateway
    assert book[IPv4Address("192.168.0.1")] == "vpc"
    assert book[IPv4Address("10.247.0.13")] == "c1/svc/empty"
    assert refs.owner_of(lb, "172.16.1.2") == "c1/web-1" and refs.owner_of(lb, "203.0.113.9") is None
