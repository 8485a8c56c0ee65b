"""iptables renderer: one test per Service feature, plus the static parts.

Expected rule text is kube-proxy's (pkg/proxy/iptables/proxier.go@531be81); the full
outputs are checked against kube-proxy's own expectations in tests/conformance.
"""

import pytest

from netlab.kubeproxy.iptables import compute_probability, jump_rules, render_iptables
from netlab.kubeproxy.model import EndpointPort
from netlab.kubeproxy.names import service_port_policy_cluster_chain
from netlab.kubeproxy.trace import trace_iptables

from tests.unit.kubeproxy.helpers import (
    EXTERNAL, EXTERNAL_BLOCKED, LOCAL_IPS, NODE, NODE_IP, POD, ep, env, port, slice_, svc,
)

SVC = "KUBE-SVC-XPGD46QRK7WJZT7O"  # ns1/svc1:p80 tcp
EXT = "KUBE-EXT-XPGD46QRK7WJZT7O"
FW = "KUBE-FW-XPGD46QRK7WJZT7O"
SVL = "KUBE-SVL-XPGD46QRK7WJZT7O"


def render(services, slices=(), **kw):
    return render_iptables(services, list(slices), env(**kw))


def text(services, slices=(), **kw) -> str:
    return render(services, slices, **kw).restore_input()


def lines(services, slices=(), **kw) -> list[str]:
    return text(services, slices, **kw).splitlines()


def trace(services, slices, src, dst, dport, **kw):
    return trace_iptables(text(services, slices, **kw), src, "tcp", dst, dport, LOCAL_IPS)


ONE_EP = [slice_(endpoints=[ep("10.180.0.1")])]
LB = dict(type="LoadBalancer", ports=[port(node_port=30001)], lb_ips=["1.2.3.4"])


def test_chain_names_match_kube_proxy_hash():
    assert service_port_policy_cluster_chain("ns1/svc1:p80", "tcp") == SVC


@pytest.mark.parametrize("n,expected", [
    (1, "1.0000000000"), (2, "0.5000000000"), (10, "0.1000000000"), (100, "0.0100000000"),
    (1000, "0.0010000000"), (10000, "0.0001000000"), (100000, "0.0000100000"),
    (100001, "0.0000099999"), (3, "0.3333333333"),
])
def test_compute_probability(n, expected):
    assert compute_probability(n) == expected


def test_three_endpoints_get_decreasing_probabilities_last_has_none():
    eps = [slice_(endpoints=[ep(f"10.180.0.{i}") for i in (1, 2, 3)])]
    rules = [line for line in lines([svc()], eps) if line.startswith(f"-A {SVC} ") and "->" in line]
    assert ["0.3333333333" in rules[0], "0.5000000000" in rules[1]] == [True, True]
    assert "statistic" not in rules[2]


def test_cluster_ip():
    out = lines([svc()], ONE_EP)
    assert (f'-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp '
            f'-d 172.30.0.41 --dport 80 -j {SVC}') in out
    assert (f'-A {SVC} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp '
            f'-d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ') in out
    assert ("-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp "
            "-j DNAT --to-destination 10.180.0.1:80") in out
    result = trace([svc()], ONE_EP, POD, "172.30.0.41", 80)
    assert (result.output, result.masq) == ("10.180.0.1:80", False)


def test_target_port_is_taken_from_the_endpoint_slice():
    eps = [slice_(endpoints=[ep("10.180.0.1")], ports=[EndpointPort("p80", 8080, "TCP")])]
    assert "-j DNAT --to-destination 10.180.0.1:8080" in text([svc()], eps)


def test_node_port():
    service = svc(type="NodePort", ports=[port(node_port=3001)])
    out = lines([service], ONE_EP)
    assert f"-A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 3001 -j {EXT}" in out
    assert out[-2].endswith("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    assert f'-A {EXT} -m comment --comment "masquerade traffic for ns1/svc1:p80 external destinations" -j KUBE-MARK-MASQ' in out
    result = trace([service], ONE_EP, EXTERNAL, NODE_IP, 3001)
    assert (result.output, result.masq) == ("10.180.0.1:80", True)


def test_localhost_node_ports_accept_rule_and_route_localnet():
    rs = render([svc(type="NodePort", ports=[port(node_port=3001)])], ONE_EP)
    assert "-d 127.0.0.0/8 --dport 3001 -m nfacct --nfacct-name localhost_nps_accepted_pkts" in rs.restore_input()
    assert rs.sysctls == {"net.ipv4.conf.all.route_localnet": "1"}


def test_localhost_node_ports_off():
    rs = render([svc(type="NodePort", ports=[port(node_port=3001)])], ONE_EP,
                localhost_node_ports=False)
    assert "127.0.0.0/8 --dport 3001" not in rs.restore_input()
    assert rs.sysctls == {}


def test_node_port_addresses_restrict_nodeports_jump():
    out = text([svc(type="NodePort", ports=[port(node_port=3001)])], ONE_EP,
               node_port_addresses=("192.168.0.0/24",))
    assert ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this '
            'must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS') in out
    assert "--dst-type LOCAL -j KUBE-NODEPORTS" not in out


