#!/usr/bin/env python3
"""Time `up`, `check` and `down` of a lab (default: the 200-pod VPC-model scenario).

Usage: sudo .venv/bin/python bench/lab_scale.py [SCENARIO ...] [--runs N] [--checks M]
                                                 [--compare DIR] [-- CHECK-ARGS]
Each phase runs through the CLI, as users run it; figures are wall-clock seconds. Every
run brings the lab up once and checks it M times (default 1), so check time is measured on
a settled lab as well as right after `up`. Several scenarios may be given; each gets its
own lab name. Arguments after `--` go to every `netlab check` (e.g. `-- --timeout 0.2`).

`--compare DIR` measures another checkout of netlab (e.g. `git archive main | tar -x -C
DIR`) side by side, interleaved run by run, so both see the same machine load: each
version builds, checks and removes its own lab.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(*args: str, ok_codes: tuple[int, ...] = (0,), tree: Path = REPO) -> tuple[float, int]:
    env = dict(os.environ, PYTHONPATH=str(tree)) if tree != REPO else None
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "netlab", *args], cwd=tree, capture_output=True, text=True,
                          env=env)
    elapsed = time.monotonic() - start
    if done.returncode not in ok_codes:
        sys.exit(f"netlab {' '.join(args)} failed: {done.stderr or done.stdout[-2000:]}")
    return elapsed, done.returncode


def bench(scenario: str, name: str, runs: int, checks: int, check_args: list[str], trees: list[Path]) -> None:
    phases = {tree: {"up": [], "check": [], "down": []} for tree in trees}
    failed = dict.fromkeys(trees, 0)
    names = {tree: name if i == 0 else f"{name}-b" for i, tree in enumerate(trees)}
    for _ in range(runs):
        for tree in trees:
            phases[tree]["up"].append(timed("up", scenario, "--name", names[tree], tree=tree)[0])
        try:
            for _ in range(checks):
                for tree in trees:
                    seconds, code = timed("check", names[tree], *check_args, ok_codes=(0, 1), tree=tree)
                    phases[tree]["check"].append(seconds)
                    failed[tree] += code != 0
        finally:
            for tree in trees:
                phases[tree]["down"].append(timed("down", names[tree], tree=tree)[0])
    for tree in trees:
        label = "" if len(trees) == 1 else f" [{'this tree' if tree == REPO else tree}]"
        print(f"{scenario}{label}: {runs} runs × {checks} checks, seconds (CLI wall clock, incl. interpreter start)")
        for phase, values in phases[tree].items():
            print(f"  {phase:5s} median {statistics.median(values):.2f}  min {min(values):.2f}  max {max(values):.2f}")
        if failed[tree]:
            print(f"  ({failed[tree]} of {len(phases[tree]['check'])} check runs had failing checks)")


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
    parser.add_argument("--compare", type=Path, help="another netlab checkout to measure side by side")
    args = parser.parse_args(argv)
    trees = [REPO] + ([args.compare.resolve()] if args.compare else [])
    for i, scenario in enumerate(args.scenarios):
        name = args.name if len(args.scenarios) == 1 else f"{args.name}-{i}"
        bench(scenario, name, args.runs, args.checks, check_args, trees)


if __name__ == "__main__":
    main()
