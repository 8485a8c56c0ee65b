"""`netlab capture`: a pcap of a cross-node tunnel check that scapy (as Wireshark) reads back
with the VXLAN VNI, the inner pod addresses and the probes' plain-text payloads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from scapy.layers.inet import IP, TCP
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from tests.helpers import REPO, netlab


def _start_capture(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "netlab", "capture", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "listening on" in line:
            return proc
        assert line or proc.poll() is None, proc.stderr.read()
    raise AssertionError("tcpdump never listened")


def test_capture_of_a_tunnel_check_holds_vxlan_with_inner_pod_addresses(lab, tmp_path):
    lab("scenarios/tunnel-basic.yaml", "tr-cap")
    pcap = tmp_path / "vxlan.pcap"
    cap = _start_capture("tr-cap", "node-1:eth0", "-w", str(pcap), "--filter", "udp port 4789",
                         "--seconds", "60")
    try:
        check = netlab("check", "tr-cap")
        assert check.returncode == 0, check.stdout
    finally:
        os.kill(cap.pid, signal.SIGINT)  # as Ctrl-C: tcpdump flushes, netlab reports the file
        _, err = cap.communicate(timeout=20)
    assert cap.returncode == 0, err
    assert "wrote" in err and "packets captured" in err

    packets = rdpcap(str(pcap))
    vxlan = [p for p in packets if VXLAN in p]
    assert vxlan and len(vxlan) == len(packets), (err, [p.summary() for p in packets[:5]])  # the filter held
    assert {p[VXLAN].vni for p in vxlan} == {100}
    inner = {(p[VXLAN].payload[IP].src, p[VXLAN].payload[IP].dst) for p in vxlan}
    # web-1 (node-1) → web-2 (node-2) is one of the generated cross-node checks
    assert ("172.16.0.2", "172.16.1.2") in inner and ("172.16.1.2", "172.16.0.2") in inner
    assert {p[IP].src for p in vxlan} >= {"192.168.0.10"}  # the outer header: node IPs
    payloads = b"".join(bytes(p[VXLAN].payload[TCP].payload) for p in vxlan if TCP in p[VXLAN].payload)
    assert b"netlab-probe\n" in payloads and b'"server": "c1/web-2"' in payloads  # readable text


def test_capture_prints_packets_and_refuses_unknown_interfaces(lab, tmp_path):
    lab("scenarios/vpc-basic.yaml", "tr-cap2")
    bad = netlab("capture", "tr-cap2", "web-1:eth9", "--count", "1")
    assert bad.returncode == 2 and "has no interface 'eth9'" in bad.stderr and "eth0" in bad.stderr
    bad = netlab("capture", "tr-cap2", "web-1:../x", "--count", "1")
    assert bad.returncode == 2 and "not an interface name" in bad.stderr
    cap = _start_capture("tr-cap2", "web-1", "--filter", "icmp", "--count", "2")
    netlab("exec", "tr-cap2", "client", "--", "ping", "-c1", "-W1", "172.16.0.2")
    out, _ = cap.communicate(timeout=20)
    assert cap.returncode == 0
    assert "172.16.1.3 > 172.16.0.2: ICMP echo request" in out

    # Stopped the moment the ping is answered: the file still holds both packets (libpcap
    # would otherwise keep them in a ring block for up to a second, and lose them on Ctrl-C).
    pcap = tmp_path / "ping.pcap"
    cap = _start_capture("tr-cap2", "web-1", "-w", str(pcap), "--filter", "icmp")
    netlab("exec", "tr-cap2", "client", "--", "ping", "-c1", "-W1", "172.16.0.2")
    os.kill(cap.pid, signal.SIGINT)
    _, err = cap.communicate(timeout=20)
    assert "2 packets captured" in err, err
    assert len(rdpcap(str(pcap))) == 2