def test_load_balancer():
    out = lines([svc(**LB)], ONE_EP)
    assert (f'-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp -p tcp '
            f'-d 1.2.3.4 --dport 80 -j {EXT}') in out
    result = trace([svc(**LB)], ONE_EP, EXTERNAL, "1.2.3.4", 80)
    assert (result.output, result.masq) == ("10.180.0.1:80", True)


def test_external_ips():
    service = svc(external_ips=("192.168.99.11",))
    out = lines([service], ONE_EP)
    assert (f'-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 external IP" -m tcp -p tcp '
            f'-d 192.168.99.11 --dport 80 -j {EXT}') in out
    assert trace([service], ONE_EP, EXTERNAL, "192.168.99.11", 80).masq


def test_load_balancer_source_ranges():
    service = svc(**LB, load_balancer_source_ranges=("203.0.113.0/25",))
    out = lines([service], ONE_EP)
    assert f'-A {FW} -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 203.0.113.0/25 -j {EXT}' in out
    assert f'-A {FW} -m comment --comment "other traffic to ns1/svc1:p80 will be dropped by KUBE-PROXY-FIREWALL"' in out
    assert (f'-A KUBE-PROXY-FIREWALL -m comment --comment "ns1/svc1:p80 traffic not accepted by {FW}" '
            '-m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP') in out
    assert trace([service], ONE_EP, EXTERNAL, "1.2.3.4", 80).output == "10.180.0.1:80"
    assert trace([service], ONE_EP, EXTERNAL_BLOCKED, "1.2.3.4", 80).output == "DROP"


def test_source_range_containing_a_node_ip_lets_the_node_in():
    service = svc(**LB, load_balancer_source_ranges=("192.168.0.0/24",))
    out = lines([service], ONE_EP)
    assert (f'-A {FW} -m comment --comment "ns1/svc1:p80 loadbalancer IP" '
            f'-s 1.2.3.4 -j {EXT}') in out


def test_external_traffic_policy_local():
    service = svc(**{**LB, "ports": [port(node_port=3001)]}, external_traffic_policy="Local",
                  health_check_node_port=30000)
    eps = [slice_(endpoints=[ep("10.180.0.1", node=NODE), ep("10.180.0.2", node="other")])]
    out = lines([service], eps)
    assert f"-A {EXT} -j {SVL}" in out
    assert f'-A {EXT} -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -s 10.0.0.0/8 -j {SVC}' in out
    assert ('-A KUBE-NODEPORTS -m comment --comment "ns1/svc1:p80 health check node port" '
            "-m tcp -p tcp --dport 30000 -j ACCEPT") in out
    result = trace([service], eps, EXTERNAL, "1.2.3.4", 80)
    assert (result.output, result.masq) == ("10.180.0.1:80", False)  # source IP preserved
    assert trace([service], eps, POD, "1.2.3.4", 80).output == "10.180.0.1:80, 10.180.0.2:80"


def test_external_traffic_policy_local_without_local_endpoints_drops():
    service = svc(**LB, external_traffic_policy="Local", health_check_node_port=30000)
    eps = [slice_(endpoints=[ep("10.180.0.2", node="other")])]
    out = lines([service], eps)
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" '
            "-m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP") in out
    assert trace([service], eps, EXTERNAL, "1.2.3.4", 80).output == "DROP"


def test_internal_traffic_policy_local():
    service = svc(internal_traffic_policy="Local")
    eps = [slice_(endpoints=[ep("10.180.0.1", node=NODE), ep("10.180.0.2", node="other")])]
    out = lines([service], eps)
    assert f'-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j {SVL}' in out
    assert f":{SVC} - [0:0]" not in out
    assert trace([service], eps, POD, "172.30.0.41", 80).output == "10.180.0.1:80"


def test_internal_traffic_policy_local_without_local_endpoints_drops():
    service = svc(internal_traffic_policy="Local")
    eps = [slice_(endpoints=[ep("10.180.0.2", node="other")])]
    assert ('-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" '
            "-m tcp -p tcp -d 172.30.0.41 --dport 80 -j DROP") in lines([service], eps)


def test_session_affinity_uses_recent():
    service = svc(session_affinity="ClientIP", session_affinity_timeout=10800)
    out = lines([service], ONE_EP)
    assert (f'-A {SVC} -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m recent --name '
            "KUBE-SEP-SXIVWICOYRO3J4NJ --rcheck --seconds 10800 --reap -j KUBE-SEP-SXIVWICOYRO3J4NJ") in out
    assert ("-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m recent --name "
            "KUBE-SEP-SXIVWICOYRO3J4NJ --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80") in out


