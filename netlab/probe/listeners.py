"""What the pod agent serves: one listener per declared port of every pod, VPC host and
public host (pure).

The planner writes the table to the lab's run directory (`agent.json`) before it starts the
agent, and every change to a running lab (`netlab scale`, ...) rewrites it before the agent
re-reads it; so the agent needs neither the lab model nor pydantic, and starts in a blink
even where every import is slow (the kernel tier's emulated VM).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netlab.lab.model import Lab

AGENT_FILE = "agent.json"  # the listener table, in the lab's run directory
STOPPED_FILE = "agent.stopped"  # listeners stopped by `netlab listener`, one "OWNER:PORT/PROTO" a line


@dataclass(frozen=True)
class Listener:
    owner: str  # "ecs-1" or "c1/web-1"
    kind: str
    netns: str
    port: int
    proto: str  # "tcp" | "udp"


def listeners(lab: Lab) -> list[Listener]:
    out = [Listener(h.name, "host", h.netns, p.port, p.protocol.lower()) for h in lab.hosts for p in h.ports]
    out += [Listener(h.ref, "host", h.netns, p.port, p.protocol.lower()) for h in lab.public_hosts() for p in h.ports]
    for c in lab.clusters:
        out += [Listener(f"{c.name}/{pod.name}", "pod", pod.netns, p.port, p.protocol.lower())
                for pod in c.pods for p in pod.ports]
    return [li for li in out if lab.is_local(li.netns)]   # a split lab: this machine's part


def key(listener: Listener) -> str:
    return f"{listener.owner}:{listener.port}/{listener.proto}"


def table(lab: Lab) -> str:
    """The agent's configuration: the lab's listeners as JSON."""
    return json.dumps({"lab": lab.name, "listeners": [asdict(li) for li in listeners(lab)]}, indent=1) + "\n"


def read_table(text: str) -> list[Listener]:
    return [Listener(**li) for li in json.loads(text)["listeners"]]
