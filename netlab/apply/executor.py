"""Apply a plan to the kernel, and take a lab down again.

`up` records the lab (and every namespace it will own) in its state directory before the
first operation, then runs the operations in order; if one fails, or the user interrupts,
everything already built is torn down before the error is reported. `down` works from the
state directory alone, so it also undoes a lab whose `up` was killed half-way.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass

from netlab import linux
from netlab.apply import ethtool, files, ipvs, netfilter, ovs, processes, tc, vxlan
from netlab.apply.context import Context
from netlab.apply.netlink import Netlink, describe
from netlab.apply.state import StateDir, list_labs
from netlab.errors import ApplyError, LabStateError
from netlab.lab import naming
from netlab.lab.model import Lab
from netlab.plan.ops import (AddAddress, AddLink, AddNetns, AddRoute, AddRule, AddVeth, DelNetns, IpsetRestore,
                             IptablesRestore, IpvsRestore, LoadModule, MoveLink, Netem, NfacctAdd, NftApply, Op,
                             Plan, SetLink, StartProcess, Sysctl)

IPV4_ONLY = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}


def _sysctl(ctx: Context, op: Sysctl) -> None:
    with linux.entered(ctx.nl.fd(op.netns)):
        linux.write_sysctl(op.key, op.value)


def _del_netns(ctx: Context, op: DelNetns) -> None:
    ctx.nl.forget(op.netns)
    linux.remove_netns(op.netns)


HANDLERS: dict[type, Callable[[Context, Op], None]] = {
    AddNetns: lambda ctx, op: linux.create_netns(op.netns, IPV4_ONLY),
    DelNetns: _del_netns,
    Sysctl: _sysctl,
    AddLink: lambda ctx, op: ctx.nl.add_link(op),
    AddVeth: lambda ctx, op: ctx.nl.add_veth(op),
    MoveLink: lambda ctx, op: ctx.nl.move_link(op),
    SetLink: lambda ctx, op: ctx.nl.set_link(op),
    AddAddress: lambda ctx, op: ctx.nl.add_address(op),
    AddRoute: lambda ctx, op: ctx.nl.add_route(op),
    AddRule: lambda ctx, op: ctx.nl.add_rule(op),
    StartProcess: lambda ctx, op: processes.start(ctx.state, op),
    IptablesRestore: lambda ctx, op: netfilter.iptables_restore(op),
    NftApply: lambda ctx, op: netfilter.nft_apply(op),
    IpsetRestore: lambda ctx, op: netfilter.ipset_restore(op),
    NfacctAdd: lambda ctx, op: netfilter.nfacct_add(op),
    IpvsRestore: lambda ctx, op: ipvs.ipvs_restore(op),
    LoadModule: lambda ctx, op: ipvs.load_module(op),
    Netem: lambda ctx, op: tc.netem(op),
    **ethtool.HANDLERS, **files.HANDLERS, **ovs.HANDLERS, **vxlan.HANDLERS,
}


def _raise_fd_limit() -> None:
    # One netlink channel (plus its event loop) per namespace: hundreds of descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def up(lab: Lab, plan: Plan, *, on_op: Callable[[Op], None] | None = None) -> None:
    _raise_fd_limit()
    state = StateDir(lab.name)
    lock = state.lock()
    try:
        taken = set(linux.list_netns()) & set(lab.netns_names())
        if taken:
            raise LabStateError(f"namespace {sorted(taken)[0]} already exists (another lab or a "
                                f"leftover); `netlab down` its lab first")
        state.create()
        state.write(lab, phase="building", netns=lab.netns_names())
        op: Op | None = None
        try:
            with Netlink() as nl:
                ctx = Context(state, nl)
                for op in plan.ops:
                    if on_op:
                        on_op(op)
                    HANDLERS[type(op)](ctx, op)
            state.set_phase("up")
        except BaseException as e:
            _teardown(state, lab.netns_names())
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            if isinstance(e, ApplyError):
                raise ApplyError(f"{op}: {e} (nothing was left behind)") from None
            raise ApplyError(f"{op}: {describe(e)} (nothing was left behind)") from e
    finally:
        state.unlock(lock)


def change(old: Lab, new: Lab, steps: list[list[Op]]) -> None:
    """Apply a change to a running lab (e.g. `netlab scale`) without rebuilding it.

    `steps` run in order, and the agent re-reads the lab after each, so new pods serve
    before Services send them traffic and Services stop sending before pods go (what
    readiness and endpoint removal achieve in Kubernetes). While the change runs, the state
    names the namespaces of both versions, so `down` removes everything if it is cut short.
    """
    _raise_fd_limit()
    state = StateDir(old.name)
    lock = state.lock()
    try:
        phase = state.read_record().get("phase")
        if phase != "up":
            raise LabStateError(f"lab '{old.name}' is not up (phase {phase}); `netlab down {old.name}` and up again")
        both = list(dict.fromkeys(old.netns_names() + new.netns_names()))
        state.write(new, phase="changing", netns=both)
        op: Op | None = None
        try:
            with Netlink() as nl:
                ctx = Context(state, nl)
                for step in steps:
                    for op in step:
                        HANDLERS[type(op)](ctx, op)
                    if step:
                        processes.reload(state, "agent")
        except Exception as e:
            state.set_phase("degraded")
            detail = str(e) if isinstance(e, ApplyError) else describe(e)
            raise ApplyError(f"{op}: {detail} (the lab is degraded; `netlab down {old.name}` removes it)") from None
        state.write(new, phase="up", netns=new.netns_names())
    finally:
        state.unlock(lock)


@dataclass
class DownReport:
    lab: str
    netns: int = 0
    processes: int = 0


def down(name: str) -> DownReport:
    state = StateDir(name)
    lock = state.lock()
    try:
        if state.exists():
            try:
                record = state.read_record()
                owned = record["netns"]
            except (LabStateError, ValueError, KeyError):
                owned = _orphans(name)  # crashed before lab.json was complete
        else:
            owned = _orphans(name)
            if not owned:
                raise LabStateError(f"no lab '{name}' is up; labs: {', '.join(list_labs()) or 'none'}")
        return _teardown(state, owned)
    finally:
        state.unlock(lock)


def _orphans(name: str) -> list[str]:
    """Namespaces that carry this lab's name but no other lab's (when lab.json is lost)."""
    prefix = naming.lab_prefix(name)
    others = [naming.lab_prefix(lab) for lab in list_labs() if lab != name]
    return [ns for ns in linux.list_netns()
            if ns.startswith(prefix) and not any(ns.startswith(o) for o in others if len(o) > len(prefix))]


def _teardown(state: StateDir, owned: list[str]) -> DownReport:
    report = DownReport(state.lab)
    pids = state.path / "pids"
    if pids.is_dir():
        for pidfile in sorted(pids.glob("*.pid")):
            report.processes += processes.stop(pidfile)
    for netns in reversed(owned):
        report.netns += linux.remove_netns(netns)
    state.remove()
    return report


def down_all() -> list[DownReport]:
    return [down(name) for name in list_labs()]
