"""`netlab graph`'s pure parts: what is drawn from a lab (and a check report), the DOT text,
the self-contained page."""

from __future__ import annotations

from netlab.graph import build, dot, html
from netlab.lab.resolve import resolve
from netlab.scenario import loader
from tests.helpers import SCENARIOS


def lab(name: str):
    scenario, source = loader.load(SCENARIOS / f"{name}.yaml")
    return resolve(scenario, source, None)


def test_default_scenario_draws_vpcs_subnets_nodes_pods_tunnels_services_and_the_edge():
    g = build.build(lab("default"))
    kinds = build.summary(g)["objects"]
    assert kinds["vpc"] == 2 and kinds["subnet"] >= 1 and kinds["host"] >= 1  # the VPC and its peer
    assert kinds["elb"] == 1 and kinds["natgw"] == 1 and kinds["igw"] == 2 and kinds["secgroup"] >= 1
    assert kinds["node"] >= 6 and kinds["pod"] >= 4 and kinds["service"] >= 2
    assert any(e.kind == "tunnel" and e.label.startswith("VXLAN") for e in g.edges)
    assert any(e.kind == "route" for e in g.edges)  # the VPC model's routes, to their nodes
    svc = next(n for n in g.nodes if n.kind == "service")
    assert any(e.kind == "endpoint" and e.src == svc.id for e in g.edges)
    vpc = g.node("vpc:vpc")
    assert "route table:" in vpc.details and any(" via " in d for d in vpc.details)
    groups = {grp.kind for grp in g.groups}
    assert groups == {"vpc", "cluster", "node", "internet"}


def test_checks_overlay_maps_objects_and_services_and_colours_by_outcome():
    l = lab("services")
    report = {"checks": [
        {"name": "a", "from": "ipt/client", "to": "ipt/svc/web:80", "proto": "tcp", "expect": "reach",
         "reached": True, "ok": True},
        {"name": "b", "from": "ecs-1", "to": "ipt/web-0:8080", "proto": "tcp", "expect": "blocked",
         "reached": True, "ok": False, "detail": "reached, but should be blocked"},
        {"name": "c", "from": "ecs-1", "to": "203.0.113.9", "proto": "icmp", "expect": "reach",
         "reached": False, "ok": False}]}
    g = build.build(l, report)
    checks = [e for e in g.edges if e.kind == "check"]
    assert [(e.src, e.dst, e.ok) for e in checks] == [("pod:ipt/client", "svc:ipt/default/web", True),
                                                      ("host:ecs-1", "pod:ipt/web-0", False)]
    assert build.summary(g)["checks"] == {"ok": 1, "failed": 1}
    text = dot.render(g)
    assert 'class="rel kind-check n-host_ecs-1 n-pod_ipt_web-0 failed"' in text
    assert '"svc:ipt/default/web" [label="svc web\\nClusterIP 10.247.0.10' in text


def test_html_page_is_self_contained():
    g = build.build(lab("vpc-basic"))
    page = html.render(g, '<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg id="x"><g class="node obj"></g></svg>')
    assert page.startswith("<!DOCTYPE html>") and '<svg id="x">' in page and "<?xml" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org', "") and "https://" not in page
    assert '"lab": "vpc-basic"' in page and "#selftest" in page


def test_elbs_and_security_groups_are_drawn():
    g = build.build(lab("passthrough"))
    elb = g.node("elb:elb/elb-web")
    assert elb.kind == "elb" and "VIP 192.168.0.254" in elb.details and "EIP 198.51.100.10" in elb.details
    assert "TCP 8000 → 2 members (turbo/default/web)" in elb.details
    backends = {(e.dst, e.label) for e in g.edges if e.kind == "backend" and e.src == elb.id}
    assert backends == {("pod:turbo/web-0", "TCP 8000 → 8080"), ("pod:turbo/web-1", "TCP 8000 → 8080")}
    assert any(e.kind == "eip" and e.dst == elb.id for e in g.edges)  # the EIP bound to it
    # Each guarded port names its groups; one note per VPC lists them with their rules.
    assert "sg: web-public" in g.node("pod:turbo/web-0").details
    assert "sg: turbo-cce-node" in g.node("node:turbo/node-1").details
    note = g.node("secgroup:vpc")
    assert note.kind == "secgroup" and "web-public:" in note.details and "  in tcp 8080 from 0.0.0.0/0" in note.details
    text = dot.render(g)
    assert "kind-elb" in text and "kind-secgroup" in text
