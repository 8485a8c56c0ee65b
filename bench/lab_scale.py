#!/usr/bin/env python3
"""Time `up`, `check` and `down` of a lab (default: the 200-pod VPC-model scenario).

Usage: sudo .venv/bin/python bench/lab_scale.py [SCENARIO] [--runs N]
Each phase runs through the CLI, as users run it; figures are wall-clock seconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(*args: str) -> float:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "netlab", *args], cwd=REPO, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"netlab {' '.join(args)} failed: {done.stderr or done.stdout[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="scenarios/scale-200.yaml")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--name", default="bench-scale")
    args = parser.parse_args()
    phases: dict[str, list[float]] = {"up": [], "check": [], "down": []}
    for _ in range(args.runs):
        phases["up"].append(timed("up", args.scenario, "--name", args.name))
        try:
            phases["check"].append(timed("check", args.name))
        finally:
            phases["down"].append(timed("down", args.name))
    print(f"{args.scenario}: {args.runs} runs, seconds (CLI wall clock, incl. ~0.3 s interpreter start)")
    for phase, values in phases.items():
        print(f"  {phase:5s} median {statistics.median(values):.2f}  min {min(values):.2f}  max {max(values):.2f}")


if __name__ == "__main__":
    main()