def test_no_endpoints_rejects():
    out = lines([svc(**LB)])
    assert ('-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp '
            "-d 172.30.0.41 --dport 80 -j REJECT") in out
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp '
            "-p tcp -d 1.2.3.4 --dport 80 -j REJECT") in out
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m addrtype '
            "--dst-type LOCAL -m tcp -p tcp --dport 30001 -j REJECT") in out
    assert not any(line.startswith(":KUBE-SVC-") for line in out)
    assert trace([svc(**LB)], [], POD, "172.30.0.41", 80).output == "REJECT"


def test_terminating_endpoints_used_only_when_nothing_is_ready():
    eps = [slice_(endpoints=[ep("10.180.0.1"), ep("10.180.0.2", ready=False, serving=True, terminating=True)])]
    assert trace([svc()], eps, POD, "172.30.0.41", 80).output == "10.180.0.1:80"
    eps = [slice_(endpoints=[ep("10.180.0.2", ready=False, serving=True, terminating=True),
                             ep("10.180.0.3", ready=False, serving=False, terminating=True)])]
    assert trace([svc()], eps, POD, "172.30.0.41", 80).output == "10.180.0.2:80"


def test_udp_and_sctp_protocols():
    service = svc(ports=[port(name="dns", port_=53, protocol="UDP"),
                         port(name="s", port_=9, protocol="SCTP")])
    out = text([service])
    assert "-m udp -p udp -d 172.30.0.41 --dport 53 -j REJECT" in out
    assert "-m sctp -p sctp -d 172.30.0.41 --dport 9 -j REJECT" in out


def test_masquerade_all():
    out = lines([svc()], ONE_EP, masquerade_all=True)
    assert (f'-A {SVC} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp '
            "-d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ") in out


def test_random_fully_and_mark_bit():
    out = text([], masquerade_mark=None, masquerade_bit=15, has_random_fully=True)
    assert "-A KUBE-MARK-MASQ -j MARK --or-mark 0x008000" in out
    assert ('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
            "-j MASQUERADE --random-fully") in out


def test_nfacct_off_and_conntrack_liberal():
    assert "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP" in lines([], nfacct=False)
    assert not any("INVALID" in line for line in lines([], conntrack_tcp_liberal=True))
    assert render([], nfacct=False).nfacct_counters == []


def test_large_cluster_drops_service_comments():
    eps = [slice_(endpoints=[ep(f"10.{i // 250}.{i % 250}.1") for i in range(1001)])]
    out = text([svc()], eps)
    assert "-m comment --comment ns1/svc1:p80 -m tcp" not in out
    assert '-m comment --comment "ns1/svc1:p80 cluster IP"' in out  # those are not service comments


def test_filter_before_nat_and_chains_before_rules():
    out = lines([svc(**LB)], ONE_EP)
    assert out[0] == "*filter" and "*nat" in out and out[-1] == "COMMIT"
    nat = out[out.index("*nat"):]
    first_rule = next(i for i, line in enumerate(nat) if line.startswith("-A"))
    assert all(line.startswith(":") for line in nat[1:first_rule])
    assert not any(line.startswith(":") for line in nat[first_rule:])


def test_jump_rules_in_kube_proxy_order():
    jumps = jump_rules()
    assert [(j.table, j.chain, j.target) for j in jumps[:3]] == [
        ("filter", "INPUT", "KUBE-EXTERNAL-SERVICES"), ("filter", "FORWARD", "KUBE-EXTERNAL-SERVICES"),
        ("filter", "INPUT", "KUBE-NODEPORTS")]
    nat = [j for j in jumps if j.table == "nat"]
    assert nat[0].insert_argv() == ["iptables", "-t", "nat", "-I", "OUTPUT", "-m", "comment",
                                    "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"]
    assert nat[0].check_argv("ip6tables")[:5] == ["ip6tables", "-t", "nat", "-C", "OUTPUT"]
    assert jumps[-1].args == ("-j", "KUBE-FIREWALL")


def test_jump_rules_restore_input_declares_targets_then_inserts():
    lines_ = render([], localhost_node_ports=False).jump_rules_restore_input().splitlines()
    assert lines_[0] == "*filter"
    assert ":KUBE-FIREWALL - [0:0]" in lines_  # not in the proxier's input without localhost NodePorts
    nat = lines_[lines_.index("*nat"):]
    assert nat[1:4] == [":KUBE-SERVICES - [0:0]", ":KUBE-POSTROUTING - [0:0]",
                        '-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES']
    assert jump_rules()[0].new_chain_argv() == ["iptables", "-t", "filter", "-N", "KUBE-EXTERNAL-SERVICES"]
