"""The course on real labs: every exercise goes through the whole cycle a learner and a
trainer see — start, check (fails, for the intended reason), the reference fix through the
same `netlab` commands a learner types, check (passes), reset, check (fails again), down
(nothing left) — and the alternative fixes the exercises list are accepted too.

The CLI runs in this process (`netlab_in_process`): the same code path as a user's command,
without an interpreter start per step, so the whole course stays fast.
"""

from __future__ import annotations

import json
import os

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


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_exercise_cycle(started, exercise_id):
    exercise, _ = course.load(exercise_id)
    name = started(exercise_id)
    code, report = _check(name)
    assert code == 1
    _broken_as_intended(exercise_id, report)

    _fix(name, exercise.commands(name))
    code, report = _check(name)
    failing = [f"{r['name']}: {r['outcome']} ({r['cause']}) {r['detail']}" for r in report["checks"] if not r["ok"]]
    assert code == 0 and report["passed"], "\n".join(failing)
    assert report["attempts"] == 2 and report["passed"]

    done = netlab("course", "reset", "--lab", name)
    assert done.returncode == 0, done.stderr
    code, report = _check(name)
    assert code == 1
    _broken_as_intended(exercise_id, report)
    assert report["attempts"] == 3 and report["resets"] == 1  # progress survives a reset

    done = netlab("down", name)
    assert done.returncode == 0, done.stderr
    assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{name}.")]
    assert not os.path.exists(f"/run/netlab/{name}")


ALTERNATIVES = [(e, k) for e in EXERCISES for k in range(len(course.load(e)[0].spec.alternatives))]


@pytest.mark.parametrize(("exercise_id", "index"), ALTERNATIVES)
def test_alternative_fix_is_accepted(started, exercise_id, index):
    """`check` judges the network's behaviour, not the reference fix's commands."""
    exercise, _ = course.load(exercise_id)
    name = started(exercise_id)
    _fix(name, exercise.commands(name, exercise.spec.alternatives[index]))
    code, report = _check(name)
    failing = [f"{r['name']}: {r['outcome']} ({r['cause']}) {r['detail']}" for r in report["checks"] if not r["ok"]]
    assert code == 0, "\n".join(failing)
