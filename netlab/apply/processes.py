"""Processes a lab runs (the pod agent, per-node OVS daemons, nginx, the ELBs' health
checker) and commands run inside lab namespaces.

A process is started with `ip netns exec` (which execs in place, so the PID is the
program's), detached into its own session, with its PID and start time in a pidfile.
It is forked by a thread that has already entered the namespace, so it belongs to the lab's
namespace from its first instant: if `up` dies before the pidfile is written, `down` still
finds it there (`netlab.apply.remains`). Short-lived tools are started the same way.

A process is signalled through a pidfd opened after its identity was checked (start time
from the pidfile, or the namespace it was found in), so a recycled PID is never signalled.
A zombie counts as dead. Every wait is bounded, also after SIGKILL (a process stuck in
the kernel is reported, not waited for).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from netlab import linux
from netlab.apply.state import StateDir
from netlab.errors import ApplyError, UserError
from netlab.plan.ops import ReloadProcess, StartProcess

# Programs of netlab itself, run with the interpreter netlab runs under.
PROGRAMS = {"netlab-agent": [sys.executable, "-m", "netlab.probe.agent"],
            "netlab-healthcheck": [sys.executable, "-m", "netlab.apply.healthcheck"]}
TOOL_TIMEOUT = 120.0


def expand(argv: Sequence[str]) -> list[str]:
    return PROGRAMS.get(argv[0], [argv[0]]) + list(argv[1:])


def in_netns(netns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


# -- /proc --------------------------------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    """Fields 3… of /proc/PID/stat (state first), or None if there is no such process."""
    if pid <= 0:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (field 2) may hold spaces; fields after the last ')' are fixed.
    return stat.rsplit(")", 1)[1].split()


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields else None


def is_alive(pid: int) -> bool:
    """A process exists and has not exited (a zombie has: it only waits to be reaped)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X", "x")


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


# -- pidfiles ------------------------------------------------------------------------------------
def _read_pidfile(pidfile: Path) -> tuple[int, str] | None:
    try:
        pid_text, _, started = pidfile.read_bytes().decode("ascii").strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):  # missing, unreadable, or garbage
        return None
    return (pid, started) if pid > 0 else None


def _write_pidfile(pidfile: Path, pid: int) -> None:
    tmp = pidfile.with_name(pidfile.name + ".tmp")
    tmp.write_text(f"{pid} {_start_time(pid) or ''}\n")
    os.replace(tmp, pidfile)


def health(pidfile: Path) -> str | None:
    """None if the pidfile's process runs; otherwise why not ("exited", "zombie", …)."""
    entry = _read_pidfile(pidfile)
    if entry is None:
        return "no pidfile" if not pidfile.exists() else "pidfile unreadable"
    pid, started = entry
    fields = _stat(pid)
    if fields is None or (started and fields[19] != started):
        return "exited"
    if fields[0] in ("Z", "X", "x"):
        return "zombie"
    return None


def pid_of(pidfile: Path) -> int | None:
    """The PID in a pidfile if that process is still the one we started and still running."""
    entry = _read_pidfile(pidfile)
    return entry[0] if entry and health(pidfile) is None else None


# -- starting ------------------------------------------------------------------------------------
def _spawn(netns: str, argv: list[str], **kwargs) -> subprocess.Popen:
    """Popen from inside `netns`: the child is in the lab's namespace from fork on."""
    try:
        with linux.entered(netns):
            return subprocess.Popen(argv, **kwargs)
    except FileNotFoundError as e:
        if e.filename == argv[0]:
            raise ApplyError(f"{argv[0]} is not installed (run `make setup`)") from None
        raise ApplyError(f"namespace {netns} does not exist") from None
    except OSError as e:
        raise ApplyError(f"cannot start {argv[0]} in {netns}: {e}") from None


def start(state: StateDir, op: StartProcess, *, timeout: float | None = None) -> int:
    with open(state.logfile(op.name), "ab") as log:
        proc = _spawn(op.netns, in_netns(op.netns, expand(op.argv)), stdin=subprocess.DEVNULL,
                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd="/")
    _write_pidfile(state.pidfile(op.name), proc.pid)
    if op.ready_file:
        ready = state.path / op.ready_file
        timeout = timeout or op.ready_timeout
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


# -- stopping ------------------------------------------------------------------------------------
def open_checked(pid: int, is_ours: Callable[[int], bool]) -> int | None:
    """A pidfd for `pid` if, once the fd pins the process, `is_ours(pid)` still holds."""
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone
        return None
    if not is_ours(pid):
        os.close(fd)
        return None
    return fd


