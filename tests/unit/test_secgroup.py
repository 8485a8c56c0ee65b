"""Security groups (pure): what they admit and why, the ruleset a VPC router gets, a live
rule change, and the checks they add to the matrix."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from netlab.capabilities import KERNEL_FEATURES
from netlab.cloud import secgroup
from netlab.errors import UserError
from netlab.probe import checks as checks_mod
from netlab.probe import secgroup_checks
from netlab.scenario import loader
from netlab.scenario.security_groups import Rule
from tests.helpers import load_text

BASIC = loader.builtin_path("eni-basic").read_text()
HOST, WEB0, WEB1, GUARDED, NODE1 = (ip_address(a) for a in
                                    ("192.168.1.10", "192.168.2.10", "192.168.2.11", "192.168.2.14", "192.168.0.10"))


def lab_of(text: str = BASIC):
    return load_text(text, features=frozenset(KERNEL_FEATURES))


def test_verdicts_say_which_group_admits_or_refuses():
    lab = lab_of()
    ok = secgroup.verdict(lab, HOST, GUARDED, "tcp", 8080)
    assert ok.allowed and ok.why == "guarded admits it (inbound tcp 8080 from 192.168.1.0/24)"
    no = secgroup.verdict(lab, HOST, GUARDED, "tcp", 9090)
    assert not no.allowed
    assert no.why == ("blocked by the security groups of c1/guarded: no inbound rule of guarded admits "
                      "tcp/9090 from 192.168.1.10")
    assert secgroup.verdict(lab, HOST, GUARDED, "icmp", None).allowed
    assert not secgroup.verdict(lab, WEB0, GUARDED, "tcp", 8080).allowed
    # The default group admits its own members and the VPC; both ends are judged.
    assert "c1-cce-eni admits it (inbound all from group c1-cce-eni)" in secgroup.verdict(lab, WEB0, WEB1, "udp", 53).why
    assert secgroup.verdict(lab, ip_address("192.168.9.9"), ip_address("192.168.9.8"), "tcp", 1) is None  # no group
    # A node is in its cluster's default node group: the pod subnet and NodePorts only.
    assert "no inbound rule of c1-cce-node admits tcp/1 from 192.168.1.10" in \
        secgroup.verdict(lab, HOST, ip_address("192.168.0.11"), "tcp", 1).why


def test_outbound_rules_and_remote_groups():
    text = BASIC.replace("    description: TCP 8080 and ping from the intranet subnet only\n",
                         "    outbound: [{protocol: udp, port: 53-54, remote_group: c1-cce-eni}]\n")
    lab = lab_of(text)
    assert secgroup.verdict(lab, GUARDED, WEB0, "udp", 53).allowed
    refused = secgroup.verdict(lab, GUARDED, WEB0, "udp", 55)
    assert not refused.allowed and "no outbound rule of guarded admits udp/55 to 192.168.2.10" in refused.why
    assert not secgroup.verdict(lab, GUARDED, HOST, "tcp", 80).allowed


def test_the_ruleset_is_one_atomic_transaction_with_a_chain_per_member():
    lab = lab_of()
    text = secgroup.ruleset(lab, lab.vpc)
    assert text.startswith("add table ip netlab-sg\ndelete table ip netlab-sg\ntable ip netlab-sg {\n")
    assert "\t\telements = { 192.168.2.10, 192.168.2.11, 192.168.2.12, 192.168.2.13 }" in text
    assert ('ip saddr 192.168.1.0/24 tcp dport 8080 counter accept comment '
            '"guarded: inbound tcp 8080 from 192.168.1.0/24"') in text
    assert "ip saddr 192.168.1.0/24 meta l4proto icmp counter accept" in text
    forward = text[text.index("chain forward"):]
    assert forward.index("ct state established,related accept") < forward.index("ip saddr vmap")
    assert "192.168.2.14 : jump in-c1/guarded" in forward and "192.168.2.14 : jump out-c1/guarded" in forward
    # Chains are declared before the vmaps that jump to them (what `nft -f` needs).
    assert text.index("chain in-c1/guarded") < text.index("chain forward")
    ops = secgroup.OBJECT.edge(lab)
    vpc = lab.vpc.netns
    assert [str(op).split(" <<")[0] for op in ops] == [
        f"modprobe br_netfilter  # for {vpc}",
        f"ip netns exec {vpc} sysctl -w net.bridge.bridge-nf-call-iptables=1",
        f"ip netns exec {vpc} nft -f -"]


def test_a_lab_without_members_gets_no_ruleset():
    lab = load_text(loader.builtin_path("vpc-basic").read_text())
    assert secgroup.members(lab) == [] and secgroup.OBJECT.edge(lab) == []


def test_change_rule_returns_the_new_lab_and_the_whole_ruleset():
    lab = lab_of()
    rule = Rule(protocol="tcp", port=8080, remote_ip_prefix="192.168.1.0/24")
    new, ops = secgroup.change_rule(lab, "guarded", "inbound", rule, add=False)
    assert [r.text("inbound") for r in new.security_group("guarded").inbound] == ["icmp from 192.168.1.0/24"]
    assert "tcp dport 8080" not in ops[-1].rules and not secgroup.verdict(new, HOST, GUARDED, "tcp", 8080).allowed
    again, _ = secgroup.change_rule(new, "guarded", "inbound", rule, add=True)
    assert secgroup.verdict(again, HOST, GUARDED, "tcp", 8080).allowed
    with pytest.raises(UserError, match="already has the inbound rule tcp 8080 from 192.168.1.0/24"):
        secgroup.change_rule(lab, "guarded", "inbound", rule, add=True)
    with pytest.raises(UserError, match="has no inbound rule tcp 9090"):
        secgroup.change_rule(lab, "guarded", "inbound", Rule(protocol="tcp", port=9090), add=False)
    with pytest.raises(UserError, match="no security group 'web'"):
        secgroup.change_rule(lab, "web", "inbound", rule, add=True)


def test_rules_refuse_contradictions():
    assert Rule(protocol="icmp", port=80).problem() == ("port", "a port needs protocol tcp or udp, not icmp")
    assert Rule(protocol="tcp", port="90-80").problem()[0] == "port"
    assert Rule(remote_group="a", remote_ip_prefix="10.0.0.0/8").problem()[0] == "remote_group"
    assert Rule(protocol="udp", port="53-54").ports == (53, 54) and Rule().ports == (1, 65535)


def test_the_matrix_expects_what_the_groups_refuse():
    lab = lab_of()
    specs = checks_mod.matrix(lab)
    into_guarded = [s for s in specs if s.dst == "c1/guarded" and s.name.startswith("pod→pod")]
    assert into_guarded and all(s.expect == "blocked" and s.blocked_by == "drop" for s in into_guarded)
    assert all("no inbound rule of guarded admits tcp/8080" in s.name for s in into_guarded)
    sg = {s.name.split(" [")[0]: s for s in specs if s.name.startswith("security group:")}
    assert {n: s.expect for n, s in sg.items()} == {
        "security group: ecs-1 → c1/guarded:8080 tcp admitted": "reach",
        "security group: ecs-1 → c1/guarded:9090 tcp blocked": "blocked",
        "security group: c1/web-0 → c1/guarded:8080 tcp blocked": "blocked",
        "security group: c1/web-0 → c1/guarded:9090 tcp blocked": "blocked"}
    # A node reaches its own pods over their veths: no group on that path.
    assert secgroup_checks._local_path(lab, NODE1, WEB0) and not secgroup_checks._local_path(lab, NODE1, WEB1)


def test_an_eip_is_judged_as_the_address_behind_it():
    text = BASIC.replace("hosts:\n  - {name: ecs-1, subnet: intranet}\n", """hosts:
  - {name: ecs-1, subnet: intranet}
internet:
  cidr: 203.0.113.0/24
  eip_pool: 198.51.100.0/24
  hosts: [{name: client, ports: []}]
eips:
  - {bind: c1/web-0}
""")
    lab = lab_of(text)
    (spec,) = [s for s in checks_mod.matrix(lab) if s.name.startswith("internet→pod EIP")]
    assert spec.dst_ip == ip_address("198.51.100.10") and spec.expect == "blocked"
    assert "no inbound rule of c1-cce-eni admits tcp/8080 from 203.0.113.10" in spec.name
