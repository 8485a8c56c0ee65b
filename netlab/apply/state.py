"""A lab's state directory, `/run/netlab/<lab>/`: what was (or is about to be) built.

`lab.json` is written before anything is applied and names every namespace and process
the lab will own, so `down` can undo a lab whose `up` crashed half-way. Processes leave
pidfiles in `pids/`, logs in `logs/`; per-node daemons keep their files in `<cluster>/<node>/`
(node names are unique per cluster only).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from netlab.errors import LabStateError
from netlab.lab.model import Lab

ROOT = Path(os.environ.get("NETLAB_RUN_DIR", "/run/netlab"))


@dataclass
class StateDir:
    lab: str

    @property
    def path(self) -> Path:
        return ROOT / self.lab

    @property
    def lab_json(self) -> Path:
        return self.path / "lab.json"

    def pidfile(self, name: str) -> Path:
        return self.path / "pids" / f"{name}.pid"

    def logfile(self, name: str) -> Path:
        return self.path / "logs" / f"{name}.log"

    def exists(self) -> bool:
        return self.path.is_dir()

    def create(self) -> None:
        ROOT.mkdir(parents=True, exist_ok=True)
        try:
            self.path.mkdir()
        except FileExistsError:
            raise LabStateError(f"lab '{self.lab}' is already up (state in {self.path}); "
                                f"run `netlab down {self.lab}` first") from None
        for sub in ("pids", "logs"):
            (self.path / sub).mkdir()

    def write(self, lab: Lab, *, phase: str, netns: list[str]) -> None:
        """Record the lab and the namespaces it owns (atomically: write then rename)."""
        record = make_record(lab, phase=phase, netns=netns)
        tmp = self.lab_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, self.lab_json)

    def read_record(self) -> dict:
        try:
            return json.loads(self.lab_json.read_text())
        except FileNotFoundError:
            raise LabStateError(f"no lab '{self.lab}' is up (no {self.lab_json}); "
                                f"labs: {', '.join(list_labs()) or 'none'}") from None

    def read(self) -> Lab:
        return Lab.model_validate(self.read_record()["lab"])

    def set_phase(self, phase: str) -> None:
        record = self.read_record()
        record["phase"] = phase
        tmp = self.lab_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, self.lab_json)

    def lock(self) -> int:
        """An exclusive lock on the lab (held for the life of the returned fd)."""
        ROOT.mkdir(parents=True, exist_ok=True)
        fd = os.open(ROOT / f".{self.lab}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LabStateError(f"another netlab command is working on lab '{self.lab}'") from None
        return fd

    def unlock(self, fd: int) -> None:
        try:
            (ROOT / f".{self.lab}.lock").unlink(missing_ok=True)
        finally:
            os.close(fd)
        _remove_root_if_empty()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        _remove_root_if_empty()


def make_record(lab: Lab, *, phase: str, netns: list[str]) -> dict:
    """lab.json's content (also written by a lab built from `netlab plan --script`)."""
    return {"phase": phase, "netns": netns, "lab": lab.model_dump(mode="json", by_alias=True)}


def _remove_root_if_empty() -> None:
    try:
        ROOT.rmdir()  # the last lab gone: leave nothing behind
    except OSError:
        pass


def list_labs() -> list[str]:
    try:
        return sorted(p.name for p in ROOT.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []
