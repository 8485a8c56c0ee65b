"""The tunnel model on real namespaces (root): both switches pass every generated check,
cross-node traffic is VXLAN on the wire, the pod MTU is proven at the underlay, and `down`
leaves no OVS process, file or namespace behind.

Labs are built and taken down through the CLI (`python -m netlab`), each under a name of
its own; every fixture takes its lab down even when the test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "netlab" / "scenarios"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: builds network namespaces")


def netlab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    # PYTHONPATH: the agent process netlab starts must import this tree too.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "netlab", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def run_in(lab: str, obj: str, *argv: str) -> subprocess.CompletedProcess:
    return netlab("exec", lab, obj, "--", *argv)


@contextmanager
def lab_up(scenario: str | Path, name: str):
    try:
        r = netlab("up", str(SCENARIOS / scenario), "--name", name)  # an absolute path stays as is
        assert r.returncode == 0, r.stdout + r.stderr
        yield name
    finally:
        netlab("down", name)


def read_lab(name: str):
    from netlab.apply.state import StateDir

    return StateDir(name).read()


def check_json(name: str) -> list[dict]:
    r = netlab("check", name, "--json")
    report = json.loads(r.stdout)
    return report["checks"]


SWITCHES = {"ovs": ("tunnel-basic.yaml", "it-tun-ovs"), "linux-bridge": ("tunnel-linux-bridge.yaml", "it-tun-lb")}


@pytest.fixture(scope="module", params=sorted(SWITCHES))
def tunnel_lab(request):
    scenario, name = SWITCHES[request.param]
    with lab_up(scenario, name):
        yield request.param, name


_reports: dict[str, list[dict]] = {}


def checks_of(name: str) -> list[dict]:
    """`netlab check --json` of a lab, run once per lab (tests below only read it)."""
    if name not in _reports:
        _reports[name] = check_json(name)
    return _reports[name]


@pytest.fixture(scope="module")
def ovs_lab():
    with lab_up("tunnel-basic.yaml", "it-tun-ovs2") as name:
        yield name


# -- the generated matrix ----------------------------------------------------------------------
def test_every_check_passes(tunnel_lab):
    switch, name = tunnel_lab
    results = checks_of(name)
    failed = [(c["name"], c["detail"]) for c in results if not c["ok"]]
    assert not failed
    assert len(results) == 24


def test_cross_node_pod_traffic_is_vxlan_with_the_vni_and_inner_addresses(tunnel_lab):
    _, name = tunnel_lab
    lab = read_lab(name)
    pods = {f"c1/{p.name}": p for p in lab.cluster("c1").pods}
    cross = [c for c in checks_of(name) if c["name"].startswith("pod→pod across nodes")]
    assert len(cross) == 5
    for c in cross:
        src, dst = pods[c["from"]], pods[c["to"].split(":")[0]]
        assert c["encap"] == "vxlan", c
        assert "VXLAN vni 100" in c["detail"] and "udp/4789" in c["detail"]
        assert f"inner {src.ip}→{dst.ip}" in c["detail"]
        nodes = lab.cluster("c1")
        assert f"{nodes.node(src.node).eth0.ip}→{nodes.node(dst.node).eth0.ip}" in c["detail"]


def test_same_node_traffic_is_not_encapsulated(tunnel_lab):
    _, name = tunnel_lab
    same = [c for c in checks_of(name) if c["name"].startswith(("pod→pod same node", "node→pod"))
            and c["encap"] != "vxlan"]
    assert len(same) == 5
    for c in same:
        assert c["ok"] and c["encap"] == "none" and "stayed inside the node" in c["detail"]


def test_vpc_host_sees_the_node_ip_for_pod_traffic(tunnel_lab):
    _, name = tunnel_lab
    c1 = read_lab(name).cluster("c1")
    egress = [c for c in checks_of(name) if c["name"].startswith("pod→VPC host")]
    assert len(egress) == 3
    for c in egress:
        pod = next(p for p in c1.pods if f"c1/{p.name}" == c["from"])
        assert c["ok"] and c["seen_source"] == str(c1.node(pod.node).eth0.ip) != str(pod.ip)


def test_vpc_host_cannot_reach_pods(tunnel_lab):
    _, name = tunnel_lab
    blocked = [c for c in checks_of(name) if c["name"].startswith("VPC host→pod")]
    assert len(blocked) == 3 and all(c["ok"] and c["expect"] == "blocked" and not c["reached"] for c in blocked)


def test_mtu_checks_in_the_matrix(tunnel_lab):
    _, name = tunnel_lab
    mtu = [c for c in checks_of(name) if c["name"].startswith("pod MTU across nodes")]
    assert [(c["ok"], c["reached"]) for c in mtu] == [(True, True), (True, False)]
    assert "1450 bytes DF" in mtu[0]["name"] and "(1500 bytes)" in mtu[0]["detail"]  # outer = underlay MTU
    assert "1451 bytes DF" in mtu[1]["name"]


def _ping(name: str, src: str, dst: str, size: int) -> subprocess.CompletedProcess:
    return run_in(name, src, "ping", "-M", "do", "-s", str(size - 28), "-c", "1", "-W", "1", dst)


def test_mtu_is_what_the_underlay_carries(tunnel_lab):
    """Raise the sending pod's MTU to the underlay's: a DF packet of the pod MTU still
    crosses, one byte more is lost in the tunnel. So the pod MTU is exactly right, not just
    configured."""
    _, name = tunnel_lab
    c1 = read_lab(name).cluster("c1")
    src = next(p for p in c1.pods if p.node == "node-1")
    dst = next(p for p in c1.pods if p.node == "node-2")
    refused = _ping(name, f"c1/{src.name}", str(dst.ip), 1451)  # the pod itself refuses it
    assert refused.returncode != 0 and "message too long" in refused.stdout + refused.stderr
    try:
        assert run_in(name, f"c1/{src.name}", "ip", "link", "set", "eth0", "mtu", "1500").returncode == 0
        assert run_in(name, "c1/node-1", "ip", "link", "set", src.host_ifname, "mtu", "1500").returncode == 0
        assert _ping(name, f"c1/{src.name}", str(dst.ip), 1450).returncode == 0
        over = _ping(name, f"c1/{src.name}", str(dst.ip), 1451)
        assert over.returncode != 0 and " 0 received" in over.stdout, over.stdout
        assert _ping(name, f"c1/{src.name}", str(dst.ip), 1450).returncode == 0
    finally:
        run_in(name, "c1/node-1", "ip", "link", "set", src.host_ifname, "mtu", "1450")
        run_in(name, f"c1/{src.name}", "ip", "link", "set", "eth0", "mtu", "1450")
        run_in(name, f"c1/{src.name}", "ip", "route", "flush", "cache")


def test_show(tunnel_lab):
    switch, name = tunnel_lab
    r = netlab("show", name, "c1/node-1")
    assert r.returncode == 0, r.stderr
    if switch == "ovs":
        for text in ("Bridge br-int", "Port vxlan0", "key=\"100\"", "Port gw0", "n_packets=",
                     "NXM_NX_TUN_IPV4_DST", "Bridge br-phy", "tnl/neigh/show"):
            assert text in r.stdout, text
    else:
        for text in ("vxlan id 100", "nolearning", "dst 192.168.0.11 self permanent", "PERMANENT",
                     "172.16.1.0/24 via 172.16.1.0 dev vxlan.100", "master cni0"):
            assert text in r.stdout, text
    assert netlab("show", name, "c1/nope").returncode == 2


def test_ping_has_no_duplicates(tunnel_lab):
    # A userspace-datapath port is also an interface of the node stack: if that stack
    # answered ARP on it, every packet would be forwarded twice.
    _, name = tunnel_lab
    r = run_in(name, "c1/client", "ping", "-c", "3", "-i", "0.2", "172.16.1.2")
    assert r.returncode == 0 and "DUP" not in r.stdout, r.stdout


# -- Open vSwitch specifics --------------------------------------------------------------------
def _ovs(name: str, node: str, *argv: str) -> str:
    from netlab.models.tunnel import node_dir

    sock = node_dir(name, "c1", node) / "db.sock"
    return subprocess.run(["ovs-vsctl", f"--db=unix:{sock}", *argv], capture_output=True, text=True,
                          check=True).stdout


def test_ovs_bridges_and_ports_are_tagged_with_the_lab(ovs_lab):
    for node in ("node-1", "node-2", "node-3"):
        for table in ("Bridge", "Port"):
            rows = json.loads(_ovs(ovs_lab, node, "--format=json", "--columns=name,external_ids", "list", table))
            assert rows["data"]
            for name, ids in rows["data"]:
                assert ["netlab-lab", ovs_lab] in ids[1], (table, name)


def test_datapath_follows_the_kernel_features(ovs_lab):
    """`auto` picks the datapath from the features the lab was resolved with: userspace
    (netdev) on the host tier, where this kernel has no openvswitch module."""
    from netlab.models.tunnel import datapath_for, node_dir

    lab = read_lab(ovs_lab)
    datapath = lab.cluster("c1").network.datapath
    assert datapath == datapath_for(frozenset(lab.features))
    ctl = node_dir(ovs_lab, "c1", "node-1") / "ovs-vswitchd.ctl"
    out = subprocess.run(["ovs-appctl", "-t", str(ctl), "dpctl/show"], capture_output=True, text=True).stdout
    assert out.startswith("netdev@ovs-netdev" if datapath == "netdev" else "system@ovs-system"), out
    assert "vxlan_sys_4789" in out
    if datapath == "netdev":
        # The node IP lives on br-phy, eth0 has none.
        assert "192.168.0.10/24" in run_in(ovs_lab, "c1/node-1", "ip", "-4", "addr", "show", "dev", "br-phy").stdout
        assert run_in(ovs_lab, "c1/node-1", "ip", "-4", "addr", "show", "dev", "eth0").stdout.strip() == ""


def test_flows_count_packets(ovs_lab):
    from netlab.models.tunnel import node_dir

    mgmt = node_dir(ovs_lab, "c1", "node-1") / "br-int.mgmt"

    def tunnel_packets() -> int:
        out = subprocess.run(["ovs-ofctl", "dump-flows", f"unix:{mgmt}", "table=20"],
                             capture_output=True, text=True, check=True).stdout
        (line,) = [x for x in out.splitlines() if "priority=100,ip,nw_dst=172.16.1.0/24" in x]
        return int(line.split("n_packets=")[1].split(",")[0])

    before = tunnel_packets()
    assert run_in(ovs_lab, "c1/client", "ping", "-c", "3", "-i", "0.2", "172.16.1.2").returncode == 0
    # Counters of packets handled in the datapath's flow cache reach the OpenFlow rule when
    # ovs-vswitchd next revalidates (about every 500 ms).
    deadline = time.monotonic() + 5
    while tunnel_packets() < before + 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tunnel_packets() >= before + 3


# -- netlab scale -----------------------------------------------------------------------------
SCALE = """\
name: tscale
hosts:
  - {name: ecs-1, ports: [{port: 80}]}
