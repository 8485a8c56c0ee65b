"""The tunnel model's plan (pure, no root): which ops each node gets for each datapath and
switch, what they print as, and the OpenFlow table of br-int."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from netlab.plan.planner import build
from netlab.models import tunnel
from netlab.plan import (AddAddress, AddFdb, AddLink, AddNeigh, AddRoute, AddVxlan, IptablesRestore, OvsAppctl,
                         OvsBridge, OvsConfigure, OvsCreateDb, OvsFlows, OvsPort, OvsSync, SetLink, SetOffload,
                         StartProcess, Sysctl)
from netlab.scenario import loader
from tests.unit.tunnel_helpers import lab_of, scenario

RUN = tunnel.node_dir("tl", "c1", "node-1")


def _ops(lab, netns=None, kind=None):
    ops = build(lab).ops
    return [op for op in ops if (netns is None or op.netns == netns) and (kind is None or isinstance(op, kind))]


@pytest.fixture
def netdev():
    return lab_of(scenario("vni: 100\n", nodes=3))


@pytest.fixture
def system():
    return lab_of(scenario("vni: 100\n", nodes=3), features=frozenset({"openvswitch"}))


@pytest.fixture
def bridge():
    return lab_of(scenario("switch: linux-bridge\nvni: 100\n", nodes=3))


def node1(lab):
    return lab.cluster("c1").node("node-1").netns


# -- the OVS switch, userspace datapath --------------------------------------------------------
def test_netdev_node_ip_moves_to_br_phy(netdev):
    ns = node1(netdev)
    addrs = {(op.ifname, op.address) for op in _ops(netdev, ns, AddAddress)}
    assert ("br-phy", IPv4Interface("192.168.0.10/24")) in addrs
    assert not any(ifname == "eth0" for ifname, _ in addrs)
    assert ("gw0", IPv4Interface("172.16.0.1/24")) in addrs
    default = [op for op in _ops(netdev, ns, AddRoute) if op.destination.prefixlen == 0]
    assert [(op.dev, op.via) for op in default] == [("br-phy", IPv4Address("192.168.0.1"))]


def test_netdev_turns_tx_checksum_off_on_pods_and_the_vpc_port(netdev):
    offs = {(op.netns, op.ifname) for op in _ops(netdev, kind=SetOffload)}
    c = netdev.cluster("c1")
    assert {(p.netns, "eth0") for p in c.pods} | {(netdev.vpc.netns, n.eth0.port) for n in c.nodes} == offs
    assert all(not op.tx_checksum for op in _ops(netdev, kind=SetOffload))


def test_netdev_node_stack_ignores_arp_on_ovs_ports(netdev):
    ns = node1(netdev)
    keys = {op.key: op.value for op in _ops(netdev, ns, Sysctl)}
    assert {k: v for k, v in keys.items() if "arp_ignore" in k} == {
        "net.ipv4.conf.eth0.arp_ignore": "8", "net.ipv4.conf.veth-a-1.arp_ignore": "8",
        "net.ipv4.conf.veth-a-2.arp_ignore": "8"}
    assert not [op for op in _ops(netdev, ns, Sysctl) if "gw0" in op.key or "br-phy" in op.key]


def test_one_db_two_daemons_one_ovsdb_transaction_one_bundle_per_node(netdev):
    for node in netdev.cluster("c1").nodes:
        ops = _ops(netdev, node.netns)
        kinds = [type(op) for op in ops]
        assert kinds.count(OvsCreateDb) == kinds.count(OvsConfigure) == kinds.count(OvsFlows) == 1
        assert [op.name for op in ops if isinstance(op, StartProcess)] == [
            f"ovsdb-server@c1.{node.name}", f"ovs-vswitchd@c1.{node.name}"]
        # Order: database, server, switch, configuration, addresses on its ports, flows.
        first = {k: kinds.index(k) for k in (OvsCreateDb, StartProcess, OvsConfigure, OvsSync, OvsFlows)}
        assert first[OvsCreateDb] < first[StartProcess] < first[OvsConfigure] < first[OvsSync] < first[OvsFlows]
        gw_up = ops.index(SetLink(node.netns, "gw0"))
        assert first[OvsSync] < gw_up and kinds.count(OvsSync) == 1


def test_switches_apply_their_configuration_side_by_side(netdev):
    """Every node's transaction is committed without waiting before any node waits for its
    ovs-vswitchd: the switches reconfigure while the next nodes are built."""
    ops = build(netdev).ops
    configure = [i for i, op in enumerate(ops) if isinstance(op, OvsConfigure)]
    syncs = [i for i, op in enumerate(ops) if isinstance(op, OvsSync)]
    assert len(configure) == len(syncs) == 3 and max(configure) < min(syncs)
    assert [ops[i].netns for i in configure] == [ops[i].netns for i in syncs]
    assert not any(ops[i].wait for i in configure)
    assert [ops[i].db for i in syncs] == [ops[i].db for i in configure]
    first = ops[configure[0]]
    assert ops[syncs[0]].interfaces == tuple(b.name for b in first.bridges) + tuple(p.name for p in first.ports)
    assert str(ops[syncs[0]]) == (f"ovs-vsctl --db=unix:{RUN}/db.sock --timeout=30 "
                                  + " ".join(f"-- wait-until Interface {i} 'ofport>0'"
                                             for i in ("br-phy", "br-int", "eth0", "gw0", "vxlan0", "veth-a-1",
                                                       "veth-a-2")))
    assert str(ops[configure[0]]).startswith(f"ovs-vsctl --db=unix:{RUN}/db.sock --timeout=30 --no-wait -- init ")


def test_daemon_files_live_under_the_node_dir(netdev):
    procs = {op.name: op for op in _ops(netdev, kind=StartProcess)}
    db = procs["ovsdb-server@c1.node-1"]
    sw = procs["ovs-vswitchd@c1.node-1"]
    assert str(RUN).endswith("/tl/c1/node-1")  # /run/netlab/tl/c1/node-1 unless NETLAB_RUN_DIR
    assert db.argv[:3] == ("ovsdb-server", f"{RUN}/conf.db", f"--remote=punix:{RUN}/db.sock")
    assert db.ready_file == f"{RUN}/db.sock"
    assert sw.argv[:4] == ("env", f"OVS_RUNDIR={RUN}", "ovs-vswitchd", f"unix:{RUN}/db.sock")
    assert sw.ready_file == f"{RUN}/ovs-vswitchd.ctl"
    for op in (db, sw):
        paths = [a.split("=", 1)[-1] for a in op.argv if a.startswith("--") and "=" in a]
        assert all(p.removeprefix("punix:").startswith(str(RUN)) for p in paths), paths


def _vsctl(lab, node="node-1"):
    (op,) = _ops(lab, lab.cluster("c1").node(node).netns, OvsConfigure)
    return op


def test_every_bridge_and_port_is_tagged_with_the_lab(netdev):
    op = _vsctl(netdev)
    assert op.init and not op.del_ports
    assert [b.name for b in op.bridges] == ["br-phy", "br-int"]
    assert [(p.bridge, p.name) for p in op.ports] == [("br-phy", "eth0"), ("br-int", "gw0"), ("br-int", "vxlan0"),
                                                      ("br-int", "veth-a-1"), ("br-int", "veth-a-2")]
    assert all(("netlab-lab", "tl") in x.external_ids for x in op.bridges + op.ports)
    # As printed: every Bridge and every Port (a bridge's own port too) carries the tag.
    cmds = op.commands()
    created = [("Bridge" if c[0] == "add-br" else "Port", c[-1]) for c in cmds if c[0] in ("add-br", "add-port")]
    created += [("Port", br) for kind, br in list(created) if kind == "Bridge"]  # a bridge's own port
    tagged = {(c[1], c[2]) for c in cmds if c[0] == "set" and "external_ids:netlab-lab=tl" in c}
    assert set(created) <= tagged


def test_vsctl_ports_and_options(netdev):
    op = _vsctl(netdev)
    ports = {p.name: p for p in op.ports}
    assert ports["vxlan0"] == OvsPort("br-int", "vxlan0", type="vxlan", ofport_request=2,
                                      options=(("remote_ip", "flow"), ("key", "100"), ("dst_port", "4789")),
                                      external_ids=(("netlab-lab", "tl"),))
    assert ports["veth-a-1"].external_ids == (("netlab-lab", "tl"), ("netlab-pod", "c1/a-1"))
    assert op.bridges[0] == OvsBridge("br-phy", datapath_type="netdev", fail_mode="standalone",
                                      other_config=(("hwaddr", "0a:58:c0:a8:00:0a"),),
                                      external_ids=(("netlab-lab", "tl"),))
    cmds = op.commands()
    sets = {c[2]: c[3:] for c in cmds if c[:2] == ("set", "Interface")}
    assert sets["vxlan0"] == ("type=vxlan", "options:remote_ip=flow", "options:key=100", "options:dst_port=4789",
                              "ofport_request=2")
    assert sets["gw0"] == ("type=internal", 'mac="0a:58:ac:10:00:01"', "mtu_request=1450", "ofport_request=1")
    assert sets["veth-a-1"] == ("ofport_request=12",) and sets["veth-a-2"] == ("ofport_request=13",)  # 10 + host part
    bridges = {c[2]: c[3:] for c in cmds if c[:2] == ("set", "Bridge")}
    assert "datapath_type=netdev" in bridges["br-int"] and "fail_mode=secure" in bridges["br-int"]
    assert 'other_config:hwaddr="0a:58:c0:a8:00:0a"' in bridges["br-phy"]
    assert cmds[0] == ("init",)


def test_ovsdb_transaction_prints_as_one_vsctl_call():
    op = OvsConfigure("ns", "/run/netlab/x/db.sock", init=True,
                      bridges=(OvsBridge("br-int", external_ids=(("k", "v"),)),),
                      ports=(OvsPort("br-int", "gw0", type="internal", mac="0a:58:00:00:00:01"),))
    assert str(op) == ("ovs-vsctl --db=unix:/run/netlab/x/db.sock --timeout=30 -- init -- add-br br-int "
                       "-- set Bridge br-int external_ids:k=v -- set Port br-int external_ids:k=v "
                       "-- add-port br-int gw0 -- set Interface gw0 type=internal 'mac=\"0a:58:00:00:00:01\"'")
    assert op.commands()[-1][-1] == 'mac="0a:58:00:00:00:01"'  # an argv word: no shell quoting


def test_ovsdb_transaction_prints_each_bridge_with_its_ports():
    # Ports follow their bridge whatever their order in `ports`; ports on bridges the
    # transaction does not create come after, removals last.
    op = OvsConfigure("ns", "/s", bridges=(OvsBridge("br-a"), OvsBridge("br-b")),
                      ports=(OvsPort("br-b", "p2"), OvsPort("br-old", "p3"), OvsPort("br-a", "p1")),
                      del_ports=(OvsPort("br-old", "p0"),))
    assert op.commands() == [("add-br", "br-a"), ("add-port", "br-a", "p1"), ("add-br", "br-b"),
                             ("add-port", "br-b", "p2"), ("add-port", "br-old", "p3"), ("del-port", "br-old", "p0")]
    assert str(op) == ("ovs-vsctl --db=unix:/s --timeout=30 -- add-br br-a -- add-port br-a p1 -- add-br br-b "
                       "-- add-port br-b p2 -- add-port br-old p3 -- del-port br-old p0")


def test_ovsdb_values_quoted_as_ovs_vsctl_reads_them():
    op = OvsConfigure("ns", "/s", ports=(OvsPort("br", "p", options=(("remote_ip", "flow"), ("csum", "a b")),
                                                 mtu_request=1450, ofport_request=0),))
    assert op.commands() == [("add-port", "br", "p"),
                             ("set", "Interface", "p", "options:remote_ip=flow", 'options:csum="a b"',
                              "mtu_request=1450", "ofport_request=0")]
    assert str(op).endswith("""'options:csum="a b"' mtu_request=1450 ofport_request=0""")


def test_br_int_flows_golden(netdev):
    (op,) = _ops(netdev, node1(netdev), OvsFlows)
    assert op.bridge == "br-int" and op.target == f"{RUN}/br-int.mgmt"
    flows = op.flows
    assert flows[:3] == ("table=0,priority=100,in_port=1,arp,actions=resubmit(,10)",
                         "table=0,priority=100,in_port=1,ip,actions=resubmit(,20)",
                         "table=0,priority=100,in_port=2,ip,actions=resubmit(,20)")
    assert "table=0,priority=100,in_port=12,ip,nw_src=172.16.0.2,actions=resubmit(,20)" in flows
    assert "table=0,priority=100,in_port=13,arp,arp_spa=172.16.0.3,actions=resubmit(,10)" in flows
    commit = "ct(commit,zone=1,exec(set_field:0x1->ct_mark))"
    deliver = "set_field:0a:58:ac:10:00:01->eth_src,set_field:0a:58:ac:10:00:02->eth_dst,output:12"
    # From the node stack: committed, then delivered; from anywhere else: conntrack first.
    assert f"table=20,priority=210,in_port=1,ip,nw_dst=172.16.0.2,actions={commit},{deliver}" in flows
    assert "table=20,priority=200,ip,nw_dst=172.16.0.2,actions=ct(table=30,zone=1)" in flows
    assert f"table=30,priority=100,ip,nw_dst=172.16.0.2,actions={deliver}" in flows
    # Replies of the stack's connections (e.g. DNATed to a Service endpoint) go back to it.
    assert ("table=30,priority=200,ct_state=+trk+rpl,ct_mark=0x1,ip,actions="
            "set_field:0a:58:ac:10:00:01->eth_dst,output:1") in flows
    assert ("table=20,priority=100,ip,nw_dst=172.16.1.0/24,actions=set_field:192.168.0.11->tun_dst,output:2"
            in flows)
    assert (f"table=20,priority=110,in_port=1,ip,nw_dst=172.16.2.0/24,actions={commit},"
            "set_field:192.168.0.12->tun_dst,output:2") in flows
    assert "table=20,priority=50,ip,actions=set_field:0a:58:ac:10:00:01->eth_dst,output:1" in flows
    arp = [f for f in flows if f.startswith("table=10,priority=100")]
    # the local gateway, two local pods, two remote gateways
    assert [f.split("arp_tpa=")[1].split(",")[0] for f in arp] == [
        "172.16.0.1", "172.16.0.2", "172.16.0.3", "172.16.1.1", "172.16.2.1"]
    assert all(f.endswith(",IN_PORT") for f in arp)
    # table 0: 3 + 2 per pod + default; 10: 5 + default; 20: 2 per pod, 2 per remote node, 2;
    # 30: 1 + 1 per pod + default
    assert len(flows) == (3 + 2 * 2 + 1) + (5 + 1) + (2 * 2 + 2 * 2 + 2) + (1 + 2 + 1)
    assert str(op) == f"ovs-ofctl --bundle replace-flows unix:{RUN}/br-int.mgmt - <<'EOF'  # br-int: {len(flows)} flows"


def test_routes_to_remote_pod_cidrs_via_their_gateways_onlink(netdev):
    routes = [op for op in _ops(netdev, node1(netdev), AddRoute) if op.dev == "gw0"]
    assert [(str(r.destination), str(r.via), r.onlink) for r in routes] == [
        ("172.16.1.0/24", "172.16.1.1", True), ("172.16.2.0/24", "172.16.2.1", True)]
    assert str(routes[0]).endswith("route add 172.16.1.0/24 via 172.16.1.1 dev gw0 onlink")


def test_static_tunnel_neighbours_for_the_userspace_datapath(netdev):
    ops = _ops(netdev, node1(netdev), OvsAppctl)
    assert [op.args for op in ops] == [("tnl/neigh/set", "br-phy", "192.168.0.11", "0a:58:c0:a8:00:0b"),
                                       ("tnl/neigh/set", "br-phy", "192.168.0.12", "0a:58:c0:a8:00:0c")]
    assert str(ops[0]) == f"ovs-appctl -t {RUN}/ovs-vswitchd.ctl tnl/neigh/set br-phy 192.168.0.11 0a:58:c0:a8:00:0b"


def test_pods_get_deterministic_macs_and_the_pod_mtu(netdev):
    c = netdev.cluster("c1")
    pod = c.pods[0]
    assert SetLink(pod.netns, "eth0", address="0a:58:ac:10:00:02") in _ops(netdev, pod.netns)
    veths = [op for op in build(netdev).ops if getattr(op, "peer_netns", None) == pod.netns]
    assert [op.mtu for op in veths] == [1450]


def test_snat_rule(netdev):
    (op,) = [op for op in _ops(netdev, node1(netdev), IptablesRestore) if "SNAT" in op.purpose]
    assert ("-A NETLAB-TUNNEL-SNAT -s 172.16.0.0/16 ! -d 172.16.0.0/16 -m comment --comment "
            '"netlab tl: the VPC has no route to 172.16.0.0/16" -j MASQUERADE') in op.rules
    assert op.noflush and op.rules.startswith("*nat\n") and op.rules.endswith("COMMIT\n")


# -- the OVS switch, kernel datapath -----------------------------------------------------------
def test_system_datapath_keeps_the_node_ip_on_eth0(system):
    ns = node1(system)
    assert AddAddress(ns, "eth0", IPv4Interface("192.168.0.10/24")) in _ops(system, ns)
    cmds = _vsctl(system).commands()
    assert not any("br-phy" in c for c in cmds)
    assert ("set", "Bridge", "br-int", "datapath_type=system", "fail_mode=secure",
            "external_ids:netlab-lab=tl") in cmds
    assert not _ops(system, kind=SetOffload) and not _ops(system, kind=OvsAppctl)
    assert not [op for op in _ops(system, kind=Sysctl) if "arp_ignore" in op.key]


# -- linux-bridge ------------------------------------------------------------------------------
def test_linux_bridge_is_flannel_like(bridge):
    ns = node1(bridge)
    (vx,) = _ops(bridge, ns, AddVxlan)
    assert (vx.ifname, vx.vni, str(vx.local), vx.dev, vx.port, vx.mtu, vx.address, vx.learning) == (
        "vxlan.100", 100, "192.168.0.10", "eth0", 4789, 1450, "0a:58:ac:10:00:00", False)
    assert str(vx) == ("ip -n nl-tl.c1.node-1 link add vxlan.100 mtu 1450 address 0a:58:ac:10:00:00 type vxlan "
                       "id 100 local 192.168.0.10 dev eth0 dstport 4789 nolearning")
    fdb = _ops(bridge, ns, AddFdb)
    assert [(op.mac, str(op.dst)) for op in fdb] == [("0a:58:ac:10:01:00", "192.168.0.11"),
                                                     ("0a:58:ac:10:02:00", "192.168.0.12")]
    assert str(fdb[0]) == ("bridge -n nl-tl.c1.node-1 fdb append 0a:58:ac:10:01:00 dev vxlan.100 "
                           "dst 192.168.0.11 self permanent")
    neigh = _ops(bridge, ns, AddNeigh)
    assert [(str(op.ip), op.mac) for op in neigh] == [("172.16.1.0", "0a:58:ac:10:01:00"),
                                                      ("172.16.2.0", "0a:58:ac:10:02:00")]
    assert str(neigh[0]) == ("ip -n nl-tl.c1.node-1 neigh replace 172.16.1.0 lladdr 0a:58:ac:10:01:00 "
                             "dev vxlan.100 nud permanent")
    routes = [op for op in _ops(bridge, ns, AddRoute) if op.dev == "vxlan.100"]
    assert [(op.destination, op.via, op.onlink) for op in routes] == [
        (IPv4Network("172.16.1.0/24"), IPv4Address("172.16.1.0"), True),
        (IPv4Network("172.16.2.0/24"), IPv4Address("172.16.2.0"), True)]
    assert AddLink(ns, "cni0", "bridge", mtu=1450) in _ops(bridge, ns)
    assert Sysctl(ns, "net.bridge.bridge-nf-call-iptables", "1") in _ops(bridge, ns)  # Services
    assert SetLink(ns, "cni0", address="0a:58:ac:10:00:01") in _ops(bridge, ns)  # a fixed MAC
    assert AddAddress(ns, "vxlan.100", IPv4Interface("172.16.0.0/32")) in _ops(bridge, ns)
    pod = bridge.cluster("c1").pods[0]
    assert SetLink(ns, pod.host_ifname, master="cni0", hairpin=True) in _ops(bridge, ns)


def test_linux_bridge_runs_no_ovs(bridge):
    assert [op.name for op in _ops(bridge, kind=StartProcess)] == ["agent"]
    assert not _ops(bridge, kind=OvsConfigure) and not _ops(bridge, kind=SetOffload)
    assert len([op for op in _ops(bridge, kind=IptablesRestore) if "SNAT" in op.purpose]) == 3


def test_builtin_scenarios_resolve_and_plan():
    for name, switch in (("tunnel-basic", "ovs"), ("tunnel-linux-bridge", "linux-bridge")):
        s, src = loader.load(loader.builtin_path(name))
        lab = __import__("netlab.lab.resolve", fromlist=["resolve"]).resolve(s, src)
        c = lab.clusters[0]
        assert (c.model, c.network.switch, c.network.vni) == ("tunnel", switch, 100)
        assert len(c.nodes) == 3 and all(c.pods_on(n.name) for n in c.nodes)
        assert str(build(lab))


def test_new_op_strings():
    assert str(SetOffload("ns", "eth0")) == "ip netns exec ns ethtool -K eth0 tx off"
    assert str(OvsCreateDb("ns", "/r/db")) == "ovsdb-tool create /r/db /usr/share/openvswitch/vswitch.ovsschema"
    assert str(SetLink("ns", "eth0", address="0a:58:00:00:00:01")) == "ip -n ns link set eth0 address 0a:58:00:00:00:01 up"
    assert str(SetLink("ns", "eth0")) == "ip -n ns link set eth0 up"  # unchanged without a MAC


# -- netlab scale ------------------------------------------------------------------------------
SET = "- {name: web, node: [node-1, node-2], replicas: 2, ports: [{port: 8080}]}\n- {name: c, node: node-1}"


def test_scale_up_adds_a_port_and_replaces_the_nodes_flows():
    from netlab.lab.scale import scale

    lab = lab_of(scenario(pods=SET))
    change = scale(lab, "c1/web", 3)
    (added,) = change.added
    assert (added.name, added.node, str(added.ip)) == ("web-2", "node-1", "172.16.0.4")
    (vsctl,) = [op for op in change.ops if isinstance(op, OvsConfigure)]
    assert not vsctl.init and not vsctl.bridges and not vsctl.del_ports
    assert vsctl.wait  # the flows that follow need the port: this transaction waits itself
    assert vsctl.ports == (OvsPort("br-int", added.host_ifname, ofport_request=14,  # 10 + .4
                                   external_ids=(("netlab-lab", "tl"), ("netlab-pod", "c1/web-2"))),)
    assert str(vsctl).endswith(f"-- add-port br-int {added.host_ifname} -- set Interface {added.host_ifname} "
                               f"ofport_request=14 -- set Port {added.host_ifname} external_ids:netlab-lab=tl "
                               f"external_ids:netlab-pod=c1/web-2")
    (flows,) = [op for op in change.ops if isinstance(op, OvsFlows)]
    assert flows.netns == lab.cluster("c1").node("node-1").netns
    assert any("nw_dst=172.16.0.4," in f and f.endswith("output:14") for f in flows.flows)
    assert any(f.startswith("table=30,priority=100,ip,nw_dst=172.16.0.4,") for f in flows.flows)
    assert SetOffload(added.netns, "eth0") in change.ops
    assert Sysctl(flows.netns, f"net.ipv4.conf.{added.host_ifname}.arp_ignore", "8") in change.ops


def test_scale_down_removes_flows_then_port_then_namespace():
    from netlab.lab.scale import scale
    from netlab.plan import DelNetns

    lab = lab_of(scenario(pods=SET))
    change = scale(lab, "c1/web", 1)
    (gone,) = change.removed
    remove = change.steps[-1]  # after kube-proxy's re-sync
    assert [type(op).__name__ for op in remove] == ["OvsFlows", "OvsConfigure", "DelNetns"]
    assert remove[1].del_ports == (OvsPort("br-int", gone.host_ifname),) and not remove[1].ports
    assert str(remove[1]).endswith(f"--timeout=30 -- del-port br-int {gone.host_ifname}")
    assert remove[2] == DelNetns(gone.netns)
    assert not any(f"nw_dst={gone.ip}," in f for f in remove[0].flows)


def test_scale_linux_bridge_is_plain_veths():
    from netlab.lab.scale import scale

    lab = lab_of(scenario("switch: linux-bridge\n", pods=SET))
    change = scale(lab, "c1/web", 3)
    assert not [op for op in change.ops if isinstance(op, (OvsConfigure, OvsFlows))]
    assert SetLink(lab.cluster("c1").node("node-1").netns, change.added[0].host_ifname, master="cni0", hairpin=True) in change.ops
    assert [type(op).__name__ for op in scale(lab, "c1/web", 1).steps[-1]] == ["DelNetns"]


def test_node_addresses():
    c = lab_of(scenario()).cluster("c1")
    n = c.node("node-1")
    assert tunnel.MODEL.node_addresses(c, n) == (n.eth0.ip, n.pod_gateway)
    c = lab_of(scenario("switch: linux-bridge\n")).cluster("c1")
    n = c.node("node-1")
    assert tunnel.MODEL.node_addresses(c, n) == (n.eth0.ip, n.pod_gateway, IPv4Address("172.16.0.0"))
