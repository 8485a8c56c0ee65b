"""ELBs on the lab (pure, no root): resolved from the scenario and the Services' annotations
as the service does, refused where it refuses, their rulesets rendered whole, the status
they publish (and kube-proxy's answer to `ipMode: Proxy` in all three modes), and the
sources the checks expect per ELB type and externalTrafficPolicy."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from netlab import proxy
from netlab.cloud import elb as elb_mod
from netlab.errors import ScenarioError
from netlab.lab.services import service_object
from netlab.plan import ops
from netlab.plan.planner import build
from netlab.probe import agent, checks
from netlab.probe.lb_checks import lb_matrix
from netlab.scenario import loader
from tests.helpers import load_text

INGRESS = loader.builtin_path("ingress").read_text()

BASE = """\
name: t
vpc:
  subnets: [{name: nodes, cidr: 192.168.0.0/24}, {name: intranet, cidr: 192.168.1.0/24}]
internet:
  hosts: [{name: client, ports: []}]
hosts: [{name: ecs-1, subnet: intranet, ports: []}]
elbs:
  - {name: lb, type: TYPE}
eips: [{bind: elb/lb}]
clusters:
  - name: c1
    model: vpc
    proxy_mode: MODE
    nodes: [{name: n1}, {name: n2}]
    pods:
      - {name: web, replicas: 2, node: [n1, n2], labels: {app: web}, ports: [{port: 8080}]}
      - {name: client, node: n1}
    services:
      - name: web
        type: LoadBalancer
        externalTrafficPolicy: ETP
        selector: {app: web}
        ports: [{port: 80, targetPort: 8080}]
        annotations: {kubernetes.io/elb.id: lb, kubernetes.io/elb.class: CLASS ANNOTATIONS}
