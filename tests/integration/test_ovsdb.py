"""Each tunnel node's OVSDB as netlab's IDL transaction wrote it, read back with `ovs-vsctl`
(an independent client, the C IDL): exactly the bridges, ports, interfaces and columns the
plan's `OvsConfigure` declares, no more; `netlab scale` adds and removes whole rows; a
transaction the database or ovs-vswitchd refuses is an error that says why.

Lab names start with `ov-`; every fixture takes its lab down even when a test fails.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from netlab.models.tunnel import node_dir
from netlab.plan import OvsConfigure, OvsPort, OvsSync
from netlab.plan.planner import build
from tests.integration.test_tunnel import SCENARIOS, lab_up, netlab, read_lab
from tests.helpers import build_by_script

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: builds network namespaces")

NAME = "ov-db"


def _value(v):
    """ovs-vsctl's JSON (`--data=json`) as plain Python: maps → dict, sets → sorted list."""
    if isinstance(v, list) and len(v) == 2 and v[0] == "map":
        return {k: _value(x) for k, x in v[1]}
    if isinstance(v, list) and len(v) == 2 and v[0] == "set":
        return sorted(_value(x) for x in v[1])
    if isinstance(v, list) and len(v) == 2 and v[0] == "uuid":
        return v[1]
    return v


