"""The state directory without root: names checked before they become paths, the lock,
damaged lab.json, and what `remove()` may delete. The root is a scratch directory."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import time

import pytest

from netlab.apply import state as state_mod
from netlab.apply.state import StateDir
from netlab.errors import LabStateError, UserError


@pytest.fixture(autouse=True)
def root(tmp_path, monkeypatch):
    root = tmp_path / "run"
    monkeypatch.setattr(state_mod, "ROOT", root)
    return root


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x", "/etc", "A", "a.b"])
def test_bad_lab_names_never_become_paths(bad):
    with pytest.raises(UserError, match="LAB: .* is not a valid lab name"):
        StateDir(bad)


def test_lock_is_exclusive_and_leaves_nothing_behind(root):
    s = StateDir("st-lock")
    fd = s.lock()
    assert s.lock_path.exists()
    with pytest.raises(LabStateError, match="another netlab command is working on lab 'st-lock'"):
        s.lock()  # a second open file description: flock refuses it, as it would another process
    StateDir("st-other").unlock(StateDir("st-other").lock())  # other labs are not blocked
    s.unlock(fd)
    assert not s.lock_path.exists() and not root.exists()


def test_lock_retries_when_the_file_was_replaced_under_it(root, monkeypatch):
    """Another holder unlinked the file between our open and our flock: the inode we locked
    is no longer the lock, so lock() must take the one the path names now."""
    s = StateDir("st-lock")
    real_flock = fcntl.flock
    calls = []

    def racing_flock(fd, op):
        calls.append(fd)
        if len(calls) == 1:
            s.lock_path.unlink()
            s.lock_path.touch()
        return real_flock(fd, op)

    monkeypatch.setattr(state_mod.fcntl, "flock", racing_flock)
    fd = s.lock()
    assert len(calls) == 2
    assert os.fstat(fd).st_ino == os.stat(s.lock_path).st_ino
    s.unlock(fd)


def test_lock_tolerates_the_root_vanishing_before_open(root, monkeypatch):
    s = StateDir("st-lock")
    real_open = os.open
    opened = []

    def racing_open(path, *args):
        opened.append(path)
        if len(opened) == 1:
            root.rmdir()  # another command released the last lock and removed the root
        return real_open(path, *args)

    monkeypatch.setattr(state_mod.os, "open", racing_open)
    fd = s.lock()
    assert len(opened) == 2
    s.unlock(fd)


def _count(root: str, n: int, out) -> None:
    state_mod.ROOT = state_mod.Path(root)
    s = StateDir("st-lock")
    counter = state_mod.ROOT.parent / "counter"
    done = 0
    while done < n:
        try:
            fd = s.lock()
        except LabStateError:
            time.sleep(0.0005)
            continue
        try:
            value = int(counter.read_text())
            time.sleep(0.0002)  # widen the window a broken lock would let another writer in
            counter.write_text(str(value + 1))
        finally:
            s.unlock(fd)
        done += 1
    out.put(done)


def test_lock_excludes_other_processes_while_files_come_and_go(root):
    """Four processes take and release the lock (each release unlinks the file and may remove
    the root): no increment of the shared counter is ever lost."""
    (root.parent / "counter").write_text("0")
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    workers = [ctx.Process(target=_count, args=(str(root), 100, out)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert int((root.parent / "counter").read_text()) == 400
    assert not root.exists()


def _write(s: StateDir, text: bytes) -> None:
    s.path.mkdir(parents=True, exist_ok=True)
    (s.path / state_mod.MARKER).touch()
    s.lab_json.write_bytes(text)


@pytest.mark.parametrize("content, why", [
    (b"", "is empty"), (b'{"phase": "up", "netns": ["nl-st-dmg.vpc"], "la', "is not valid JSON"),
    (b"\xff\xfe\x00garbage", "is not valid JSON"), (b"[1, 2]", "does not hold a lab record"),
    (b'{"phase": "up", "netns": "x", "lab": {}}', "does not hold a lab record"),
    (b'{"phase": "up", "netns": [], "lab": {"name": "st-dmg"}}', "does not describe a lab"),
])
def test_damaged_lab_json_is_one_line_with_the_way_out(content, why):
    s = StateDir("st-dmg")
    _write(s, content)
    with pytest.raises(LabStateError) as e:
        s.read()
    assert why in str(e.value) and "the state of lab 'st-dmg' is damaged" in str(e.value)
    assert str(e.value).endswith("`netlab down st-dmg` cleans up") and "\n" not in str(e.value)
    assert s.recorded_netns() == []  # down still works: it falls back to the kernel


def test_state_dir_without_lab_json_is_damaged_and_a_missing_one_is_not_up():
    s = StateDir("st-dmg")
    with pytest.raises(LabStateError, match="no lab 'st-dmg' is up"):
        s.read()
    s.path.mkdir(parents=True)
    with pytest.raises(LabStateError, match="damaged .no lab.json: its `up` was cut short"):
        s.read()


def test_recorded_netns_keeps_only_the_labs_own_names():
    s = StateDir("st-rec")
    _write(s, json.dumps({"phase": "up", "lab": {},
                          "netns": ["nl-st-rec.vpc", "nl-st-rec-c1-n1", "nl-st-rec-x.vpc", "nl-other.vpc"]}).encode())
    # nl-st-rec-c1-n1: recorded by a netlab from before '.'-separated names.
    assert s.recorded_netns() == ["nl-st-rec.vpc", "nl-st-rec-c1-n1"]


def test_remove_deletes_only_a_marked_state_directory(root, tmp_path):
    s = StateDir("st-rm")
    root.mkdir()
    s.create()
    (s.path / "c1" / "node-1").mkdir(parents=True)
    s.remove()
    assert not s.path.exists()

    foreign = StateDir("st-foreign")
    foreign.path.mkdir()
    (foreign.path / "precious").write_text("x")
    with pytest.raises(LabStateError, match="is not a netlab state directory; left alone"):
        foreign.remove()
    assert (foreign.path / "precious").exists()

    script = StateDir("st-script")  # built by `netlab plan --script`, failed before lab.json
    (script.path / "pids").mkdir(parents=True)
    (script.path / "logs").mkdir()
    (script.path / "c1").mkdir()
    script.remove()
    assert not script.path.exists()

    empty = StateDir("st-empty")  # `up` killed between mkdir and the marker
    empty.path.mkdir()
    empty.remove()
    assert not empty.path.exists()

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    link = StateDir("st-link")
    link.path.symlink_to(outside)
    link.remove()
    assert not link.path.is_symlink() and (outside / "keep").exists()


def test_list_labs_sees_lab_directories_only(root):
    root.mkdir()
    for name in ("st-a", "st-b"):
        (root / name).mkdir()
    (root / ".st-a.lock").touch()
    (root / "Not-A-Lab").mkdir()
    (root / "st-file").touch()
    assert state_mod.list_labs() == ["st-a", "st-b"]
