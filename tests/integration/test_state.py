"""Names that cannot be misused, state that cannot be lost (root, real namespaces and
daemons): bad lab names touch nothing, `up` killed at any moment is undone by `down`,
labs whose old names collided live side by side, a lab whose state directory was deleted
is found and removed, two `up` of one lab never both win, damaged state is one line, a
zombie daemon is reported.

What the tests count as "left behind" is found independently of netlab's own code: every
namespace whose name carries the lab's prefix, every process whose network namespace
(device and inode of /proc/PID/ns/net) is one the lab had, and every process whose command
line names a path in the lab's state directory.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, SCENARIOS

RUN = Path("/run/netlab")
TUNNEL = SCENARIOS / "tunnel-basic.yaml"
VPC = SCENARIOS / "vpc-basic.yaml"


def netlab(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netlab", *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=timeout)


# -- what a lab left behind, seen from the kernel ------------------------------------------------
def lab_netns(lab: str) -> dict[str, tuple[int, int]]:
    out = {}
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
        if name.startswith(f"nl-{lab}."):
            st = os.stat(f"/run/netns/{name}")
            out[name] = (st.st_dev, st.st_ino)
    return out


class Pinned:
    """The lab's namespaces held open: after `down` unmounts them they live on (so their inode
    numbers cannot be reused by someone else's new namespace) while the test looks for
    processes still inside them."""

    def __init__(self, lab: str):
        self.fds = [os.open(f"/run/netns/{name}", os.O_RDONLY) for name in lab_netns(lab)]
        self.ids = {(st.st_dev, st.st_ino) for st in map(os.fstat, self.fds)}

    def __len__(self) -> int:
        return len(self.fds)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def processes_of(lab: str, netns_ids, root: Path = RUN) -> list[str]:
    """Processes in one of `netns_ids`, or naming a path in the lab's state directory."""
    ids, marker = set(netns_ids), f"{root}/{lab}"
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in ids or any(a.endswith(marker) or f"{marker}/" in a for a in argv):
            found.append(f"{pid}: {' '.join(argv)}")
    return found


def assert_nothing_left(lab: str, pinned: Pinned | None = None, root: Path = RUN) -> None:
    ids = pinned.ids if pinned else ()
    try:
        assert not lab_netns(lab), f"namespaces left: {sorted(lab_netns(lab))}"
        assert not processes_of(lab, ids, root), processes_of(lab, ids, root)
        assert not (root / lab).exists() and not (root / f".{lab}.lock").exists()
    finally:
        if pinned:
            pinned.close()


def down_leaves_nothing(lab: str) -> str:
    """`netlab down LAB` succeeds and leaves nothing of the lab; its output."""
    pinned = Pinned(lab)
    done = netlab("down", lab)
    assert done.returncode == 0 and "is down" in done.stdout, done.stdout + done.stderr
    assert_nothing_left(lab, pinned)
    return done.stdout


def cleanup(*labs: str) -> None:
    """Take down what a failed test may have left."""
    for lab in labs:
        if lab_netns(lab) or (RUN / lab).exists():
            netlab("down", lab)


def down_after_kill(lab: str) -> subprocess.CompletedProcess:
    done = netlab("down", lab)
    if done.returncode == 2:  # killed before it built anything
        assert f"no lab '{lab}' is up" in done.stderr, done.stderr
    else:
        assert done.returncode == 0 and "is down" in done.stdout, done.stdout + done.stderr
    return done


