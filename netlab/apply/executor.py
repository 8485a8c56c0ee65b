"""Apply a plan to the kernel, and take a lab down again.

`up` takes the lab's lock, refuses if the lab or any namespace it would create already
exists, records the lab (and every namespace it will own) in its state directory before the
first operation, then runs the operations in order. It remembers what *this run* created
(the namespaces it added; the processes it started are in its own, fresh state directory
and in those namespaces), and if an operation fails or the user interrupts, removes exactly
that before reporting the error, never a namespace it did not add.

`down` works from what the kernel holds (`netlab.apply.remains`): the lab's namespaces by
their unambiguous prefix, the processes in them, plus whatever the state directory still
records. So it fully undoes a lab whose `up` was killed half-way, or whose state directory
was lost or damaged. Order: processes (pidfiles, then strays), namespaces, state directory.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass

from netlab import linux
from netlab.apply import ethtool, files, ipvs, netfilter, ovs, processes, remains, tc, vxlan
from netlab.apply.context import Context
from netlab.apply.netlink import Netlink, describe
from netlab.apply.state import StateDir, list_labs
from netlab.errors import ApplyError, LabStateError, NetlabError
from netlab.lab.model import Lab
from netlab.plan.ops import (AddAddress, AddLink, AddNetns, AddRoute, AddRule, AddVeth, DelLink, DelNetns,
                             IpsetRestore, IptablesRestore, IpvsRestore, LoadModule, MoveLink, Netem, NfacctAdd,
                             NftApply, Op, Plan, SetBridgePort, SetLink, StartProcess, Sysctl)
from netlab.probe import listeners

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
    DelLink: lambda ctx, op: ctx.nl.del_link(op),
    SetBridgePort: lambda ctx, op: ctx.nl.set_bridge_port(op),
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
    with state.locked():
        if state.exists():
            raise LabStateError(f"lab '{lab.name}' is already up (state in {state.path}); "
                                f"run `netlab down {lab.name}` first")
        taken = set(linux.list_netns()) & set(lab.netns_names())
        if taken:
            raise LabStateError(f"namespace {sorted(taken)[0]} already exists (a leftover of lab "
                                f"'{lab.name}'?); `netlab down {lab.name}` removes it")
        state.create()
        created: list[str] = []
        op: Op | None = None
        try:
            state.write(lab, phase="building", netns=lab.netns_names())
            with Netlink() as nl, Context(state, nl) as ctx:
                for op in plan.ops:
                    if on_op:
                        on_op(op)
                    HANDLERS[type(op)](ctx, op)
                    if isinstance(op, AddNetns):
                        created.append(op.netns)
            state.set_phase("up")
        except BaseException as e:
            _teardown(state, created)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            if isinstance(e, ApplyError):
                raise ApplyError(f"{op}: {e} (nothing was left behind)") from None
            raise ApplyError(f"{op}: {describe(e)} (nothing was left behind)") from e


def change(old: Lab, new: Lab, steps: list[list[Op]]) -> None:
    """Apply a change to a running lab (e.g. `netlab scale`) without rebuilding it.

    `steps` run in order, and the agent re-reads the lab after each, so new pods serve
    before Services send them traffic and Services stop sending before pods go (what
    readiness and endpoint removal achieve in Kubernetes). While the change runs, the state
    names the namespaces of both versions, so `down` removes everything if it is cut short.
    """
    _raise_fd_limit()
    state = StateDir(old.name)
    with state.locked():
        phase = state.read_record().get("phase")
        if phase != "up":
            raise LabStateError(f"lab '{old.name}' is not up (phase {phase}); `netlab down {old.name}` and up again")
        both = list(dict.fromkeys(old.netns_names() + new.netns_names()))
        state.write(new, phase="changing", netns=both)
        # What the agent serves once it re-reads (netlab.probe.listeners).
        files.write_text(state.path / listeners.AGENT_FILE, listeners.table(new))
        op: Op | None = None
        try:
            with Netlink() as nl, Context(state, nl) as ctx:
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


@dataclass
class DownReport:
    lab: str
    netns: int = 0
    processes: int = 0


def down(name: str) -> DownReport:
    state = StateDir(name)
    with state.locked():
        found = remains.find(name, state.recorded_netns())
        if not state.exists() and not found:
            raise LabStateError(f"no lab '{name}' is up; labs: {', '.join(list_labs()) or 'none'}")
        return _teardown(state, found.netns)


def _teardown(state: StateDir, netns: list[str]) -> DownReport:
    """Stop the lab's processes, remove `netns` (last created first), then the state."""
    report = DownReport(state.lab)
    stopped = remains.stop(state, netns)
    report.processes = stopped.count
    for ns in reversed(netns):
        report.netns += linux.remove_netns(ns)
    state.remove()
    if stopped.stuck:
        raise ApplyError(f"lab '{state.lab}': processes {', '.join(map(str, stopped.stuck))} did not exit "
                         f"after SIGKILL (stuck in the kernel?); everything else was removed")
    return report


def down_all() -> list[DownReport]:
    """`down` for every lab the kernel or the state root knows, also those whose state is
    lost; the first failure is raised after every other lab was taken down."""
    reports, failed = [], []
    for name in remains.every_lab():
        try:
            reports.append(down(name))
        except NetlabError as e:
            failed.append(e)
    if failed:
        raise type(failed[0])(f"{failed[0]} ({len(reports)} other labs taken down)")
    return reports
