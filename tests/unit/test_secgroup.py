"""Security groups (pure): what they admit and why, the ruleset a VPC router gets, a live
rule change, and the checks they add to the matrix."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from netlab.capabilities import KERNEL_FEATURES
from netlab.cloud import secgroup
from netlab.errors import ScenarioError, UserError
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
    assert into_guarded and all(s.expect == "dropped" for s in into_guarded)
    assert all("no inbound rule of guarded admits tcp/8080" in s.why for s in into_guarded)
    sg = {s.name: s for s in specs if s.name.startswith("security group:")}
    assert {n: s.expect for n, s in sg.items()} == {
        "security group: ecs-1 → c1/guarded:8080 tcp admitted": "reach",
        "security group: ecs-1 → c1/guarded:9090 tcp blocked": "dropped",
        "security group: c1/web-0 → c1/guarded:8080 tcp blocked": "dropped",
        "security group: c1/web-0 → c1/guarded:9090 tcp blocked": "dropped"}
    assert all(s.why for s in sg.values())
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
    assert spec.dst_ip == ip_address("198.51.100.10") and spec.expect == "dropped"
    assert "no inbound rule of c1-cce-eni admits tcp/8080 from 203.0.113.10" in spec.why


# -- nodes and hosts ---------------------------------------------------------------------------
MODELS = """\
name: t
vpc:
  subnets:
    - {name: nodes, cidr: 192.168.0.0/24}
    - {name: intranet, cidr: 192.168.1.0/24}
    - {name: pods, cidr: 192.168.2.0/24}
hosts:
  - {name: ecs-1, subnet: intranet}
  - {name: db, subnet: intranet, ports: [{port: 5432}], security_groups: [db-sg]}
security_groups:
  - name: db-sg
    inbound: [{protocol: tcp, port: 5432, remote_ip_prefix: 192.168.0.0/24}]
clusters:
  - name: v
    model: vpc
    container_cidr: 172.16.0.0/16
    nodes: [{name: n1}, {name: n2}]
    pods: [{name: a, node: n1, ports: [{port: 8080}]}, {name: b, node: n2, ports: [{port: 8080}]}]
  - name: t
    model: tunnel
    container_cidr: 172.17.0.0/16
    nodes: [{name: n1}, {name: n2}]
    pods: [{name: a, node: n1, ports: [{port: 8080}]}, {name: b, node: n2, ports: [{port: 8080}]}]
  - name: e
    model: eni
    pod_subnet: pods
    service_cidr: 10.248.0.0/16
    nodes: [{name: n1}]
    pods: [{name: a, node: n1, ports: [{port: 8080}]}]