def table(sock, name: str) -> list[dict]:
    out = subprocess.run(["ovs-vsctl", f"--db=unix:{sock}", "--format=json", "--data=json", "list", name],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    return [dict(zip(data["headings"], (_value(v) for v in row))) for row in data["data"]]


def snapshot(sock) -> dict:
    """What a node's database holds, by name, with the columns netlab writes."""
    ifaces = {r["_uuid"]: r for r in table(sock, "Interface")}
    ports = {r["_uuid"]: r for r in table(sock, "Port")}
    out = {"bridges": {}, "ports": {}, "interfaces": {}}
    for b in table(sock, "Bridge"):
        out["bridges"][b["name"]] = {
            "datapath_type": b["datapath_type"], "fail_mode": b["fail_mode"], "other_config": b["other_config"],
            "external_ids": b["external_ids"], "ports": sorted(ports[u]["name"] for u in _uuids(b["ports"]))}
    for p in ports.values():
        out["ports"][p["name"]] = {"external_ids": p["external_ids"],
                                   "interfaces": sorted(ifaces[u]["name"] for u in _uuids(p["interfaces"]))}
    for i in ifaces.values():
        out["interfaces"][i["name"]] = {k: i[k] for k in ("type", "options", "mac", "mtu_request", "ofport_request",
                                                           "ofport", "error")}
    return out


def _uuids(v) -> list[str]:
    return v if isinstance(v, list) else [v]


def _opt(v) -> list:
    """An optional column as ovs-vsctl prints it: [] when empty, else the value itself."""
    return [] if v in (None, "") else v


def expected(op: OvsConfigure) -> dict:
    """What the declared transaction means in OVSDB rows (as `ovs-vsctl add-br`/`add-port` would
    create them: a bridge has a local port and internal interface of its own name)."""
    out = {"bridges": {}, "ports": {}, "interfaces": {}}
    for b in op.bridges:
        out["bridges"][b.name] = {
            "datapath_type": b.datapath_type, "fail_mode": _opt(b.fail_mode), "other_config": dict(b.other_config),
            "external_ids": dict(b.external_ids),
            "ports": sorted([b.name] + [p.name for p in op.ports if p.bridge == b.name])}
        out["ports"][b.name] = {"external_ids": dict(b.external_ids), "interfaces": [b.name]}
        out["interfaces"][b.name] = {"type": "internal", "options": {}, "mac": [], "mtu_request": [],
                                     "ofport_request": []}
    for p in op.ports:
        out["ports"][p.name] = {"external_ids": dict(p.external_ids), "interfaces": [p.name]}
        out["interfaces"][p.name] = {"type": p.type, "options": dict(p.options), "mac": _opt(p.mac),
                                     "mtu_request": _opt(p.mtu_request), "ofport_request": _opt(p.ofport_request)}
    return out


@pytest.fixture(scope="module")
def lab():
    with lab_up("tunnel-basic.yaml", NAME) as name:
        yield read_lab(name)


def configure_op(lab, node) -> OvsConfigure:
    (op,) = [op for op in build(lab).ops if isinstance(op, OvsConfigure) and op.netns == node.netns]
    return op


def test_each_node_holds_exactly_what_the_plan_declares(lab):
    c1 = lab.cluster("c1")
    for node in c1.nodes:
        op = configure_op(lab, node)
        got = snapshot(op.db)
        want = expected(op)
        assert got["bridges"] == want["bridges"], node.name
        assert got["ports"] == want["ports"], node.name
        columns = {name: {k: v for k, v in i.items() if k not in ("ofport", "error")}
                   for name, i in got["interfaces"].items()}
        assert columns == want["interfaces"], node.name
        # ovs-vswitchd took every interface: the requested OpenFlow port, no error.
        for name, i in got["interfaces"].items():
            assert i["error"] == [] and i["ofport"] not in ([], -1), (node.name, name, i)
            if i["ofport_request"] != []:
                assert i["ofport"] == i["ofport_request"], (node.name, name)
        # One Open_vSwitch row, and ovs-vswitchd has applied the last configuration.
        (root,) = table(op.db, "Open_vSwitch")
        assert root["cur_cfg"] == root["next_cfg"] >= 1
        assert len(_uuids(root["bridges"])) == len(want["bridges"])


def test_a_node_independently_of_the_plan(lab):
    """The same facts for node-1, written out by hand."""
    node = lab.cluster("c1").node("node-1")
    datapath = lab.cluster("c1").network.datapath  # netdev on a kernel without openvswitch
    got = snapshot(node_dir(NAME, "c1", "node-1") / "db.sock")
    tag = {"netlab-lab": NAME}
    assert got["bridges"]["br-int"] == {"datapath_type": datapath, "fail_mode": "secure", "other_config": {},
                                        "external_ids": tag,
                                        "ports": sorted(["br-int", "gw0", "vxlan0", "veth-web-1", "veth-client"])}
    if datapath == "netdev":
        assert set(got["bridges"]) == {"br-int", "br-phy"}
        assert got["bridges"]["br-phy"]["other_config"] == {"hwaddr": "0a:58:c0:a8:00:0a"}
        assert got["bridges"]["br-phy"]["ports"] == ["br-phy", "eth0"]
    else:
        assert set(got["bridges"]) == {"br-int"}
    assert got["interfaces"]["gw0"]["mac"] == "0a:58:ac:10:00:01" and got["interfaces"]["gw0"]["mtu_request"] == 1450
    assert got["interfaces"]["vxlan0"]["options"] == {"remote_ip": "flow", "key": "100", "dst_port": "4789"}
    assert got["ports"]["veth-client"]["external_ids"] == {**tag, "netlab-pod": "c1/client"}
    fixed = {"br-int", "gw0", "vxlan0"} | ({"br-phy", "eth0"} if datapath == "netdev" else set())
    assert {p: v["external_ids"] for p, v in got["ports"].items() if p not in ("veth-client", "veth-web-1")} == {
        p: tag for p in fixed}
    assert node.eth0.ip.packed == bytes.fromhex("c0a8000a")  # the hwaddr above is 0a:58 + this


def test_refused_transactions_say_why_and_change_nothing(lab):
    from netlab.apply import ovs
    from netlab.errors import ApplyError

    node = lab.cluster("c1").node("node-2")
    sock = str(node_dir(NAME, "c1", "node-2") / "db.sock")
    before = snapshot(sock)
    sessions = ovs.Sessions()
    try:
        idl = sessions.get(sock)
        for op, message in (
                (OvsConfigure(node.netns, sock, ports=(OvsPort("br-int", "gw0"),)), "a port named gw0 already exists"),
                (OvsConfigure(node.netns, sock, ports=(OvsPort("br-x", "p0"),)), "no bridge named br-x"),
                (OvsConfigure(node.netns, sock, del_ports=(OvsPort("br-phy", "gw0"),)), "gw0 is not on bridge br-phy"),
                (OvsConfigure(node.netns, sock, ports=(OvsPort("br-int", "p0", mtu_request=-5),)),
                 "Interface mtu_request"),
        ):
            with pytest.raises(ApplyError, match=message):
                ovs.configure(op, idl)
        assert snapshot(sock) == before
        # A device the node does not have: ovs-vswitchd cannot open it, and says so.
        with pytest.raises(ApplyError, match="could not add network device nodev0 .*No such device"):
            ovs.configure(OvsConfigure(node.netns, sock, ports=(OvsPort("br-int", "nodev0"),)), idl)
        # The same session removes it again: Port and Interface rows go with the reference.
        ovs.configure(OvsConfigure(node.netns, sock, del_ports=(OvsPort("br-int", "nodev0"),)), idl)
        # Without waiting, the transaction returns once committed; the sync finds the refusal.
        ovs.configure(OvsConfigure(node.netns, sock, ports=(OvsPort("br-int", "nodev1"),), wait=False), idl)
        with pytest.raises(ApplyError, match="could not add network device nodev1 .*No such device"):
            ovs.sync(OvsSync(node.netns, sock, ("gw0", "nodev1")), idl)
        ovs.configure(OvsConfigure(node.netns, sock, del_ports=(OvsPort("br-int", "nodev1"),)), idl)
        ovs.sync(OvsSync(node.netns, sock, ("gw0",)), idl)
        with pytest.raises(ApplyError, match="no interface named nodev1"):
            ovs.sync(OvsSync(node.netns, sock, ("gw0", "nodev1")), idl)
        assert snapshot(sock)["ports"] == before["ports"]
        assert snapshot(sock)["interfaces"].keys() == before["interfaces"].keys()
    finally:
        sessions.close()


SCALE = """name: ov-db-scale
clusters:
  - name: c1
    model: tunnel
    nodes: [{name: node-1}, {name: node-2}]
    pods:
      - {name: web, node: [node-1, node-2], replicas: 2, ports: [{port: 8080}]}
"""


def test_scale_adds_and_removes_whole_rows(tmp_path):
    path = tmp_path / "scale.yaml"
    path.write_text(SCALE)
    with lab_up(path, "ov-db-scale") as name:
        for replicas in (5, 1):
            r = netlab("scale", name, "c1/web", "--replicas", str(replicas))
            assert r.returncode == 0, r.stdout + r.stderr
            lab = read_lab(name)
            for node in lab.cluster("c1").nodes:
                got = snapshot(node_dir(name, "c1", node.name) / "db.sock")
                pods = {p.host_ifname: p for p in lab.cluster("c1").pods_on(node.name)}
                fixed = {"br-int", "gw0", "vxlan0"}
                fixed |= {"br-phy", "eth0"} if lab.cluster("c1").network.datapath == "netdev" else set()
                assert set(got["ports"]) == set(got["interfaces"]) == fixed | set(pods), (replicas, node.name)
                for ifname, pod in pods.items():
                    assert got["ports"][ifname]["external_ids"] == {"netlab-lab": name,
                                                                    "netlab-pod": f"c1/{pod.name}"}
                    assert got["interfaces"][ifname]["ofport"] == got["interfaces"][ifname]["ofport_request"]



def test_runtime_commands_over_the_control_socket(lab):
    """`OvsAppctl` speaks to ovs-vswitchd's control socket in-process: the plan's static tunnel
    neighbours are there (userspace datapath), and a command the daemon refuses is an error
    in its own words."""
    from netlab.apply import ovs
    from netlab.errors import ApplyError
    from netlab.models.tunnel import mac_of
    from netlab.plan import OvsAppctl

    c1 = lab.cluster("c1")
    node = c1.node("node-1")
    ctl = str(node_dir(NAME, "c1", "node-1") / "ovs-vswitchd.ctl")
    shown = ovs.appctl(OvsAppctl(node.netns, ctl, ("tnl/neigh/show",)))
    assert shown == subprocess.run(["ovs-appctl", "-t", ctl, "tnl/neigh/show"], capture_output=True, text=True,
                                   check=True).stdout
    if c1.network.datapath == "netdev":
        for other in c1.nodes[1:]:
            assert any(line.split()[:3] == [str(other.eth0.ip), mac_of(other.eth0.ip), "br-phy"]
                       for line in shown.splitlines()), shown
    with pytest.raises(ApplyError, match='"no/such/command" is not a valid command'):
        ovs.appctl(OvsAppctl(node.netns, ctl, ("no/such/command",)))
    with pytest.raises(ApplyError, match="cannot connect: No such file or directory"):
        ovs.appctl(OvsAppctl(node.netns, ctl + ".missing", ("version",)))


def test_fresh_databases_are_what_ovsdb_tool_creates(tmp_path):
    """One `ovsdb-tool create` per schema and process; the next nodes get the same bytes."""
    from netlab.apply import ovs
    from netlab.errors import ApplyError
    from netlab.plan import OvsCreateDb

    for node in ("node-1", "node-2"):
        ovs.create_db(OvsCreateDb("ns", str(tmp_path / node / "conf.db")))
    subprocess.run(["ovsdb-tool", "create", str(tmp_path / "witness.db"), OvsCreateDb("ns", "x").schema], check=True)
    witness = (tmp_path / "witness.db").read_bytes()
    assert (tmp_path / "node-1" / "conf.db").read_bytes() == (tmp_path / "node-2" / "conf.db").read_bytes() == witness
    assert subprocess.run(["ovsdb-tool", "db-name", str(tmp_path / "node-2" / "conf.db")], capture_output=True,
                          text=True, check=True).stdout.strip() == "Open_vSwitch"
    with pytest.raises(ApplyError, match="File exists"):
        ovs.create_db(OvsCreateDb("ns", str(tmp_path / "node-2" / "conf.db")))


def test_the_printed_ovs_vsctl_calls_build_the_same_switch(tmp_path):
    """`netlab plan --script` types the OVSDB transactions as the ovs-vsctl calls they print as
    (`--no-wait`, then `wait-until` every interface has its OpenFlow port): the tunnel lab
    built that way holds the same rows, and netlab's checks pass on it."""
    name = "ov-db-script"
    try:
        built = build_by_script(SCENARIOS / "tunnel-basic.yaml", name, tmp_path)
        assert built.returncode == 0, built.stderr
        lab = read_lab(name)
        for node in lab.cluster("c1").nodes:
            op = configure_op(lab, node)
            got, want = snapshot(op.db), expected(op)
            assert (got["bridges"], got["ports"]) == (want["bridges"], want["ports"]), node.name
        check = netlab("check", name, "--json")
        assert check.returncode == 0 and json.loads(check.stdout)["summary"]["failed"] == 0, check.stdout
    finally:
        netlab("down", name)
