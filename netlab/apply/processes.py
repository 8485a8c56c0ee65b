"""Processes a lab runs (the pod agent, per-node OVS daemons, nginx) and commands run inside
lab namespaces.

A process is started inside its namespace with `ip netns exec` (which execs in place, so
the PID is the program's), detached into its own session, with its PID and start time in a
pidfile. It is stopped by that PID only, after checking the start time still matches, so a
recycled PID is never signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from netlab.apply.state import StateDir
from netlab.errors import ApplyError, UserError
from netlab.plan.ops import StartProcess

# Programs of netlab itself, run with the interpreter netlab runs under.
PROGRAMS = {"netlab-agent": [sys.executable, "-m", "netlab.probe.agent"]}


def expand(argv: Sequence[str]) -> list[str]:
    return PROGRAMS.get(argv[0], [argv[0]]) + list(argv[1:])


def in_netns(netns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces; fields after the last ')' are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


def start(state: StateDir, op: StartProcess, *, timeout: float = 60.0) -> int:
    argv = in_netns(op.netns, expand(op.argv))
    log = open(state.logfile(op.name), "ab")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd="/")
    except OSError as e:
        raise ApplyError(f"cannot start {op.name}: {e}") from None
    finally:
        log.close()
    state.pidfile(op.name).write_text(f"{proc.pid} {_start_time(proc.pid) or ''}\n")
    if op.ready_file:
        ready = state.path / op.ready_file
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if proc.poll() is not None:
                raise ApplyError(f"{op.name} exited with status {proc.returncode}: {tail(state.logfile(op.name))}")
            if time.monotonic() > deadline:
                raise ApplyError(f"{op.name} not ready after {timeout:.0f} s: {tail(state.logfile(op.name))}")
            time.sleep(0.01)
    return proc.pid


def tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:]) or "(no output)"
    except FileNotFoundError:
        return "(no log)"


def pid_of(pidfile: Path) -> int | None:
    """The PID in a pidfile if that process is still the one we started."""
    try:
        pid_text, _, started = pidfile.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (FileNotFoundError, ValueError):
        return None
    now = _start_time(pid)
    if now is None or (started and now != started):
        return None
    return pid


def stop(pidfile: Path, *, grace: float = 3.0) -> bool:
    """Stop the process of a pidfile (SIGTERM, then SIGKILL); True if one was running."""
    pid = pid_of(pidfile)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.01)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    while not _gone(pid):
        time.sleep(0.01)
    return True


def _gone(pid: int) -> bool:
    # Reap it if it is our child (started by this very process); otherwise look at /proc.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return True
    except ChildProcessError:
        pass
    stat = _start_time(pid)
    if stat is None:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def run_checked(netns: str, argv: Sequence[str], text: str | None = None) -> str:
    """Run a tool inside a lab namespace (input on stdin); its stdout, or ApplyError."""
    try:
        done = subprocess.run(in_netns(netns, argv), input=text, text=True, capture_output=True, timeout=120)
    except FileNotFoundError:
        raise ApplyError(f"{argv[0]} is not installed (run `make setup`)") from None
    if done.returncode != 0:
        raise ApplyError(f"{' '.join(argv)} in {netns} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def run_host(argv: Sequence[str], *, timeout: float = 30) -> str:
    """Run a read-only client from the host side (an OVS client talking to a node's own
    unix socket); its stdout, or ApplyError."""
    try:
        done = subprocess.run(list(argv), text=True, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise ApplyError(f"{argv[0]} is not installed (run `make setup`)") from None
    except subprocess.TimeoutExpired:
        raise ApplyError(f"{' '.join(argv)}: no answer within {timeout:g} s") from None
    if done.returncode != 0:
        raise ApplyError(f"{' '.join(argv)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def run_in(netns: str, argv: Sequence[str]) -> int:
    """Run a user's command inside a lab namespace, attached to this terminal."""
    try:
        return subprocess.call(in_netns(netns, argv))
    except FileNotFoundError:
        raise UserError("`ip` (iproute2) is not installed") from None


def reload(state: StateDir, name: str, *, ready_file: str = "agent.ready", timeout: float = 10.0) -> None:
    """SIGHUP a process that rewrites its ready file once it has re-read the lab."""
    ready = state.path / ready_file
    before = ready.read_text() if ready.exists() else ""
    pid = pid_of(state.pidfile(name))
    if pid is None:
        raise ApplyError(f"{name} is not running (see {state.logfile(name)})")
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while (ready.read_text() if ready.exists() else "") == before:
        if time.monotonic() > deadline or pid_of(state.pidfile(name)) is None:
            raise ApplyError(f"{name} did not reload: {tail(state.logfile(name))}")
        time.sleep(0.01)
