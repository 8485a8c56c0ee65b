"""Netfilter rulesets inside lab namespaces, loaded whole and atomically.

iptables rules go through `iptables-restore --noflush` (one process per ruleset, as
kube-proxy does), nftables through `nft -f -`; both run inside the namespace with
`ip netns exec`, the text on stdin (never a shell).
"""

from __future__ import annotations

import subprocess

from netlab.apply import processes
from netlab.errors import ApplyError
from netlab.plan import IptablesRestore, NftApply


def _run(netns: str, argv: list[str], text: str) -> None:
    try:
        done = subprocess.run(processes.in_netns(netns, argv), input=text, text=True,
                              capture_output=True, timeout=60)
    except FileNotFoundError:
        raise ApplyError(f"{argv[0]} is not installed (run `make setup`)") from None
    if done.returncode != 0:
        raise ApplyError(f"{argv[0]} in {netns} failed: {done.stderr.strip() or done.stdout.strip()}")


def iptables_restore(op: IptablesRestore) -> None:
    _run(op.netns, ["iptables-restore", "-w"] + (["--noflush"] if op.noflush else []), op.rules)


def nft_apply(op: NftApply) -> None:
    _run(op.netns, ["nft", "-f", "-"], op.rules)