def terminate(pidfds: dict[int, int], *, grace: float = 3.0, kill_wait: float = 2.0) -> list[int]:
    """SIGTERM every process, SIGKILL those still running after `grace` seconds; closes the
    fds. Returns the PIDs that had not exited `kill_wait` seconds after SIGKILL."""
    left = dict(pidfds)
    try:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
            for fd in left.values():
                try:
                    signal.pidfd_send_signal(fd, sig)
                except ProcessLookupError:
                    pass
            left = _wait_exit(left, wait)
            if not left:
                break
        return sorted(left)
    finally:
        for fd in pidfds.values():
            os.close(fd)


def _wait_exit(pidfds: dict[int, int], timeout: float) -> dict[int, int]:
    # A pidfd becomes readable when its process exits (zombies included).
    left = dict(pidfds)
    poller = select.poll()
    by_fd = {fd: pid for pid, fd in left.items()}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while left and (remaining := deadline - time.monotonic()) > 0:
        for fd, _ in poller.poll(remaining * 1000):
            poller.unregister(fd)
            pid = by_fd[fd]
            left.pop(pid, None)
            _reap(pid)
    return left


def _reap(pid: int) -> None:
    # A process this very process started (a failed `up` cleaning up) is ours to reap.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(pidfile: Path, *, grace: float = 3.0) -> bool:
    """Stop the process of a pidfile (SIGTERM, then SIGKILL); True if one was running."""
    entry = _read_pidfile(pidfile)
    if entry is None or pid_of(pidfile) is None:
        return False
    pid, started = entry
    fd = open_checked(pid, lambda p: not started or _start_time(p) == started)
    if fd is None:
        return False
    stuck = terminate({pid: fd}, grace=grace)
    if stuck:
        raise ApplyError(f"process {pid} ({pidfile.stem}) did not exit after SIGKILL")
    return True


# -- commands ------------------------------------------------------------------------------------
def run_checked(netns: str, argv: Sequence[str], text: str | None = None, *,
                timeout: float = TOOL_TIMEOUT) -> str:
    """Run a tool inside a lab namespace (input on stdin); its stdout, or ApplyError."""
    proc = _spawn(netns, in_netns(netns, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(text, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise ApplyError(f"{' '.join(argv)} in {netns}: no answer within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise ApplyError(f"{' '.join(argv)} in {netns} failed: {err.strip() or out.strip()}")
    return out


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
    """Run a user's command inside a lab namespace, attached to this terminal, for as long
    as the user's command runs (the one subprocess netlab does not time out)."""
    try:
        return subprocess.call(in_netns(netns, argv))
    except FileNotFoundError:
        raise UserError("`ip` (iproute2) is not installed") from None


def reload(state: StateDir, name: str, *, ready_file: str = "agent.ready", timeout: float = 10.0) -> None:
    """SIGHUP a process that rewrites its ready file once it has re-read the lab."""
    ready = state.path / ready_file
    before = ready.read_text() if ready.exists() else ""
    pidfile = state.pidfile(name)
    entry = _read_pidfile(pidfile)
    fd = open_checked(entry[0], lambda p: pid_of(pidfile) == p) if entry else None
    if fd is None:
        raise ApplyError(f"{name} is not running (see {state.logfile(name)})")
    try:
        signal.pidfd_send_signal(fd, signal.SIGHUP)
    finally:
        os.close(fd)
    deadline = time.monotonic() + timeout
    while (ready.read_text() if ready.exists() else "") == before:
        if time.monotonic() > deadline or pid_of(pidfile) is None:
            raise ApplyError(f"{name} did not reload: {tail(state.logfile(name))}")
        time.sleep(0.01)


def children(pid: int) -> set[int]:
    """The live child processes of `pid` (its threads' children)."""
    out: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            out |= {int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()}
        except (OSError, ValueError):
            continue
    return {c for c in out if is_alive(c)}


def reload_process(state: StateDir, op: ReloadProcess, *, timeout: float = 10.0) -> None:
    """SIGHUP a lab process so that it re-reads its configuration; with `wait="workers"`
    (nginx), return once every worker of the old configuration has exited and new ones run:
    a connection made afterwards meets the new configuration."""
    pidfile = state.pidfile(op.name)
    entry = _read_pidfile(pidfile)
    fd = open_checked(entry[0], lambda p: pid_of(pidfile) == p) if entry else None
    if fd is None:
        raise ApplyError(f"{op.name} is not running (see {state.logfile(op.name)})")
    pid = entry[0]
    old = children(pid) if op.wait == "workers" else set()
    try:
        signal.pidfd_send_signal(fd, signal.SIGHUP)
    finally:
        os.close(fd)
    if op.wait != "workers":
        return
    deadline = time.monotonic() + timeout
    while True:
        now = children(pid)
        if now and not now & old:
            return
        if time.monotonic() > deadline or pid_of(pidfile) is None:
            raise ApplyError(f"{op.name} did not take its new configuration: {tail(state.logfile(op.name))}")
        time.sleep(0.02)
