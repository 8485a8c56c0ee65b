"""ipvlan sub-interfaces inside a lab (kernel tier: needs ipvlan), the way the ENI model will
use them: a sub-interface of a node's ENI (its eth0) moved into a pod namespace, holding a
VPC subnet address, talks to the VPC straight through the node's port, with no veth and no
routing on the node."""

from __future__ import annotations

import pytest

from tests.helpers import netlab


@pytest.mark.kernel("ipvlan")
def test_ipvlan_sub_eni_in_a_lab_node(lab):
    lab("scenarios/vpc-basic.yaml", "t-ipvl")
    pod = "nl-t-ipvl.c1.client"

    def run(*argv: str) -> str:
        done = netlab("exec", "t-ipvl", *argv)
        assert done.returncode == 0, done.stderr
        return done.stdout

    # The client pod gets a second interface: an ipvlan (L2 mode) of node-1's eth0, holding a
    # VPC subnet address, as a sub-ENI pod would.
    run("c1/node-1", "--", "ip", "link", "add", "eni1", "link", "eth0", "type", "ipvlan", "mode", "l2")
    run("c1/node-1", "--", "ip", "link", "set", "eni1", "netns", pod)
    run("c1/client", "--", "ip", "address", "add", "192.168.0.100/24", "dev", "eni1")
    run("c1/client", "--", "ip", "link", "set", "eni1", "up")
    details = run("c1/client", "--", "ip", "-d", "link", "show", "eni1")
    assert "ipvlan" in details and "mode l2" in details

    # The VPC host reaches the pod's VPC address directly, and the pod the host.
    assert " 0% packet loss" in run("ecs-1", "--", "ping", "-c", "2", "-W", "2", "192.168.0.100")
    reply = run("c1/client", "--", "python3", "-c",
                "import socket;s=socket.create_connection(('192.168.0.12',80),timeout=5);"
                "s.sendall(b'x\\n');print(s.recv(999).decode())")
    assert '"server": "ecs-1"' in reply and '"client": "192.168.0.100:' in reply
    # The pod's ipvlan shares eth0's MAC: one MAC on the VPC port for several addresses.
    mac_node = run("c1/node-1", "--", "cat", "/sys/class/net/eth0/address").strip()
    mac_pod = run("c1/client", "--", "cat", "/sys/class/net/eni1/address").strip()
    assert mac_node == mac_pod
