"""What an operation's handler gets: the lab's state directory, the netlink session and the
OVSDB sessions of the run (closed when the run's `with` block ends).

Handler modules (`netlink`, `ovs`, `vxlan`, `ethtool`, `netfilter`, ...) each export a
`HANDLERS` table {op type: handler(ctx, op)}; `executor` merges them. They import this
module, never the executor, so no module of `apply/` imports another one back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.apply.netlink import Netlink
from netlab.apply.ovs import Sessions
from netlab.apply.state import StateDir


@dataclass
class Context:
    state: StateDir
    nl: Netlink
    ovsdb: Sessions = field(default_factory=Sessions)

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc) -> None:
        self.ovsdb.close()
