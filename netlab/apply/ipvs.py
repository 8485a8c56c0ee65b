"""IPVS virtual and real servers inside lab namespaces (`ipvsadm -R`, one call per node),
and the kernel modules IPVS needs. IPVS state lives in each namespace; the modules are
global, so they are loaded once and never unloaded (other users may rely on them)."""

from __future__ import annotations

import os
import subprocess

from netlab.apply.processes import run_checked as run
from netlab.errors import ApplyError
from netlab.plan.ops import IpvsRestore, LoadModule

_loaded: set[str] = set()  # `LoadModule.present` proves a module is there already


def ipvs_restore(op: IpvsRestore) -> None:
    if op.replace:
        run(op.netns, ["ipvsadm", "-C"])
    run(op.netns, ["ipvsadm", "-R"], op.rules)


def load_module(op: LoadModule) -> None:
    if op.module in _loaded:
        return
    if os.path.exists(op.present):
        _loaded.add(op.module)
        return
    try:
        done = subprocess.run(["modprobe", op.module], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise ApplyError(f"modprobe {op.module}: no answer within 60 s") from None
    if done.returncode != 0:
        raise ApplyError(f"modprobe {op.module}: {done.stderr.strip() or 'failed'}")
    _loaded.add(op.module)
