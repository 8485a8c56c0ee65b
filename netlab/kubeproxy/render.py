"""One entry point per task: render a mode, describe a result, trace a packet.

The lab and the CLI call these; each delegates to the mode's module.
"""

from __future__ import annotations

from netlab.errors import UserError
from netlab.kubeproxy.iptables import IPTablesRuleset, render_iptables
from netlab.kubeproxy.iptdump import sort_iptables_rules
from netlab.kubeproxy.ipvs import IPVSRuleset, render_ipvs
from netlab.kubeproxy.model import NodeEnv
from netlab.kubeproxy.nftables import NFTablesRuleset, render_nftables
from netlab.kubeproxy.trace import TraceResult, trace_iptables, trace_nftables

MODES = ("iptables", "nftables", "ipvs")
_RENDERERS = {"iptables": render_iptables, "nftables": render_nftables, "ipvs": render_ipvs}

Ruleset = IPTablesRuleset | NFTablesRuleset | IPVSRuleset


def render(mode: str, services, slices, env: NodeEnv) -> Ruleset:
    """``IPTablesRuleset``, ``NFTablesRuleset`` or ``IPVSRuleset`` for ``mode``."""
    try:
        renderer = _RENDERERS[mode]
    except KeyError:
        raise UserError(f"unknown proxy mode {mode!r}; valid: {', '.join(MODES)}") from None
    return renderer(services, slices, env)


def trace(ruleset: Ruleset, src: str, dst: str, dport: int, proto: str = "tcp",
          local_ips=()) -> TraceResult:
    """``tracePacket`` for an iptables or nftables ruleset."""
    if isinstance(ruleset, IPTablesRuleset):
        return trace_iptables(ruleset.restore_input(), src, proto, dst, dport, local_ips)
    if isinstance(ruleset, NFTablesRuleset):
        return trace_nftables(ruleset.dump(), src, proto, dst, dport, local_ips)
    raise UserError("trace supports the iptables and nftables modes (kube-proxy has no "
                    "packet tracer for IPVS; use render --mode ipvs to see its tables)")


# --- text for people -------------------------------------------------------------------

def iptables_text(rs: IPTablesRuleset, sorted_: bool = False, jumps: bool = True) -> str:
    body = sort_iptables_rules(rs.restore_input()) if sorted_ else rs.restore_input()
    if not jumps:
        return body
    head = ["# kube-proxy creates the target chains (iptables -N) and inserts these jumps",
            "# with `iptables -t TABLE -I CHAIN ...` before loading the restore input below",
            "# (iptables-restore --noflush --counters):"]
    head += [f"#   iptables -t {j.table} -I {j.chain} " + " ".join(_q(a) for a in j.args)
             for j in rs.jumps]
    if rs.nfacct_counters:
        head.append("# nfacct counters it creates first: " + ", ".join(rs.nfacct_counters))
    for key, value in rs.sysctls.items():
        head.append(f"# sysctl it sets: {key}={value}")
    return "\n".join(head) + "\n" + body


def nftables_text(rs: NFTablesRuleset, sorted_: bool = False) -> str:
    if sorted_:
        return rs.sorted_dump() + "\n"
    return rs.transaction()


def ipvs_text(rs: IPVSRuleset) -> str:
    out = ["# IPVS virtual servers (as `ipvsadm -Ln` lists them; NAT forwarding)"]
    for vs in rs.virtual_servers:
        extra = f" persistent {vs.timeout}" if vs.persistent else ""
        out.append(f"{vs.protocol:<5}{vs.endpoint} {vs.scheduler}{extra}   # {vs.kind} {vs.service}")
        out += [f"  -> {r.endpoint:<22} Masq    {r.weight}" for r in vs.real_servers]
    out.append(f"\n# addresses on the dummy device {rs.dummy_device} (kept down)")
    out += rs.dummy_addresses() or ["(none)"]
    out.append("\n# ipset restore input (`ipset restore -exist`)")
    out.append(rs.ipset_restore_input().rstrip("\n"))
    out.append("\n# iptables-restore input (`iptables-restore --noflush --counters`)")
    out.append(rs.iptables_restore_input().rstrip("\n"))
    out.append("\n# built-in chain jumps (kube-proxy runs `iptables -t TABLE -I CHAIN ...`)")
    out += [f"iptables -t {j.table} -I {j.chain} " + " ".join(_q(a) for a in j.args)
            for j in rs.jumps]
    out.append("\n# sysctls and kernel modules it needs")
    out += [f"{k}={v}" for k, v in rs.sysctls.items()]
    out.append("modules: " + " ".join(rs.kernel_modules))
    return "\n".join(out) + "\n"


def _q(word: str) -> str:
    return f'"{word}"' if " " in word else word
