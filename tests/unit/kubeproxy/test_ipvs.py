"""IPVS renderer: virtual/real servers, kube-ipvs0 addresses, ipsets and iptables rules
(pkg/proxy/ipvs/proxier.go; whole results are checked in tests/conformance)."""

from netlab.kubeproxy.ipvs import render_ipvs

from tests.unit.kubeproxy.helpers import NODE, ep, env, port, slice_, svc

ONE_EP = [slice_(endpoints=[ep("10.180.0.1")])]
LB = dict(type="LoadBalancer", ports=[port(node_port=3001)], lb_ips=["1.2.3.4"])


def render(services, slices=(), **kw):
    kw.setdefault("node_ips", ("192.168.0.2",))
    return render_ipvs(services, list(slices), env(**kw))


def servers(rs):
    return {(vs.kind, vs.endpoint): [r.endpoint for r in vs.real_servers] for vs in rs.virtual_servers}


def entries(rs, name):
    return rs.ipset(name).entries


def test_cluster_ip():
    rs = render([svc()], ONE_EP)
    assert servers(rs) == {("clusterIP", "172.30.0.41:80"): ["10.180.0.1:80"]}
    (vs,) = rs.virtual_servers
    assert (vs.scheduler, vs.persistent, vs.bind) == ("rr", False, True)
    assert rs.dummy_addresses() == ["172.30.0.41/32"]
    assert entries(rs, "KUBE-CLUSTER-IP") == ["172.30.0.41,tcp:80"]
    assert "-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT" in rs.nat_lines
    assert ('-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for '
            'masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.0.0.0/8 '
            "-j KUBE-MARK-MASQ") in rs.nat_lines


def test_hairpin_loop_back_set_holds_local_endpoints_only():
    rs = render([svc()], [slice_(endpoints=[ep("10.180.0.1", node=NODE), ep("10.180.0.2")])])
    assert entries(rs, "KUBE-LOOP-BACK") == ["10.180.0.1,tcp:80,10.180.0.1"]


def test_node_port_on_every_node_ip():
    rs = render([svc(type="NodePort", ports=[port(node_port=3001)])], ONE_EP,
                node_ips=("192.168.0.2", "192.168.1.2"))
    assert ("nodePort", "192.168.0.2:3001") in servers(rs)
    assert ("nodePort", "192.168.1.2:3001") in servers(rs)
    assert not [vs for vs in rs.virtual_servers if vs.kind == "nodePort" and vs.bind]
    assert entries(rs, "KUBE-NODE-PORT-TCP") == ["3001"]
    assert rs.dummy_addresses() == ["172.30.0.41/32"]  # node IPs are never bound to kube-ipvs0


def test_udp_and_sctp_node_ports():
    service = svc(type="NodePort", ports=[port(name="u", port_=53, protocol="UDP", node_port=3053),
                                          port(name="s", port_=9, protocol="SCTP", node_port=3009)])
    rs = render([service])
    assert entries(rs, "KUBE-NODE-PORT-UDP") == ["3053"]
    assert entries(rs, "KUBE-NODE-PORT-SCTP-HASH") == ["192.168.0.2,sctp:3009"]
    assert "-A -u 192.168.0.2:3053 -s rr" in rs.ipvsadm_restore_input()
    assert "-A --sctp-service 192.168.0.2:3009 -s rr" in rs.ipvsadm_restore_input()


def test_load_balancer_and_external_ip():
    rs = render([svc(**LB, external_ips=("192.168.99.11",))], ONE_EP)
    assert ("loadBalancer", "1.2.3.4:80") in servers(rs)
    assert ("externalIP", "192.168.99.11:80") in servers(rs)
    assert entries(rs, "KUBE-LOAD-BALANCER") == ["1.2.3.4,tcp:80"]
    assert entries(rs, "KUBE-EXTERNAL-IP") == ["192.168.99.11,tcp:80"]
    assert set(rs.dummy_addresses()) == {"172.30.0.41/32", "1.2.3.4/32", "192.168.99.11/32"}