clusters:
  - name: c1
    model: tunnel
    switch: SWITCH
    nodes: [{name: node-1}, {name: node-2}]
    pods:
      - {name: web, node: [node-1, node-2], replicas: 2, ports: [{port: 8080}]}
      - {name: client, node: node-1}
"""


@pytest.mark.parametrize("switch", ["ovs", "linux-bridge"])
def test_scale_a_pod_set(switch, tmp_path):
    """Pods added to running nodes get ports and flows (OVS); removed ones leave none behind."""
    path = tmp_path / "scale.yaml"
    path.write_text(SCALE.replace("SWITCH", switch))
    name = "it-tun-scale"
    with lab_up(path, name):
        for replicas, pods in ((5, 6), (1, 2), (3, 4)):
            r = netlab("scale", name, "c1/web", "--replicas", str(replicas))
            assert r.returncode == 0, r.stdout + r.stderr
            assert [(replicas, c["name"], c["detail"]) for c in check_json(name) if not c["ok"]] == []
            c1 = read_lab(name).cluster("c1")
            assert len(c1.pods) == pods
            if switch == "ovs":
                for node in ("node-1", "node-2"):
                    ports = set(_ovs(name, node, "list-ports", "br-int").split())
                    assert ports == {p.host_ifname for p in c1.pods_on(node)} | {"gw0", "vxlan0"}


# -- Services (kube-proxy in the node stack) ---------------------------------------------------
@pytest.mark.parametrize("switch", ["ovs", "linux-bridge"])
def test_services_on_the_tunnel_model(switch, tmp_path):
    """The built-in Services scenario (iptables and nftables kube-proxy) with tunnel clusters:
    pod→ClusterIP needs the endpoint's reply to cross the node stack again (OVS: conntrack
    sends it back through gw0; linux-bridge: br_netfilter)."""
    text = (SCENARIOS / "services.yaml").read_text().replace("model: vpc", f"model: tunnel\n    switch: {switch}")
    path = tmp_path / "services-tunnel.yaml"
    path.write_text(text)
    name = "it-tun-svc"
    with lab_up(path, name):
        results = check_json(name)
        assert [(c["name"], c["detail"]) for c in results if not c["ok"]] == []
        assert len([c for c in results if c["name"].startswith("pod→ClusterIP")]) == 10


# -- down --------------------------------------------------------------------------------------
def _lab_processes(state_dir: Path) -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if ("ovsdb-server" in cmdline or "ovs-vswitchd" in cmdline) and str(state_dir) in cmdline:
            out.append(f"{proc.name}: {cmdline}")
    return out


def test_down_leaves_no_ovs_process_file_or_namespace():
    from netlab import linux
    from netlab.apply.state import StateDir
    from netlab.lab import naming

    name = "it-tun-down"
    state_dir = StateDir(name).path
    with lab_up("tunnel-basic.yaml", name):
        assert len(_lab_processes(state_dir)) == 6  # ovsdb-server + ovs-vswitchd on 3 nodes
        assert (state_dir / "c1" / "node-1" / "conf.db").exists()
        assert (state_dir / "c1" / "node-1" / "db.sock").exists()
        assert (state_dir / "c1" / "node-1" / "br-int.mgmt").exists()
        r = netlab("down", name)
        assert r.returncode == 0 and "7 processes" in r.stdout, r.stdout + r.stderr
    assert _lab_processes(state_dir) == []
    assert not state_dir.exists()
    assert not [ns for ns in linux.list_netns() if ns.startswith(naming.lab_prefix(name))]


# -- kernel tier (VM with the openvswitch module) ----------------------------------------------
@pytest.mark.kernel("openvswitch")
def test_kernel_datapath(monkeypatch):
    """With the openvswitch module, `auto` picks the kernel datapath: no br-phy, the node IP
    stays on eth0, and the same checks pass. The tiers plugin runs it in the kernel-tier VM
    when this kernel has no openvswitch module (passed on Debian's 6.1.0-56-amd64 under TCG
    in about 2 minutes)."""
    from netlab.plan.planner import build
    from netlab.apply import executor
    from netlab.lab.resolve import resolve
    from netlab.models.tunnel import node_dir
    from netlab.probe import checks
    from netlab.probe.runner import Runner
    from netlab.scenario import loader

    monkeypatch.setenv("PYTHONPATH", str(REPO))  # for the agent process
    scenario, source = loader.load(SCENARIOS / "tunnel-basic.yaml")
    scenario = scenario.model_copy(update={"name": "it-tun-kernel"})
    lab = resolve(scenario, source, features=frozenset({"openvswitch"}))
    assert lab.cluster("c1").network.datapath == "system"
    executor.up(lab, build(lab))
    try:
        ctl = node_dir(lab.name, "c1", "node-1") / "ovs-vswitchd.ctl"
        out = subprocess.run(["ovs-appctl", "-t", str(ctl), "dpctl/show"], capture_output=True, text=True).stdout
        assert out.startswith("system@ovs-system"), out
        results = Runner(timeout=2.0).run(checks.matrix(lab))
        assert [r.spec.name for r in results if not r.ok] == []
        assert all(r.encap == "vxlan" for r in results if r.spec.name.startswith("pod→pod across nodes"))
    finally:
        executor.down(lab.name)


def test_exec_points_ovs_clients_at_the_nodes_own_daemons(lab):
    lab("scenarios/tunnel-basic.yaml", "tr-exec")
    show = netlab("exec", "tr-exec", "node-1", "--", "ovs-vsctl", "show")
    assert show.returncode == 0, show.stderr
    assert "Bridge br-int" in show.stdout and "vxlan0" in show.stdout
    flows = netlab("exec", "tr-exec", "c1/node-2", "--", "ovs-ofctl", "dump-flows", "br-int")
    assert flows.returncode == 0 and "resubmit(,20)" in flows.stdout
    dp = netlab("exec", "tr-exec", "node-3", "--", "ovs-appctl", "dpctl/show")
    assert dp.returncode == 0 and "lookups:" in dp.stdout
    db = netlab("exec", "tr-exec", "node-1", "--", "ovs-appctl", "-t", "ovsdb-server", "version")
    assert db.returncode == 0 and "ovsdb-server" in db.stdout
    pod = netlab("exec", "tr-exec", "web-1", "--", "ip", "-br", "address", "show", "eth0")
    assert "172.16.0.2/24" in pod.stdout
