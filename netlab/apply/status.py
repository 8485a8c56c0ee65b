"""What a lab looks like right now: its objects, whether their namespaces exist, and the
addresses the kernel holds in each (read over netlink, not from the plan)."""

from __future__ import annotations

from netlab import linux
from netlab.apply import processes
from netlab.apply.netlink import Netlink
from netlab.apply.state import StateDir
from netlab.lab.model import Lab


def collect(lab: Lab) -> dict:
    present = set(linux.list_netns())
    state = StateDir(lab.name)
    objects = []
    missing = 0
    with Netlink() as nl:
        for kind, cluster, name, netns in lab.objects():
            addresses: list[str] = []
            if netns in present:
                seen = set()
                for _, addr in nl.addresses(netns):
                    if str(addr) not in seen:
                        seen.add(str(addr))
                        addresses.append(str(addr))
            else:
                missing += 1
            objects.append({"name": name, "kind": kind, "cluster": cluster, "netns": netns,
                            "addresses": addresses})
    phase = state.read_record().get("phase", "unknown")
    agent = processes.pid_of(state.pidfile("agent")) is not None
    healthy = phase == "up" and not missing and agent
    return {"lab": lab.name, "state": "up" if healthy else f"degraded ({phase}, {missing} namespaces missing, "
                                                             f"agent {'running' if agent else 'not running'})",
            "objects": objects}
