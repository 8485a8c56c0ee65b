"""The check matrix the tunnel model generates (pure, no root), and the decoding of the
VXLAN frames the checks capture."""

from __future__ import annotations

from ipaddress import IPv4Address

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from netlab.lab.resolve import resolve
from netlab.probe import checks
from netlab.probe.runner import decode
from netlab.scenario import loader
from tests.unit.tunnel_helpers import lab_of, scenario


def _by_category(specs):
    out: dict[str, list] = {}
    for s in specs:
        out.setdefault(s.name.split(":")[0], []).append(s)
    return out


def test_tunnel_matrix_expectations():
    lab = lab_of(scenario(nodes=2))
    c = lab.cluster("c1")
    m = _by_category(checks.cluster_matrix(lab, c))
    assert all(s.expect_encap == "vxlan" for s in m["pod→pod across nodes"])
    assert all(s.expect_encap == "absent" for s in m["pod→pod same node"])
    # VPC hosts cannot reach pods: no VPC route to the container CIDR, and the router says so.
    assert [s.expect for s in m["VPC host→pod"]] == ["unreachable", "unreachable"]
    # Pods leave the cluster as their node.
    for s in m["pod→VPC host"]:
        pod = next(p for p in c.pods if p.netns == s.src_netns)
        assert s.expect_source == c.node(pod.node).eth0.ip and s.expect_encap == "none"
    # A node's stack reaches pods from its gateway address.
    for s in m["node→pod"]:
        node = next(n for n in c.nodes if n.netns == s.src_netns)
        assert s.expect_source == node.pod_gateway


def test_mtu_checks_at_and_above_the_pod_mtu():
    lab = lab_of(scenario(nodes=2))
    mtu = _by_category(checks.cluster_matrix(lab, lab.cluster("c1")))["pod MTU across nodes"]
    assert [(s.size, s.expect, s.proto, s.expect_encap) for s in mtu] == [
        (1450, "reach", "icmp", "vxlan"), (1451, "unreachable", "icmp", "absent")]
    assert mtu[0].src_ip == IPv4Address("172.16.0.2") and mtu[0].dst_ip == IPv4Address("172.16.1.2")
    assert mtu[0].sniff == (lab.cluster("c1").node("node-1").netns, "eth0")


def test_no_mtu_checks_without_a_second_node_with_pods():
    lab = lab_of(scenario(nodes=2, pods="- {name: a, node: node-1}"))
    assert "pod MTU across nodes" not in _by_category(checks.cluster_matrix(lab, lab.cluster("c1")))


def test_linux_bridge_node_source_for_remote_pods_is_the_vtep():
    lab = lab_of(scenario("switch: linux-bridge\n", nodes=2))
    m = _by_category(checks.cluster_matrix(lab, lab.cluster("c1")))
    sources = sorted((s.src, s.dst, str(s.expect_source)) for s in m["node→pod"])
    assert sources == [("c1/node-1", "c1/a-1", "172.16.0.1"), ("c1/node-1", "c1/b-1", "172.16.0.0"),
                       ("c1/node-2", "c1/a-1", "172.16.1.0"), ("c1/node-2", "c1/b-1", "172.16.1.1")]


def test_vpc_model_matrix_is_unchanged():
    s, src = loader.load(loader.builtin_path("vpc-basic"))
    lab = resolve(s, src)
    m = checks.matrix(lab)
    assert len(m) == 17
    cats = _by_category(m)
    assert all(x.expect == "reach" for x in cats["VPC host→pod"])
    assert "pod MTU across nodes" not in cats


def test_decode_vxlan_frame_gives_vni_and_inner_addresses():
    inner = Ether() / IP(src="172.16.0.2", dst="172.16.1.2") / TCP(sport=40000, dport=8080)
    frame = (Ether() / IP(src="192.168.0.10", dst="192.168.0.11") / UDP(sport=51000, dport=4789)
             / VXLAN(vni=100) / inner)
    (flow,) = decode(bytes(frame))
    assert flow["encap"] == "vxlan" and flow["src"] == "172.16.0.2" and flow["sport"] == 40000
    assert "vni 100" in flow["text"] and "192.168.0.10→192.168.0.11" in flow["text"]
    assert "inner 172.16.0.2→172.16.1.2" in flow["text"]


def test_classify_ignores_another_connection_with_the_same_source_port():
    """A node→local pod probe must stay inside the node; another pod's connection to the same
    pod that crosses the underlay with the same source port is not the probe."""
    from netlab.probe.checks import CheckSpec
    from netlab.probe.runner import Result, _classify

    spec = CheckSpec(name="node→pod", src="c1/node-1", src_netns="n1", src_ip=IPv4Address("192.168.0.10"),
                     dst="c1/web-0", dst_ip=IPv4Address("172.16.0.2"), port=8080, proto="tcp",
                     expect_source=IPv4Address("172.16.0.1"), sniff=("n1", "eth0"), expect_encap="absent")
    other = {"encap": "vxlan", "text": "VXLAN …", "src": "172.16.1.2", "dst": "172.16.0.2", "proto": "tcp",
             "sport": 47577, "icmp_id": None}

    class Stub:
        def __init__(self, flows):
            self.flows = flows

        def observations(self):
            return [[f] for f in self.flows]

    r = Result(spec, reached=True, sport=47577)
    _classify(r, Stub([other]))
    assert r.ok and r.encap == "none"
    # The probe itself, leaving with the source the check expects, is still recognised.
    r = Result(spec, reached=True, sport=47577)
    _classify(r, Stub([dict(other, src="172.16.0.1")]))
    assert not r.ok and r.encap == "vxlan"


def test_classify_ignores_the_same_source_port_towards_another_destination():
    """The kernel hands the same ephemeral port out again for another destination: a pod's
    same-node probe is not its cross-node probe that happened to get the same port."""
    from netlab.probe.checks import CheckSpec
    from netlab.probe.runner import Result, _classify

    spec = CheckSpec(name="pod→pod same node", src="c1/p5-4", src_netns="p", src_ip=IPv4Address("172.16.4.5"),
                     dst="c1/p5-5", dst_ip=IPv4Address("172.16.4.6"), port=8080, proto="tcp",
                     expect_source=IPv4Address("172.16.4.5"), sniff=("n5", "eth0"), expect_encap="absent")
    other = {"encap": "none", "text": "plain IP 172.16.4.5→172.16.5.5", "src": "172.16.4.5", "dst": "172.16.5.5",
             "proto": "tcp", "sport": 33475, "icmp_id": None}

    class Stub:
        def observations(self):
            return [[other]]

    r = Result(spec, reached=True, sport=33475)
    _classify(r, Stub())
    assert r.ok and r.encap == "none" and "stayed inside the node" in r.detail
