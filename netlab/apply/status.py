"""What a lab looks like right now: its objects, whether their namespaces exist, the
addresses the kernel holds in each (read over netlink, not from the plan), and whether every
process it started still runs (a zombie does not).

A lab is one of:
- up: recorded phase `up`, every namespace present, every process running;
- degraded: anything less (`status LAB` exits non-zero and names what is missing or dead);
- orphaned: namespaces or processes in the kernel but no state directory (it was lost);
  `netlab down LAB` removes them;
- damaged: a state directory whose lab.json cannot be read (reported by `StateDir`).

`dead_processes(lab)` is the one answer to "which of this lab's processes are not running",
for `status` and for the checks (which name a dead daemon instead of a silent "no answer").
"""

from __future__ import annotations

from netlab import linux
from netlab.apply import processes, remains
from netlab.apply.netlink import Netlink
from netlab.apply.state import StateDir
from netlab.errors import LabStateError
from netlab.lab.model import Lab


def dead_processes(lab: str) -> dict[str, str]:
    """Processes the lab started that are not running, by name ("agent",
    "ovs-vswitchd@c1.node-1"), with why: "exited", "zombie", "pidfile unreadable"."""
    state = StateDir(lab)
    if not state.exists():
        return {}
    return {p.stem: why for p in state.pidfiles() if (why := processes.health(p)) is not None}


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
    expected = len(state.pidfiles())
    dead = dead_processes(lab.name)
    healthy = phase == "up" and not missing and not dead
    problems = [f"phase {phase}"] if phase != "up" else []
    problems += [f"{missing} namespaces missing"] if missing else []
    problems += [f"not running: {', '.join(f'{n} ({why})' for n, why in dead.items())}"] if dead else []
    return {"lab": lab.name, "state": "up" if healthy else f"degraded ({'; '.join(problems)})",
            "processes": {"running": expected - len(dead), "expected": expected},
            "dead": [{"name": n, "why": why} for n, why in dead.items()],
            "objects": objects,
            "eips": [{"ip": str(e.ip), "bind": e.bind, "kind": e.kind,
                      "private": str(e.private) if e.private else None} for e in lab.eips]}


def orphan_summary(found: remains.Remains) -> str:
    return (f"orphaned: state lost; {len(found.netns)} namespaces, {len(found.pids)} processes; "
            f"`netlab down {found.lab}` removes them")


def orphaned(lab: str) -> dict | None:
    """`status LAB` for a lab with no state directory: what the kernel still holds of it
    (None if nothing)."""
    if StateDir(lab).exists():
        return None
    found = remains.find(lab)
    if not found:
        return None
    return {"lab": lab, "state": orphan_summary(found),
            "processes": {"running": len(found.pids), "expected": 0},
            "orphaned": {"netns": found.netns, "pids": found.pids}, "objects": []}


def overview() -> dict:
    """Every lab: those with state (and whether it is readable) and the orphaned ones."""
    labs, orphans, damaged = [], [], {}
    for name, found in remains.every_lab().items():
        state = StateDir(name)
        if state.exists():
            labs.append(name)
            try:
                state.read_record()
            except LabStateError as e:
                damaged[name] = str(e)
        elif found:
            orphans.append({"lab": name, "netns": len(found.netns), "processes": len(found.pids),
                            "state": orphan_summary(found)})
    return {"labs": labs, "orphaned": orphans, "damaged": damaged}
