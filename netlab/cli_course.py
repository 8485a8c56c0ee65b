"""`netlab course ...`: the hands-on course. Parsing and printing only: `netlab.course`
loads and checks the exercises, injects the faults and judges; the executor builds, changes
and removes labs as for every other command.

    netlab course list [--json]          the exercises
    netlab course start N [--name LAB]   build exercise N's lab, break it; prints the lab's name
    netlab course task                   what the learner is asked to do
    netlab course check [--json]         judge: which checks still fail, and why
    netlab course hint [--level K]       one hint level more (or level K)
    netlab course solve                  apply the reference solution, showing each command
    netlab course reset                  back to the broken start (progress is kept)

The verbs after `start` act on the exercise that is running, or on `--lab LAB`.
"""

from __future__ import annotations

import json
import sys
import time

import click

from netlab.cli import LAB, _features, _require_root, console, err_console
from netlab.errors import UserError

LAB_OPTION = click.option("--lab", "lab", type=LAB, help="the lab of the exercise (default: the one running)")


@click.group("course")
def course() -> None:
    """The hands-on course: exercises with a broken lab to fix, automatic checks and hints.

    Start with `netlab course list`, then `netlab course start 1`.
    """


@course.command("list")
@click.option("--json", "as_json", is_flag=True, help='[{"id", "title", "topics"}]')
def list_(as_json: bool) -> None:
    """The exercises, in course order."""
    from netlab import course as course_mod

    rows = []
    for exercise_id in course_mod.catalog():
        exercise, _ = course_mod.load(exercise_id)
        rows.append({"id": exercise.id, "title": exercise.title, "topics": exercise.topics})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    width = max((len(r["id"]) for r in rows), default=0)
    for r in rows:
        click.echo(f"{r['id']:<{width}}  {r['title']}  [{', '.join(r['topics'])}]")


def _build(exercise_id: str, name: str | None):
    """Exercise `exercise_id`'s lab up, its faults injected (all or nothing)."""
    from netlab import course as course_mod
    from netlab.apply import executor
    from netlab.course.faults import inject
    from netlab.plan.planner import build

    exercise, lab = course_mod.load(exercise_id, features=_features(), name=name)
    broken, steps = inject(lab, exercise.spec.faults)
    executor.up(lab, build(lab))
    try:
        executor.change(lab, broken, steps)
    except BaseException:
        executor.down(lab.name)
        raise
    return exercise, broken


@course.command()
@click.argument("number", metavar="N")
@click.option("--name", type=LAB, help="the lab's name (default: course-NN)")
def start(number: str, name: str | None) -> None:
    """Build exercise N's lab and break it; print the lab's name."""
    from netlab import course as course_mod
    from netlab.apply.state import StateDir
    from netlab.course import progress

    _require_root("course start")
    exercise_id = course_mod.find(number)
    running = progress.read(StateDir(name or course_mod.default_lab(exercise_id)).path)
    if running is not None:
        raise UserError(f"lab {running.lab} already runs exercise {running.exercise}; `netlab course reset "
                        f"--lab {running.lab}` starts it over, `netlab down {running.lab}` ends it")
    began = time.monotonic()
    exercise, lab = _build(exercise_id, name)
    progress.write(StateDir(lab.name).path, progress.Progress(exercise=exercise.id, lab=lab.name))
    click.echo(lab.name)
    err_console.print(f"exercise {exercise.id}: {exercise.title} (lab {lab.name}, ready in "
                      f"{time.monotonic() - began:.1f} s)\nread the task: netlab course task", highlight=False)


def _running(lab: str | None):
    """(lab name, Progress) of the exercise a verb acts on."""
    from netlab.apply.state import StateDir, list_labs
    from netlab.course import progress

    if lab is not None:
        found = progress.read(StateDir(lab).path)
        if found is None:
            raise UserError(f"lab {lab} runs no exercise; `netlab course start N` starts one")
        return lab, found
    running = [(name, p) for name in list_labs() if (p := progress.read(StateDir(name).path)) is not None]
    if not running:
        raise UserError("no exercise is running; `netlab course list`, then `netlab course start N`")
    if len(running) > 1:
        raise UserError("several exercises are running (labs " + ", ".join(n for n, _ in running)
                        + "); give --lab")
    return running[0]


def _exercise(progress_):
    from netlab import course as course_mod

    exercise, _ = course_mod.load(progress_.exercise, name=progress_.lab)
    return exercise


@course.command()
@LAB_OPTION
def task(lab: str | None) -> None:
    """What the exercise asks of the learner."""
    from rich.markdown import Markdown

    _require_root("course task")
    _, p = _running(lab)
    text = _exercise(p).task.replace("{lab}", p.lab)
    if sys.stdout.isatty():
        console.print(Markdown(text))
    else:
        click.echo(text.rstrip("\n"))
    click.echo(f"\n(lab {p.lab}; `netlab course check` judges it, `netlab course hint` helps)")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


