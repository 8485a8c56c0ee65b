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
