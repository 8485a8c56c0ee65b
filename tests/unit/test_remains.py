"""Which lab a process belongs to by the paths in its command line (no root needed)."""

from __future__ import annotations

from pathlib import Path

from netlab.apply import remains


def test_a_state_path_in_the_command_line_names_the_lab(monkeypatch):
    monkeypatch.setattr(remains, "ROOT", Path("/run/netlab"))
    of = remains._lab_of_path_args
    assert of(["ovs-vsctl", "--db=unix:/run/netlab/a-b/c1/node-1/db.sock", "show"]) == "a-b"
    assert of(["ovsdb-server", "/run/netlab/a/c/node-1/conf.db"]) == "a"
    assert of(["tail", "-f", "/run/netlab/st-x/logs/agent.log"]) == "st-x"
    # Not a lab: the root itself, lock files, names a lab cannot have, other roots.
    for argv in (["ls", "/run/netlab/"], ["cat", "/run/netlab/.a.lock"], ["x", "/run/netlab/A/b"],
                 ["x", "/run/netlab2/a/b"], ["x", "/tmp/run/netlab-a/b"], []):
        assert of(argv) is None, argv
