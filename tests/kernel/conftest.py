"""Fixtures for kernel-tier tests that build their own namespaces (no lab engine needed)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

NS_PREFIX = "nl-kt-"


class NetnsKit:
    """Throwaway namespaces named ``nl-kt-<pid>-<name>`` and processes inside them.

    Everything runs through argv lists (iproute2 ``ip -n``/``ip netns exec``), never a
    shell. `cleanup` kills the processes it started by PID, then deletes its namespaces
    (which destroys the links inside them). The root network namespace is never touched:
    veth pairs are created inside a test namespace with the peer put straight into another.
    """

    def __init__(self) -> None:
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.pids: list[int] = []        # daemons that detached (pidfiles)
        self.tag = str(os.getpid())

    # -- namespaces and links -------------------------------------------------------------
    def ns(self, name: str) -> str:
        full = f"{NS_PREFIX}{self.tag}-{name}"
        run(["ip", "netns", "add", full])
        self.namespaces.append(full)
        self.ip(full, "link", "set", "lo", "up")
        return full

    def ip(self, ns: str, *args: str) -> str:
        return run(["ip", "-n", ns, *args]).stdout

    def exec(self, ns: str, *argv: str, check: bool = True, timeout: float = 120,
             env: dict | None = None) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", ns, *argv], check=check, timeout=timeout, env=env)

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        """A veth pair created inside `ns_a` with its peer moved straight into `ns_b`."""
        self.ip(ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b,
                "netns", ns_b)
        self.ip(ns_a, "link", "set", if_a, "up")
        self.ip(ns_b, "link", "set", if_b, "up")

    def addr(self, ns: str, ifname: str, cidr: str) -> None:
        self.ip(ns, "addr", "add", cidr, "dev", ifname)
        self.ip(ns, "link", "set", ifname, "up")

    def sysctl(self, ns: str, key: str, value: str) -> None:
        self.exec(ns, "sysctl", "-q", "-w", f"{key}={value}")

    # -- processes -------------------------------------------------------------------------
    def spawn(self, ns: str, argv: list[str], ready: str | None = None,
              timeout: float = 60, env: dict | None = None) -> subprocess.Popen:
        """Start argv inside `ns`; if `ready`, wait until a stdout line contains it."""
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        self.procs.append(proc)
        if ready is not None:
            deadline = time.monotonic() + timeout
            assert proc.stdout is not None
            seen = []
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                seen.append(line)
                if ready in line:
                    return proc
            raise AssertionError(f"{argv[0]} in {ns} not ready: {''.join(seen)!r}")
        return proc

    def adopt_pidfile(self, path: str | Path, timeout: float = 30) -> int:
        """Track a daemon that detached, by the PID in its pidfile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid = int(Path(path).read_text().split()[0])
                self.pids.append(pid)
                return pid
            except (OSError, ValueError, IndexError):
                time.sleep(0.1)
        raise AssertionError(f"no pid in {path}")

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for pid in self.pids:
            _kill_pid(pid)
        self.pids.clear()   # never signal a PID twice: it may belong to someone else by then
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            if proc.stdout:
                proc.stdout.close()
        self.procs.clear()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self.namespaces.clear()


def _kill_pid(pid: int, timeout: float = 10) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(argv: list[str], check: bool = True, timeout: float = 120,
        env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n"
                             f"{proc.stdout}{proc.stderr}")
    return proc


_RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


def ping(kit: NetnsKit, ns: str, dst: str, count: int = 3,
         interval: str = "0.2") -> tuple[float, float]:
    """Ping from `ns`; assert no loss; return (min, avg) RTT in ms."""
    out = kit.exec(ns, "ping", "-n", "-q", "-c", str(count), "-i", interval, "-W", "5",
                   dst).stdout
    assert f"{count} received" in out, out
    m = _RTT.search(out)
    assert m, out
    return float(m.group(1)), float(m.group(2))


@pytest.fixture
def nskit():
    if os.geteuid() != 0:
        pytest.fail("kernel-tier tests need root (they run as root inside the VM)")
    kit = NetnsKit()
    try:
        yield kit
    finally:
        kit.cleanup()


@pytest.fixture
def python_exe() -> str:
    return sys.executable
