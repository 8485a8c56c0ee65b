"""The course without root: every shipped exercise loads whole (its scenario resolves, its
checks name objects of its lab, its faults apply, its commands are ones a learner types), a
broken exercise file is one located line, and the pure parts (faults, patches, EIP and route
changes, progress, judging) do what the exercises rely on."""

from __future__ import annotations

import json
import shutil
import textwrap
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from netlab import course
from netlab.cloud import eip, vpc
from netlab.course import exercise as exercise_mod
from netlab.course import judge, progress
from netlab.course.faults import inject
from netlab.errors import ScenarioError, UserError
from netlab.lab import naming
from netlab.lab import patch as patch_mod
from netlab.lab.model import VpcRoute
from netlab.plan.ops import DelRoute, DelRule, IptablesRestore, NftApply, ReloadProcess, SetLink, WriteFile
from tests.helpers import load_text, netlab

EXERCISES = course.catalog()


def test_the_course_has_at_least_twelve_exercises_in_order():
    assert len(EXERCISES) >= 12
    assert [int(e[:2]) for e in EXERCISES] == list(range(1, len(EXERCISES) + 1))


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_every_exercise_loads_whole(exercise_id):
    exercise, lab = course.load(exercise_id)
    assert exercise.id == exercise_id and exercise.title and exercise.topics
    assert naming.is_lab_name(exercise.default_lab) and lab.name == exercise.default_lab
    assert exercise.task.startswith(f"# {exercise_id[:2]} · {exercise.title}")
    assert any(c.broken for c in exercise.spec.checks)
    broken, steps = inject(lab, exercise.spec.faults)
    assert steps and all(steps)  # something really changes in the running lab
    for argv in exercise.commands("co-x"):
        assert argv[0] in exercise_mod.FIX_VERBS and argv[1] == "co-x"
    assert len(exercise.spec.hints) >= 2


def test_an_exercise_is_named_as_users_type_it():
    assert course.find("1") == course.find("01") == course.find(EXERCISES[0]) == EXERCISES[0]
    assert course.find(EXERCISES[0][3:]) == EXERCISES[0]
    with pytest.raises(UserError, match="no exercise '99'; exercises: 01-"):
        course.find("99")


