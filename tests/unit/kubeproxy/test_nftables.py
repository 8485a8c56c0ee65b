"""nftables renderer and the knftables-like transaction builder.

Rule text is kube-proxy's (pkg/proxy/nftables/proxier.go@531be81); whole transactions
are checked against kube-proxy's expectations in tests/conformance.
"""

from pathlib import Path

import pytest

from netlab.kubeproxy.nftables import render_nftables
from netlab.kubeproxy.nftx import Transaction, concat, parse_priority, sort_nftables_transaction
from netlab.kubeproxy.trace import trace_nftables

from tests.unit.kubeproxy.helpers import (
    EXTERNAL, EXTERNAL_BLOCKED, LOCAL_IPS, NODE, NODE_IP, POD, ep, nft_env, port, slice_, svc,
)

DATA = Path(__file__).parent / "data"
SVC = "service-ULMVA6XW-ns1/svc1/tcp/p80"
EXT = "external-ULMVA6XW-ns1/svc1/tcp/p80"
LOCAL = "local-ULMVA6XW-ns1/svc1/tcp/p80"
EP1 = "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
ONE_EP = [slice_(endpoints=[ep("10.180.0.1")])]
LB = dict(type="LoadBalancer", ports=[port(node_port=3001)], lb_ips=["1.2.3.4"])


def render(services, slices=(), **kw):
    return render_nftables(services, list(slices), nft_env(**kw))


def lines(services, slices=(), **kw) -> list[str]:
    return render(services, slices, **kw).transaction().splitlines()


def trace(services, slices, src, dst, dport, proto="tcp", **kw):
    return trace_nftables(render(services, slices, **kw).dump(), src, proto, dst, dport, LOCAL_IPS)


def rule(chain, text):
    return f"add rule ip kube-proxy {chain} {text}"


# --- knftables pieces -------------------------------------------------------------------

def test_sort_nftables_transaction_matches_kube_proxy_vector():
    given = (DATA / "sort_nftables_input.nft").read_text()
    assert sort_nftables_transaction(given) == (DATA / "sort_nftables_expected.nft").read_text().strip()


@pytest.mark.parametrize("args,expected", [
    (("ip", "daddr", "@", "cluster-ips", "reject"), "ip daddr @cluster-ips reject"),
    (("ip saddr", ["10.0.0.0/8", "goto"], "x"), "ip saddr 10.0.0.0/8 goto x"),
    (("update", "@", "aff", "{ ip saddr }"), "update @aff { ip saddr }"),
])
def test_concat_glues_at_sign(args, expected):
    assert concat(*args) == expected


@pytest.mark.parametrize("text,value", [
    ("dstnat-10", -110), ("dstnat", -100), ("filter", 0), ("srcnat", 100), ("-5", -5), ("raw+1", -299),
])
def test_parse_priority(text, value):
    assert parse_priority(text) == value


def test_transaction_prints_and_dumps():
    tx = Transaction()
    tx.add_table(comment="rules for kube-proxy")
    tx.add_chain("c")
    tx.add_rule("c", "drop", comment="x")
    tx.add_map("m", "inet_proto . inet_service : verdict")
    tx.add_element("m", ["tcp", "80"], "goto c", comment="ns/s:p")
    assert tx.text().splitlines() == [
        'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
        "add chain ip kube-proxy c",
        'add rule ip kube-proxy c drop comment "x"',
        "add map ip kube-proxy m { type inet_proto . inet_service : verdict ; }",
        'add element ip kube-proxy m { tcp . 80 comment "ns/s:p" : goto c }',
    ]
    assert "add rule ip kube-proxy c drop comment \"x\"" in tx.dump()


# --- the proxier ------------------------------------------------------------------------

def test_every_chain_set_and_map_is_declared_before_use():
    out = lines([svc(**LB, load_balancer_source_ranges=("203.0.113.0/25",),
                     session_affinity="ClientIP")], ONE_EP)
    declared = set()
    for line in out:
        words = line.split(" ")
        if words[0] == "add" and words[1] in ("chain", "set", "map"):
            declared.add(words[4])
        elif words[1] in ("rule", "element"):
            assert words[4] in declared, line
            for ref in [w for w in words[5:] if w.startswith("@")]:
                assert ref[1:] in declared, line
            for i, w in enumerate(words[:-1]):
                if w in ("goto", "jump"):
                    assert words[i + 1] in declared, line


def test_base_chains_and_priorities():
    out = lines([])
    assert "add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }" in out
    assert "add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }" in out
    assert "add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }" in out


def test_cluster_ip():
    out = lines([svc()], ONE_EP)
    assert "add element ip kube-proxy cluster-ips { 172.30.0.41 }" in out
    assert f"add element ip kube-proxy service-ips {{ 172.30.0.41 . tcp . 80 : goto {SVC} }}" in out
    assert rule(SVC, "ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade") in out
    assert rule(SVC, f"numgen random mod 1 vmap {{ 0 : goto {EP1} }}") in out
    assert rule(EP1, "meta l4proto tcp dnat to 10.180.0.1:80") in out
    result = trace([svc()], ONE_EP, POD, "172.30.0.41", 80)
    assert (result.output, result.masq) == ("10.180.0.1:80", False)


def test_cluster_ip_wrong_port_and_unallocated_ip():
    assert trace([svc()], ONE_EP, POD, "172.30.0.41", 81).output == "REJECT"
    assert trace([svc()], ONE_EP, POD, "172.30.0.99", 80).output == "DROP"


def test_numgen_vmap_over_several_endpoints():
    eps = [slice_(endpoints=[ep(f"10.180.0.{i}") for i in (1, 2, 3)])]
    (line,) = [x for x in lines([svc()], eps) if x.startswith(f"add rule ip kube-proxy {SVC} numgen")]
    assert line.count(" : goto endpoint-") == 3 and "numgen random mod 3 vmap { 0 : goto" in line
    assert trace([svc()], eps, POD, "172.30.0.41", 80).output == "10.180.0.1:80, 10.180.0.2:80, 10.180.0.3:80"


