"""What a probe's answer means: outcome kinds, their cause, and what `blocked` accepts."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address

import pytest

from netlab.probe.outcomes import BLOCKED, Evidence, classify, satisfies

POD = IPv4Address("172.16.0.2")
NODE = IPv4Address("172.16.0.1")
ROUTER = IPv4Address("192.168.0.1")
CLUSTER_IP = IPv4Address("10.247.0.10")
NAMES = {POD: "c1/web-0", NODE: "c1/node-1", ROUTER: "vpc", CLUSTER_IP: "c1/svc/web"}


def name(ip):
    return f"{NAMES.get(ip, '?')} ({ip})"


@pytest.mark.parametrize("evidence, target, rule, outcome, cause", [
    (Evidence("answer"), {POD}, False, "reach", "answered"),
    (Evidence("silence"), {POD}, False, "dropped", "no answer"),
    (Evidence("silence", note="SYN-ACK came back un-NATed"), {POD}, False, "dropped", "SYN-ACK came back un-NATed"),
    # the target itself: nothing listens
    (Evidence("rst", sender=POD), {POD}, False, "refused", "TCP RST from c1/web-0 (172.16.0.2): nothing listens"),
    (Evidence("icmp", sender=POD, code=3), {POD}, False, "refused",
     "ICMP port unreachable from c1/web-0 (172.16.0.2): nothing listens"),
    # a Service's pod refusing, seen through the reverse NAT (from the ClusterIP) or not
    (Evidence("icmp", sender=CLUSTER_IP, code=3), {CLUSTER_IP, POD}, False, "refused",
     "ICMP port unreachable from c1/svc/web (10.247.0.10): nothing listens"),
    # kube-proxy's REJECT: from the node, or (IPVS) from the ClusterIP itself: the lab knows
    (Evidence("icmp", sender=NODE, code=3), {CLUSTER_IP}, True, "rejected",
     "ICMP port unreachable from c1/node-1 (172.16.0.1)"),
    (Evidence("icmp", sender=CLUSTER_IP, code=3), {CLUSTER_IP}, True, "rejected",
     "ICMP port unreachable from c1/svc/web (10.247.0.10)"),
    # a port unreachable from something that is not the target is a rule on the way
    (Evidence("icmp", sender=NODE, code=3), {POD}, False, "rejected", "ICMP port unreachable from c1/node-1 (172.16.0.1)"),
    (Evidence("icmp", sender=ROUTER, code=13), {POD}, False, "rejected",
     "ICMP communication administratively prohibited from vpc (192.168.0.1)"),
    (Evidence("icmp", sender=ROUTER, code=0), {POD}, False, "unreachable", "ICMP net unreachable from vpc (192.168.0.1)"),
    (Evidence("icmp", sender=ROUTER, code=1), {POD}, False, "unreachable", "ICMP host unreachable from vpc (192.168.0.1)"),
    (Evidence("icmp", sender=ROUTER, code=4, mtu=1400), {POD}, False, "unreachable",
     "ICMP fragmentation needed from vpc (192.168.0.1) (next-hop MTU 1400)"),
    (Evidence("local", errno=errno.ENETUNREACH), {POD}, False, "unreachable", "ENETUNREACH: the sender has no route"),
    (Evidence("local", errno=errno.EMSGSIZE), {POD}, False, "unreachable",
     "the sender's own stack refused it: larger than the path MTU, DF set"),
])
def test_classify(evidence, target, rule, outcome, cause):
    assert classify(evidence, target, rule, name) == (outcome, cause)


def test_blocked_means_the_network_refused_not_the_target():
    assert BLOCKED == {"rejected", "unreachable", "dropped"}
    for outcome in ("rejected", "unreachable", "dropped"):
        assert satisfies(outcome, "blocked") and satisfies(outcome, outcome)
    assert not satisfies("refused", "blocked")  # nothing listens: not the network's doing
    assert not satisfies("reach", "blocked")
    assert satisfies("refused", "refused") and not satisfies("dropped", "rejected")


def test_a_tls_failure_is_the_server_refusing_not_the_network():
    ev = Evidence("tls", sender=POD, note="CERTIFICATE_VERIFY_FAILED")
    assert classify(ev, {POD}, False, name) == ("refused", "TLS: CERTIFICATE_VERIFY_FAILED")
