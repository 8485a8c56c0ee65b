"""Open vSwitch on lab nodes: each node's database, bridges and ports, and OpenFlow tables.

Every node runs its own ovsdb-server and ovs-vswitchd (started as `StartProcess` ops, stopped
by PID on `down`); this module creates the database, configures it with one batched
`ovs-vsctl` transaction per node, replaces a bridge's flows atomically with
`ovs-ofctl --bundle replace-flows`, and sends runtime commands with `ovs-appctl`. The OVS
clients only talk to the node's own unix sockets under the lab's state directory (never the
host's Open vSwitch), so they run from here without entering the namespace.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from netlab.errors import ApplyError
from netlab.plan.ops import OvsAppctl, OvsCreateDb, OvsFlows, OvsVsctl

TIMEOUT = 60


def run(argv: list[str], *, stdin: str | None = None, what: str | None = None) -> str:
    try:
        done = subprocess.run(argv, input=stdin, text=True, capture_output=True, timeout=TIMEOUT)
    except FileNotFoundError:
        raise ApplyError(f"{argv[0]} is not installed (Debian package openvswitch-switch)") from None
    except subprocess.TimeoutExpired:
        raise ApplyError(f"{what or argv[0]}: no answer within {TIMEOUT} s") from None
    if done.returncode != 0:
        raise ApplyError(f"{what or argv[0]} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def create_db(op: OvsCreateDb) -> None:
    db = Path(op.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    run(["ovsdb-tool", "create", str(db), op.schema])


def vsctl(op: OvsVsctl) -> None:
    run(op.argv())


def flows(op: OvsFlows) -> None:
    run(["ovs-ofctl", "--bundle", "replace-flows", f"unix:{op.target}", "-"],
        stdin="\n".join(op.flows) + "\n")


def appctl(op: OvsAppctl) -> None:
    run(["ovs-appctl", "-t", op.target, *op.args])


HANDLERS = {OvsCreateDb: lambda ctx, op: create_db(op), OvsVsctl: lambda ctx, op: vsctl(op),
            OvsFlows: lambda ctx, op: flows(op), OvsAppctl: lambda ctx, op: appctl(op)}
