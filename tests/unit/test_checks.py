"""The generated check matrix: what each access scenario expects in the VPC model."""

from collections import Counter
from ipaddress import ip_address

from netlab.probe import checks
from netlab.scenario import loader
from netlab.lab.resolve import resolve


def lab(name):
    return resolve(*loader.load(loader.builtin_path(name)))


def test_vpc_basic_matrix_covers_every_access_scenario():
    specs = checks.matrix(lab("vpc-basic"))
    kinds = Counter(s.name.split(":")[0] for s in specs)
    assert kinds == {"pod→pod same node": 2, "pod→pod across nodes": 4, "node→pod": 4,
                     "VPC host→pod": 2, "pod→VPC host": 2, "scenario check": 3}


def test_vpc_model_expectations():
    by_name = {s.name: s for s in checks.matrix(lab("vpc-basic"))}
    cross = by_name["pod→pod across nodes: c1/web-1 → c1/web-2:8080"]
    assert (cross.proto, cross.port, cross.expect_encap) == ("tcp", 8080, "none")
    assert cross.sniff == ("nl-vpc-basic.c1.node-1", "eth0")
    assert cross.expect_source == ip_address("172.16.0.2") and cross.expect_backend == "c1/web-2"
    same = by_name["pod→pod same node: c1/web-1 → c1/dns-1:53"]
    assert (same.proto, same.expect_encap) == ("udp", "absent")
    egress = by_name["pod→VPC host: c1/web-1 → ecs-1:80"]
    assert egress.expect_source == ip_address("172.16.0.2")  # no SNAT in the VPC model
    icmp = by_name["pod→pod same node: c1/web-2 → c1/client"]
    assert icmp.proto == "icmp" and icmp.port is None and icmp.expect_backend is None


def test_matrix_grows_linearly_and_every_pod_is_a_source():
    specs = checks.matrix(lab("scale-200"))
    sources = {s.src for s in specs}
    assert all(f"c1/p{n}-{j}" in sources for n in range(1, 11) for j in range(1, 21))
    assert len(specs) < 5 * 200


def test_explicit_checks_resolve_expectations():
    specs = [s for s in checks.matrix(lab("vpc-basic")) if s.name.startswith("scenario")]
    first = specs[0]
    assert (first.src, first.dst, first.port, first.proto) == ("ecs-1", "c1/web-1", 8080, "tcp")
    assert first.expect_source == ip_address("192.168.0.12")
    assert specs[2].proto == "udp"


HAIRPIN = """\
name: t
clusters:
  - name: c1
    model: vpc
    nodes: [{name: node-1}, {name: node-2}]
    pods:
      - {name: web, replicas: 4, node: [node-1, node-2], labels: {app: web}, ports: [{port: 8080}]}
    services:
      - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
"""


def test_a_service_selecting_every_pod_expects_the_hairpin_masquerade():
    from tests.helpers import load_text

    specs = {s.name: s for s in checks.matrix(load_text(HAIRPIN))}
    spec = specs["pod→ClusterIP: c1/web-0 → c1/svc/web"]
    assert spec.allowed_sources == (ip_address("172.16.0.2"),)  # any other endpoint: no SNAT
    assert spec.hairpin == ("c1/web-0", (ip_address("172.16.0.1"),))  # itself: the node's pod gateway
    assert spec.spread == "all" and "c1/web-0" in spec.allowed_backends


def test_hairpin_sources_are_judged_per_answer():
    from netlab.probe.runner import Result, _judge
    from tests.helpers import load_text

    spec = next(s for s in checks.matrix(load_text(HAIRPIN)) if s.name == "pod→ClusterIP: c1/web-0 → c1/svc/web")

    def judged(pairs):
        r = Result(spec, outcome="reach", reached=True, backends=[b for b, _ in pairs], sources=[s for _, s in pairs])
        _judge(r)
        return r

    good = [("c1/web-0", "172.16.0.1"), ("c1/web-1", "172.16.0.2"), ("c1/web-2", "172.16.0.2"), ("c1/web-3", "172.16.0.2")]
    assert judged(good).ok
    # the failure: the masqueraded hairpin source is right only for the hairpin answer
    wrong = [("c1/web-0", "172.16.0.2")] + good[1:]
    assert "c1/web-0 answered itself and saw 172.16.0.2, expected the masqueraded 172.16.0.1" in judged(wrong).detail
    leaked = good[:1] + [("c1/web-1", "172.16.0.1")] + good[2:]
    assert "server saw 172.16.0.1, 172.16.0.2, expected one of 172.16.0.2" in judged(leaked).detail