# -- names ---------------------------------------------------------------------------------------
def _tree(path: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


BAD_COMMANDS = [("down", ".."), ("down", "."), ("down", ""), ("down", "a/b"), ("down", "../run"),
                ("up", str(VPC), "--name", ""), ("up", str(VPC), "--name", ".."),
                ("status", ".."), ("exec", "..", "vpc", "--", "true"), ("show", ".", "c1/node-1"),
                ("check", "a/b"), ("scale", "..", "c1/web", "--replicas", "2"),
                ("impair", "", "c1/node-1:eth0", "--clear")]


@pytest.mark.parametrize("argv", BAD_COMMANDS, ids=lambda a: " ".join(repr(x) if not x else x for x in a))
def test_bad_lab_names_are_refused_and_touch_nothing(argv, tmp_path):
    """The state root points at a scratch /run: its siblings (other state, /run/lock) and
    the labs in it must be exactly as they were."""
    run, root = tmp_path / "run", tmp_path / "run" / "netlab"
    (run / "lock").mkdir(parents=True)
    (run / "lock" / "subsys").write_text("x")
    (run / "other-state").write_text("y")
    (root / "st-keep" / "pids").mkdir(parents=True)
    (root / "st-keep" / ".netlab-state").touch()
    (root / "st-keep" / "lab.json").write_text("{}")
    before = _tree(run)

    done = netlab(*argv, env={"NETLAB_RUN_DIR": str(root)})
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    label = "--name" if "--name" in argv else "LAB"
    assert lines[0].startswith(f"netlab: error: {label}: ") and "is not a valid lab name (lowercase letters, " \
        "digits and '-', at most 24 characters)" in lines[0], lines[0]
    assert _tree(run) == before
    # Other labs come and go on this machine: look for what these commands could have built.
    assert not [ns for ns in os.listdir("/run/netns") if ns.startswith(("nl-.", "nl-..", "nl-a/", "nl-vpc-basic."))]


# -- SIGKILL of up at random moments -------------------------------------------------------------
def _children(pid: int) -> set[int]:
    out: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            out |= {int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()}
    except OSError:
        pass
    return out


def _kill_at_spawn(lab: str, k: int) -> tuple[str, bool]:
    """SIGKILL `up` as its k-th long-running process appears (its children then are the k
    daemons already started and the new one). Returns the new process's name and whether
    its pidfile was still missing: a kill between a daemon's start and its pidfile."""
    proc = subprocess.Popen([sys.executable, "-m", "netlab", "up", str(TUNNEL), "--name", lab, "-v"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    starts, name = 0, ""
    try:
        for line in proc.stdout:
            if "&  # " not in line:
                continue
            if starts == k:
                name = line.rsplit("&  # ", 1)[1].strip()
                deadline = time.monotonic() + 10
                while len(_children(proc.pid)) <= k and time.monotonic() < deadline:
                    pass
                proc.kill()
                break
            starts += 1
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert name, f"up finished before its process {k} started"
    return name, not (RUN / lab / "pids" / f"{name}.pid").exists()


def _up_verbose(lab: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "netlab", "up", str(TUNNEL), "--name", lab, "-v"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _build_seconds(lab: str) -> float:
    """How long `up` takes from its first operation to its exit (Python's start-up excluded)."""
    proc = _up_verbose(lab)
    proc.stdout.readline()
    start = time.monotonic()
    proc.stdout.read()
    assert proc.wait(120) == 0
    proc.stdout.close()
    return time.monotonic() - start


def _kill_at_time(lab: str, seconds: float) -> None:
    """SIGKILL `up` `seconds` after its first operation."""
    proc = _up_verbose(lab)
    proc.stdout.readline()
    time.sleep(seconds)
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_sigkill_of_up_at_20_moments_is_always_undone_by_down():
    """20 seeded moments of a tunnel lab's `up` (3 nodes, 6 OVS daemons, the agent): 12 spread
    over its measured build time, 8 at the start of a process (each of the 6 OVS daemons and
    the agent, one twice), before its pidfile when the kill is fast enough. After each, `down` leaves no namespace and no process."""
    lab = "st-kill"
    up_seconds = _build_seconds(lab)
    down_leaves_nothing(lab)

    rng = random.Random(20)
    moments = [("time", round(rng.uniform(0, up_seconds), 3)) for _ in range(12)]
    moments += [("spawn", k) for k in range(7)] + [("spawn", rng.randrange(7))]  # every daemon, the agent
    rng.shuffle(moments)
    outcome = []
    for kind, at in moments:
        try:
            if kind == "time":
                _kill_at_time(lab, at)
                hit = None
            else:
                name, hit = _kill_at_spawn(lab, at)
            pinned = Pinned(lab)
            netns, left = len(pinned), len(processes_of(lab, pinned.ids))
            down = down_after_kill(lab)
        finally:
            cleanup(lab)
        assert_nothing_left(lab, pinned)
        outcome.append((kind, at, hit, netns, left, down.stdout.strip() or down.stderr.strip()))
    print(f"\nup builds in {up_seconds:.2f} s; kill moments (kind, at, before pidfile, netns, processes, down):")
    print("\n".join(map(str, outcome)))
    assert any(hit for _, _, hit, *_ in outcome), "no kill landed between a daemon's start and its pidfile"
    assert sum(1 for *_, n, left, _ in outcome if left) >= 5, "too few moments left processes to clean up"


# -- labs whose names used to collide ------------------------------------------------------------
def test_labs_a_and_a_b_live_side_by_side(tmp_path):
    """Lab `a` with cluster `b-c` and lab `a-b` with cluster `c`: both were `nl-a-b-c-…`."""
    text = VPC.read_text()
    files = {"a": tmp_path / "a.yaml", "a-b": tmp_path / "a-b.yaml"}
    files["a"].write_text(text.replace("name: c1", "name: b-c").replace("c1/", "b-c/"))
    files["a-b"].write_text(text.replace("name: c1", "name: c").replace("c1/", "c/"))
    ids = {}
    try:
        for name, file in files.items():
            done = netlab("up", str(file), "--name", name)
            assert done.returncode == 0, done.stderr
            ids[name] = lab_netns(name)
        assert "nl-a.b-c.node-1" in ids["a"] and "nl-a-b.c.node-1" in ids["a-b"]
        assert not set(ids["a"]) & set(ids["a-b"])
        for name in files:
            check = netlab("check", name, "--json")
            assert check.returncode == 0, check.stdout
            assert json.loads(check.stdout)["summary"]["failed"] == 0

        for gone, kept in (("a", "a-b"), ("a-b", None)):
            down_leaves_nothing(gone)
            if kept:
                assert lab_netns(kept) == ids[kept]  # the same namespaces, not new ones
                status = netlab("status", kept, "--json")
                assert status.returncode == 0 and json.loads(status.stdout)["state"] == "up", status.stdout
                assert netlab("check", kept).returncode == 0
    finally:
        cleanup(*files)


# -- a lost state directory ----------------------------------------------------------------------
def test_lab_whose_state_was_deleted_is_found_and_removed():
    lab = "st-orphan"
    try:
        assert netlab("up", str(TUNNEL), "--name", lab).returncode == 0
        ids = lab_netns(lab)
        assert len(ids) == 10 and len(processes_of(lab, ids.values())) == 7
        shutil.rmtree(RUN / lab)

        listing = netlab("status")
        assert listing.returncode == 0
        assert (f"{lab}: orphaned: state lost; 10 namespaces, 7 processes; `netlab down {lab}` removes them"
                in listing.stdout.splitlines()), listing.stdout
        listed = json.loads(netlab("status", "--json").stdout)
        assert {"lab": lab, "netns": 10, "processes": 7} in [
            {k: o[k] for k in ("lab", "netns", "processes")} for o in listed["orphaned"]]
        one = netlab("status", lab)
        assert one.returncode == 1 and "orphaned: state lost" in one.stdout

        assert "10 namespaces and 7 processes removed" in down_leaves_nothing(lab)
        assert netlab("status", lab).returncode == 2  # nothing left to name
    finally:
        cleanup(lab)


# -- a failed up removes what it created, and only that ------------------------------------------
def test_failed_up_leaves_a_namespace_it_did_not_create():
    """Someone creates the lab's host namespace while `up` is building its nodes: `up` fails
    on it, removes everything it built (daemons included), and leaves that namespace."""
    lab, foreign = "st-own", "nl-st-own.ecs-1"
    proc = subprocess.Popen([sys.executable, "-m", "netlab", "up", str(TUNNEL), "--name", lab, "-v"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "# ovsdb-server@c1.node-1" in line:
                subprocess.run(["ip", "netns", "add", foreign], check=True, timeout=10)
                break
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert foreign in err and "(nothing was left behind)" in err and len(err.strip().splitlines()) == 1, err
        assert list(lab_netns(lab)) == [foreign]
        assert not (RUN / lab).exists()
        assert not processes_of(lab, ())
    finally:
        proc.kill()
        proc.wait()
        subprocess.run(["ip", "netns", "del", foreign], timeout=10)
        cleanup(lab)
    assert not lab_netns(lab)


# -- two up of the same lab ----------------------------------------------------------------------
def test_two_concurrent_ups_of_one_lab_exactly_one_wins():
    lab = "st-race"
    try:
        for round_ in range(2):
            procs = [subprocess.Popen([sys.executable, "-m", "netlab", "up", str(VPC), "--name", lab],
                                      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(2)]
            results = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in procs]
            for p in procs:
                p.stdout.close()
                p.stderr.close()
            assert sorted(rc for rc, _, _ in results) == [0, 2], results
            _, _, err = next(r for r in results if r[0] == 2)
            assert len(err.strip().splitlines()) == 1 and (
                f"another netlab command is working on lab '{lab}'" in err or f"lab '{lab}' is already up" in err), err
            status = netlab("status", lab, "--json")
            assert status.returncode == 0 and json.loads(status.stdout)["state"] == "up", status.stdout
            assert round_ or netlab("check", lab).returncode == 0
            down_leaves_nothing(lab)
    finally:
        cleanup(lab)


# -- damaged state ---------------------------------------------------------------------------------
def test_damaged_state_is_one_line_and_down_still_cleans_up():
    lab = "st-dmg"
    try:
        assert netlab("up", str(VPC), "--name", lab).returncode == 0
        (RUN / lab / "lab.json").write_text('{"phase": "up", "netns": ["nl-st-dmg.vpc"], "lab": {"na')
        for pidfile in (RUN / lab / "pids").glob("*.pid"):
            pidfile.write_bytes(b"\xffgarbage")
        for argv in (("status", lab), ("check", lab), ("exec", lab, "vpc", "--", "true"),
                     ("show", lab, "c1/node-1"), ("scale", lab, "c1/web", "--replicas", "2"),
                     ("impair", lab, "c1/node-1:eth0", "--clear")):
            done = netlab(*argv)
            assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, (argv, done.stderr)
            assert done.stderr.startswith(f"netlab: error: the state of lab '{lab}' is damaged") and \
                done.stderr.strip().endswith(f"`netlab down {lab}` cleans up"), (argv, done.stderr)
        listing = netlab("status")
        assert f"{lab}: the state of lab '{lab}' is damaged" in listing.stdout, listing.stdout

        assert "1 process removed" in down_leaves_nothing(lab)  # the agent, by its namespace
    finally:
        cleanup(lab)


# -- a zombie daemon -------------------------------------------------------------------------------
PR_SET_CHILD_SUBREAPER = 36


def test_a_zombie_daemon_is_reported_dead():
    """The lab's processes are reparented to this test (a child subreaper that does not reap
    them), as they are in a container whose init never reaps: a killed one stays a zombie."""
    libc = ctypes.CDLL(None, use_errno=True)
    lab, agent = "st-zombie", None
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        assert netlab("up", str(VPC), "--name", lab).returncode == 0
        agent = int((RUN / lab / "pids" / "agent.pid").read_text().split()[0])
        os.kill(agent, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{agent}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        status = netlab("status", lab, "--json")
        assert status.returncode == 1, status.stdout
        data = json.loads(status.stdout)
        assert data["state"] == "degraded (not running: agent (zombie))"
        assert data["processes"] == {"running": 0, "expected": 1}
        assert data["dead"] == [{"name": "agent", "why": "zombie"}]
        text = netlab("status", lab)
        assert text.returncode == 1 and "not running: agent (zombie)" in text.stdout
        down_leaves_nothing(lab)
    finally:
        cleanup(lab)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        if agent is not None:
            try:
                os.waitpid(agent, 0)
            except ChildProcessError:
                pass
