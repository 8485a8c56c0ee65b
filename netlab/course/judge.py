"""Judging an exercise (pure but for the probes): its checks, on the running lab, by the
normal check machinery — the same specs `netlab check` builds for a scenario's `checks:`,
each with its outcome, cause and `why` — so any fix that makes the network behave passes,
not only the reference one.

`why` is derived from the lab as lab.json holds it: for a fault that changed what the lab
is (a route removed from the VPC's table, a Service's selector), the broken lab, so the why
of a failing check names the mechanism that is missing.
"""

from __future__ import annotations

from dataclasses import replace

from netlab.course.exercise import Broken, Exercise
from netlab.lab.model import Lab
from netlab.probe.checks import CheckSpec


def specs(exercise: Exercise, lab: Lab) -> list[CheckSpec]:
    """The exercise's checks on `lab`, named by their titles."""
    from netlab.probe import checks

    judged = checks.matrix(lab.model_copy(update={"checks": exercise.checks()}), only="scenario")
    return [replace(s, name=c.title or s.name, kind="exercise check", why=_groups(lab, s))
            for s, c in zip(judged, exercise.spec.checks, strict=True)]


def _groups(lab: Lab, spec: CheckSpec) -> str:
    """The check's why, led by the security group that refuses its flow, if one does (the
    groups judge the address an EIP is bound to)."""
    from netlab.cloud import secgroup

    dst = next((e.private for e in lab.eips if e.ip == spec.dst_ip and e.private is not None), spec.dst_ip)
    proto = "tcp" if spec.proto in ("syn", "http", "https") else spec.proto
    if any(dst in c.service_cidr for c in lab.clusters):
        return spec.why
    verdict = secgroup.verdict(lab, spec.src_ip, dst, proto, spec.port)
    if verdict is None or verdict.allowed:
        return spec.why
    return f"{verdict.why}; {spec.why}" if spec.why else verdict.why


def run(exercise: Exercise, lab: Lab, timeout: float | None = None) -> tuple[list[str], list]:
    """(lab errors, results): nothing is probed when the lab itself is broken (its agent
    does not serve every declared port), as `netlab check` does."""
    from netlab.lab import refs
    from netlab.probe import selftest
    from netlab.probe.runner import DEFAULT_TIMEOUT, Runner

    broken = selftest.problems(lab)
    if broken:
        return broken, []
    book = refs.address_book(lab)

    def name(ip) -> str:
        owner = book.get(ip)
        return f"{owner} ({ip})" if owner else str(ip)

    return [], Runner(timeout=timeout or DEFAULT_TIMEOUT, namer=name).run(specs(exercise, lab))


def as_intended(broken: Broken | None, result) -> list[str]:
    """How a result differs from what the check must show while the fault is in place
    (empty: it fails for the intended reason). For the course's own tests and trainers."""
    if broken is None:
        return [] if result.ok else [f"{result.spec.name}: fails ({result.outcome}: {result.cause}), "
                                     "but it should pass before the fix too"]
    out = []
    if result.ok:
        out.append(f"{result.spec.name}: passes before the fix")
    if result.outcome != broken.outcome:
        out.append(f"{result.spec.name}: outcome {result.outcome} ({result.cause}), not {broken.outcome}")
    if broken.cause and broken.cause not in result.cause:
        out.append(f"{result.spec.name}: cause {result.cause!r} does not say {broken.cause!r}")
    if broken.why and broken.why not in result.spec.why:
        out.append(f"{result.spec.name}: why {result.spec.why!r} does not say {broken.why!r}")
    if broken.problem and not any(broken.problem in p for p in result.problems):
        out.append(f"{result.spec.name}: problems {result.problems} do not say {broken.problem!r}")
    return out
