"""The agent is not the network: before any probe, prove that the lab's pod agent is alive
and serves every declared port.

The agent (one process per lab, `netlab.probe.agent`) answers for every pod and host. If
it died, every probe would come back refused, and a check expecting `blocked` would pass
for the wrong reason. So `check` first looks at the agent's process (its pidfile, and a
zombie counts as dead), then connects to every declared port from inside the namespace
that declares it (127.0.0.1, so no part of the lab's network is involved) and asks the
agent who it is. Any failure is an error of the lab, reported as such, and nothing is
probed. Listeners stopped on purpose (`netlab listener ... stop`) are not asked.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

from netlab.apply import processes
from netlab.apply.state import StateDir
from netlab.lab.model import Lab
from netlab.probe.listeners import STOPPED_FILE, Listener, key, listeners
from netlab.probe.runner import CONCURRENCY, PROBE_LINE, Namespaces, read_all

SHOWN = 5  # problems listed by name; the rest are counted


def _state(pid: int) -> str | None:
    """The process state letter from /proc (R, S, Z, ...), None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def agent_process(lab: Lab) -> str | None:
    """None if the lab's agent runs; else what is wrong with it."""
    state = StateDir(lab.name)
    pidfile = state.pidfile("agent")
    pid = processes.pid_of(pidfile)
    if pid is None:
        return (f"the pod agent of lab {lab.name} is not running (pidfile {pidfile}); its log: "
                f"{processes.tail(state.logfile('agent'))}")
    if _state(pid) in (None, "Z", "X"):
        return f"the pod agent of lab {lab.name} (pid {pid}) has exited; its log: {processes.tail(state.logfile('agent'))}"
    return None


def problems(lab: Lab, timeout: float = 2.0) -> list[str]:
    """What is wrong with the agent, as lines for people; empty when it serves every port."""
    dead = agent_process(lab)
    if dead:
        return [dead]
    stopped_file = StateDir(lab.name).path / STOPPED_FILE
    stopped = set(stopped_file.read_text().split()) if stopped_file.exists() else set()
    wanted = [lst for lst in listeners(lab) if key(lst) not in stopped]
    failures = asyncio.run(_selftest(wanted, timeout)) if wanted else []
    if not failures:
        return []
    shown = "; ".join(failures[:SHOWN]) + (f"; and {len(failures) - SHOWN} more" if len(failures) > SHOWN else "")
    return [f"the pod agent of lab {lab.name} does not serve {len(failures)} of the {len(wanted)} declared "
            f"ports: {shown}"]


async def _selftest(wanted: list[Listener], timeout: float) -> list[str]:
    spaces = Namespaces()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(lst: Listener) -> str | None:
        async with gate:
            try:
                server = await asyncio.wait_for(_ask(spaces, lst), timeout)
            except TimeoutError:
                return f"{lst.owner} {lst.port}/{lst.proto}: no answer within {timeout:g} s"
            except OSError as e:
                return f"{lst.owner} {lst.port}/{lst.proto}: {e.strerror or e}"
            if server != lst.owner:
                return f"{lst.owner} {lst.port}/{lst.proto}: answered as {server!r}"
            return None

    try:
        return [p for p in await asyncio.gather(*(one(lst) for lst in wanted)) if p]
    finally:
        spaces.close()


async def _ask(spaces: Namespaces, lst: Listener) -> str | None:
    """Who the agent says it is on this port, asked from inside the listener's namespace."""
    loop = asyncio.get_running_loop()
    kind = socket.SOCK_STREAM if lst.proto == "tcp" else socket.SOCK_DGRAM
    with spaces.socket(lst.netns, socket.AF_INET, kind) as sock:
        await loop.sock_connect(sock, ("127.0.0.1", lst.port))
        await loop.sock_sendall(sock, PROBE_LINE)
        data = await (read_all(loop, sock) if kind == socket.SOCK_STREAM else loop.sock_recv(sock, 65535))
    try:
        return json.loads(data.decode().strip().splitlines()[0]).get("server")
    except (ValueError, IndexError):
        return None
