"""Every check says why, in one line, from the lab model: routes, tunnels, SNAT, kube-proxy."""

from __future__ import annotations

from netlab.lab.resolve import resolve
from netlab.probe import checks
from netlab.scenario import loader


def whys(name: str, features=None) -> dict[str, str]:
    lab = resolve(*loader.load(loader.builtin_path(name)), features)
    return {s.name: s.why for s in checks.matrix(lab)}


def test_every_check_of_every_builtin_scenario_says_why():
    for name in loader.builtin_names():
        for check, why in whys(name, None).items():
            assert why and "\n" not in why, (name, check)


def test_the_overview_explains_routes_tunnels_and_snat():
    w = whys("default")
    assert w["pod→pod across nodes: cce-vpc/web-0 → cce-vpc/web-1:8080"] == (
        "VPC route 172.16.1.0/24 via cce-vpc/node-2 (192.168.0.11), no encapsulation")
    assert w["pod→pod across nodes: cce-tunnel/web-0 → cce-tunnel/web-1:8080"] == (
        "VXLAN to 192.168.0.13 (VNI 1) through br-int's vxlan0 port: 172.17.1.0/24 is node-2's pod CIDR")
    assert w["pod→VPC host: cce-tunnel/web-0 → ecs-1:80"].startswith(
        "SNAT to the node IP 192.168.0.12 by the tunnel model's masquerade rule")
    assert w["VPC host→pod: ecs-1 → cce-tunnel/web-0:8080"] == (
        "no VPC route to 172.17.0.0/16 (cce-tunnel's container CIDR); "
        "the default route leads to natgw/ngw, which does not route it")
    # two clusters share 10.247.0.0/16: each check names its own cluster's
    assert "(cce-tunnel's Service CIDR)" in w["VPC host→ClusterIP (outside the cluster): ecs-1 → cce-tunnel/svc/web"]
    assert w["pod→pod same node: cce-vpc/web-0 → cce-vpc/client"] == (
        "same node: node-1 routes 172.16.0.3/32 to veth-client; nothing crosses eth0")


def test_kube_proxy_chains_are_named_as_kube_proxy_names_them():
    w = whys("services", frozenset())
    assert w["pod→ClusterIP: ipt/solo → ipt/svc/web"] == (
        "kube-proxy (iptables) on node-1: KUBE-SVC-LOLE4ISW44XBNF3G → KUBE-SEP-GW6B6CDGSEMOFTF2, … (3 endpoints)")
    assert w["pod→own Service (hairpin): ipt/web-0 → ipt/svc/web"].endswith(
        "; the client is an endpoint: KUBE-SEP-GW6B6CDGSEMOFTF2 masquerades the hairpin")
    assert w["Service without endpoints: ipt/web-0 → ipt/svc/empty"] == (
        "kube-proxy (iptables) on node-1: KUBE-SERVICES REJECT (default/empty has no endpoints)")
    assert w["NodePort (Local): ecs-1 → ipt/svc/solo-local via node-2"] == (
        "kube-proxy (iptables) on node-2: KUBE-EXTERNAL-SERVICES DROP (default/solo-local has no local endpoints)")
    assert w["pod→ClusterIP: nft/solo → nft/svc/web"].startswith(
        "kube-proxy (nftables) on node-1: service-PFISGYVC-default/web/tcp/ → endpoint-")
    assert w["Service without endpoints: nft/web-0 → nft/svc/empty"] == (
        "kube-proxy (nftables) on node-1: no-endpoint-services map: reject (default/empty has no endpoints)")


def test_ipvs_names_virtual_servers_and_the_loop_back_set():
    w = whys("services-ipvs", frozenset({"ip_vs", "dummy"}))
    assert w["pod→ClusterIP: ipvs/solo → ipvs/svc/web"] == (
        "kube-proxy (ipvs) on node-1: virtual server 10.247.0.10:80 (rr) → 3 real servers")
    assert w["pod→own Service (hairpin): ipvs/web-0 → ipvs/svc/web"].endswith(
        "the KUBE-LOOP-BACK set masquerades the hairpin")
    assert "the reply bypasses node-2 and the client drops it" in w[
        "NodePort (Local): ecs-1 → ipvs/svc/solo-local via node-2"]


def test_a_scenario_check_refused_by_a_group_names_the_group():
    w = whys("access")
    assert w["scenario check: cce-vpc/web-0 → db:5432 tcp"] == (
        "blocked by the security groups of db: no inbound rule of db-sg admits tcp/5432 from 172.16.0.2")
    # a scenario check refused by something else keeps its mechanism
    assert w["scenario check: ecs-peer → cce-tunnel/web-1:8080 tcp"].startswith("no VPC route to 172.17.0.0/16")
