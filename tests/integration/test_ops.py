"""The plan's link ops on real namespaces: a sub-interface with a parent and mode, moved into
another namespace and renamed (what a CNI does with a pod's interface), and a file written
under the lab's run directory."""

from __future__ import annotations

import os
import subprocess
from ipaddress import IPv4Interface

import pytest

from netlab import linux
from netlab.apply.context import Context
from netlab.apply.executor import HANDLERS, IPV4_ONLY
from netlab.apply.netlink import Netlink
from netlab.apply.state import StateDir
from netlab.errors import ApplyError
from netlab.plan.ops import AddAddress, AddLink, AddVeth, MoveLink, SetLink, WriteFile

NODE, POD, PEER = "nl-opstest-node", "nl-opstest-pod", "nl-opstest-peer"  # no dot: not a lab's


@pytest.fixture
def spaces():
    for ns in (NODE, POD, PEER):
        linux.create_netns(ns, IPV4_ONLY)
    try:
        yield
    finally:
        for ns in (NODE, POD, PEER):
            linux.remove_netns(ns)


def run(ctx: Context, *ops) -> None:
    for op in ops:
        HANDLERS[type(op)](ctx, op)


def test_macvlan_on_a_parent_moved_into_a_pod_and_renamed(spaces):
    state = StateDir("ops-test")
    with Netlink() as nl:
        ctx = Context(state, nl)
        run(ctx, AddVeth(NODE, "eth0", PEER, "eth0", 1500), SetLink(NODE, "eth0"), SetLink(PEER, "eth0"),
            AddAddress(PEER, "eth0", IPv4Interface("192.0.2.1/24")),
            AddLink(NODE, "sub0", "macvlan", parent="eth0", mode="bridge", address="0a:58:c0:00:02:0b"),
            MoveLink(NODE, "sub0", POD, "eth0"),
            SetLink(POD, "eth0"), AddAddress(POD, "eth0", IPv4Interface("192.0.2.11/24")))
        links = {link.get_attr("IFLA_IFNAME"): link for link in nl.ipr(POD).get_links()}
        assert links["eth0"].get_attr("IFLA_ADDRESS") == "0a:58:c0:00:02:0b"
        kind = links["eth0"].get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND")
        assert kind == "macvlan"
        assert not nl.ipr(NODE).link_lookup(ifname="sub0")  # gone from the node
    # The sub-interface talks to the parent's peer (bridge mode), from inside the pod.
    done = subprocess.run(["ip", "netns", "exec", POD, "ping", "-c1", "-W2", "192.0.2.1"],
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stdout + done.stderr


def test_write_file_stays_inside_the_lab_directory(tmp_path, monkeypatch):
    state = StateDir("ops-test")
    monkeypatch.setattr(StateDir, "path", property(lambda self: tmp_path / self.lab))
    (tmp_path / "ops-test").mkdir()
    with Netlink() as nl:
        ctx = Context(state, nl)
        run(ctx, WriteFile("x", str(tmp_path / "ops-test" / "elb" / "nginx.conf"), "events {}\n", 0o600))
        conf = tmp_path / "ops-test" / "elb" / "nginx.conf"
        assert conf.read_text() == "events {}\n" and (os.stat(conf).st_mode & 0o777) == 0o600
        for outside in (str(tmp_path / "elsewhere"), str(tmp_path / "ops-test" / ".." / "x"), "relative"):
            with pytest.raises(ApplyError, match="outside the lab's directory"):
                run(ctx, WriteFile("x", outside, "no"))
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "x").exists()
