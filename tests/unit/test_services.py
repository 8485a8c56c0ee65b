"""Services as the API server stores them, EndpointSlices as the endpoint controller makes them."""

import pytest

from netlab.errors import ScenarioError
from netlab.lab.services import endpoint_slices, objects, service_object
from tests.helpers import load_text

BASE = """\
name: t
clusters:
  - name: c1
    model: vpc
    nodes: [{name: n1}, {name: n2}]
    pods:
      - {name: web, replicas: 3, node: [n1, n2], labels: {app: web}, ports: [{port: 8080, name: http}]}
      - {name: db, node: n2, labels: {app: db}, ports: [{port: 5432}]}
      - {name: other, namespace: prod, node: n1, labels: {app: web}, ports: [{port: 8080, name: http}]}
    services:
"""


def lab(services: str):
    return load_text(BASE + services)


def err(services: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        lab(services)
    return e.value


def test_pod_sets_expand_round_robin():
    c = lab("      - {name: s, ports: [{port: 80}]}\n").clusters[0]
    assert [(p.name, p.node, p.set) for p in c.pods][:3] == [("web-0", "n1", "web"), ("web-1", "n2", "web"),
                                                             ("web-2", "n1", "web")]
    assert c.pod_sets[0].replicas == 3 and c.pod_sets[0].nodes == ["n1", "n2"]


def test_allocations_cluster_ip_and_node_ports():
    c = lab("      - {name: a, selector: {app: web}, ports: [{port: 80, targetPort: http}]}\n"
            "      - {name: b, type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n"
            "      - {name: c, type: LoadBalancer, externalTrafficPolicy: Local, clusterIP: 10.247.0.10,\n"
            "         selector: {app: db}, ports: [{port: 5432, nodePort: 30000}]}\n").clusters[0]
    a, b, svc_c = c.services
    assert str(svc_c.cluster_ip) == "10.247.0.10"
    assert str(a.cluster_ip) == "10.247.0.11" and str(b.cluster_ip) == "10.247.0.12"
    assert a.spec.ports[0].nodePort is None
    assert b.spec.ports[0].nodePort == 30001  # 30000 is taken explicitly
    assert svc_c.spec.healthCheckNodePort == 30002


def test_endpoint_slices_follow_selector_namespace_and_named_ports():
    c = lab("      - {name: a, selector: {app: web}, ports: [{port: 80, targetPort: http}]}\n").clusters[0]
    [eps] = endpoint_slices(c.services[0], c)
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "a"
    assert [e["addresses"][0] for e in eps["endpoints"]] == ["172.16.0.2", "172.16.1.2", "172.16.0.3"]
    assert [e["nodeName"] for e in eps["endpoints"]] == ["n1", "n2", "n1"]  # not the pod in prod
    assert eps["ports"] == [{"name": "", "protocol": "TCP", "port": 8080}]
    assert all(e["conditions"] == {"ready": True, "serving": True, "terminating": False} for e in eps["endpoints"])


def test_service_without_matching_pods_has_no_slices():
    c = lab("      - {name: none, selector: {app: nothing}, ports: [{port: 80}]}\n").clusters[0]
    assert endpoint_slices(c.services[0], c) == []
    assert [o["kind"] for o in objects(c)] == ["Service"]


def test_service_object_is_kubernetes_shaped():
    c = lab("      - {name: lb, type: LoadBalancer, selector: {app: web}, loadBalancerIP: 192.168.0.200,\n"
            "         sessionAffinity: ClientIP, loadBalancerSourceRanges: [203.0.113.0/24],\n"
            "         ports: [{name: http, port: 80, targetPort: http}]}\n").clusters[0]
    obj = service_object(c.services[0])
    assert obj["spec"]["externalTrafficPolicy"] == "Cluster"
    assert obj["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    assert obj["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http",
                                     "nodePort": 30000}]
    assert obj["status"]["loadBalancer"]["ingress"] == [{"ip": "192.168.0.200"}]


@pytest.mark.parametrize("service, message", [
    ("{name: a, ports: [{port: 80, nodePort: 30080}]}", "nodePort may only be set for type NodePort"),
    ("{name: a, type: NodePort, ports: [{port: 80, nodePort: 80}]}", "outside the node port range"),
    ("{name: a, externalTrafficPolicy: Local, ports: [{port: 80}]}", "Local needs type NodePort or LoadBalancer"),
    ("{name: a, clusterIP: 10.0.0.1, ports: [{port: 80}]}", "not a usable address of service_cidr"),
    ("{name: a, ports: [{port: 80}, {port: 81}]}", "every port needs a name"),
    ("{name: a, sessionAffinityConfig: {clientIP: {timeoutSeconds: 5}}, ports: [{port: 80}]}", "needs sessionAffinity"),
    ("{name: a, type: NodePort, healthCheckNodePort: 30100, ports: [{port: 80}]}", "may only be set for type LoadBalancer"),
])
def test_api_server_refusals(service, message):
    e = err(f"      - {service}\n")
    assert e.line == 11 and message in str(e)


def test_duplicate_node_port_and_cluster_ip():
    e = err("      - {name: a, type: NodePort, ports: [{port: 80, nodePort: 30080}]}\n"
            "      - {name: b, type: NodePort, ports: [{port: 80, nodePort: 30080}]}\n")
    assert e.line == 12 and "already used on line 11" in str(e)
    e = err("      - {name: a, clusterIP: 10.247.0.20, ports: [{port: 80}]}\n"
            "      - {name: b, clusterIP: 10.247.0.20, ports: [{port: 80}]}\n")
    assert e.line == 12 and "already the clusterIP" in str(e)


def test_pod_set_errors():
    with pytest.raises(ScenarioError, match="needs `replicas`"):
        load_text(BASE.replace("{name: db, node: n2,", "{name: db, node: [n1, n2],") + "      []\n")
    with pytest.raises(ScenarioError, match="duplicate pod name 'web-1'"):
        load_text(BASE.replace("{name: db, node: n2,", "{name: web-1, node: n2,") + "      []\n")
