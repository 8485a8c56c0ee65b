"""The course on real labs: every exercise goes through the whole cycle a learner and a
trainer see — start, check (fails, for the intended reason), the reference fix through the
same `netlab` commands a learner types, check (passes), reset, check (fails again), down
(nothing left) — with every hint level on the way, and the alternative fixes the exercises
list (or `course solve` where there is none) accepted after the reset: one lab per exercise.

The CLI runs in this process (`netlab_in_process`): the same code path as a user's command,
without an interpreter start per step, so the whole course stays fast.
"""

from __future__ import annotations

import json
import os
import shlex

import pytest

from netlab import course, linux
from netlab.course import judge
from tests.helpers import netlab_in_process as netlab

EXERCISES = course.catalog()


def _lab(exercise_id: str) -> str:
    return f"co-{exercise_id[:2]}"


@pytest.fixture
def started():
    """Start exercises by id; whatever happens, their labs are down afterwards and leave nothing."""
    names: list[str] = []

    def start(exercise_id: str) -> str:
        name = _lab(exercise_id)
        names.append(name)
        done = netlab("course", "start", exercise_id, "--name", name)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == name  # `start` prints the lab's name
        return name

    yield start
    for name in names:
        if os.path.isdir(f"/run/netlab/{name}"):
            netlab("down", name)
        assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{name}.")]


def _check(name: str) -> tuple[int, dict]:
    done = netlab("course", "check", "--lab", name, "--json")
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def _broken_as_intended(exercise_id: str, report: dict) -> None:
    """Every check shows what the exercise says it shows before the fix."""
    exercise, _ = course.load(exercise_id)
    assert not report["passed"] and "errors" not in report, report

    class Seen:  # the fields judge.as_intended reads, from the JSON report
        def __init__(self, row):
            self.ok, self.outcome, self.cause = row["ok"], row["outcome"], row["cause"]
            self.problems = [row["detail"]] if row["detail"] else []
            self.spec = type("Spec", (), {"name": row["name"], "why": row["why"]})

    wrong = [w for check, row in zip(exercise.spec.checks, report["checks"], strict=True)
             for w in judge.as_intended(check.broken, Seen(row))]
    assert not wrong, "\n".join(wrong)


def _fix(name: str, commands: list[list[str]]) -> None:
    for argv in commands:
        done = netlab(*argv)
        assert done.returncode == 0, f"netlab {' '.join(argv)}: {done.stderr}"


def _passes(name: str) -> dict:
    code, report = _check(name)
    failing = [f"{r['name']}: {r['outcome']} ({r['cause']}) {r['detail']}" for r in report["checks"] if not r["ok"]]
    assert code == 0 and report["passed"], "\n".join(failing)
    return report


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_exercise_cycle(started, exercise_id):
    """One lab per exercise: broken as intended, every hint level, the reference fix, reset,
    broken again, then the exercise's alternative fix (or, without one, `course solve`)."""
    exercise, _ = course.load(exercise_id)
    name = started(exercise_id)
    code, report = _check(name)
    assert code == 1
    _broken_as_intended(exercise_id, report)

    again = netlab("course", "start", exercise_id, "--name", name)
    assert again.returncode == 2 and f"already runs exercise {exercise_id}; `netlab course reset" in again.stderr

    levels = len(exercise.spec.hints)
    for level in range(1, levels + 1):
        done = netlab("course", "hint", "--lab", name)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"hint {level} of {levels}: ") and "{lab}" not in done.stdout

    _fix(name, exercise.commands(name))
    report = _passes(name)
    assert (report["attempts"], report["hints_used"], report["solved"]) == (2, levels, False)

    done = netlab("course", "reset", "--lab", name)
    assert done.returncode == 0, done.stderr
    code, report = _check(name)
    assert code == 1
    _broken_as_intended(exercise_id, report)
    assert report["attempts"] == 3 and report["resets"] == 1  # progress survives a reset

    # `check` judges the network's behaviour, not the reference fix's commands.
    for k, alternative in enumerate(exercise.spec.alternatives):
        if k:
            assert netlab("course", "reset", "--lab", name).returncode == 0
        _fix(name, exercise.commands(name, alternative))
        assert not _passes(name)["solved"]
    if not exercise.spec.alternatives:
        done = netlab("course", "solve", "--lab", name)
        assert done.returncode == 0, done.stderr
        shown = [line[len("$ netlab "):] for line in done.stdout.splitlines() if line.startswith("$ netlab ")]
        assert shown == [shlex.join(argv) for argv in exercise.commands(name)]  # solve shows what it does
        assert _passes(name)["solved"]

    done = netlab("down", name)
    assert done.returncode == 0, done.stderr
    assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{name}.")]
    assert not os.path.exists(f"/run/netlab/{name}")


def test_at_least_two_exercises_accept_another_fix():
    assert sum(1 for e in EXERCISES if course.load(e)[0].spec.alternatives) >= 2


@pytest.mark.parametrize(("argv", "message"), [
    (["course", "start", "99"], "no exercise '99'; exercises: 01-vpc-route, 02-"),
    (["course", "hint", "--level", "0", "--lab", "co-none"], "'--level': 0 is not in the range x>=1"),
    (["course", "check", "--lab", "co-none"], "lab co-none runs no exercise; `netlab course start N` starts one"),
    (["course", "task", "--lab", "../x"], "--lab: '../x' is not a valid lab name"),
])
def test_bad_input_is_one_line(argv, message):
    done = netlab(*argv)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not done.stdout