"""


def lab(type_="shared", etp="Cluster", mode="iptables", annotations="", features=frozenset()):
    text = (BASE.replace("TYPE", type_).replace("ETP", etp).replace("MODE", mode)
            .replace("CLASS", "union" if type_ == "shared" else "performance").replace(" ANNOTATIONS", annotations))
    return load_text(text, features=features)


def err(text: str) -> str:
    with pytest.raises(ScenarioError) as e:
        load_text(text)
    return str(e.value)


# -- resolve ----------------------------------------------------------------------------------
def test_the_ingress_scenario_resolves_both_elbs_and_their_listeners():
    res = load_text(INGRESS, "ingress.yaml")
    shared, dedicated = res.elbs
    assert (shared.ref, str(shared.ip), str(shared.backend_address)) == ("elb/elb-shared", "192.168.0.254",
                                                                          "100.125.0.2")
    assert (dedicated.type, str(dedicated.ip), dedicated.backend_address) == ("dedicated", "192.168.0.253", None)
    assert [(ln.protocol, ln.port) for ln in shared.listeners] == [("TCP", 8000), ("HTTP", 80), ("HTTPS", 443)]
    assert [(ln.protocol, ln.port) for ln in dedicated.listeners] == [("TCP", 8000), ("TCP", 80), ("TCP", 443)]
    assert [(e.bind, str(e.ip), e.kind) for e in res.eips] == [("elb/elb-shared", "198.51.100.10", "elb"),
                                                               ("elb/elb-dedicated", "198.51.100.11", "elb")]
    pool = shared.pool("cce/default/web-shared:8000/TCP")
    assert [(m.key, m.target) for m in pool.members] == [("192.168.0.10:30000", "cce/node-1"),
                                                         ("192.168.0.11:30000", "cce/node-2")]
    assert (pool.health.delay, pool.health.timeout, pool.health.max_retries) == (1, 1, 2)
    assert shared.pool("cce/default/pay:80/L7").health.delay == 5  # the service's defaults
    # The add-on: two controller pods and their Service, bound to the dedicated ELB.
    cluster = res.clusters[0]
    assert [p.name for p in cluster.pods if p.namespace == "kube-system"] == ["nginx-ingress-controller-0",
                                                                               "nginx-ingress-controller-1"]
    assert [i.ingress_class for i in cluster.ingresses] == ["cce", "cce", "nginx"]
    assert ("elb", None, "elb/elb-shared", "nl-ingress.elb.elb-shared") in res.objects()


def test_status_lists_the_elb_and_its_eip_and_pass_through_is_ipmode_proxy():
    res = load_text(INGRESS, "ingress.yaml")
    svcs = {s.spec.name: s for s in res.clusters[0].services}
    assert service_object(svcs["web-shared"])["status"] == {"loadBalancer": {"ingress": [
        {"ip": "192.168.0.254", "ipMode": "Proxy"}, {"ip": "198.51.100.10", "ipMode": "Proxy"}]}}
    assert service_object(svcs["web-dedicated"])["status"] == {"loadBalancer": {"ingress": [
        {"ip": "192.168.0.253"}, {"ip": "198.51.100.11"}]}}


@pytest.mark.parametrize("mode", ["iptables", "nftables", "ipvs"])
def test_kube_proxy_short_circuits_a_vip_but_not_an_ipmode_proxy_address(mode):
    """KEP-1860, as kube-proxy implements it in each mode: an ingress IP with ipMode Proxy
    gets no rule, virtual server or kube-ipvs0 address on any node."""
    features = frozenset({"ip_vs", "dummy"}) if mode == "ipvs" else frozenset()
    for through, present in (("", True), (', kubernetes.io/elb.pass-through: "true"', False)):
        res = lab(mode=mode, annotations=through, features=features)
        cluster = res.clusters[0]
        rs = proxy.ruleset(res, cluster, cluster.nodes[0])
        text = {"iptables": lambda: rs.restore_input(), "nftables": lambda: rs.transaction(),
                "ipvs": lambda: rs.ipvsadm_restore_input() + rs.ipset_restore_input() + " ".join(rs.dummy_addresses())
                }[mode]()
        vip = str(res.elbs[0].ip)
        assert (vip in text) is present, (mode, through)
        assert ("198.51.100.10" in text) is present


@pytest.mark.parametrize("text,field,message", [
    (BASE.replace("elb.id: lb", "elb.id: nope"), "clusters[0].services[0].annotations.kubernetes.io/elb.id",
     "no ELB 'nope'; ELBs: lb"),
    (BASE.replace("CLASS", "performance"), "annotations.kubernetes.io/elb.class", "ELB 'lb' is shared; write union"),
    (BASE.replace("CLASS", "fast"), "kubernetes.io/elb.class", "'fast' is not valid; write union"),
    (BASE.replace("CLASS ANNOTATIONS", "union, kubernetes.io/elb.healthcheck: x"), "kubernetes.io/elb.healthcheck",
     "unknown ELB annotation"),
    (BASE.replace("CLASS ANNOTATIONS", "union, kubernetes.io/elb.health-check-option: '{\"delay\": \"99\"}'"),
     "health-check-option", "delay: 99 is outside 1-50"),
    (BASE.replace("CLASS ANNOTATIONS", "union, kubernetes.io/elb.health-check-option: '{\"protocol\": \"UDP\"}'"),
     "health-check-option", "protocol: UDP cannot check a TCP listener"),
    (BASE.replace("CLASS ANNOTATIONS", "union, kubernetes.io/elb.pass-through: maybe"), "pass-through",
     "'maybe' is not valid"),
    (BASE.replace("type: LoadBalancer", "type: NodePort"), "elb.id", "only a LoadBalancer Service gets an ELB"),
    (BASE.replace("{name: lb, type: TYPE}", "{name: lb, type: shared, subnet: nope}"), "elbs[0].subnet",
     "unknown subnet 'nope'"),
    (BASE.replace("{name: lb, type: TYPE}", "{name: lb, type: shared, ip: 192.168.0.10}"), "elbs[0].ip",
     "192.168.0.10 is already used"),
    (BASE.replace("eips: [{bind: elb/lb}]", "eips: [{bind: elb/other}]"), "eips[0].bind", "no ELB 'other'"),
])
def test_what_the_service_refuses_is_refused(text, field, message):
    text = text.replace("TYPE", "shared").replace("ETP", "Cluster").replace("MODE", "iptables")
    text = text.replace("CLASS", "union").replace(" ANNOTATIONS", "")
    got = err(text)
    assert field in got and message in got, got


def test_a_second_service_on_the_same_port_is_refused():
    text = BASE + """\
      - name: other
        type: LoadBalancer
        selector: {app: web}
        ports: [{port: 80, targetPort: 8080}]
        annotations: {kubernetes.io/elb.id: lb}
