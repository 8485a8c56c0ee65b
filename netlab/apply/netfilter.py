"""Netfilter rulesets inside lab namespaces, loaded whole and atomically.

iptables rules go through `iptables-restore --noflush` (one process per ruleset, as
kube-proxy does), nftables through `nft -f -`, ipsets through `ipset restore`; each runs
inside the namespace with `ip netns exec`, the text on stdin (never a shell).
"""

from __future__ import annotations

from netlab.apply.processes import run_checked as run
from netlab.plan.ops import IpsetRestore, IptablesRestore, NfacctAdd, NftApply


def iptables_restore(op: IptablesRestore) -> None:
    rules = op.rules
    if op.prune:
        rules = _with_stale_chains_removed(op.netns, rules, op.prune)
    run(op.netns, ["iptables-restore", "-w"] + (["--noflush"] if op.noflush else []), rules)


def _with_stale_chains_removed(netns: str, rules: str, prefixes: tuple[str, ...]) -> str:
    """Add kube-proxy's stale-chain cleanup to a restore input: every existing chain with an
    owned prefix that the new input does not declare is declared (flushed) and deleted."""
    out, table = [], None
    existing = _chains(run(netns, ["iptables-save"]))
    for line in rules.splitlines():
        if line.startswith("*"):
            table = line[1:]
            declared = {l.split()[0][1:] for l in _table_lines(rules, table) if l.startswith(":")}
            stale = sorted(c for c in existing.get(table, ()) if c.startswith(prefixes) and c not in declared)
        if line == "COMMIT" and table:
            # Declaring flushes; deleting after all rules that jumped there are rewritten.
            out += [f":{c} - [0:0]" for c in stale] + [f"-X {c}" for c in stale]
        out.append(line)
    return "\n".join(out) + "\n"


def _table_lines(rules: str, table: str) -> list[str]:
    lines, inside = [], False
    for line in rules.splitlines():
        if line.startswith("*"):
            inside = line[1:] == table
        elif inside:
            lines.append(line)
    return lines


def _chains(save: str) -> dict[str, set[str]]:
    chains: dict[str, set[str]] = {}
    table = None
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
            chains[table] = set()
        elif line.startswith(":") and table:
            chains[table].add(line.split()[0][1:])
    return chains


def nft_apply(op: NftApply) -> None:
    run(op.netns, ["nft", "-f", "-"], op.rules)


def ipset_restore(op: IpsetRestore) -> None:
    run(op.netns, ["ipset", "restore", "-exist"], op.rules)


def nfacct_add(op: NfacctAdd) -> None:
    for name in op.names:
        run(op.netns, ["nfacct", "add", name])
