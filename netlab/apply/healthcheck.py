"""The ELBs' health checker: one process per lab that probes every member of every backend
server group with health checks on, and takes failing members out of rotation and back in.

Each member is probed from its ELB's namespace and address (a shared ELB's backend-side
address, a dedicated ELB's private address), every `delay` seconds, each probe allowed
`timeout` seconds: TCP (a connection accepted), HTTP (a GET of `path` answered 2xx or 3xx)
or UDP (a datagram that draws no ICMP port unreachable). The first round decides each
member's initial state; after that, `max_retries` consecutive results against its state
flip it. When a member flips, its ELB is updated at once and atomically: the layer-4
table re-rendered and replaced with `nft -f` (or the member's IPVS weight set to 0 or 1),
the layer-7 nginx configuration rewritten and nginx reloaded (SIGHUP).

Run as `python -m netlab.apply.healthcheck LAB`. It writes `healthcheck.ready` after the
first round, keeps `healthcheck.json` (every member's state, and each transition with its
wall-clock time) up to date, logs transitions, re-reads the lab on SIGHUP and exits on
SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from netlab import linux
from netlab.apply import processes
from netlab.apply.state import StateDir
from netlab.cloud import elb as elb_mod
from netlab.lab.model import ElbInfo, HealthCheckInfo, Lab, MemberInfo, PoolInfo

STATUS_FILE = "healthcheck.json"


@dataclass
class Member:
    elb: str
    pool: str
    member: MemberInfo
    check: HealthCheckInfo
    healthy: bool = True
    streak: int = 0  # consecutive results against the current state
    last: str = ""  # what the last probe saw

    @property
    def key(self) -> str:
        return f"{self.pool} {self.member.key}"


@dataclass
class Checker:
    lab_name: str
    state: StateDir = field(init=False)
    lab: Lab = field(init=False)
    members: dict[tuple[str, str], Member] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    fds: dict[str, int] = field(default_factory=dict)
    reload: bool = False

    def __post_init__(self) -> None:
        self.state = StateDir(self.lab_name)

    # -- the lab ------------------------------------------------------------------------
    def read(self) -> None:
        """(Re-)read the lab; members keep their state across a reload."""
        self.lab = self.state.read()
        old, self.members = self.members, {}
        for elb in self.lab.elbs:
            if elb.name not in self.fds:
                self.fds[elb.name] = linux.open_netns(elb.netns)
            for pool in elb.pools:
                if pool.health is None:
                    continue
                for m in pool.members:
                    key = (elb.name, f"{pool.name} {m.key}")
                    kept = old.get(key)
                    self.members[key] = Member(elb.name, pool.name, m, pool.health,
                                               healthy=kept.healthy if kept else True)

    def down(self, elb: ElbInfo) -> frozenset[str]:
        return frozenset(m.key for (e, _), m in self.members.items() if e == elb.name and not m.healthy)

    # -- probes -------------------------------------------------------------------------
    def _socket(self, elb: ElbInfo, kind: int) -> socket.socket:
        with linux.entered(self.fds[elb.name]):
            sock = socket.socket(socket.AF_INET, kind)
        sock.setblocking(False)
        sock.bind((str(elb.backend_address or elb.ip), 0))
        return sock

    async def probe(self, m: Member) -> tuple[bool, str]:
        elb = self.lab.elb(m.elb)
        target = (str(m.member.address), m.member.port)
        loop = asyncio.get_running_loop()
        try:
            if m.check.protocol == "UDP":
                with self._socket(elb, socket.SOCK_DGRAM) as sock:
                    sock.connect(target)
                    await loop.sock_sendall(sock, b"netlab-healthcheck\n")
                    try:
                        await asyncio.wait_for(loop.sock_recv(sock, 2048), m.check.timeout)
                    except (asyncio.TimeoutError, TimeoutError):
                        return True, "no ICMP error"
                    return True, "answered"
            with self._socket(elb, socket.SOCK_STREAM) as sock:
                await asyncio.wait_for(loop.sock_connect(sock, target), m.check.timeout)
                if m.check.protocol == "TCP":
                    return True, "connected"
                request = (f"GET {m.check.path} HTTP/1.1\r\nHost: {target[0]}\r\nUser-Agent: netlab-healthcheck\r\n"
                           "Connection: close\r\n\r\n").encode()
                await loop.sock_sendall(sock, request)
                head = await asyncio.wait_for(loop.sock_recv(sock, 1024), m.check.timeout)
                status = head.split(b" ", 2)[1:2]
                code = int(status[0]) if status and status[0].isdigit() else 0
                return 200 <= code < 400, f"HTTP {code or 'garbage'}"
        except (asyncio.TimeoutError, TimeoutError):
            return False, f"no answer within {m.check.timeout} s"
        except ConnectionRefusedError:
            return False, "connection refused"
        except OSError as e:
            return False, os.strerror(e.errno) if e.errno else str(e)

    def record(self, m: Member, ok: bool, seen: str, *, first: bool = False) -> bool:
        """Count one result; True if the member changed state (the first result sets it)."""
        m.last = seen
        if not first:
            if ok == m.healthy:
                m.streak = 0
                return False
            m.streak += 1
            if m.streak < m.check.max_retries:
                return False
        changed = m.healthy != ok
        m.healthy, m.streak = ok, 0
        event = {"time": time.time(), "elb": m.elb, "pool": m.pool, "member": m.member.key,
                 "target": m.member.target, "state": "healthy" if ok else "unhealthy", "seen": seen, "initial": first}
        self.events.append(event)
        print(f"{time.strftime('%H:%M:%S')} elb/{m.elb} {m.pool} {m.member.key} ({m.member.target}): {event['state']}"
              f"{' at start' if first else f' after {m.check.max_retries} results'} ({seen})", flush=True)
        return changed

    # -- the ELBs -----------------------------------------------------------------------
    def apply(self, elb: ElbInfo, changed: list[Member]) -> None:
        down = self.down(elb)
        l4 = {ln.pool for ln in elb_mod.l4_listeners(elb)}
        if any(m.pool in l4 for m in changed):
            if elb.datapath == "ipvs":
                text = "".join(elb_mod.ipvs_weight(elb, elb.pool(m.pool), m.member, m.healthy)
                               for m in changed if m.pool in l4)
                processes.run_checked(elb.netns, ["ipvsadm", "-R"], text)
            else:
                processes.run_checked(elb.netns, ["nft", "-f", "-"], elb_mod.ruleset(self.lab, elb, down))
        if any(m.pool not in l4 for m in changed):
            self._reload_nginx(elb, down)

    def _reload_nginx(self, elb: ElbInfo, down: frozenset[str]) -> None:
        """The ELB's layer 7: its nginx configuration with the member's new state, reloaded."""
        from netlab.cloud import ingress  # only labs with Ingress pay for its imports
        from netlab.ingress.nginx import render

        found = ingress.elb_config(self.lab, elb, down)
        if found:
            cfg, _ = found
            conf = f"{cfg.run_dir}/nginx.conf"
            tmp = conf + ".tmp"
            with open(tmp, "w") as f:
                f.write(render(cfg))
            os.replace(tmp, conf)
            pid = processes.pid_of(self.state.pidfile(ingress.nginx_name(elb.ref)))
            if pid is not None:
                os.kill(pid, signal.SIGHUP)

    def write_status(self) -> None:
        out: dict = {"elbs": {}, "events": self.events[-200:]}
        for (elb, _), m in sorted(self.members.items()):
            pools = out["elbs"].setdefault(f"elb/{elb}", {})
            pools.setdefault(m.pool, {})[m.member.key] = {
                "target": m.member.target, "state": "healthy" if m.healthy else "unhealthy", "last": m.last}
        path = self.state.path / STATUS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1) + "\n")
        os.replace(tmp, path)

    async def watch(self, key: tuple[str, str]) -> None:
        """One member, for ever: probe every `delay` seconds; apply a change at once."""
        m = self.members[key]
        while True:
            await asyncio.sleep(m.check.delay)
            ok, seen = await self.probe(m)
            if self.record(m, ok, seen):
                self.apply(self.lab.elb(m.elb), [m])
                self.write_status()

    async def run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: setattr(self, "reload", True))
        self.read()
        # The first round: every member at once, each ELB then applied in one go.
        first = list(self.members.values())
        for m, (ok, seen) in zip(first, await asyncio.gather(*(self.probe(m) for m in first)), strict=True):
            self.record(m, ok, seen, first=True)
        for elb in self.lab.elbs:
            ms = [m for m in first if m.elb == elb.name]
            if ms and self.down(elb):
                self.apply(elb, ms)
        self.write_status()
        (self.state.path / "healthcheck.ready").write_text(f"{os.getpid()}\n")
        print(f"netlab health checker for lab {self.lab_name}: {len(self.members)} members", flush=True)
        while not stop.is_set():
            tasks = [asyncio.ensure_future(self.watch(key)) for key in self.members]
            while not stop.is_set() and not self.reload:
                try:
                    await asyncio.wait_for(stop.wait(), 0.2)
                except (asyncio.TimeoutError, TimeoutError):
                    pass
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.reload:
                self.reload = False
                self.read()
                self.write_status()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m netlab.apply.healthcheck LAB", file=sys.stderr)
        return 2
    asyncio.run(Checker(argv[0]).run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