def test_node_port():
    service = svc(type="NodePort", ports=[port(node_port=3001)])
    out = lines([service], ONE_EP)
    assert f"add element ip kube-proxy service-nodeports {{ tcp . 3001 : goto {EXT} }}" in out
    assert "add element ip kube-proxy nodeport-ips { 192.168.0.2 }" in out
    assert rule(EXT, "jump mark-for-masquerade") in out
    result = trace([service], ONE_EP, EXTERNAL, NODE_IP, 3001)
    assert (result.output, result.masq) == ("10.180.0.1:80", True)


def test_load_balancer_and_external_ips():
    service = svc(**LB, external_ips=("192.168.99.11",))
    out = lines([service], ONE_EP)
    assert f"add element ip kube-proxy service-ips {{ 1.2.3.4 . tcp . 80 : goto {EXT} }}" in out
    assert f"add element ip kube-proxy service-ips {{ 192.168.99.11 . tcp . 80 : goto {EXT} }}" in out
    assert trace([service], ONE_EP, EXTERNAL, "1.2.3.4", 80).masq
    assert trace([service], ONE_EP, EXTERNAL, "192.168.99.11", 80).output == "10.180.0.1:80"


def test_load_balancer_source_ranges():
    service = svc(**LB, load_balancer_source_ranges=("203.0.113.0/25",))
    out = lines([service], ONE_EP)
    fw = "firewall-ULMVA6XW-ns1/svc1/tcp/p80"
    assert f"add element ip kube-proxy firewall-ips {{ 1.2.3.4 . tcp . 80 : goto {fw} }}" in out
    assert rule(fw, "ip saddr != { 203.0.113.0/25 } drop") in out
    assert trace([service], ONE_EP, EXTERNAL, "1.2.3.4", 80).output == "10.180.0.1:80"
    assert trace([service], ONE_EP, EXTERNAL_BLOCKED, "1.2.3.4", 80).output == "DROP"


def test_external_traffic_policy_local():
    service = svc(**LB, external_traffic_policy="Local", health_check_node_port=30000)
    eps = [slice_(endpoints=[ep("10.180.0.1", node=NODE), ep("10.180.0.2", node="other")])]
    out = lines([service], eps)
    assert rule(EXT, f"goto {LOCAL}") in out
    assert rule(EXT, f'ip saddr 10.0.0.0/8 goto {SVC} comment "short-circuit pod traffic"') in out
    result = trace([service], eps, EXTERNAL, "1.2.3.4", 80)
    assert (result.output, result.masq) == ("10.180.0.1:80", False)


def test_external_traffic_policy_local_without_local_endpoints_drops():
    service = svc(**LB, external_traffic_policy="Local", health_check_node_port=30000)
    eps = [slice_(endpoints=[ep("10.180.0.2", node="other")])]
    out = lines([service], eps)
    assert ('add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment '
            '"ns1/svc1:p80" : drop }') in out
    assert trace([service], eps, EXTERNAL, "1.2.3.4", 80).output == "DROP"


def test_internal_traffic_policy_local():
    service = svc(internal_traffic_policy="Local")
    eps = [slice_(endpoints=[ep("10.180.0.1", node=NODE), ep("10.180.0.2", node="other")])]
    out = lines([service], eps)
    assert f"add element ip kube-proxy service-ips {{ 172.30.0.41 . tcp . 80 : goto {LOCAL} }}" in out
    assert trace([service], eps, POD, "172.30.0.41", 80).output == "10.180.0.1:80"


def test_session_affinity_sets():
    out = lines([svc(session_affinity="ClientIP", session_affinity_timeout=10800)], ONE_EP)
    aff = "affinity-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    assert f"add set ip kube-proxy {aff} {{ type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }}" in out
    assert rule(SVC, f"ip saddr @{aff} goto {EP1}") in out
    assert rule(EP1, f"update @{aff} {{ ip saddr }}") in out


def test_no_endpoints_rejects_via_reject_chain():
    out = lines([svc(**LB)])
    assert ('add element ip kube-proxy no-endpoint-services { 172.30.0.41 . tcp . 80 comment '
            '"ns1/svc1:p80" : goto reject-chain }') in out
    assert ('add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment '
            '"ns1/svc1:p80" : goto reject-chain }') in out
    assert trace([svc(**LB)], [], POD, "172.30.0.41", 80).output == "REJECT"


def test_terminating_endpoints_used_only_when_nothing_is_ready():
    eps = [slice_(endpoints=[ep("10.180.0.1", ready=False, serving=True, terminating=True),
                             ep("10.180.0.2", ready=False, serving=False, terminating=True)])]
    assert trace([svc()], eps, POD, "172.30.0.41", 80).output == "10.180.0.1:80"


def test_service_cidrs_drop_rule_and_masquerade_all():
    out = lines([svc()], ONE_EP, masquerade_all=True, service_cidrs=("172.30.0.0/16", "10.96.0.0/12"))
    assert rule("cluster-ips-check", 'ip daddr { 172.30.0.0/16,10.96.0.0/12 } drop comment '
                '"Drop traffic to unallocated ClusterIPs"') in out
    assert rule(SVC, "ip daddr 172.30.0.41 jump mark-for-masquerade") in out


def test_replace_transaction_deletes_the_old_table_first():
    text = render([]).transaction(replace=True).splitlines()
    assert text[:2] == ["add table ip kube-proxy", "delete table ip kube-proxy"]
    assert render([]).delete_table_transaction() == "delete table ip kube-proxy\n"