@course.command()
@LAB_OPTION
@click.option("--json", "as_json", is_flag=True, help="the progress and every check's result, as JSON")
@click.option("--timeout", type=click.FloatRange(min=0.01), default=None,
              help="seconds of silence before a probe counts as dropped [default: 0.3]")
def check(lab: str | None, as_json: bool, timeout: float | None) -> None:
    """Judge the exercise: which of its checks still fail, and why. Exit 0 once all pass."""
    from netlab.apply.state import StateDir
    from netlab.course import judge, progress
    from netlab.probe.outcomes import BLOCKED

    _require_root("course check")
    name, p = _running(lab)
    exercise = _exercise(p)
    state = StateDir(name)
    errors, results = judge.run(exercise, state.read(), timeout)
    passed = not errors and all(r.ok for r in results)
    p.judged(passed)
    progress.write(state.path, p)
    if as_json:
        out = p.report() | {"checks": [r.as_json() for r in results]}
        if errors:
            out["errors"] = errors
        click.echo(json.dumps(out, indent=1))
        sys.exit(0 if passed else 1)
    for line in errors:
        click.echo(f"netlab: lab error: {line}", err=True)
    failed = [r for r in results if not r.ok]
    head = (f"exercise {exercise.id} (lab {name}): " +
            ("every check passes: fixed" if passed else
             "the lab is broken beyond the exercise" if errors else
             f"{len(failed)} of {len(results)} checks fail"))
    console.print(head, highlight=False)
    for r in results:
        s = r.spec
        if r.ok:
            console.print(f"  [green]✓[/green] {s.name}", highlight=False)
            continue
        console.print(f"  [red]✗[/red] {s.name}", highlight=False)
        if r.outcome != s.expect and not (s.expect == "blocked" and r.outcome in BLOCKED):
            console.print(f"      {s.src} → {s.target} {s.proto}: {r.outcome} ({r.cause}); expected {s.expect}",
                          highlight=False)
        else:
            console.print(f"      {s.src} → {s.target} {s.proto}: " + "; ".join(r.problems), highlight=False)
        if s.why:
            console.print(f"      why: {s.why}", highlight=False)
    hints = f"{p.hints_used} of {len(exercise.spec.hints)} hints"
    console.print(f"attempt {p.attempts}, {hints} used, {_duration(p.time())}"
                  + ("" if passed else "; `netlab course hint` for a hint"), highlight=False)
    sys.exit(0 if passed else 1)


@course.command()
@LAB_OPTION
@click.option("--level", type=click.IntRange(min=1), help="show this level (and count the levels before it)")
def hint(lab: str | None, level: int | None) -> None:
    """Reveal one hint level more (the first nudges, the last all but gives the answer)."""
    from netlab.apply.state import StateDir
    from netlab.course import progress

    _require_root("course hint")
    name, p = _running(lab)
    hints = _exercise(p).spec.hints
    if level is not None and level > len(hints):
        raise UserError(f"--level: exercise {p.exercise} has {len(hints)} hint levels")
    shown = level if level is not None else min(p.hints_used + 1, len(hints))
    p.hints_used = max(p.hints_used, shown)
    progress.write(StateDir(name).path, p)
    click.echo(f"hint {shown} of {len(hints)}: {hints[shown - 1].replace('{lab}', name)}")
    if shown == len(hints):
        click.echo("(that is the last hint; `netlab course solve` applies the reference solution)")


@course.command()
@LAB_OPTION
def solve(lab: str | None) -> None:
    """Apply the reference solution, showing each command and what it printed."""
    import shlex

    from netlab.apply.state import StateDir
    from netlab.cli import run
    from netlab.course import progress

    _require_root("course solve")
    name, p = _running(lab)
    exercise = _exercise(p)
    p.solved = True
    progress.write(StateDir(name).path, p)
    for argv in exercise.commands(name):
        click.echo(f"$ netlab {shlex.join(argv)}")
        sys.stdout.flush()
        try:
            code = run(argv)
        except SystemExit as e:  # exec exits with its command's code
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if code != 0:
            raise UserError(f"`netlab {shlex.join(argv)}` failed (exit {code}); `netlab course reset` "
                            "starts the exercise again")
    click.echo(f"applied the reference solution of exercise {exercise.id}; `netlab course check` judges it")


@course.command()
@LAB_OPTION
def reset(lab: str | None) -> None:
    """Back to the broken start: the lab rebuilt and broken again (progress is kept)."""
    from netlab.apply import executor
    from netlab.apply.state import StateDir
    from netlab.course import progress

    _require_root("course reset")
    name, p = _running(lab)
    began = time.monotonic()
    executor.down(name)
    exercise, _ = _build(p.exercise, name)
    p.resets += 1
    progress.write(StateDir(name).path, p)
    console.print(f"lab {name} is back at the start of exercise {exercise.id} "
                  f"({time.monotonic() - began:.1f} s)", highlight=False)
