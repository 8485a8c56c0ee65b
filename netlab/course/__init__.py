"""The hands-on course: exercises in which a lab is broken the way real clusters break, a
learner finds and fixes it with the tools of the trade, and `netlab course check` judges
by packets whether it is fixed.

Each exercise is a directory of this package, `NN-topic/` (`netlab.course.exercise` says
what it holds); it ships in the wheel as package data. `catalog` lists them in order,
`find` takes what a user types (`1`, `01`, `01-vpc-route`, `vpc-route`) to one. The
faults (`faults`), the judgement (`judge`) and the learner's progress (`progress`) have
their own modules; `netlab/cli_course.py` is the command.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from netlab.errors import UserError


def root() -> Path:
    return Path(str(resources.files("netlab") / "course"))


def catalog() -> list[str]:
    """Every exercise's id (its directory name), in course order."""
    from netlab.course.exercise import ID_PATTERN

    return sorted(p.name for p in root().iterdir() if p.is_dir() and ID_PATTERN.match(p.name))


def find(text: str) -> str:
    """The id of the exercise a user names by number, id or topic."""
    ids = catalog()
    number = text.zfill(2) if text.isdigit() else None
    found = [i for i in ids if i == text or i[:2] == number or i[3:] == text]
    if len(found) != 1:
        listed = ", ".join(ids)
        raise UserError(f"no exercise '{text}'; exercises: {listed}")
    return found[0]


def default_lab(exercise_id: str) -> str:
    """The lab an exercise runs in unless the user names one: `course-NN`."""
    return f"course-{exercise_id[:2]}"


def load(exercise_id: str, *, features: frozenset[str] | None = None, name: str | None = None):
    """(Exercise, its lab before the faults, named `name` or `course-NN`), checked whole."""
    from netlab.course.exercise import load as load_dir

    return load_dir(root() / exercise_id, features=features, name=name)
