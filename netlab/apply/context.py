"""What an operation's handler gets: the lab's state directory and the netlink session.

Handler modules (`netlink`, `ovs`, `vxlan`, `ethtool`, `netfilter`, ...) each export a
`HANDLERS` table {op type: handler(ctx, op)}; `executor` merges them. They import this
module, never the executor, so no module of `apply/` imports another one back.
"""

from __future__ import annotations

from dataclasses import dataclass

from netlab.apply.netlink import Netlink
from netlab.apply.state import StateDir


@dataclass
class Context:
    state: StateDir
    nl: Netlink
