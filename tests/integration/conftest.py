"""Fixtures for tests on real namespaces: root only, and every lab is taken down afterwards."""

from __future__ import annotations

import os
import subprocess

import pytest

from netlab import linux
from tests.helpers import netlab


def pytest_collection_modifyitems(items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root: real network namespaces (run `sudo make test`)")
        for item in items:
            if "/integration/" in str(item.fspath):
                item.add_marker(skip)


def host_state() -> dict[str, str]:
    """The host's root network namespace, as a network engineer would look at it."""
    def run(*argv):
        done = subprocess.run(argv, capture_output=True, text=True)
        return done.stdout + done.stderr

    iptables = "".join(line for line in run("iptables-save").splitlines(keepends=True)
                       if not line.startswith("#"))
    return {
        "links": run("ip", "-o", "link", "show"),
        "addresses": run("ip", "-o", "address", "show"),
        "routes": run("ip", "route", "show", "table", "all"),
        "rules": run("ip", "rule", "show"),
        "nft": run("nft", "list", "ruleset"),
        "iptables": iptables,
    }


@pytest.fixture
def lab():
    """Bring labs up with `lab(FILE, NAME)`; whatever happens, they are down afterwards."""
    names: list[str] = []

    def up(file: str, name: str, *extra: str, timeout: float = 120):
        names.append(name)
        done = netlab("up", file, "--name", name, *extra, timeout=timeout)
        assert done.returncode == 0, done.stderr
        return done

    yield up
    for name in names:
        if os.path.isdir(f"/run/netlab/{name}"):
            netlab("down", name)
        leftovers = [ns for ns in linux.list_netns() if ns.startswith(f"nl-{name}.")]
        assert not leftovers, f"namespaces left behind: {leftovers}"



def module_lab(file: str, name: str):
    """The body of a module-scoped fixture (`yield from module_lab(FILE, NAME)`): the lab up
    once for the module, the host's state from before it yielded, nothing left afterwards."""
    before = host_state()
    done = netlab("up", file, "--name", name)
    assert done.returncode == 0, done.stderr
    yield before
    if os.path.isdir(f"/run/netlab/{name}"):
        netlab("down", name)
    assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{name}.")]
