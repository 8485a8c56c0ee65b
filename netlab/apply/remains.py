"""What a lab has in the kernel right now, found without trusting its state directory.

The state directory can be lost (deleted, or never finished by an `up` that was killed), so
everything a lab runs must be findable from the kernel alone:

- namespaces: every `nl-<lab>.*` (`netlab.lab.naming` makes that prefix the lab's alone),
  plus any that lab.json recorded;
- processes: every process whose network namespace is one of those (the device and inode of
  /proc/PID/ns/net against the bind mount in /run/netns, as `ip netns pids` compares them);
  netlab forks every process it starts from inside its namespace, so this finds them from
  their first instant. Also every process whose command line names a path in the lab's
  state directory (the OVS clients talk to a node's sockets from the host's namespace);
- pidfiles, when the state directory has them (start time verified).

`stop()` takes them down in that order of trust: pidfile processes first, then whatever
still runs in the lab's namespaces or names its files (SIGTERM, a bounded wait, SIGKILL, a
bounded wait). netlab itself and its parents are never signalled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from netlab import linux
from netlab.apply import processes
from netlab.apply.state import ROOT, StateDir, list_labs
from netlab.lab import naming


@dataclass
class Remains:
    lab: str
    netns: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.netns or self.pids)


def lab_netns(lab: str, recorded: Iterable[str] = ()) -> list[str]:
    """The lab's namespaces that exist: recorded ones in creation order, then the rest."""
    present = linux.list_netns()
    prefix = naming.lab_prefix(lab)
    have = set(present)
    ordered = [ns for ns in dict.fromkeys(recorded) if ns in have]
    return ordered + [ns for ns in present if ns.startswith(prefix) and ns not in ordered]


def _lab_of_path_args(argv: list[str]) -> str | None:
    root = f"{ROOT}/"
    for arg in argv:
        at = arg.find(root)
        if at >= 0:
            lab = arg[at + len(root):].split("/", 1)[0]
            if naming.is_lab_name(lab):
                return lab
    return None


def _ancestors() -> set[int]:
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        pid = processes.parent_of(pid) or 0
    return out


class _Scan:
    """One pass over /proc: which lab each process belongs to, if any."""

    def __init__(self, netns_by_lab: dict[str, list[str]]):
        self.labs_by_id = {nsid: lab for lab, names in netns_by_lab.items()
                           for nsid in map(linux.netns_id, names) if nsid is not None}
        self.skip = _ancestors()

    def lab_of(self, pid: int) -> str | None:
        if pid in self.skip:
            return None
        lab = self.labs_by_id.get(linux.process_netns_id(pid))
        return lab or _lab_of_path_args(processes.cmdline(pid))

    def pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                lab = self.lab_of(int(entry.name))
                if lab is not None:
                    out.setdefault(lab, []).append(int(entry.name))
        return out


def find(lab: str, recorded: Iterable[str] = ()) -> Remains:
    netns = lab_netns(lab, recorded)
    return Remains(lab, netns, _Scan({lab: netns}).pids().get(lab, []))


def every_lab() -> dict[str, Remains]:
    """Every lab that has a namespace or a process in the kernel, or a state directory."""
    netns_by_lab: dict[str, list[str]] = {}
    for ns in linux.list_netns():
        lab = naming.lab_of_netns(ns)
        if lab is not None:
            netns_by_lab.setdefault(lab, []).append(ns)
    pids = _Scan(netns_by_lab).pids()
    names = sorted(set(netns_by_lab) | set(pids) | set(list_labs()))
    return {lab: Remains(lab, netns_by_lab.get(lab, []), pids.get(lab, [])) for lab in names}


@dataclass
class Stopped:
    count: int = 0
    stuck: list[int] = field(default_factory=list)


def stop(state: StateDir, netns: list[str]) -> Stopped:
    """Stop every process of the lab: pidfiles first, then any left in `netns` or naming the
    lab's state directory."""
    result = Stopped()

    def started_as_recorded(pidfile):
        return lambda pid: processes.pid_of(pidfile) == pid

    owned = {}
    for pidfile in state.pidfiles() if state.exists() else []:
        pid = processes.pid_of(pidfile)
        fd = processes.open_checked(pid, started_as_recorded(pidfile)) if pid else None
        if fd is not None:
            owned[pid] = fd
    result.stuck += processes.terminate(owned)
    result.count += len(owned)

    scan = _Scan({state.lab: netns})
    strays = {}
    for pid in scan.pids().get(state.lab, []):
        if pid not in owned:
            fd = processes.open_checked(pid, lambda p: scan.lab_of(p) == state.lab)
            if fd is not None:
                strays[pid] = fd
    result.stuck += processes.terminate(strays)
    result.count += len(strays)
    return result
