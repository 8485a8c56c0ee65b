"""`netlab status`'s newcomer facts (pod placement, Services with endpoints) and `netlab
exec`'s conveniences (bare object names, OVS clients aimed at a node's daemons). Pure."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from netlab import models
from netlab.lab import inventory, refs
from netlab.models.tunnel import ovs_appctl_target
from tests.helpers import SCENARIOS, load_text
from netlab.scenario import loader
from netlab.lab.resolve import resolve

TWO_CLUSTERS = """\
name: t
clusters:
  - name: a
    model: vpc
    container_cidr: 172.16.0.0/16
    nodes: [{name: n1}]
    pods:
      - {name: web, node: n1, labels: {app: web}, ports: [{port: 8080, name: http}]}
      - {name: only-a, node: n1}
    services:
      - {name: web, type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}
  - name: b
    model: tunnel
    container_cidr: 172.17.0.0/16
    nodes: [{name: n1}]
    pods: [{name: web, node: n1}]
"""


def _scenario(name: str):
    scenario, source = loader.load(SCENARIOS / f"{name}.yaml")
    return resolve(scenario, source, None)


def test_services_name_cluster_ip_node_port_and_endpoints():
    lab = load_text(TWO_CLUSTERS)
    [svc] = inventory.services(lab)
    assert svc["cluster"] == "a" and svc["name"] == "web" and svc["type"] == "NodePort"
    assert svc["cluster_ip"] == "10.247.0.10"
    assert svc["ports"] == [{"name": None, "port": 80, "protocol": "TCP", "targetPort": "http", "nodePort": 30080}]
    assert svc["endpoints"] == [{"pod": "a/web", "node": "n1", "address": "172.16.0.2:8080", "protocol": "TCP"}]
    assert inventory.port_text(svc["ports"][0]) == "80→http/TCP node 30080"


def test_extend_status_adds_keys_and_changes_none():
    lab = load_text(TWO_CLUSTERS)
    pod = {"name": "web", "kind": "pod", "cluster": "a", "netns": "x", "addresses": ["172.16.0.2/32"]}
    node = {"name": "n1", "kind": "node", "cluster": "a", "netns": "y", "addresses": []}
    data = inventory.extend_status(lab, {"lab": "t", "objects": [dict(pod), dict(node)]})
    assert data["objects"][0] == {**pod, "node": "n1", "labels": {"app": "web"}}
    assert data["objects"][1] == node
    assert [s["name"] for s in data["services"]] == ["web"]


def test_bare_names_resolve_when_one_cluster_has_them():
    lab = load_text(TWO_CLUSTERS)
    assert refs.lookup_object(lab, "only-a").name == "a/only-a"
    with pytest.raises(refs.RefError, match="write a/web or b/web"):
        refs.lookup_object(lab, "web")
    with pytest.raises(refs.RefError, match="unknown object 'nope'"):
        refs.lookup_object(lab, "nope")
    assert refs.lookup_object(lab, "a/web").ip == refs.lookup(lab, "a/web").ip


def test_exec_inside_an_ovs_node_points_the_clients_at_its_daemons():
    lab = _scenario("tunnel-basic")
    cluster = lab.cluster("c1")
    node = cluster.node("node-1")
    d = f"/run/netlab/tunnel-basic/c1/node-1"
    argv = models.get("tunnel").exec_argv(lab, cluster, node, ["ovs-vsctl", "show"])
    assert argv == ["env", f"OVS_RUNDIR={d}", f"OVS_DBDIR={d}", "ovs-vsctl", "show"]
    vpc = _scenario("vpc-basic")
    c = vpc.cluster("c1")
    assert models.get("vpc").exec_argv(vpc, c, c.node("node-1"), ["ip", "route"]) == ["ip", "route"]


@pytest.mark.parametrize("argv,expected", [
    (["ovs-appctl", "dpctl/show"], ["ovs-appctl", "--target=/n/ovs-vswitchd.ctl", "dpctl/show"]),
    (["ovs-appctl", "-t", "ovsdb-server", "version"], ["ovs-appctl", "--target=/n/ovsdb-server.ctl", "version"]),
    (["ovs-appctl", "--timeout=5", "--target=/x.ctl", "a"], ["ovs-appctl", "--timeout=5", "--target=/x.ctl", "a"]),
    (["ovs-ofctl", "dump-flows", "br-int"], ["ovs-ofctl", "dump-flows", "br-int"]),
])
def test_ovs_appctl_gets_the_nodes_control_socket(argv, expected):
    assert ovs_appctl_target(argv, PurePosixPath("/n")) == expected
