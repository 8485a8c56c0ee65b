"""One exercise of the course, read from its directory and checked whole (pure).

A directory `NN-topic/` holds:

- `task.md`: what the learner is told (Markdown);
- `scenario.yaml`: the lab, an ordinary scenario file;
- `exercise.yaml`: `title`, `topics`, the `faults` injected into the running lab
  (`netlab.course.faults`), the `checks` that prove the fix (the scenario's `checks:`
  syntax, judged by the normal check machinery, each with an optional `title` and what it
  shows while the lab is broken: `broken: {outcome, cause, why}`, pieces of the outcome, the
  cause and the why the check must show for the intended reason), `hints` in levels (the
  first nudges, the last all but gives the answer), the reference `solution` and any
  `alternatives` (other fixes `check` accepts), each a list of `netlab` commands with `{lab}`
  for the lab's name.

`load` reads all three and refuses, with file, line and field, an exercise that could not
work: a scenario that does not resolve, a check that names nothing of the lab, a fault that
does not apply to it, a command that is not one of the verbs a learner fixes a lab with.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, model_validator

from netlab import yamlsrc
from netlab.course.faults import Fault, FaultError, inject
from netlab.errors import ScenarioError
from netlab.inputfile import SCENARIO_LIMIT, read_text
from netlab.probe.outcomes import OUTCOMES
from netlab.scenario.types import Check, Strict

ID_PATTERN = re.compile(r"^(\d\d)-[a-z0-9]+(-[a-z0-9]+)*$")
# The verbs of `netlab` a learner (and a reference solution) fixes a lab with.
FIX_VERBS = ("exec", "sg", "nat", "eip", "patch", "scale", "listener")
LAB = "{lab}"


class Broken(Strict):
    """What a check shows while the fault is in place: the intended reason it fails."""

    outcome: str = Field(description="reach, refused, rejected, unreachable or dropped")
    cause: str | None = Field(default=None, description="a piece of the check's cause, e.g. 'net unreachable'")
    why: str | None = Field(default=None, description="a piece of the check's why, e.g. 'no VPC route'")
    problem: str | None = Field(default=None, description="a piece of what is wrong with an answer, e.g. "
                                                          "'answered by c1/web-0'")

    @model_validator(mode="after")
    def _known(self) -> Broken:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome: {self.outcome!r} is not an outcome; expected {', '.join(OUTCOMES)}")
        return self


class ExerciseCheck(Check):
    title: str | None = Field(default=None, description="what the check proves, in the learner's words")
    broken: Broken | None = Field(default=None, description="what it shows before the fix; none: it passes "
                                                            "then too (a guard the fix must not break)")

    def as_check(self) -> Check:
        return Check.model_validate(self.model_dump(by_alias=True, exclude={"title", "broken"}, exclude_unset=True))


class ExerciseFile(Strict):
    title: str = Field(min_length=1)
    topics: list[str] = Field(min_length=1)
    faults: list[Fault] = Field(min_length=1)
    checks: list[ExerciseCheck] = Field(min_length=1)
    hints: list[str] = Field(min_length=1)
    solution: list[str] = Field(min_length=1, description="netlab commands; {lab} is the lab's name")
    alternatives: list[list[str]] = Field(default_factory=list, description="other fixes `check` accepts")

    @model_validator(mode="after")
    def _fails_before(self) -> ExerciseFile:
        if not any(c.broken for c in self.checks):
            raise ValueError("checks: no check says how it fails before the fix (broken:); "
                             "an exercise whose checks pass from the start teaches nothing")
        return self


@dataclass(frozen=True)
class Exercise:
    id: str  # the directory name, e.g. "01-vpc-route"
    path: Path
    spec: ExerciseFile

    @property
    def number(self) -> int:
        return int(self.id[:2])

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def topics(self) -> list[str]:
        return self.spec.topics

    @property
    def task(self) -> str:
        return read_text(self.path / "task.md", limit=SCENARIO_LIMIT, error=ScenarioError, what="task")

    @property
    def scenario_path(self) -> Path:
        return self.path / "scenario.yaml"

    @property
    def default_lab(self) -> str:
        from netlab.course import default_lab

        return default_lab(self.id)

    def checks(self) -> list[Check]:
        return [c.as_check() for c in self.spec.checks]

    def commands(self, lab: str, which: list[str] | None = None) -> list[list[str]]:
        """The reference solution (or `which`, an alternative) as argv lists after `netlab`."""
        return [[lab if word == LAB else word for word in _split(line)[1:]]
                for line in (self.spec.solution if which is None else which)]


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as e:
        raise ValueError(f"{line!r}: {e}") from None


def check_command(line: str) -> str | None:
    """Why a solution line is not a command a learner could type, or None."""
    try:
        words = _split(line)
    except ValueError as e:
        return str(e)
    if len(words) < 3 or words[0] != "netlab":
        return f"{line!r}: write `netlab VERB {LAB} ...`"
    if words[1] not in FIX_VERBS:
        return f"{line!r}: '{words[1]}' is not a verb a learner fixes a lab with; verbs: {', '.join(FIX_VERBS)}"
    if words[2] != LAB:
        return f"{line!r}: the lab is written {LAB}"
    return None


def load(path: Path, *, features: frozenset[str] | None = None, name: str | None = None):
    """(Exercise, the resolved lab as `start` builds it before the faults, named `name` or
    `course-NN`) from a directory; ScenarioError, located, if any part of it could not work."""
    from netlab.lab import refs
    from netlab.lab.resolve import resolve
    from netlab.scenario import loader

    exercise_id = path.name
    if not ID_PATTERN.match(exercise_id):
        raise ScenarioError(f"an exercise directory is named NN-topic (e.g. 01-vpc-route), not {exercise_id!r}",
                            file=str(path))
    file = str(path / "exercise.yaml")
    text = read_text(file, limit=SCENARIO_LIMIT, error=ScenarioError, what="exercise")
    data = yamlsrc.document(text, file, error=ScenarioError)
    if not isinstance(data, dict):
        raise ScenarioError("an exercise file is a mapping with title, topics, faults, checks, hints, solution",
                            file=file, line=1)
    source = loader.Source(file, yamlsrc.line_index(data))
    spec = loader.validate(ExerciseFile, data, source)
    exercise = Exercise(exercise_id, path, spec)
    for key in ("task.md", "scenario.yaml"):
        if not (path / key).is_file():
            raise ScenarioError(f"the exercise has no {key}", file=str(path / key))
    scenario, scenario_source = loader.load(exercise.scenario_path)
    lab = resolve(scenario.model_copy(update={"name": name or exercise.default_lab}), scenario_source, features)
    for i, check in enumerate(exercise.checks()):
        try:
            refs.check_refs(lab, check)
        except refs.RefError as e:
            raise source.error(("checks", i) + ((e.field,) if e.field else ()), str(e)) from None
    try:
        inject(lab, spec.faults)
    except FaultError as e:
        raise source.error(("faults",) + e.field, str(e)) from None
    for key, lines in [("solution", spec.solution)] + [(("alternatives", k), a) for k, a in enumerate(spec.alternatives)]:
        for j, line in enumerate(lines):
            problem = check_command(line)
            if problem:
                where = (key, j) if isinstance(key, str) else key + (j,)
                raise source.error(where, problem)
    return exercise, lab
