"""Likely mistakes in valid scenarios: found, with file, line and field, and a hint."""

from __future__ import annotations

from netlab.lab import warnings
from netlab.scenario import loader
from netlab.lab.resolve import resolve

TYPOS = """\
name: t
hosts: [{name: ecs-1}]
clusters:
  - name: c1
    model: vpc
    nodes: [{name: node-1}, {name: node-2}]
    pods:
      - {name: api, replicas: 2, node: [node-1, node-2], labels: {app: api}, ports: [{port: 8080, name: http}]}
      - {name: batch, namespace: jobs, node: node-1, labels: {app: batch}, ports: [{port: 9090}]}
    services:
      - {name: api, selector: {app: apii}, ports: [{port: 80, targetPort: http}]}
      - {name: api2, selector: {app: api}, ports: [{port: 80, targetPort: htp}]}
      - {name: api3, selector: {app: api}, ports: [{port: 80, targetPort: 8081}]}
      - {name: batch, selector: {app: batch}, ports: [{port: 80, targetPort: 9090}]}
      - {name: web, type: NodePort, selector: {app: api}, ports: [{port: 80, targetPort: 8080, nodePort: 30080}]}
      - {name: fine, selector: {app: api}, ports: [{port: 80, targetPort: http}]}
checks:
  - {from: ecs-1, to: "c1/api-0:8081", expect: blocked}
  - {from: ecs-1, to: "c1/api-0:8081", expect: refused}
  - {from: ecs-1, to: "c1/node-1:8080"}
  - {from: ecs-1, to: "c1/svc/web:nodeport", backend: c1/batch}
  - {from: ecs-1, to: "c1/svc/api"}
  - {from: ecs-1, to: "c1/svc/fine"}
"""


def found(text: str) -> list[str]:
    scenario, source = loader.load_text(text, "course.yaml")
    return [w.render(source) for w in warnings.find(resolve(scenario, source))]


def test_likely_mistakes_are_named_with_file_line_and_field():
    lines = found(TYPOS)
    assert lines == [
        "course.yaml:11: clusters[0].services[0].selector: Service default/api selects no pod (app=apii): "
        "pods in namespace default: app=api (2 pods) (did you mean app: api?); with no endpoints, kube-proxy "
        "rejects its connections",
        "course.yaml:12: clusters[0].services[1].ports[0].targetPort: Service default/api2 port 80/TCP: "
        "targetPort 'htp' names no TCP port of the 2 selected pods (their ports: http 8080/TCP) (did you mean "
        "http?); this port gets no endpoints",
        "course.yaml:13: clusters[0].services[2].ports[0].targetPort: Service default/api3 port 80/TCP: 2 of 2 "
        "selected pods declare no 8081/TCP (api-0's ports: http 8080/TCP); they are endpoints all the same, and "
        "connections sent to them are refused",
        "course.yaml:14: clusters[0].services[3].selector: Service default/batch selects no pod (app=batch): the "
        "pods with these labels are in namespace jobs, and a Service selects pods of its own namespace only",
        "course.yaml:18: checks[0].to: nothing serves c1/api-0:8081/tcp (c1/api-0 declares 8080/TCP): the check "
        "will be refused by the target, not reach or be blocked by the network; write expect: refused if that "
        "is the point",
        "course.yaml:20: checks[2].to: nothing serves c1/node-1:8080/tcp (c1/node-1 runs no server of its own, "
        "and no Service of its cluster has nodePort 8080): the check will be refused by the target, not reach "
        "or be blocked by the network",
        "course.yaml:21: checks[3].backend: c1/batch is not an endpoint of c1/node-1:30080 (endpoints: c1/api-0, "
        "c1/api-1): only endpoints answer",
        "course.yaml:22: checks[4].to: c1/svc/api:80 has no endpoints: it cannot reach",
    ]


def test_builtin_scenarios_warn_only_where_they_mean_it():
    for name in loader.builtin_names():
        scenario, source = loader.load(loader.builtin_path(name))
        lab = resolve(scenario, source, None)
        texts = [w.message for w in warnings.find(lab)]
        # services.yaml keeps a Service without endpoints on purpose (kube-proxy's REJECT)
        assert all("Service default/empty selects no pod" in t for t in texts), (name, texts)
