"""Link impairment in scenarios: links resolved to namespaces and peers, refused where the
kernel lacks netem, planned as tc netem."""

import pytest

from netlab.plan.planner import build
from netlab.errors import ScenarioError
from netlab.probe.checks import matrix
from tests.helpers import load_text

BASE = """\
name: t
hosts: [{name: ecs-1}]
clusters:
  - name: c1
    model: vpc
    nodes: [{name: n1}]
    pods: [{name: web, node: n1, ports: [{port: 80}]}]
impair:
"""


def test_impairments_resolve_to_interface_and_peer():
    lab = load_text(BASE + "  - {link: 'c1/n1:eth0', delay: 20ms, jitter: 2ms, loss: 1%}\n"
                           "  - {link: 'c1/n1:veth-web', rate: 10mbit}\n"
                           "  - {link: 'vpc:v-ecs-1', delay: 1.5ms}\n", features=frozenset({"netem"}))
    first, second, third = lab.impairments
    assert (first.netns, first.ifname, str(first.peer)) == ("nl-t.c1.n1", "eth0", "192.168.0.1")
    assert first.netem_args() == ["delay", "20ms", "2ms", "loss", "1%"] and first.delay_ms == 20
    assert (second.ifname, str(second.peer)) == ("veth-web", "172.16.0.2")
    assert (third.netns, str(third.peer), third.delay_ms) == ("nl-t.vpc", "192.168.0.11", 1.5)
    text = str(build(lab))
    assert "ip netns exec nl-t.c1.n1 tc qdisc replace dev eth0 root netem delay 20ms 2ms loss 1%" in text
    delay_checks = [c for c in matrix(lab) if c.min_rtt_ms]
    assert [(c.src_netns, str(c.dst_ip), c.min_rtt_ms) for c in delay_checks] == [
        ("nl-t.c1.n1", "192.168.0.1", 20.0), ("nl-t.vpc", "192.168.0.11", 1.5)]


def test_netem_missing_from_kernel_is_a_clear_error():
    with pytest.raises(ScenarioError) as e:
        load_text(BASE + "  - {link: 'c1/n1:eth0', delay: 20ms}\n")
    assert e.value.line == 9 and "needs tc netem" in str(e.value)


@pytest.mark.parametrize("entry, message", [
    ("{link: 'c1/n1:eth7', delay: 20ms}", "c1/n1 has no interface 'eth7'; links of c1/n1: c1/n1:eth0, c1/n1:veth-web"),
    ("{link: 'c1/nx:eth0', delay: 20ms}", "has no node or pod 'nx'"),
    ("{link: 'eth0', delay: 20ms}", "is not OBJECT:IFNAME"),
    ("{link: 'c1/n1:eth0'}", "at least one of delay, loss, rate"),
    ("{link: 'c1/n1:eth0', jitter: 2ms}", "jitter needs delay"),
    ("{link: 'c1/n1:eth0', delay: 20xs}", "is not a duration such as 20ms"),
    ("{link: 'c1/n1:eth0', loss: 1}", "is not a percentage such as 1%"),
])
def test_bad_impairments(entry, message):
    with pytest.raises(ScenarioError) as e:
        load_text(BASE + f"  - {entry}\n", features=frozenset({"netem"}))
    assert e.value.line == 9 and message in str(e.value)
