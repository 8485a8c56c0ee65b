"""Pidfiles and stopping processes, on real processes this test starts (no root needed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from netlab.apply import processes


def _pidfile(tmp_path, pid: int, started: str | None = None):
    path = tmp_path / "x.pid"
    path.write_text(f"{pid} {processes._start_time(pid) if started is None else started}\n")
    return path


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xff\xfe", b"-1 0", b"0", b"1.5 x", b"99999999999999999999"])
def test_garbage_pidfiles_name_no_process(tmp_path, content):
    path = tmp_path / "x.pid"
    path.write_bytes(content)
    assert processes.pid_of(path) is None
    assert processes.health(path) in ("pidfile unreadable", "exited")
    assert processes.stop(path) is False  # and certainly no kill(-1) or kill(0)


def test_a_zombie_is_dead(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    path = _pidfile(tmp_path, child.pid)
    deadline = time.monotonic() + 10
    while processes.health(path) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert processes.health(path) == "zombie"  # exited, not yet reaped by us
        assert processes.pid_of(path) is None and not processes.is_alive(child.pid)
    finally:
        child.wait()
    assert processes.health(path) == "exited"


def test_a_recycled_pid_is_not_ours(tmp_path):
    path = _pidfile(tmp_path, os.getpid(), started="1")  # right PID, wrong start time
    assert processes.health(path) == "exited" and processes.pid_of(path) is None
    assert processes.pid_of(_pidfile(tmp_path, os.getpid())) == os.getpid()


def test_terminate_is_bounded_and_escalates_to_sigkill(tmp_path):
    # One child exits on SIGTERM, one ignores it: both are gone, within grace + a little.
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
                                 "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(60)"],
                                stdout=subprocess.PIPE)
    stubborn.stdout.readline()  # its SIGTERM handler is in place
    fds = {p.pid: processes.open_checked(p.pid, lambda pid: True) for p in (polite, stubborn)}
    start = time.monotonic()
    assert processes.terminate(fds, grace=0.5, kill_wait=2) == []
    assert 0.5 <= time.monotonic() - start < 2.5  # the stubborn one needed SIGKILL
    for p in (polite, stubborn):
        assert processes._stat(p.pid) is None  # gone, and reaped (they were our children)


def test_stop_verifies_the_start_time(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert processes.stop(_pidfile(tmp_path, child.pid, started="1")) is False
        assert child.poll() is None
        assert processes.stop(_pidfile(tmp_path, child.pid)) is True
        assert processes._stat(child.pid) is None
    finally:
        child.kill()
        child.wait()