def test_load_balancer_source_ranges():
    rs = render([svc(**LB, load_balancer_source_ranges=("203.0.113.0/25",))], ONE_EP)
    assert entries(rs, "KUBE-LOAD-BALANCER-FW") == ["1.2.3.4,tcp:80"]
    assert entries(rs, "KUBE-LOAD-BALANCER-SOURCE-CIDR") == ["1.2.3.4,tcp:80,203.0.113.0/25"]
    assert "-A KUBE-SOURCE-RANGES-FIREWALL -j DROP" in rs.filter_lines


def test_external_traffic_policy_local_uses_local_real_servers():
    service = svc(**LB, external_traffic_policy="Local", health_check_node_port=30000)
    eps = [slice_(endpoints=[ep("10.180.0.1", node=NODE), ep("10.180.0.2", node="other")])]
    rs = render([service], eps)
    got = servers(rs)
    assert got[("clusterIP", "172.30.0.41:80")] == ["10.180.0.1:80", "10.180.0.2:80"]
    assert got[("loadBalancer", "1.2.3.4:80")] == ["10.180.0.1:80"]
    assert got[("nodePort", "192.168.0.2:3001")] == ["10.180.0.1:80"]
    assert entries(rs, "KUBE-LOAD-BALANCER-LOCAL") == ["1.2.3.4,tcp:80"]
    assert entries(rs, "KUBE-NODE-PORT-LOCAL-TCP") == ["3001"]
    assert entries(rs, "KUBE-HEALTH-CHECK-NODE-PORT") == ["30000"]


def test_internal_traffic_policy_local():
    service = svc(internal_traffic_policy="Local")
    eps = [slice_(endpoints=[ep("10.180.0.1", node=NODE), ep("10.180.0.2", node="other")])]
    assert servers(render([service], eps))[("clusterIP", "172.30.0.41:80")] == ["10.180.0.1:80"]


def test_session_affinity_is_persistence():
    rs = render([svc(session_affinity="ClientIP", session_affinity_timeout=600)], ONE_EP)
    (vs,) = rs.virtual_servers
    assert (vs.persistent, vs.timeout) == (True, 600)
    assert rs.ipvsadm_restore_input().splitlines()[0] == "-A -t 172.30.0.41:80 -s rr -p 600"


def test_scheduler_from_config():
    (vs,) = render([svc()], ONE_EP, ipvs_scheduler="lc").virtual_servers
    assert vs.scheduler == "lc"


def test_no_endpoints_keeps_virtual_server_without_real_servers():
    rs = render([svc()])
    assert servers(rs) == {("clusterIP", "172.30.0.41:80"): []}
    assert entries(rs, "KUBE-LOOP-BACK") == []


def test_terminating_endpoints_fallback():
    eps = [slice_(endpoints=[ep("10.180.0.1", ready=False, serving=True, terminating=True),
                             ep("10.180.0.2", ready=False, serving=False, terminating=True)])]
    assert servers(render([svc()], eps))[("clusterIP", "172.30.0.41:80")] == ["10.180.0.1:80"]


def test_every_ipset_is_created_even_when_empty():
    text = render([]).ipset_restore_input().splitlines()
    assert text[0] == "create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536"
    assert "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535" in text
    assert "create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536" in text
    assert not [line for line in text if line.startswith("add ")]


def test_ipv6_sets_and_host_prefix():
    rs = render_ipvs([svc(cluster_ip="fd00::41")], [slice_(address_type="IPv6",
                                                            endpoints=[ep("fd00:10::1")])],
                     env(ip_family="IPv6", node_ips=("2001:db8::1",)))
    assert rs.dummy_addresses() == ["fd00::41/128"]
    assert rs.ipset("KUBE-6-CLUSTER-IP").family == "inet6"
    assert servers(rs)[("clusterIP", "[fd00::41]:80")] == ["[fd00:10::1]:80"]


def test_iptables_restore_input_is_nat_then_filter_and_jumps():
    rs = render([svc()], ONE_EP)
    text = rs.iptables_restore_input()
    assert text.index("*nat") < text.index("*filter")
    assert ("filter", "INPUT", "KUBE-IPVS-FILTER") in [(j.table, j.chain, j.target) for j in rs.jumps]
    assert rs.kernel_modules[:2] == ("ip_vs", "ip_vs_rr")
    assert rs.sysctls["net.ipv4.vs.conntrack"] == "1"