def test_course_list_json():
    done = netlab("course", "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["id"] for r in rows] == EXERCISES
    assert all(set(r) == {"id", "title", "topics"} and r["topics"] for r in rows)


# -- a broken exercise file ------------------------------------------------------------------

def _copy(tmp_path: Path, exercise_id: str = "01-vpc-route") -> Path:
    folder = tmp_path / exercise_id
    shutil.copytree(course.root() / exercise_id, folder)
    return folder


def _rewrite(folder: Path, old: str, new: str) -> None:
    text = (folder / "exercise.yaml").read_text()
    assert old in text
    (folder / "exercise.yaml").write_text(text.replace(old, new, 1))


def _line(folder: Path, needle: str) -> int:
    return next(i for i, line in enumerate((folder / "exercise.yaml").read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize(("old", "new", "needle", "field", "message"), [
    ("topics: [", "difficulty: easy\ntopics: [", "difficulty:", "difficulty",
     "unknown key 'difficulty'; valid keys: title, topics, faults, checks, hints, solution, alternatives"),
    ("remove: 172.16.1.0/24", "remove: 172.16.9.0/24", "remove: 172.16.9.0/24",
     "faults[0].vpc_route.remove", "VPC 'vpc' has no route to 172.16.9.0/24; its routes: 172.16.0.0/24, 172.16.1.0/24"),
    ("to: c1/web-1:8080\n    broken", "to: c1/web-9:8080\n    broken", "c1/web-9", "checks[0].to",
     "cluster 'c1' has no node or pod 'web-9'"),
    ("  - netlab exec {lab} vpc -- ip route add 172.16.1.0/24", "  - netlab down {lab} vpc -- ip route add 172.16.1.0/24",
     "netlab down", "solution[0]", "'down' is not a verb a learner fixes a lab with"),
    ("outcome: unreachable, cause", "outcome: lost, cause", "outcome: lost", "checks[0].broken",
     "'lost' is not an outcome"),
])
def test_a_bad_exercise_is_one_located_line(tmp_path, old, new, needle, field, message):
    folder = _copy(tmp_path)
    _rewrite(folder, old, new)
    with pytest.raises(ScenarioError) as err:
        exercise_mod.load(folder)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"{folder / 'exercise.yaml'}:{_line(folder, needle)}: {field}: "), text
    assert message in text


def test_an_exercise_whose_checks_pass_from_the_start_is_refused(tmp_path):
    folder = _copy(tmp_path)
    text = (folder / "exercise.yaml").read_text()
    (folder / "exercise.yaml").write_text("\n".join(line for line in text.splitlines() if "broken:" not in line))
    with pytest.raises(ScenarioError, match="no check says how it fails before the fix"):
        exercise_mod.load(folder)


def test_an_exercise_directory_is_named_nn_topic(tmp_path):
    folder = _copy(tmp_path)
    bad = folder.rename(tmp_path / "vpc-route")
    with pytest.raises(ScenarioError, match="named NN-topic"):
        exercise_mod.load(bad)


# -- faults ----------------------------------------------------------------------------------

def test_a_route_fault_changes_the_route_table_and_the_router():
    exercise, lab = course.load("01-vpc-route")
    broken, steps = inject(lab, exercise.spec.faults)
    assert [str(r.destination) for r in broken.vpc.routes] == ["172.16.0.0/24"]
    assert [str(op) for step in steps for op in step] == ["ip -n nl-course-01.vpc route del 172.16.1.0/24"]


def test_the_quota_fault_keeps_the_table_at_its_quota():
    exercise, lab = course.load("03-route-quota")
    broken, _ = inject(lab, exercise.spec.faults)
    assert len(broken.vpc.routes) == broken.vpc.route_quota == 2
    stale = broken.vpc.routes[-1]
    assert (str(stale.destination), str(stale.nexthop)) == ("192.168.100.0/24", "192.168.1.11")
    with pytest.raises(vpc.RouteError, match="at its quota"):
        vpc.change_route(broken, "vpc", add=VpcRoute(destination=IPv4Network("172.16.1.0/24"),
                                                     nexthop=IPv4Address("192.168.0.11"), owner="c1/node-2"))


def test_an_mtu_fault_sets_both_ends_of_each_pods_veth():
    exercise, lab = course.load("02-vxlan-mtu")
    broken, steps = inject(lab, exercise.spec.faults)
    assert broken == lab  # the console still shows a healthy lab
    ops = [op for step in steps for op in step]
    assert all(isinstance(op, SetLink) and op.mtu == 1500 for op in ops) and len(ops) == 4
    assert "ip -n nl-course-02.c1.app link set eth0 mtu 1500 up" in [str(op) for op in ops]


def test_a_security_group_fault_changes_the_group_and_the_routers_table():
    exercise, lab = course.load("07-node-security-group")
    broken, steps = inject(lab, exercise.spec.faults)
    before = [r.text("inbound") for r in lab.security_group("c1-cce-node").inbound]
    after = [r.text("inbound") for r in broken.security_group("c1-cce-node").inbound]
    assert before == after[:1] + ["tcp 30000-32767 from 0.0.0.0/0"] + after[1:]
    [nft] = [op for step in steps for op in step if isinstance(op, NftApply)]
    assert "udp dport 30000-32767" in nft.rules and "tcp dport 30000-32767" not in nft.rules


# -- patches ---------------------------------------------------------------------------------

def test_merge_patch_is_rfc_7386():
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    assert patch_mod.merge(target, {"a": "z", "c": {"f": None}, "l": [3]}) == {"a": "z", "c": {"d": "e"}, "l": [3]}
    assert patch_mod.merge({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert patch_mod.merge({"a": "b"}, {"a": {"b": "c"}}) == {"a": {"b": "c"}}


SERVICES = """
    name: t
    vpc: {cidr: 192.168.0.0/16, subnets: [{name: nodes, cidr: 192.168.0.0/24}]}
    clusters:
      - name: c1
        model: vpc
        container_cidr: 172.16.0.0/16
        nodes: [{name: node-1}]
        pods: [{name: web, replicas: 2, node: node-1, labels: {app: web}, ports: [{name: http, port: 8080}]}]
        services:
          - {name: web, type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
"""


def test_a_service_patch_re_syncs_kube_proxy_and_nothing_else_changes():
    lab = load_text(SERVICES)
    done = patch_mod.patch(lab, "c1/svc/web", {"spec": {"selector": {"app": "wbe"}}})
    svc = done.lab.cluster("c1").services[0]
    assert svc.spec.selector == {"app": "wbe"} and svc.cluster_ip == lab.cluster("c1").services[0].cluster_ip
    assert done.after["spec"]["selector"] == {"app": "wbe"}
    [restore] = [op for op in done.ops if isinstance(op, IptablesRestore)]
    assert "has no endpoints" in restore.rules and restore.prune  # a full sync, stale chains pruned
    json_patch = [{"op": "replace", "path": "/spec/ports/0/targetPort", "value": "http"}]
    assert patch_mod.patch(lab, "c1/svc/web", json_patch, "json").lab.cluster("c1").services[0].spec.ports[0].targetPort == "http"


@pytest.mark.parametrize(("value", "kind", "message"), [
    ({"spec": {"type": "ClusterIP"}}, "merge", "spec.type: cannot change on a running lab"),
    ({"spec": {"ports": [{"port": 81, "targetPort": 8080, "protocol": "TCP"}]}}, "merge",
     "spec.ports: only a port's targetPort"),
    ({"metadata": {"name": "other"}}, "merge", "metadata: cannot change"),
    ([{"op": "remove", "path": "/spec/nothing"}], "json", "the JSON patch does not apply"),
    ({"spec": {"externalTrafficPolicy": "Sometimes"}}, "merge", "spec.externalTrafficPolicy"),
])
def test_what_a_running_lab_cannot_take_is_refused_by_field(value, kind, message):
    with pytest.raises(patch_mod.PatchError, match=message):
        patch_mod.patch(load_text(SERVICES), "c1/svc/web", value, kind)


def test_patch_names_what_exists():
    with pytest.raises(patch_mod.PatchError, match="cluster 'c1' has no Service default/nope; Services: web"):
        patch_mod.find(load_text(SERVICES), "c1/svc/nope")
    with pytest.raises(patch_mod.PatchError, match="write CLUSTER/svc/NAME or CLUSTER/ingress/NAME"):
        patch_mod.find(load_text(SERVICES), "c1/web")
    with pytest.raises(patch_mod.PatchError, match="a merge patch is a JSON object"):
        patch_mod.parse("[1]", "merge")


def test_an_ingress_patch_rewrites_and_reloads_its_nginx():
    exercise, lab = course.load("12-ingress-path")
    done = patch_mod.patch(lab, "c1/ingress/shop",
                           [{"op": "replace", "path": "/spec/rules/0/http/paths/0/pathType", "value": "Exact"}], "json")
    [write, reload] = done.ops
    assert isinstance(write, WriteFile) and write.path.endswith("/elb/shop/nginx.conf")
    assert "location = /api " in write.content
    assert isinstance(reload, ReloadProcess) and reload.wait == "workers"
    new_backend = {"spec": {"defaultBackend": {"service": {"name": "nope", "port": {"number": 80}}}}}
    with pytest.raises(patch_mod.PatchError, match="no Service default/nope"):
        patch_mod.patch(lab, "c1/ingress/shop", new_backend)
    with pytest.raises(patch_mod.PatchError, match="spec.ingressClassName: cannot change"):
        patch_mod.patch(lab, "c1/ingress/shop", {"spec": {"ingressClassName": "nginx"}})


# -- EIPs ------------------------------------------------------------------------------------

def test_rebinding_an_eip_moves_its_policy_rule_and_nat():
    _, lab = course.load("10-eip")
    new, info, ops = eip.change(lab, IPv4Address("198.51.100.10"), "c1/node-2")
    assert (info.bind, str(info.private)) == ("c1/node-2", "192.168.0.11")
    lines = [str(op) for op in ops]
    assert "ip -n nl-course-10.vpc rule del priority 1100 from 192.168.0.10 lookup 100" in lines
    assert "ip -n nl-course-10.vpc rule add priority 1100 from 192.168.0.11 lookup 100" in lines
    assert any(isinstance(op, DelRule) for op in ops) and "198.51.100.10 : 192.168.0.11" in ops[-1].rules
    with pytest.raises(eip.EipError, match="no EIP 198.51.100.99"):
        eip.change(lab, IPv4Address("198.51.100.99"), "c1/node-2")
    with pytest.raises(eip.EipError, match="has no node or pod 'node-9'"):
        eip.change(lab, IPv4Address("198.51.100.10"), "c1/node-9")


# -- ops -------------------------------------------------------------------------------------

def test_new_ops_print_as_the_commands_they_equal():
    assert str(DelRoute("ns", IPv4Network("0.0.0.0/0"), table=100)) == "ip -n ns route del default table 100"
    assert str(DelRule("ns", 1100, 100, src=IPv4Network("10.0.0.1/32"))) == \
        "ip -n ns rule del priority 1100 from 10.0.0.1 lookup 100"
    assert str(SetLink("ns", "eth0", mtu=1450)) == "ip -n ns link set eth0 mtu 1450 up"
    assert str(ReloadProcess("ns", "nginx-elb-a")) == "kill -HUP $(cat pids/nginx-elb-a.pid)  # nginx-elb-a re-reads its configuration"


def test_a_sized_check_is_an_icmp_one():
    lab = load_text("""
        name: t
        vpc: {cidr: 192.168.0.0/16, subnets: [{name: nodes, cidr: 192.168.0.0/24}]}
        hosts: [{name: a, subnet: nodes}, {name: b, subnet: nodes}]
        checks: [{from: a, to: b, proto: icmp, size: 1400}]
    """)
    from netlab.probe.checks import explicit

    [spec] = explicit(lab)
    assert spec.size == 1400 and spec.name.endswith("icmp 1400 B DF")
    with pytest.raises(ScenarioError, match="size: needs proto: icmp"):
        load_text(textwrap.dedent("""
            name: t
            vpc: {cidr: 192.168.0.0/16, subnets: [{name: nodes, cidr: 192.168.0.0/24}]}
            hosts: [{name: a, subnet: nodes}, {name: b, subnet: nodes, ports: [{port: 80}]}]
            checks: [{from: a, to: "b:80", size: 1400}]
        """))


# -- progress and judging --------------------------------------------------------------------

def test_progress_counts_attempts_hints_and_the_time_to_the_first_pass(tmp_path):
    p = progress.Progress(exercise="01-vpc-route", lab="co-01", started=1000.0)
    p.judged(False, now=1010.0)
    p.hints_used = 2
    p.judged(True, now=1100.0)
    p.judged(False, now=1200.0)  # broken again later: the time stays that of the first pass
    progress.write(tmp_path, p)
    again = progress.read(tmp_path)
    assert again.report(now=5000.0) == {"exercise": "01-vpc-route", "lab": "co-01", "passed": False, "attempts": 3,
                                        "hints_used": 2, "time": 100.0, "solved": False, "resets": 0}
    assert progress.read(tmp_path / "none") is None


def test_as_intended_says_how_a_result_differs():
    class Result:
        ok, outcome, cause, problems = False, "dropped", "no answer", []
        spec = type("S", (), {"name": "c", "why": "no VPC route to x"})

    broken = exercise_mod.Broken(outcome="unreachable", cause="net unreachable", why="no VPC route")
    assert judge.as_intended(broken, Result()) == [
        "c: outcome dropped (no answer), not unreachable", "c: cause 'no answer' does not say 'net unreachable'"]
    assert judge.as_intended(exercise_mod.Broken(outcome="dropped", why="no VPC route"), Result()) == []
    assert judge.as_intended(None, Result()) == ["c: fails (dropped: no answer), but it should pass before the fix too"]
