"""`netlab trace` on running labs: the kube-proxy chains the offline tracer names, the DNAT
to the endpoint that answered, the return path, OVS tables and the VXLAN hop, and a blocked
probe's trace ending at the rule or the missing route that stopped it. Asserted on the JSON;
afterwards no trace table or monitor is left in the lab."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from netlab import proxy
from netlab.apply.state import StateDir
from netlab.kubeproxy.trace import trace_iptables, trace_nftables
from tests.helpers import netlab


def trace(lab: str, *args: str, expect: int = 0) -> dict:
    done = netlab("trace", lab, *args, "--json")
    assert done.returncode == expect, done.stderr + done.stdout
    return json.loads(done.stdout)


def assert_untouched(lab: str) -> None:
    for ns in StateDir(lab).read().netns_names():
        tables = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "tables"], capture_output=True, text=True)
        assert "netlab-trace" not in tables.stdout, ns
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [l for l in ps.splitlines() if "nft monitor" in l and f"nl-{lab}." in l]


def netns_hops(report: dict, direction: str) -> list[dict]:
    return [h for h in report["hops"] if h["direction"] == direction and h["kind"] == "netns"]


@pytest.fixture(scope="module")
def services():
    name = "tr-trace"
    up = netlab("up", "scenarios/services.yaml", "--name", name)
    assert up.returncode == 0, up.stderr
    yield name
    assert netlab("down", name).returncode == 0


def test_pod_to_cluster_ip_iptables_names_kube_proxys_chains_and_the_return_path(services):
    r = trace(services, "ipt/client", "ipt/svc/web:80")
    assert r["result"]["reached"] and r["died"] is None
    answered = r["result"]["answered_by"]
    lab = StateDir(services).read()
    cluster = lab.cluster("ipt")
    node = cluster.node("node-2")  # the client's node
    offline = trace_iptables(proxy.ruleset(lab, cluster, node).restore_input(), "172.16.1.4", "tcp",
                             str(cluster.services[0].cluster_ip), 80, local_ips=[str(node.eth0.ip)])
    svc_chains = {m for rule in offline.matches for m in re.findall(r"KUBE-SVC-\w+", rule)}
    sep_by_dnat = {re.search(r"--to-destination (\S+)", rule).group(1): re.match(r"-A (\S+)", rule).group(1)
                   for rule in offline.matches if "DNAT" in rule}

    [kp] = [k for k in r["kube_proxy"] if k["object"] == "ipt/node-2"]
    live_svc = [c for c in kp["chains"] if c.startswith("KUBE-SVC-")]
    live_sep = [c for c in kp["chains"] if c.startswith("KUBE-SEP-")]
    assert live_svc == sorted(svc_chains)  # the same Service chain as `netlab kube-proxy trace`
    assert live_sep == [sep_by_dnat[kp["dnat"]]]  # the endpoint chain of the DNAT target
    backend = cluster.pods[[str(p.ip) for p in cluster.pods].index(kp["dnat"].split(":")[0])]
    assert answered == f"ipt/{backend.name}"  # the DNAT went to the endpoint that answered
    node_hop = next(h for h in netns_hops(r, "request") if h["object"] == "ipt/node-2")
    assert {"type": "dnat", "from": f"{cluster.services[0].cluster_ip}:80", "to": kp["dnat"]} in node_hop["nat"]
    assert node_hop["route"]["route"] and node_hop["fate"] == "forwarded"

    request = netns_hops(r, "request")
    assert request[0]["object"] == "ipt/client" and request[0]["fate"] == "sent"
    assert request[-1]["object"] == answered and request[-1]["fate"] == "delivered"
    reply = netns_hops(r, "reply")
    assert reply[0]["object"] == answered and reply[-1]["object"] == "ipt/client"
    assert reply[-1]["fate"] == "delivered"
    # the reply is un-DNATed on the client's node: the client sees the ClusterIP answer
    assert reply[-1]["packet_in"].startswith(f"{cluster.services[0].cluster_ip}:80 → 172.16.1.4:")
    assert_untouched(services)


def test_pod_to_cluster_ip_nftables_names_the_nft_chains(services):
    r = trace(services, "nft/client", "nft/svc/web:80")
    assert r["result"]["reached"]
    lab = StateDir(services).read()
    cluster = lab.cluster("nft")
    node = cluster.node("node-2")
    dump = proxy.ruleset(lab, cluster, node).dump()
    offline = trace_nftables(dump, "172.17.1.4", "tcp", str(cluster.services[0].cluster_ip), 80,
                             local_ips=[str(node.eth0.ip)])
    endpoint_chains = {m for rule in offline.matches for m in re.findall(r"endpoint-\S+?/\d+", rule)}
    [kp] = [k for k in r["kube_proxy"] if k["object"] == "nft/node-2"]
    [svc_chain] = [c for c in kp["chains"] if c.startswith("service-")]
    [ep_chain] = [c for c in kp["chains"] if c.startswith("endpoint-")]
    assert svc_chain.endswith("-default/web/tcp/") and f"add chain ip kube-proxy {svc_chain}\n" in dump
    assert ep_chain in endpoint_chains and ep_chain.endswith("__" + kp["dnat"].replace(":", "/"))
    assert kp["dnat"] in offline.output.split(", ")
    assert r["result"]["answered_by"] == "nft/" + next(p.name for p in cluster.pods
                                                      if str(p.ip) == kp["dnat"].split(":")[0])
    assert netns_hops(r, "reply")[-1]["object"] == "nft/client"
    assert_untouched(services)


def test_a_rejected_probe_ends_at_kube_proxys_reject_rule(services):
    r = trace(services, "ipt/client", "ipt/svc/empty:80", expect=1)
    assert not r["result"]["reached"]
    died = r["died"]
    assert died["object"] == "ipt/node-2" and died["rule"]["chain"] == "KUBE-SERVICES"
    assert "reject" in died["rule"]["rule"]
    assert_untouched(services)


def test_tunnel_trace_shows_ovs_tables_the_vxlan_hop_and_a_missing_route(lab):
    lab("scenarios/tunnel-basic.yaml", "tr-trtun")
    r = trace("tr-trtun", "client", "web-2:8080")
    assert r["result"]["reached"] and r["result"]["answered_by"] == "c1/web-2"
    kinds = [(h["kind"], h.get("object") or h.get("from_object")) for h in r["hops"] if h["direction"] == "request"]
    assert kinds == [("netns", "c1/client"), ("ovs", "c1/node-1"), ("underlay", "c1/node-1"),
                     ("ovs", "c1/node-2"), ("netns", "c1/web-2")]
    first_ovs = r["hops"][1]
    assert first_ovs["in_port"] == "veth-client" and first_ovs["output"] == "vxlan0"
    assert [f["table"] for f in first_ovs["flows"] if f["bridge"] == "br-int"] == [0, 20]
    assert first_ovs["tunnel"] == {"src": "192.168.0.10", "dst": "192.168.0.11", "dst_port": 4789, "vni": 100}
    vxlan = r["hops"][2]
    assert (vxlan["encap"], vxlan["vni"], vxlan["outer_src"], vxlan["outer_dst"]) == ("vxlan", 100, "192.168.0.10",
                                                                                       "192.168.0.11")
    assert "VXLAN vni 100" in vxlan["seen"] and "inner 172.16.0.3→172.16.1.2" in vxlan["seen"]
    assert r["hops"][3]["output"] == "veth-web-2" and 30 in [f["table"] for f in r["hops"][3]["flows"]]
    reply = [h["kind"] for h in r["hops"] if h["direction"] == "reply"]
    assert reply == ["netns", "ovs", "underlay", "ovs", "netns"]

    blocked = trace("tr-trtun", "ecs-1", "c1/web-2:8080", expect=1)
    assert blocked["died"]["object"] == "vpc"
    assert blocked["died"]["reason"] == ("no route to 172.16.1.2 (Network is unreachable; the router answers "
                                         "ICMP net unreachable)")
    assert_untouched("tr-trtun")


def test_trace_refuses_bad_input(services):
    bad = netlab("trace", services, "ipt/client", "ipt/svc/nothing:80")
    assert bad.returncode == 2 and "no Service 'nothing'" in bad.stderr
    bad = netlab("trace", services, "client", "ipt/web-0:8080")
    assert bad.returncode == 2 and "write ipt/client or nft/client" in bad.stderr
    bad = netlab("trace", services, "ipt/client", "ipt/web-0", "--proto", "tcp")
    assert bad.returncode == 2 and "needs a port" in bad.stderr


def test_linux_bridge_trace_shows_the_kernel_vxlan_hop(lab):
    lab("scenarios/tunnel-linux-bridge.yaml", "tr-trlb")
    r = trace("tr-trlb", "client", "web-2:8080")
    request = [h for h in r["hops"] if h["direction"] == "request"]
    assert [h["kind"] for h in request] == ["netns", "netns", "underlay", "netns", "netns"]
    node1, vxlan = request[1], request[2]
    assert node1["object"] == "c1/node-1" and node1["out"] == "vxlan.100"
    assert (vxlan["vni"], vxlan["outer_src"], vxlan["outer_dst"]) == (100, "192.168.0.10", "192.168.0.11")
    assert "inner 172.16.0.3→172.16.1.2" in vxlan["seen"]
    assert request[3]["in"] == "vxlan.100" and request[4]["fate"] == "delivered"
    assert_untouched("tr-trlb")