"""
    text = text.replace("TYPE", "shared").replace("ETP", "Cluster").replace("MODE", "iptables")
    got = err(text.replace("CLASS", "union").replace(" ANNOTATIONS", ""))
    assert "services[1].annotations.kubernetes.io/elb.id" in got and "already listens on TCP 80" in got


def test_autocreate_makes_an_elb_with_an_eip():
    text = BASE.replace("kubernetes.io/elb.id: lb, ", "").replace("CLASS ANNOTATIONS",
                                                    "performance, kubernetes.io/elb.autocreate: '{\"type\": \"public\"}'")
    res = load_text(text.replace("TYPE", "shared").replace("ETP", "Local").replace("MODE", "iptables"))
    made = res.elbs[1]
    assert (made.name, made.type, made.autocreated_by) == ("c1-web", "dedicated", "c1/default/web")
    assert res.eips_of("elb/c1-web") == [ip_address("198.51.100.10")]


# -- plan -------------------------------------------------------------------------------------
LISTENERS = """\
# netlab t: ELB lb (shared, 192.168.0.254)
table ip netlab-elb
delete table ip netlab-elb
table ip netlab-elb {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 192.168.0.254 tcp dport 80 dnat ip to numgen inc mod 1 map { 0 : 192.168.0.11 . 30000 } \
comment "TCP:80 → c1/default/web:80/TCP, 1/2 members in rotation"
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr != 100.125.0.2 meta l4proto { tcp, udp } ip daddr . th dport { 192.168.0.10 . 30000, \
192.168.0.11 . 30000 } snat to 100.125.0.2 comment "shared ELB: backends see its backend-side address"
	}
}
"""


def test_a_member_out_of_rotation_leaves_the_rendered_table():
    res = lab()
    elb = res.elbs[0]
    assert elb_mod.ruleset(res, elb, frozenset({"c1/default/web:80/TCP 192.168.0.10:30000"})) == LISTENERS
    none = elb_mod.ruleset(res, elb, frozenset(f"c1/default/web:80/TCP {m.key}" for m in elb.pools[0].members))
    assert "dnat" not in none and "0/2 members in rotation: nothing forwarded" in none


def test_ipvs_where_the_kernel_has_it():
    res = lab(features=frozenset({"ip_vs"}))
    elb = res.elbs[0]
    assert elb.datapath == "ipvs"
    assert elb_mod.ipvs_rules(elb, frozenset({"c1/default/web:80/TCP 192.168.0.10:30000"})) == (
        "-A -t 192.168.0.254:80 -s rr\n"
        "-a -t 192.168.0.254:80 -r 192.168.0.10:30000 -m -w 0\n"
        "-a -t 192.168.0.254:80 -r 192.168.0.11:30000 -m -w 1\n")
    plan = build(res).ops
    assert [op.module for op in plan if isinstance(op, ops.LoadModule) and op.netns == elb.netns] == [
        "ip_vs", "ip_vs_rr", "ip_vs_sh"]
    assert any(isinstance(op, ops.IpvsRestore) and op.netns == elb.netns for op in plan)
    assert elb_mod.ipvs_weight(elb, elb.pools[0], elb.pools[0].members[0], True) == \
        "-e -t 192.168.0.254:80 -r 192.168.0.10:30000 -m -w 1\n"


def test_the_vpc_router_steers_a_dedicated_elbs_replies_back_to_it():
    res = lab("dedicated")
    elb = res.elbs[0]
    text = elb_mod.steering(res, "vpc")
    assert (f"ether saddr {elb.mac} ip saddr != 192.168.0.254 ct direction original ct mark set "
            f"{elb.mark:#x}") in text
    assert f'ct direction reply ct mark {elb.mark:#x} dup to 192.168.0.254 device "br-nodes" drop' in text
    plan = build(res).ops
    assert ops.Sysctl("nl-t.vpc", "net.bridge.bridge-nf-call-iptables", "1") in plan
    assert elb.backend_address is None and "postrouting" not in elb_mod.ruleset(res, elb)


def test_processes_start_after_the_agent_health_checker_last():
    plan = build(load_text(INGRESS, "ingress.yaml")).ops
    names = [op.name for op in plan if isinstance(op, ops.StartProcess)]
    assert names == ["agent", "nginx-elb-elb-shared", "nginx-cce-nginx-ingress-controller-0",
                     "nginx-cce-nginx-ingress-controller-1", "healthcheck"]
    nginx = next(op for op in plan if isinstance(op, ops.StartProcess) and op.name == "nginx-elb-elb-shared")
    assert nginx.ready_file == "elb/elb-shared/nginx.pid"


# -- checks -----------------------------------------------------------------------------------
def sources(res, name_part: str) -> dict[str, set[str]]:
    return {c.name: {str(a) for a in c.allowed_sources} for c in lb_matrix(res) if name_part in c.name}


@pytest.mark.parametrize("type_,etp,public,intranet,pod", [
    ("shared", "Local", {"100.125.0.2"}, {"100.125.0.2"}, {"172.16.0.3"}),
    ("dedicated", "Local", {"203.0.113.10"}, {"192.168.1.10"}, {"172.16.0.3"}),
    ("shared", "Cluster", {"192.168.0.10", "172.16.0.1", "192.168.0.11", "172.16.1.1"}, None, None),
])
def test_what_a_backend_sees_per_elb_type_and_policy(type_, etp, public, intranet, pod):
    rows = sources(lab(type_, etp), "LoadBalancer")
    by_src = {name.split(": ")[1].split(" →")[0]: s for name, s in rows.items()}
    assert by_src["internet/client"] == public
    if intranet:
        assert by_src["ecs-1"] == intranet
    if pod:
        assert by_src["c1/client"] == pod  # short-circuited by kube-proxy, Local: the pod's own address


def test_pass_through_sends_pods_through_a_shared_elb():
    rows = sources(lab("shared", "Local", annotations=', kubernetes.io/elb.pass-through: "true"'), "c1/client")
    (name, seen), = rows.items()
    assert seen == {"100.125.0.2"} and "pass-through: out of the cluster and through the ELB" in name
    # ... but not through a dedicated one: a client on the node the ELB picks fails (the service says so).
    assert not sources(lab("dedicated", "Local", annotations=', kubernetes.io/elb.pass-through: "true"'), "c1/client")


def test_ingress_checks_cover_every_host_and_path_with_the_matched_backend():
    res = load_text(INGRESS, "ingress.yaml")
    rows = {(c.proto, c.host, c.path): c for c in lb_matrix(res) if c.proto in ("http", "https")}
    assert rows[("http", "shop.example.com", "/cart")].allowed_backends == ("cce/cart",)
    assert rows[("http", "shop.example.com", "/cart")].expect_forwarded_for == "203.0.113.10"
    pay = rows[("https", "pay.example.com", "/pay")]
    assert (pay.port, pay.ca_pem is not None, pay.allowed_backends) == (443, True, ("cce/pay",))
    assert rows[("http", "wild.docs.example.com", "/v2")].allowed_backends == ("cce/docs-v2",)
    assert rows[("http", "no-rule-matches.invalid", "/")].allowed_backends == ("cce/web-0", "cce/web-1")
    blog = rows[("https", "blog.example.com", "/")]
    assert {str(a) for a in blog.allowed_sources} == {"172.16.0.8", "172.16.1.7"}  # the controller pods
    assert blog.expect_forwarded_for == "203.0.113.10"  # dedicated ELB + Local: the client reaches nginx
    assert rows[("http", "blog.example.com", "/")].expect_status == 308
    # No agent-level probe of the controller's Service: nginx answers it.
    assert not [c for c in checks.matrix(res) if "svc/nginx-ingress-controller" in c.name
                or c.proto == "tcp" and c.dst.startswith("cce/nginx-ingress-controller")]


def test_the_agent_reports_what_an_http_request_carried():
    got = agent.http_request(b"GET /a/b?x=1 HTTP/1.1\r\nHost: shop.example.com\r\nX-Forwarded-For: 203.0.113.10\r\n\r\n")
    assert got == {"method": "GET", "host": "shop.example.com", "path": "/a/b",
                   "headers": {"Host": "shop.example.com", "X-Forwarded-For": "203.0.113.10"}}
    lst = agent.Listener("c1/web-0", "pod", "nl-x", 8080, "tcp")
    body = agent.answer(lst, ("1.2.3.4", 5), ("5.6.7.8", 8080), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert b'"name": "c1/web-0"' in body and b'"server": "c1/web-0"' in body and b'"client": "1.2.3.4:5"' in body


def test_explicit_checks_name_an_elb_or_eip_with_host_path_and_backend():
    res = load_text(INGRESS, "ingress.yaml")
    explicit = {c.name: c for c in checks.explicit(res)}
    shop = explicit["scenario check: ecs-1 → elb/elb-shared:80 http shop.example.com/cart/42"]
    assert (str(shop.dst_ip), shop.port, shop.host, shop.path, shop.expect_backend, shop.ca_pem) == (
        "192.168.0.254", 80, "shop.example.com", "/cart/42", "cce/cart", None)
    blog = explicit["scenario check: internet/client → 198.51.100.11:443 https blog.example.com/admin/users"]
    assert blog.port == 443 and blog.ca_pem.startswith("-----BEGIN CERTIFICATE")  # https defaults to 443


@pytest.mark.parametrize("check,field,message", [
    ('{from: ecs-1, to: "elb/lb:80", proto: http, backend: elb/lb}', "checks[0].backend", "is not a pod or host"),
    ('{from: ecs-1, to: "elb/lb:80", host: a.example.com}', "checks[0].host", "needs proto: http or https"),
    ('{from: ecs-1, to: "elb/nope:80"}', "checks[0].to", "no ELB 'nope'; ELBs: lb"),
])
def test_explicit_http_checks_are_validated(check, field, message):
    text = BASE.replace("TYPE", "shared").replace("ETP", "Cluster").replace("MODE", "iptables")
    got = err(text.replace("CLASS", "union").replace(" ANNOTATIONS", "") + f"checks:\n  - {check}\n")
    assert field in got and message in got, got
