"""The parts of capability detection that touch the kernel or run programs.

* `probe_link_kinds`: creates test links inside a throwaway network namespace
  ``nl-capprobe-<pid>`` and removes the namespace afterwards. The root network namespace
  is never changed. (Creating a link of a kind whose module is loadable makes the kernel
  load that module: that is the point of a probe, and why `detect` only probes kinds
  that file evidence could not settle.)
* `load_module`: ``modprobe <name>`` (argv list, never a shell).
* `tool_output`: run a version query such as ``iptables -V``.
"""

from __future__ import annotations

import os
import subprocess
from typing import Sequence

PROBE_PREFIX = "nl-capprobe-"


def probe_namespace_name() -> str:
    return f"{PROBE_PREFIX}{os.getpid()}"


def probe_link_kinds(kinds: Sequence[str]) -> tuple[bool, dict[str, bool]] | None:
    """Try to create a link of each kind inside a throwaway namespace.

    Returns ``(netns_ok, {kind: created})``, or None when no namespace could be created
    (not root, pyroute2 missing...). Kinds that need a parent (macvlan, ipvlan, vlan) get a
    veth end of the namespace as parent. The namespace is always removed.
    """
    try:
        from pyroute2 import IPRoute, netns
    except ImportError:
        return None
    name = probe_namespace_name()
    try:
        netns.create(name)
    except Exception:
        return None
    results: dict[str, bool] = {}
    try:
        with IPRoute(netns=name) as ipr:
            def new_veth(a: str, b: str) -> int | None:
                try:
                    ipr.link("add", ifname=a, kind="veth", peer=b)
                    return ipr.link_lookup(ifname=a)[0]
                except Exception:
                    return None

            veth_ok = new_veth("cp-v0", "cp-v1") is not None
            for i, kind in enumerate(kinds):
                if kind == "veth":
                    results[kind] = veth_ok
                    continue
                kw: dict = {}
                if kind == "vxlan":
                    kw = {"vxlan_id": 4242}
                elif kind in ("macvlan", "ipvlan", "vlan"):
                    # a parent of its own: a device that is already a macvlan lower
                    # device refuses ipvlan (EBUSY), and the other way round
                    parent = new_veth(f"cp-p{i}", f"cp-q{i}")
                    if parent is None:
                        continue  # cannot tell without a parent
                    kw = {"link": parent}
                    if kind == "macvlan":
                        kw["macvlan_mode"] = "bridge"
                    elif kind == "ipvlan":
                        kw["ipvlan_mode"] = 0  # l2
                    else:
                        kw["vlan_id"] = 42
                try:
                    ipr.link("add", ifname=f"cp-k{i}", kind=kind, **kw)
                    results[kind] = True
                except Exception:
                    results[kind] = False
        return True, results
    except Exception:
        return True, results
    finally:
        try:
            netns.remove(name)
        except Exception:
            pass


def load_module(name: str, *, modprobe: str | None = "modprobe", timeout: float = 60.0) -> tuple[bool, str]:
    """``modprobe NAME`` (the caller says where modprobe is: `netlab.capabilities.find_tool`).
    Returns (loaded, stderr). Needs root; harmless when loaded."""
    if modprobe is None:
        return False, "modprobe not found (Debian package kmod)"
    try:
        proc = subprocess.run([modprobe, name], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return proc.returncode == 0, proc.stderr.strip()


def tool_output(argv: Sequence[str], *, timeout: float = 10.0) -> str | None:
    """stdout (or stderr, for tools that print versions there) of a harmless query."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout or proc.stderr
