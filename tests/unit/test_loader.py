"""Scenario loading: valid files load; each kind of bad input gets one precise line."""

import pytest

from netlab.errors import ScenarioError
from netlab.scenario import loader

GOOD = """\
name: t
clusters:
  - name: c1
    model: vpc
    nodes: [{name: n1}]
"""


def load(text):
    return loader.load_text(text, "s.yaml")


def error(text) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        load(text)
    return e.value


def test_good_scenario_gets_defaults():
    scenario, _ = load(GOOD)
    assert str(scenario.vpc.cidr) == "192.168.0.0/16"
    assert scenario.vpc.route_quota == 200
    assert str(scenario.clusters[0].container_cidr) == "172.16.0.0/16"
    assert str(scenario.clusters[0].service_cidr) == "10.247.0.0/16"
    assert scenario.clusters[0].proxy_mode == "iptables"


def test_unknown_key_names_line_field_and_valid_keys():
    e = error(GOOD.replace("    model: vpc\n", "    model: vpc\n    nodez: []\n"))
    assert (e.file, e.line, e.field) == ("s.yaml", 5, "clusters[0].nodez")
    assert "unknown key 'nodez'" in str(e)
    assert "nodes" in str(e) and "container_cidr" in str(e)
    assert str(e).startswith("s.yaml:5: clusters[0].nodez: ")
    assert "\n" not in str(e)


def test_unknown_top_level_key():
    e = error("name: t\nclusterz: []\n")
    assert e.line == 2 and "valid keys: name, description, vpc, vpcs, hosts, clusters, impair, checks" in str(e)


def test_missing_required_field():
    e = error("name: t\nclusters:\n  - name: c1\n    nodes: [{name: n1}]\n")
    assert e.field == "clusters[0].model" and e.line == 3 and "required" in str(e)


def test_bad_model_lists_valid_ones():
    e = error(GOOD.replace("model: vpc", "model: flannel"))
    assert e.line == 4 and "'flannel'" in str(e) and "'vpc'" in str(e)


def test_bad_cidr():
    e = error(GOOD.replace("    model: vpc\n", "    model: vpc\n    container_cidr: 172.16.0.0/33\n"))
    assert e.line == 5 and e.field == "clusters[0].container_cidr" and "CIDR" in str(e)


def test_bad_name():
    e = error(GOOD.replace("name: n1", "name: Node_1"))
    assert e.field == "clusters[0].nodes[0].name" and "not a valid name" in str(e)


def test_duplicate_yaml_key():
    e = error("name: t\nname: u\n")
    assert e.line == 2 and "duplicate key 'name'" in str(e)


def test_invalid_yaml_has_line():
    e = error("name: t\nclusters: [\n")
    assert e.line and "not valid YAML" in str(e)


def test_empty_and_non_mapping():
    assert "empty" in str(error(""))
    assert "mapping" in str(error("- a\n- b\n"))


def test_missing_file():
    with pytest.raises(ScenarioError, match="no such file"):
        loader.load("/nonexistent/x.yaml")


def test_builtin_scenarios_all_load():
    names = loader.builtin_names()
    assert "default" in names and "vpc-basic" in names and "scale-200" in names
    for name in names:
        loader.load(loader.builtin_path(name))


def test_json_schema_exports_fields():
    from netlab.scenario.schema import json_schema

    schema = json_schema()
    assert schema["title"] == "netlab scenario"
    assert "clusters" in schema["properties"]
    assert schema["$defs"]["Check"]["properties"]["from"]
