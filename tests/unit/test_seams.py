"""The seams of the design: model sections of the schema, the registries, several VPCs, and a
JSON Schema that says exactly what netlab accepts (pure, no root)."""

from __future__ import annotations

import json
from ipaddress import ip_address

import jsonschema
import pytest
import yaml

from netlab import cloud, models
from netlab.errors import ScenarioError
from netlab.lab.model import Lab
from netlab.models.base import NetworkModel
from netlab.plan.ops import AddLink, AddNetns, MoveLink, WriteFile
from netlab.plan.planner import build
from netlab.scenario import loader
from netlab.scenario.schema import json_schema
from tests.helpers import load_text

TWO_VPCS = """\
name: t
vpc:
  cidr: 192.168.0.0/16
  subnets: [{name: nodes, cidr: 192.168.0.0/24}]
vpcs:
  - name: peer
    cidr: 10.1.0.0/16
    subnets: [{name: peer-hosts, cidr: 10.1.0.0/24}]
hosts:
  - {name: ecs-1, subnet: nodes}
  - {name: ecs-2, subnet: peer-hosts}
clusters:
  - name: c1
    model: vpc
    nodes: [{name: n1}]
    pods: [{name: a, node: n1}]
"""


def err(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        load_text(text)
    return e.value


def test_every_registered_model_implements_the_interface():
    assert set(models.registry()) == set(models.MODEL_NAMES)
    for name, model in models.registry().items():
        assert isinstance(model, NetworkModel) and model.name == name
        assert model.Cluster.model_fields["model"].annotation.__args__ == (name,)
    with pytest.raises(KeyError, match="models: tunnel, vpc"):
        models.get("calico")


def test_a_model_field_in_another_models_cluster_names_the_model():
    e = err("name: t\nclusters:\n  - name: c1\n    model: vpc\n    switch: ovs\n    nodes: [{name: n1}]\n")
    assert (e.line, e.field) == (5, "clusters[0].switch")
    assert "'switch' applies to model: tunnel only, and cluster 'c1' is model: vpc; remove it" in str(e)


def test_unknown_and_missing_models_are_located():
    e = err("name: t\nclusters:\n  - name: c1\n    model: calico\n    nodes: [{name: n1}]\n")
    assert (e.line, e.field) == (4, "clusters[0].model") and "'calico' is not a network model" in str(e)
    e = err("name: t\nclusters:\n  - name: c1\n    nodes: [{name: n1}]\n")
    assert e.field == "clusters[0].model" and "required field is missing" in str(e)


def test_unknown_key_in_a_model_section_lists_that_models_keys():
    e = err("name: t\nclusters:\n  - name: c1\n    model: tunnel\n    vnid: 3\n    nodes: [{name: n1}]\n")
    assert e.field == "clusters[0].vnid" and "vni" in str(e) and "ovs_datapath" in str(e)


def test_model_data_round_trips_through_lab_json():
    lab = load_text(TWO_VPCS.replace("model: vpc", "model: tunnel"))
    again = Lab.model_validate(json.loads(lab.model_dump_json()))
    assert type(again.cluster("c1").network).__name__ == "TunnelNetwork"
    assert again.cluster("c1").network.vni == 1 and again == lab


def test_several_vpcs_each_with_its_router_subnets_and_hosts():
    lab = load_text(TWO_VPCS)
    assert [v.name for v in lab.vpcs] == ["vpc", "peer"] and lab.vpc.name == "vpc"
    assert lab.vpc_of_subnet("peer-hosts").name == "peer"
    ecs2 = next(h for h in lab.hosts if h.name == "ecs-2")
    assert ecs2.eth0.address.ip == ip_address("10.1.0.10") and ecs2.eth0.gateway == ip_address("10.1.0.1")
    # The VPC model's route goes to the VPC of the node's subnet only.
    assert [str(r.destination) for r in lab.vpcs[0].routes] == ["172.16.0.0/24"] and not lab.vpcs[1].routes
    ops = build(lab).ops
    routers = [op.netns for op in ops if isinstance(op, AddNetns)][:2]
    assert routers == [v.netns for v in lab.vpcs]
    assert ("vpc", None, "peer", lab.vpcs[1].netns) in lab.objects()


@pytest.mark.parametrize("change,message", [
    ("cidr: 10.1.0.0/16", None),
    ("cidr: 192.168.128.0/17", "VPC CIDR 192.168.128.0/17 overlaps VPC 'vpc'"),
])
def test_vpcs_must_not_overlap(change, message):
    text = TWO_VPCS.replace("cidr: 10.1.0.0/16", change).replace("10.1.0.0/24", change.split()[1].replace("/17", "/24").replace("/16", "/24"))
    if message is None:
        load_text(text)
    else:
        assert message in str(err(text))


def test_vpc_names_subnet_names_and_cluster_names_do_not_collide():
    assert "a VPC of `vpcs` needs a name" in str(err(TWO_VPCS.replace("  - name: peer\n", "  -\n")))
    e = err(TWO_VPCS.replace("name: peer-hosts, cidr: 10.1.0.0/24", "name: nodes, cidr: 10.1.0.0/24"))
    assert "duplicate subnet name 'nodes'" in str(e) and "unique across the lab's VPCs" in str(e)
    e = err(TWO_VPCS.replace("  - name: c1\n", "  - name: peer\n"))
    assert e.field == "clusters[0].name" and "collides with VPC 'peer'" in str(e)


def test_cloud_objects_are_registered_in_one_place():
    assert [o.name for o in cloud.registry()] == list(cloud.OBJECT_NAMES)


def test_new_ops_print_as_the_commands_they_equal():
    assert str(AddLink("n1", "sub0", "macvlan", parent="eth0", mode="bridge", address="0a:58:c0:a8:00:0b")) == \
        "ip -n n1 link add link eth0 name sub0 address 0a:58:c0:a8:00:0b type macvlan mode bridge"
    assert str(AddLink("n1", "eth0.100", "vlan", parent="eth0", vlan_id=100)) == \
        "ip -n n1 link add link eth0 name eth0.100 type vlan id 100"
    assert str(AddLink("n1", "br0", "bridge", mtu=1500)) == "ip -n n1 link add br0 mtu 1500 type bridge"
    assert str(MoveLink("n1", "sub0", "p1", "eth0")) == "ip -n n1 link set sub0 netns p1 name eth0"
    op = WriteFile("elb", "/run/netlab/x/elb/nginx.conf", "events {}\n")
    assert str(op) == "cat > /run/netlab/x/elb/nginx.conf <<'EOF'  # 1 lines" and op.body() == "events {}\n"


# -- JSON Schema: what netlab enforces -------------------------------------------------------
def _schema_errors(data: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(json_schema())
    return [e.message for e in validator.iter_errors(data)]


@pytest.mark.parametrize("name", loader.builtin_names())
def test_builtin_scenarios_validate_against_the_json_schema(name):
    data = yaml.safe_load(loader.builtin_path(name).read_text())
    assert _schema_errors(data) == []


@pytest.mark.parametrize("path,value", [
    (("clusters", 0, "services", 0, "ports", 0, "nodePort"), 80),
    (("clusters", 0, "services", 0, "ports", 0, "targetPort"), 70000),
    (("vpc", "cidr"), "10.0.0.0/33"),
    (("vpc", "cidr"), "255.255.255.0/24x"),
    (("hosts", 0, "ip"), "192.168.0.256"),
    (("clusters", 0, "model"), "calico"),
    (("clusters", 0, "switch"), "ovs"),  # a tunnel field in a vpc cluster
    (("name",), "Bad_Name"),
])
def test_json_schema_and_netlab_refuse_the_same_values(path, value):
    data = yaml.safe_load(loader.builtin_path("vpc-basic").read_text())
    data["clusters"][0]["services"] = [{"name": "s", "type": "NodePort", "ports": [{"port": 80}]}]
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert _schema_errors(data), f"the JSON Schema accepts {path}={value!r}"
    with pytest.raises(ScenarioError):
        load_text(yaml.safe_dump(data))
