"""Traffic control inside lab namespaces: tc netem on an interface's egress (one `tc` call
per impaired link)."""

from __future__ import annotations

from netlab.apply.processes import run_checked
from netlab.plan.ops import Netem


def netem(op: Netem) -> None:
    if op.args:
        run_checked(op.netns, ["tc", "qdisc", "replace", "dev", op.ifname, "root", "netem", *op.args])
    else:
        run_checked(op.netns, ["tc", "qdisc", "del", "dev", op.ifname, "root"])
