"""Kernel-tier self-tests: the features the development kernel lacks, used for real.

Each test builds its own namespaces (``nl-kt-<pid>-*``) with iproute2, sends real traffic,
and removes everything it created (`nskit`). They do not need the lab engine; lab feature
tests (IPVS proxy mode, tunnel model on the OVS kernel datapath, ENI ipvlan, impairment)
use the same marker. On a kernel without these features they run in the kernel-tier VM.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from tests.kernel.conftest import NetnsKit, ping, run

# A TCP server answering every connection with "<name> <client address>".
TCP_SERVER = r"""
import socket, sys
name, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(64)
print("ready", flush=True)
while True:
    c, addr = s.accept()
    c.sendall(f"{name} {addr[0]}\n".encode())
    c.close()
"""

# Connect N times to host:port; print each reply on one line.
TCP_CLIENT = r"""
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(n):
    with socket.create_connection((host, port), timeout=10) as c:
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(100)
            if not chunk:
                break
            data += chunk
        print(data.decode().strip(), flush=True)
"""


def _link_details(kit: NetnsKit, ns: str, ifname: str) -> str:
    return kit.ip(ns, "-d", "link", "show", ifname)


# ----------------------------------------------------------------------------- ipvlan
@pytest.mark.kernel("netns", "veth", "ipvlan")
@pytest.mark.parametrize("mode", ["l2", "l3"])
def test_ipvlan_slaves_reach_each_other_and_the_fabric(nskit: NetnsKit, mode: str):
    """Two pod namespaces on ipvlan slaves of one node's eth0 (as the ENI model's
    sub-ENIs): pod-to-pod through ipvlan, and pod to a VPC host through the parent."""
    node, pod1, pod2, vpc = (nskit.ns(n) for n in ("node", "pod1", "pod2", "vpc"))
    nskit.veth(node, "eth0", vpc, "br-port")
    nskit.addr(vpc, "br-port", "192.168.50.1/24")
    for pod, ip in ((pod1, "192.168.50.11"), (pod2, "192.168.50.12")):
        # created in the node namespace on its eth0, then moved into the pod
        nskit.ip(node, "link", "add", "ipv-tmp", "link", "eth0", "type", "ipvlan",
                 "mode", mode)
        nskit.ip(node, "link", "set", "ipv-tmp", "netns", pod, "name", "eth0")
        nskit.addr(pod, "eth0", f"{ip}/24")
        nskit.ip(pod, "route", "add", "default", "dev", "eth0")
        assert f"ipvlan  mode {mode}" in _link_details(nskit, pod, "eth0")
    # pod to pod: switched inside ipvlan (l2) or routed by it (l3)
    ping(nskit, pod1, "192.168.50.12")
    ping(nskit, pod2, "192.168.50.11")
    if mode == "l2":
        # L2: slaves answer ARP themselves, the VPC side reaches them directly
        ping(nskit, pod1, "192.168.50.1")
        ping(nskit, vpc, "192.168.50.12")
    else:
        # L3: no broadcast to slaves, so the VPC routes pod addresses via the node
        nskit.addr(node, "eth0", "192.168.50.2/24")
        nskit.ip(vpc, "route", "add", "192.168.50.11/32", "via", "192.168.50.2")
        nskit.ip(vpc, "route", "add", "192.168.50.12/32", "via", "192.168.50.2")
        ping(nskit, vpc, "192.168.50.11")


# ----------------------------------------------------------------------------- 802.1Q
@pytest.mark.kernel("netns", "veth", "vlan")
def test_vlan_subinterfaces_carry_tagged_traffic(nskit: NetnsKit):
    a, b = nskit.ns("vlan-a"), nskit.ns("vlan-b")
    nskit.veth(a, "trunk", b, "trunk")
    for ns, last in ((a, 1), (b, 2)):
        for vid in (10, 20):
            nskit.ip(ns, "link", "add", "link", "trunk", "name", f"trunk.{vid}", "type",
                     "vlan", "id", str(vid))
            nskit.addr(ns, f"trunk.{vid}", f"10.{vid}.0.{last}/24")
    assert "vlan protocol 802.1Q id 10" in _link_details(nskit, a, "trunk.10")
    ping(nskit, a, "10.10.0.2")
    ping(nskit, b, "10.20.0.1")


# ----------------------------------------------------------------------------- IPVS
@pytest.mark.kernel("netns", "veth", "ip_vs", "nf_conntrack")
def test_ipvs_nat_virtual_server_balances_across_real_servers(nskit: NetnsKit,
                                                             python_exe: str):
    """ipvsadm -A/-a ... -m inside a director namespace; real TCP listeners in two other
    namespaces; round robin must alternate between them, and they must see the client."""
    lb, client, rs1, rs2 = (nskit.ns(n) for n in ("lb", "client", "rs1", "rs2"))
    nskit.veth(lb, "c0", client, "eth0")
    nskit.addr(lb, "c0", "10.77.0.1/24")
    nskit.addr(client, "eth0", "10.77.0.2/24")
    for i, rs in ((1, rs1), (2, rs2)):
        nskit.veth(lb, f"r{i}", rs, "eth0")
        nskit.addr(lb, f"r{i}", f"10.77.{i}.1/24")
        nskit.addr(rs, "eth0", f"10.77.{i}.2/24")
        nskit.ip(rs, "route", "add", "default", "via", f"10.77.{i}.1")  # NAT mode: via director
    nskit.sysctl(lb, "net.ipv4.ip_forward", "1")
    for name, rs in (("rs1", rs1), ("rs2", rs2)):
        nskit.spawn(rs, [python_exe, "-I", "-S", "-c", TCP_SERVER, name, "8080"],
                    ready="ready")
    vip = "10.77.0.1:80"
    nskit.exec(lb, "ipvsadm", "-A", "-t", vip, "-s", "rr")
    nskit.exec(lb, "ipvsadm", "-a", "-t", vip, "-r", "10.77.1.2:8080", "-m")
    nskit.exec(lb, "ipvsadm", "-a", "-t", vip, "-r", "10.77.2.2:8080", "-m")
    table = nskit.exec(lb, "ipvsadm", "-L", "-n").stdout
    assert "TCP  10.77.0.1:80 rr" in table and "10.77.1.2:8080" in table \
        and "Masq" in table, table

    out = nskit.exec(client, python_exe, "-I", "-S", "-c", TCP_CLIENT, "10.77.0.1", "80",
                     "10").stdout.split("\n")
    replies = [line.split() for line in out if line.strip()]
    assert len(replies) == 10, out
    by_server = Counter(name for name, _ in replies)
    assert by_server == {"rs1": 5, "rs2": 5}, by_server
    # NAT mode keeps the client address (no SNAT): the real servers saw 10.77.0.2
    assert {peer for _, peer in replies} == {"10.77.0.2"}
    stats = nskit.exec(lb, "ipvsadm", "-L", "-n", "--stats").stdout
    assert "10.77.2.2:8080" in stats, stats
    # the host has no IPVS table at all, the director namespace has its own
    assert not Path("/proc/net/ip_vs").exists() or "10.77.0.1" not in \
        Path("/proc/net/ip_vs").read_text()


# ----------------------------------------------------------------------------- netem
@pytest.mark.kernel("netns", "veth", "netem")
def test_netem_delay_raises_rtt(nskit: NetnsKit):
    a, b = nskit.ns("em-a"), nskit.ns("em-b")
    nskit.veth(a, "eth0", b, "eth0")
    nskit.addr(a, "eth0", "10.88.0.1/24")
    nskit.addr(b, "eth0", "10.88.0.2/24")
    base_min, base_avg = ping(nskit, a, "10.88.0.2", count=5)
    nskit.exec(a, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "50ms")
    assert "netem" in nskit.exec(a, "tc", "qdisc", "show", "dev", "eth0").stdout
    slow_min, slow_avg = ping(nskit, a, "10.88.0.2", count=5)
    # every echo request now waits 50 ms on a's egress; replies are not delayed
    assert slow_min >= 50.0, (base_min, slow_min)
    assert slow_avg - base_avg >= 45.0, (base_avg, slow_avg)
    assert slow_min < 50.0 + base_avg + 200.0, (base_avg, slow_min)   # and not absurdly more


# ----------------------------------------------------------------------------- OVS
@pytest.mark.kernel("netns", "veth", "openvswitch")
def test_ovs_kernel_datapath_switches_between_ports(nskit: NetnsKit):
    """ovsdb-server + ovs-vswitchd inside a namespace, every file in a temp dir (not the
    system's /var/run/openvswitch); a datapath_type=system bridge with two veth ports and
    an internal port; ping across it; the flows must be in the kernel datapath."""
    sw, h1, h2 = nskit.ns("ovs-sw"), nskit.ns("ovs-h1"), nskit.ns("ovs-h2")
    nskit.veth(sw, "p1", h1, "eth0")
    nskit.veth(sw, "p2", h2, "eth0")
    nskit.addr(h1, "eth0", "10.99.0.1/24")
    nskit.addr(h2, "eth0", "10.99.0.2/24")
    with tempfile.TemporaryDirectory(prefix="nl-kt-ovs-") as d:
        env = dict(os.environ, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d, OVS_SYSCONFDIR=d)
        db, sock = f"{d}/conf.db", f"unix:{d}/db.sock"
        run(["ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema"])
        nskit.exec(sw, "ovsdb-server", db, f"--remote=p{sock}", f"--pidfile={d}/ovsdb.pid",
                   f"--unixctl={d}/ovsdb.ctl", f"--log-file={d}/ovsdb.log", "--detach",
                   env=env)
        nskit.adopt_pidfile(f"{d}/ovsdb.pid")
        vsctl = ["ovs-vsctl", f"--db={sock}", "--timeout=120"]
        nskit.exec(sw, *vsctl, "--no-wait", "init", env=env)
        nskit.exec(sw, "ovs-vswitchd", sock, f"--pidfile={d}/vswitchd.pid",
                   f"--unixctl={d}/vswitchd.ctl", f"--log-file={d}/vswitchd.log",
                   "--detach", env=env, timeout=180)
        nskit.adopt_pidfile(f"{d}/vswitchd.pid")
        try:
            nskit.exec(sw, *vsctl, "add-br", "br0", "--", "set", "bridge", "br0",
                       "datapath_type=system", env=env, timeout=180)
            nskit.exec(sw, *vsctl, "add-port", "br0", "p1", "--", "add-port", "br0", "p2",
                       "--", "add-port", "br0", "gw0", "--", "set", "interface", "gw0",
                       "type=internal", env=env, timeout=180)
            assert nskit.exec(sw, *vsctl, "get", "bridge", "br0", "datapath_type",
                              env=env).stdout.strip() == "system"
            nskit.addr(sw, "gw0", "10.99.0.254/24")
            ping(nskit, h1, "10.99.0.2")
            ping(nskit, h2, "10.99.0.254")
            appctl = ["ovs-appctl", "-t", f"{d}/vswitchd.ctl"]
            dpif = nskit.exec(sw, *appctl, "dpif/show", env=env).stdout
            assert "system@ovs-system" in dpif, dpif
            # the kernel module holds the datapath: its device exists in this namespace only
            assert "ovs-system" in nskit.ip(sw, "link", "show")
            ping(nskit, h1, "10.99.0.2", count=2)
            flows = nskit.exec(sw, *appctl, "dpctl/dump-flows", "system@ovs-system",
                               env=env).stdout
            assert "actions:" in flows, flows
        except AssertionError:
            log = Path(d, "vswitchd.log")
            if log.exists():
                print(log.read_text()[-4000:])
            raise
        finally:
            nskit.cleanup()   # daemons by PID first, then the namespaces, then the temp dir
