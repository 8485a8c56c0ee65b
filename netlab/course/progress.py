"""A learner's progress on the exercise a lab runs: `course.json` in the lab's state
directory, beside lab.json, so `netlab down` removes it with the lab and `reset` keeps it.

What a trainer collects (`netlab course check --json`): the exercise, whether the last check
passed, the checks run so far (`attempts`), the hint levels revealed (`hints_used`), whether
the learner had the reference solution applied (`solved`), and the time: from `start` to
the first check that passed, or to now while none has.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

FILE = "course.json"


@dataclass
class Progress:
    exercise: str
    lab: str
    started: float = field(default_factory=time.time)  # wall clock, seconds
    attempts: int = 0
    hints_used: int = 0
    passed: bool = False  # the last check passed
    passed_after: float | None = None  # seconds from start to the first check that passed
    solved: bool = False  # `netlab course solve` applied the reference solution
    resets: int = 0

    def time(self, now: float | None = None) -> float:
        if self.passed_after is not None:
            return self.passed_after
        return max(0.0, (now if now is not None else time.time()) - self.started)

    def judged(self, passed: bool, now: float | None = None) -> None:
        """One more check, and what it found."""
        now = now if now is not None else time.time()
        self.attempts += 1
        self.passed = passed
        if passed and self.passed_after is None:
            self.passed_after = round(now - self.started, 1)

    def report(self, now: float | None = None) -> dict:
        return {"exercise": self.exercise, "lab": self.lab, "passed": self.passed, "attempts": self.attempts,
                "hints_used": self.hints_used, "time": round(self.time(now), 1), "solved": self.solved,
                "resets": self.resets}


def read(folder: Path) -> Progress | None:
    """The progress in a lab's state directory, or None when it runs no exercise."""
    try:
        data = json.loads((folder / FILE).read_text())
        known = {f.name for f in fields(Progress)}
        return Progress(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError):
        return None


def write(folder: Path, progress: Progress) -> None:
    tmp = folder / (FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(progress), indent=1) + "\n")
    os.replace(tmp, folder / FILE)
