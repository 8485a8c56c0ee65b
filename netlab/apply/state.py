"""A lab's state directory, `/run/netlab/<lab>/` (`$NETLAB_RUN_DIR/<lab>/`): what was (or is
about to be) built, and the lock that keeps two commands off the same lab.

`lab.json` is written before anything is applied and names every namespace and process
the lab will own, so `down` can undo a lab whose `up` crashed half-way. Processes leave
pidfiles in `pids/`, logs in `logs/`; per-node daemons keep their files in `<cluster>/<node>/`
(node names are unique per cluster only). Every file is replaced atomically (write, then
rename). A `lab.json` that cannot be read is reported as damaged state (one line, with the
way out: `netlab down LAB`), never as a traceback.

Safety: a lab name is checked before it becomes a path (`StateDir` refuses anything but a
valid lab name, so `..`, `.`, `''` and `a/b` never reach the file system), and `remove()`
deletes a directory only when it is a direct child of the root that looks like a state
directory (netlab's marker file, a lab.json, or pids/ and logs/); anything else is left alone.

The lock is `flock` on `<root>/.<lab>.lock`. Whoever holds it may unlink the file, so after
acquiring, the holder checks that the path still names the inode it locked (fstat against
stat) and starts again if not: two processes can never both hold "the" lock. Releasing
unlinks the file and then removes the root if it is empty; a command that loses the race
(its `open` finds the root gone) creates the root again and retries.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from netlab import paths
from netlab.errors import LabStateError, UserError
from netlab.lab import naming
from netlab.lab.model import Lab

ROOT = Path(paths.RUN_ROOT)
MARKER = ".netlab-state"  # in every state directory netlab created; nothing else is removed
LOCK_ATTEMPTS = 100  # each retry means another command just released or removed the root


@dataclass(frozen=True)
class StateDir:
    lab: str

    def __post_init__(self) -> None:
        try:
            naming.check_lab_name(self.lab)
        except ValueError as e:
            raise UserError(f"LAB: {e}") from None

    @property
    def path(self) -> Path:
        return ROOT / self.lab

    @property
    def lab_json(self) -> Path:
        return self.path / "lab.json"

    @property
    def lock_path(self) -> Path:
        return ROOT / f".{self.lab}.lock"

    def pidfile(self, name: str) -> Path:
        return self.path / "pids" / f"{name}.pid"

    def pidfiles(self) -> list[Path]:
        return sorted((self.path / "pids").glob("*.pid"))

    def logfile(self, name: str) -> Path:
        return self.path / "logs" / f"{name}.log"

    def exists(self) -> bool:
        return self.path.is_dir() and not self.path.is_symlink()

    def create(self) -> None:
        """Create the directory (the caller holds the lock, so the root cannot vanish)."""
        try:
            self.path.mkdir()
        except FileExistsError:
            raise LabStateError(f"lab '{self.lab}' is already up (state in {self.path}); "
                                f"run `netlab down {self.lab}` first") from None
        (self.path / MARKER).touch()
        for sub in ("pids", "logs"):
            (self.path / sub).mkdir()

    # -- lab.json ------------------------------------------------------------------------------
    def write(self, lab: Lab, *, phase: str, netns: list[str]) -> None:
        """Record the lab and the namespaces it owns."""
        self._write_record(make_record(lab, phase=phase, netns=netns))

    def _write_record(self, record: dict) -> None:
        tmp = self.lab_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, self.lab_json)

    def damaged(self, why: str) -> LabStateError:
        return LabStateError(f"the state of lab '{self.lab}' is damaged ({why}); "
                             f"`netlab down {self.lab}` cleans up")

    def read_record(self) -> dict:
        try:
            raw = self.lab_json.read_bytes()
        except FileNotFoundError:
            if self.exists():
                raise self.damaged(f"no {self.lab_json.name}: its `up` was cut short") from None
            raise LabStateError(f"no lab '{self.lab}' is up (no {self.lab_json}); "
                                f"labs: {', '.join(list_labs()) or 'none'}") from None
        except OSError as e:
            raise self.damaged(f"{self.lab_json}: {e.strerror}") from None
        try:
            record = json.loads(raw)
        except ValueError:  # JSON and UTF-8 decoding errors alike
            raise self.damaged(f"{self.lab_json} is {'empty' if not raw.strip() else 'not valid JSON'}") from None
        if not (isinstance(record, dict) and isinstance(record.get("lab"), dict)
                and isinstance(record.get("netns"), list) and all(isinstance(n, str) for n in record["netns"])):
            raise self.damaged(f"{self.lab_json} does not hold a lab record")
        return record

    def read(self) -> Lab:
        try:
            return Lab.model_validate(self.read_record()["lab"])
        except ValidationError as e:
            where = ".".join(str(part) for part in e.errors()[0]["loc"])
            raise self.damaged(f"{self.lab_json} does not describe a lab: {where}") from None

    def recorded_netns(self) -> list[str]:
        """The namespaces lab.json says the lab owns, if it can be read (none otherwise);
        only names that carry the lab's name count."""
        try:
            netns = self.read_record()["netns"]
        except LabStateError:
            return []
        legacy = f"{naming.NETNS_PREFIX}{self.lab}-"  # recorded before names were `.`-separated
        return [n for n in netns if n.startswith(naming.lab_prefix(self.lab))
                or (n.startswith(legacy) and naming.SEP not in n)]

    def set_phase(self, phase: str) -> None:
        record = self.read_record()
        record["phase"] = phase
        self._write_record(record)

    # -- lock ----------------------------------------------------------------------------------
    def lock(self) -> int:
        """An exclusive lock on the lab (held for the life of the returned fd)."""
        for _ in range(LOCK_ATTEMPTS):
            try:
                os.makedirs(ROOT)
            except FileExistsError:
                pass  # (pathlib's exist_ok=True raises if the root is removed meanwhile)
            except OSError as e:
                raise LabStateError(f"cannot create the state root {ROOT}: {e.strerror}") from None
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except FileNotFoundError:
                continue  # the root was removed between mkdir and open
            except OSError as e:
                raise LabStateError(f"cannot lock lab '{self.lab}': {self.lock_path}: {e.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LabStateError(f"another netlab command is working on lab '{self.lab}'") from None
            if _same_file(fd, self.lock_path):
                return fd
            os.close(fd)  # its holder unlinked it before we got the lock: take the new one
        raise LabStateError(f"cannot lock lab '{self.lab}': {self.lock_path} keeps changing")

    def unlock(self, fd: int) -> None:
        try:
            if _same_file(fd, self.lock_path):
                self.lock_path.unlink()
        finally:
            os.close(fd)
        _remove_root_if_empty()

    @contextmanager
    def locked(self) -> Iterator[None]:
        fd = self.lock()
        try:
            yield
        finally:
            self.unlock(fd)

    def remove(self) -> None:
        """Remove the state directory, and nothing else."""
        path = self.path
        if path.parent != ROOT or path.name != self.lab or self.lab in ("", ".", ".."):
            raise AssertionError(f"refusing to remove {path}: not a lab directory under {ROOT}")
        if path.is_symlink():
            path.unlink()
        elif _is_state_dir(path):
            shutil.rmtree(path)
        elif path.exists():
            try:
                path.rmdir()  # created, then `up` was killed before it marked it
            except OSError:
                raise LabStateError(f"{path} is not a netlab state directory; left alone") from None


def _is_state_dir(path: Path) -> bool:
    """netlab's marker, a lab.json, or the pids/ and logs/ every state directory has (a lab
    built by `netlab plan --script` that failed before it wrote lab.json)."""
    return ((path / MARKER).is_file() or (path / "lab.json").is_file()
            or ((path / "pids").is_dir() and (path / "logs").is_dir()))


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def make_record(lab: Lab, *, phase: str, netns: list[str]) -> dict:
    """lab.json's content (also written by a lab built from `netlab plan --script`)."""
    return {"phase": phase, "netns": netns, "lab": lab.model_dump(mode="json", by_alias=True)}


def _remove_root_if_empty() -> None:
    try:
        ROOT.rmdir()  # the last lab gone: leave nothing behind
    except OSError:
        pass


def list_labs() -> list[str]:
    """Labs that have a state directory."""
    try:
        entries = list(ROOT.iterdir())
    except FileNotFoundError:
        return []
    return sorted(p.name for p in entries
                  if naming.is_lab_name(p.name) and p.is_dir() and not p.is_symlink())
