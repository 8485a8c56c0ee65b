"""The cloud around the clusters on real namespaces: `scenarios/access.yaml` (internet, EIPs,
a NAT gateway, VPC peering) comes up once; every check passes with the source each model
promises; a NAT-gateway rule removed and restored on the running lab flips the internet
checks, and so does a security-group rule (`netlab sg`); an intranet server whose group
admits only the node subnet sees tunnel-model pods as their node and drops vpc-model pods
until the group admits the container CIDR; status lists the cloud; the host is
byte-identical after `down`. Then a small VPC
lab shows the non-masquerade list deciding what an intranet host sees."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from netlab import linux
from tests.helpers import SCENARIOS, netlab
from tests.integration.conftest import host_state

LAB = "ed-access"
NAT_ROWS = ("node→internet: cce-vpc/node-2", "pod→internet: cce-vpc/web-1", "node→internet: cce-tunnel/node-2",
            "pod→internet: cce-tunnel/web-1")


@pytest.fixture(scope="module")
def access():
    before = host_state()
    done = netlab("up", str(SCENARIOS / "access.yaml"), "--name", LAB)
    assert done.returncode == 0, done.stderr
    yield before
    if os.path.isdir(f"/run/netlab/{LAB}"):
        netlab("down", LAB)
    assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{LAB}.")]


def check() -> dict[str, dict]:
    done = netlab("check", LAB, "--json")
    report = json.loads(done.stdout)
    return {c["name"].split(" (")[0]: c for c in report["checks"]}


def test_every_access_check_passes_with_the_models_source(access):
    rows = check()
    assert [n for n, c in rows.items() if not c["ok"]] == []
    seen = {name: c["seen_source"] for name, c in rows.items()}
    # A public server sees the EIP: the node's, or the NAT gateway's for nodes without one.
    assert seen["pod→internet: cce-vpc/web-0 → internet/server:80"] == "198.51.100.10"
    assert seen["pod→internet: cce-tunnel/web-0 → internet/server:80"] == "198.51.100.11"
    assert seen["pod→internet: cce-vpc/web-1 → internet/server:80"] == "198.51.100.50"
    assert seen["pod→internet: cce-tunnel/web-1 → internet/server:80"] == "198.51.100.50"
    assert seen["VPC host→internet: ecs-1 → internet/server:80"] == "198.51.100.12"
    # A peer VPC's host sees a vpc-model pod's own IP and a tunnel-model pod's node IP.
    assert seen["pod→peer VPC host: cce-vpc/web-0 → ecs-peer:80"] == "172.16.0.2"
    assert seen["pod→peer VPC host: cce-tunnel/web-0 → ecs-peer:80"] == "192.168.0.12"
    assert rows["peer VPC host→pod: ecs-peer → cce-tunnel/web-0:8080"]["reached"] is False
    # A public client: at a NodePort through the node's EIP (eTP Local keeps its address),
    # never at the node's private IP; at the intranet host's EIP.
    local = rows["internet→NodePort via node EIP: internet/client → cce-vpc/svc/web-local at 198.51.100.10:30081"]
    assert (local["seen_source"], local["backend"]) == ("203.0.113.10", "cce-vpc/web-0")
    assert rows["internet→node IP: internet/client → cce-vpc/svc/web at 192.168.0.11:30080"]["reached"] is False
    assert seen["internet→host EIP: internet/client → 198.51.100.12:80"] == "203.0.113.10"
    assert rows["VPC host→internet: ecs-peer → internet/server:80"]["reached"] is False


def test_status_lists_the_cloud_and_its_eips(access):
    data = json.loads(netlab("status", LAB, "--json").stdout)
    objects = {o["name"]: o for o in data["objects"]}
    assert data["state"] == "up"
    assert {o["kind"] for o in data["objects"]} == {"vpc", "internet", "igw", "natgw", "host", "node", "pod"}
    assert objects["peer"]["kind"] == "vpc" and objects["internet"]["addresses"][0] == "203.0.113.1/24"
    assert objects["internet/client"] == {"name": "internet/client", "kind": "host", "cluster": None,
                                          "netns": f"nl-{LAB}.internet.client", "addresses": ["203.0.113.10/24"]}
    assert "198.51.100.50/32" in objects["natgw/ngw"]["addresses"]
    assert "198.51.100.12/32" in objects["ecs-1"]["addresses"]
    node = next(o for o in data["objects"] if o["cluster"] == "cce-vpc" and o["name"] == "node-1")
    assert "198.51.100.10/32" in node["addresses"]
    # The internet routes only the lab's EIPs and its own network; nothing else.
    routes = netlab("exec", LAB, "internet", "--", "ip", "route").stdout
    assert "198.51.100.10 via 169.254.0.5" in routes and "default" not in routes
    assert "lookup 100" in netlab("exec", LAB, "vpc", "--", "ip", "rule").stdout


def test_a_nat_rule_removed_blocks_the_internet_and_restored_reaches_it(access):
    done = netlab("nat", LAB, "ngw", "remove", "nodes")
    assert done.returncode == 0 and "SNAT rules: none" in done.stdout, done.stderr
    rows = check()
    for prefix in NAT_ROWS:
        row = next(c for n, c in rows.items() if n.startswith(prefix))
        assert (row["expect"], row["reached"], row["ok"]) == ("blocked", False, True), row
    assert rows["pod→internet: cce-vpc/web-0 → internet/server:80"]["seen_source"] == "198.51.100.10"  # its EIP
    refused = netlab("nat", LAB, "ngw", "add", "172.16.0.0/16")
    assert refused.returncode == 2 and "container CIDR of cluster 'cce-vpc'" in refused.stderr
    assert netlab("nat", LAB, "ngw", "add", "nodes").returncode == 0
    rows = check()
    for prefix in NAT_ROWS:
        row = next(c for n, c in rows.items() if n.startswith(prefix))
        assert (row["expect"], row["seen_source"], row["ok"]) == ("reach", "198.51.100.50", True), row
    assert all(c["ok"] for c in rows.values())


def row(rows: dict[str, dict], prefix: str) -> dict:
    (found,) = [c for n, c in rows.items() if n.startswith(prefix)]
    return found


def sg(*args: str) -> None:
    done = netlab("sg", LAB, *args)
    assert done.returncode == 0, done.stderr


TUNNEL_TO_DB, VPC_TO_DB = "pod→VPC host: cce-tunnel/web-0 → db:5432", "pod→VPC host: cce-vpc/web-0 → db:5432"
DB_RULE = ("db-sg", "--inbound", "--protocol", "tcp", "--port", "5432")
TUNNEL_NODEPORT = "internet→NodePort via node EIP: internet/client → cce-tunnel/svc/web at 198.51.100.11:30080"


def test_an_intranet_server_that_admits_the_node_subnet_sees_tunnel_pods_not_vpc_pods(access):
    """The overview's warning as a check: db-sg admits only the node subnet."""
    rows = check()
    tunnel, vpc = row(rows, TUNNEL_TO_DB), row(rows, VPC_TO_DB)
    assert (tunnel["ok"], tunnel["seen_source"]) == (True, "192.168.0.12")  # the pod's node
    assert (vpc["ok"], vpc["expect"], vpc["reached"]) == (True, "blocked", False)
    assert "no inbound rule of db-sg admits tcp/5432 from 172.16.0.2" in vpc["why"]
    assert row(rows, "scenario check: cce-vpc/web-0 → db:5432")["ok"]
    # The group admits the container CIDR: the vpc-model pod reaches it with its own address.
    sg("add", *DB_RULE, "--remote-ip-prefix", "172.16.0.0/16")
    rows = check()
    vpc = row(rows, VPC_TO_DB)
    assert (vpc["ok"], vpc["expect"], vpc["seen_source"]) == (True, "reach", "172.16.0.2")
    # ... and the scenario's own claim that it is blocked is now disproved.
    explicit = row(rows, "scenario check: cce-vpc/web-0 → db:5432")
    assert (explicit["ok"], explicit["reached"]) == (False, True)
    sg("remove", *DB_RULE, "--remote-ip-prefix", "172.16.0.0/16")
    assert row(check(), VPC_TO_DB)["expect"] == "blocked"


def test_trace_names_the_group_that_dropped_the_probe_and_the_rule_that_admitted_one(access):
    done = netlab("trace", LAB, "cce-vpc/web-0", "db:5432", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["died"]["object"] == "vpc"
    assert report["died"]["reason"] == "security groups of db (inbound): no inbound rule of db-sg admits it"
    (hop,) = [h for h in report["hops"] if h.get("object") == "vpc" and h["direction"] == "request"]
    assert [(g["member"], g["verdict"], g["why"]) for g in hop["security_groups"]] == [
        ("cce-vpc/node-1", "accept", "cce-vpc-cce-node admits it (outbound all to 0.0.0.0/0)"),
        ("db", "drop", "no inbound rule of db-sg admits it")]
    done = netlab("trace", LAB, "cce-tunnel/web-0", "db:5432", "--json")
    assert done.returncode == 0, done.stderr
    hops = json.loads(done.stdout)["hops"]
    verdicts = [g["why"] for h in hops if h.get("object") == "vpc" for g in h.get("security_groups", [])]
    assert "db-sg admits it (inbound tcp 5432 from 192.168.0.0/24)" in verdicts


def test_a_security_group_rule_removed_blocks_and_restored_reaches(access):
    """Likewise a NAT-gateway rule: a node group's NodePort rule and db-sg's only rule,
    removed on the running lab, turn their checks blocked; restored, they reach again."""
    node_ports = ("cce-tunnel-cce-node", "--inbound", "--protocol", "tcp", "--port", "30000-32767",
                  "--remote-ip-prefix", "0.0.0.0/0")
    sg("remove", *node_ports)
    sg("remove", *DB_RULE, "--remote-ip-prefix", "192.168.0.0/24")
    rows = check()
    for prefix in (TUNNEL_NODEPORT, TUNNEL_TO_DB):
        blocked = row(rows, prefix)
        assert (blocked["expect"], blocked["reached"], blocked["ok"]) == ("blocked", False, True), blocked
    assert "no inbound rule of cce-tunnel-cce-node admits tcp/30080 from 203.0.113.10" in row(rows, TUNNEL_NODEPORT)[
        "why"]
    table = netlab("exec", LAB, "vpc", "--", "nft", "list", "table", "ip", "netlab-sg").stdout
    assert "cce-tunnel-cce-node: inbound tcp 30000-32767" not in table and "chain in-db {" in table
    sg("add", *node_ports)
    sg("add", *DB_RULE, "--remote-ip-prefix", "192.168.0.0/24")
    rows = check()
    assert row(rows, TUNNEL_NODEPORT)["reached"] and row(rows, TUNNEL_TO_DB)["seen_source"] == "192.168.0.12"
    assert [n for n, c in rows.items() if not c["ok"]] == []


def test_down_leaves_the_host_as_it_was(access):
    assert f"nl-{LAB}.internet" in linux.list_netns()
    done = netlab("down", LAB)
    assert done.returncode == 0 and "is down" in done.stdout
    assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{LAB}.")]
    assert not Path(f"/run/netlab/{LAB}").exists()
    assert host_state() == access


def test_without_192_168_in_the_non_masquerade_list_an_intranet_host_sees_the_node(lab, tmp_path):
    text = (SCENARIOS / "vpc-basic.yaml").read_text()
    scenario = tmp_path / "nomasq.yaml"
    scenario.write_text(text.replace("    pod_cidr_size: 24\n",
                                     "    pod_cidr_size: 24\n    non_masquerade_cidrs: [10.0.0.0/8, 172.16.0.0/12]\n"))
    lab(str(scenario), "ed-nomasq")
    report = json.loads(netlab("check", "ed-nomasq", "--json").stdout)
    rows = {c["name"]: c for c in report["checks"]}
    assert rows["pod→VPC host: c1/web-1 → ecs-1:80"]["seen_source"] == "192.168.0.10"  # node-1, not 172.16.0.2
    assert rows["pod→VPC host: c1/web-1 → ecs-1:80"]["ok"]
    # The explicit check still expects the pod's own address: the list made it wrong.
    explicit = rows["scenario check: c1/client → ecs-1:80 tcp"]
    assert not explicit["ok"] and explicit["seen_source"] == "192.168.0.11"
    assert rows["pod→pod across nodes: c1/web-1 → c1/web-2:8080"]["seen_source"] == "172.16.0.2"  # pods keep theirs
