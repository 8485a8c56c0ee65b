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
            # EIPs are the cloud's 1:1 NAT, not addresses of the object's interfaces.
            addresses += [f"{ip}/32" for ip in lab.eips_of(f"{cluster}/{name}" if cluster else name)
                          if f"{ip}/32" not in addresses]
            objects.append({"name": name, "kind": kind, "cluster": cluster, "netns": netns,
                            "addresses": addresses})
    phase = state.read_record().get("phase", "unknown")
    # Every process the lab started (the agent, per-node OVS daemons) has a pidfile.
    pidfiles = sorted((state.path / "pids").glob("*.pid"))
    dead = [p.stem for p in pidfiles if processes.pid_of(p) is None]
    healthy = phase == "up" and not missing and not dead
    problems = [f"phase {phase}"] if phase != "up" else []
    problems += [f"{missing} namespaces missing"] if missing else []
    problems += [f"not running: {', '.join(dead)}"] if dead else []
    return {"lab": lab.name, "state": "up" if healthy else f"degraded ({'; '.join(problems)})",
            "processes": {"running": len(pidfiles) - len(dead), "expected": len(pidfiles)},
            "objects": objects}