"""


def _rules(lab, name):
    return [r.text("inbound") for r in lab.security_group(name).inbound]


def test_every_cluster_gets_the_services_default_node_group_per_model():
    lab = lab_of(MODELS)
    common = ["tcp 30000-32767 from 0.0.0.0/0", "udp 30000-32767 from 0.0.0.0/0"]
    assert _rules(lab, "v-cce-node") == ["all from 192.168.0.0/16", "all from 172.16.0.0/16", *common,
                                         "all from group v-cce-node"]
    assert _rules(lab, "t-cce-node") == ["udp 4789 from group t-cce-node", *common, "all from group t-cce-node"]
    assert _rules(lab, "e-cce-node") == ["all from 192.168.2.0/24", *common, "all from group e-cce-node"]
    assert all(r.text("outbound") == "all to 0.0.0.0/0" for g in ("v", "t", "e")
               for r in lab.security_group(f"{g}-cce-node").outbound)
    assert [n.security_groups for c in lab.clusters for n in c.nodes] == \
        [["v-cce-node"]] * 2 + [["t-cce-node"]] * 2 + [["e-cce-node"]]
    # A host the scenario binds is a member; one it does not bind is not filtered at all.
    by_name = {m.name: m for m in secgroup.members(lab)}
    assert by_name["db"].groups == ("db-sg",) and "ecs-1" not in by_name
    # A vpc-model node's pod CIDR is behind its port; a tunnel node's pods travel as the node.
    assert by_name["v/n1"].behind == (lab.cluster("v").node("n1").pod_cidr,) and by_name["t/n1"].behind == ()
    assert secgroup.created_name("c" * 40, "node").endswith("-cce-node") and len(secgroup.created_name("c" * 40,
                                                                                                  "node")) <= 40


def test_the_ruleset_guards_node_ports_with_their_pod_cidr_and_bound_hosts():
    lab = lab_of(MODELS)
    text = secgroup.ruleset(lab, lab.vpc)
    v1 = lab.cluster("v").node("n1")
    assert f"{v1.eth0.ip} : jump in-v/n1, {v1.pod_cidr} : jump in-v/n1" in text
    assert "chain in-db {" in text and "chain in-ecs-1" not in text
    assert 'tcp dport 5432 counter accept comment "db-sg: inbound tcp 5432 from 192.168.0.0/24"' in text
    assert "set members-t-cce-node {" in text
    assert 'udp dport 4789 counter accept comment "t-cce-node: inbound udp 4789 from group t-cce-node"' in text


def test_node_groups_from_the_scenario_replace_the_default_and_are_checked():
    text = MODELS.replace("    container_cidr: 172.16.0.0/16\n    nodes: [{name: n1}, {name: n2}]\n",
                          "    container_cidr: 172.16.0.0/16\n    node_security_groups: [v-cce-node, db-sg]\n"
                          "    nodes: [{name: n1}, {name: n2, security_groups: [db-sg]}]\n")
    lab = lab_of(text)
    assert [n.security_groups for n in lab.cluster("v").nodes] == [["v-cce-node", "db-sg"], ["db-sg"]]
    with pytest.raises(ScenarioError, match=r"test.yaml:17: clusters\[0\].node_security_groups\[1\]: unknown "
                                            r"security group 'nope'"):
        lab_of(text.replace("[v-cce-node, db-sg]", "[v-cce-node, nope]"))
    with pytest.raises(ScenarioError, match=r"hosts\[1\].security_groups\[0\]: unknown security group 'x'"):
        lab_of(MODELS.replace("security_groups: [db-sg]}", "security_groups: [x]}"))


def test_without_br_netfilter_only_what_the_scenario_binds_is_refused():
    no_eni = MODELS[:MODELS.index("  - name: e\n")]
    with pytest.raises(ScenarioError, match=r"hosts\[1\].security_groups: security groups are enforced .*br_netfilter"):
        load_text(no_eni, features=frozenset(KERNEL_FEATURES) - {"br_netfilter"})
    # The default node groups alone: kept in the lab, not enforced (no table), as before.
    plain = no_eni.replace(", security_groups: [db-sg]}", "}")
    lab = load_text(plain, features=frozenset(KERNEL_FEATURES) - {"br_netfilter"})
    assert lab.security_group("v-cce-node") is not None and secgroup.members(lab) == []
    assert secgroup.vpc_ops(lab) == []


def test_the_overview_warning_is_a_check_and_follows_the_group():
    lab = lab_of(MODELS)
    specs = {s.name: s for s in checks_mod.matrix(lab)}
    tunnel = specs["pod→VPC host: t/a → db:5432"]
    assert tunnel.expect == "reach" and tunnel.expect_source == lab.cluster("t").node("n1").eth0.ip  # as its node
    vpc = [s for s in checks_mod.matrix(lab) if s.name.startswith("pod→VPC host: v/a → db:5432")][0]
    assert vpc.expect == "dropped" and "no inbound rule of db-sg admits tcp/5432 from 172.16.0.2" in vpc.why
    assert specs["security group: ecs-1 → db:5432 tcp blocked"].expect == "dropped"
    new, ops = secgroup.change_rule(lab, "db-sg", "inbound",
                                    Rule(protocol="tcp", port=5432, remote_ip_prefix="172.16.0.0/16"), add=True)
    assert [s.expect for s in checks_mod.matrix(new) if s.name.startswith("pod→VPC host: v/a → db:5432")] == ["reach"]
    assert len(ops) == 3 and "172.16.0.0/16" in ops[-1].body()


def test_vxlan_between_nodes_is_judged_as_the_nodes_udp():
    lab = lab_of(MODELS)
    group = lab.security_group("t-cce-node")
    bare = group.model_copy(update={"inbound": [r for r in group.inbound if r.remote_group is None]})
    lab = lab.model_copy(update={"security_groups": [bare if g.name == group.name else g
                                                     for g in lab.security_groups]})
    across = [s for s in checks_mod.matrix(lab) if s.name.startswith("pod→pod across nodes: t/a → t/b")][0]
    assert across.expect == "dropped" and "no inbound rule of t-cce-node admits udp/4789" in across.why
    # A vpc-model pod reaches another node's pod with its own address: the container CIDR rule.
    assert [s.expect for s in checks_mod.matrix(lab) if s.name.startswith("pod→pod across nodes: v/a")] == ["reach"]
