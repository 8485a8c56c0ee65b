"""Shared helpers for tests: load scenarios from text, run the CLI."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from netlab.lab.resolve import resolve
from netlab.scenario import loader

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "netlab" / "scenarios"
# Inside the kernel tier's VM (tests/tiers.py) every interpreter start costs tens of seconds
# under emulation: there the CLI runs in this process instead (same code path: `netlab.cli.run`).
IN_KERNEL_TIER_VM = os.environ.get("NETLAB_KERNEL_TIER_GUEST") == "1"


def load_text(text: str, file: str = "test.yaml", features=frozenset()):
    scenario, source = loader.load_text(textwrap.dedent(text), file)
    return resolve(scenario, source, features)


def netlab(*args: str, user: int | None = None, timeout: float = 120, check: bool = False,
           input: str | None = None) -> subprocess.CompletedProcess:
    """Run the netlab CLI in a subprocess (the way users do); in the kernel tier's VM, in
    this process."""
    if IN_KERNEL_TIER_VM and user is None and input is None:
        return netlab_in_process(*args, check=check)
    return subprocess.run([sys.executable, "-m", "netlab", *args], capture_output=True, text=True,
                          timeout=timeout, user=user, check=check, input=input, cwd=REPO)


def netlab_in_process(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    """The CLI's `run()` in this process, its output captured both as Python's sys.stdout and
    sys.stderr and at the file descriptors (so the children a command runs, as `exec` does,
    are captured too), as a finished process would report it."""
    import tempfile

    from netlab.cli import run

    saved, code = [], 1
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, f in ((1, out), (2, err)):
            saved.append(os.dup(fd))
            os.dup2(f.fileno(), fd)
        cwd = os.getcwd()
        os.chdir(REPO)
        try:
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = run(list(args))
            except SystemExit as e:  # commands that exit with their own code (check, exec)
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            os.chdir(cwd)
            out.flush()
            err.flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(["netlab", *args], code, out.read(), err.read())
    if check:
        done.check_returncode()
    return done


def build_by_script(scenario: str | Path, name: str, tmp_path: Path, timeout: float = 300):
    """What a class does with `netlab plan --script`: save the script and run it with bash.
    The finished bash run (the caller asserts on it and takes the lab down)."""
    done = netlab("plan", str(scenario), "--script", "--name", name)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "build.sh"
    path.write_text(done.stdout)
    return subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHON": sys.executable})
