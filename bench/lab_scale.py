#!/usr/bin/env python3
"""Time `up`, `check` and `down` of a lab (default: the 200-pod VPC-model scenario).

Usage: sudo .venv/bin/python bench/lab_scale.py [SCENARIO ...] [--runs N] [--checks M] [-- CHECK-ARGS]
Each phase runs through the CLI, as users run it; figures are wall-clock seconds. Every
run brings the lab up once and checks it M times (default 1), so check time is measured on
a settled lab as well as right after `up`. Several scenarios may be given; each gets its
own lab name. Arguments after `--` go to every `netlab check` (e.g. `-- --timeout 0.2`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(*args: str, ok_codes: tuple[int, ...] = (0,)) -> tuple[float, int]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "netlab", *args], cwd=REPO, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if done.returncode not in ok_codes:
        sys.exit(f"netlab {' '.join(args)} failed: {done.stderr or done.stdout[-2000:]}")
    return elapsed, done.returncode


def bench(scenario: str, name: str, runs: int, checks: int, check_args: list[str]) -> None:
    phases: dict[str, list[float]] = {"up": [], "check": [], "down": []}
    failed = 0
    for _ in range(runs):
        phases["up"].append(timed("up", scenario, "--name", name)[0])
        try:
            for _ in range(checks):
                seconds, code = timed("check", name, *check_args, ok_codes=(0, 1))
                phases["check"].append(seconds)
                failed += code != 0
        finally:
            phases["down"].append(timed("down", name)[0])
    print(f"{scenario}: {runs} runs × {checks} checks, seconds (CLI wall clock, incl. ~0.3 s interpreter start)")
    for phase, values in phases.items():
        print(f"  {phase:5s} median {statistics.median(values):.2f}  min {min(values):.2f}  max {max(values):.2f}")
    if failed:
        print(f"  ({failed} of {len(phases['check'])} check runs had failing checks)")


def main() -> None:
    argv = sys.argv[1:]
    check_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, check_args = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["scenarios/scale-200.yaml"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--checks", type=int, default=1, help="check runs per lab brought up")
    parser.add_argument("--name", default="bench-scale", help="lab name (suffixed when several scenarios)")
    args = parser.parse_args(argv)
    for i, scenario in enumerate(args.scenarios):
        name = args.name if len(args.scenarios) == 1 else f"{args.name}-{i}"
        bench(scenario, name, args.runs, args.checks, check_args)


if __name__ == "__main__":
    main()
