"""How fast the ELBs' health checker takes a stopped backend out of rotation, and puts it
back (root).

Brings up `scenarios/ingress.yaml` (web-shared and web-dedicated: health checks every 1 s,
2 results to change state, externalTrafficPolicy Local: node-1's only endpoint is web-0),
then, `--repeat` times: stops web-0's agent listener and measures the time until the
checker marks node-1 unhealthy in each pool (and has re-rendered the ELB's table), then
restarts it and measures the time until node-1 is healthy again. The bound the service
states is delay × max_retries (2 s here), plus up to one delay for the phase of the probe
loop when the listener stops.

    sudo PYTHONPATH=. python bench/elb_health.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = str(REPO)  # the lab's processes import this tree

from netlab.apply import executor, processes  # noqa: E402
from netlab.apply.healthcheck import STATUS_FILE  # noqa: E402
from netlab.apply.state import StateDir  # noqa: E402
from netlab.lab.resolve import resolve  # noqa: E402
from netlab.plan.planner import build  # noqa: E402
from netlab.probe import agent  # noqa: E402
from netlab.scenario import loader  # noqa: E402

LAB = "lb-bench"
POOLS = ("cce/default/web-shared:8000/TCP", "cce/default/web-dedicated:8000/TCP")


def set_listener(state: StateDir, stopped: bool) -> float:
    path = state.path / agent.STOPPED_FILE
    path.write_text("cce/web-0:8080/tcp\n" if stopped else "")
    processes.reload(state, "agent")  # returns once the agent has closed (or opened) it
    return time.time()


def wait(state: StateDir, since: float, want: str, timeout: float = 20.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = json.loads((state.path / STATUS_FILE).read_text())["events"]
        hits = {e["pool"]: e["time"] - since for e in events if e["time"] >= since and e["state"] == want
                and e["target"] == "cce/node-1" and not e["initial"]}
        if all(p in hits for p in POOLS):
            return hits
        time.sleep(0.05)
    raise SystemExit(f"node-1 not {want} within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    scenario, source = loader.load(loader.builtin_path("ingress"))
    from netlab.cli import _features

    lab = resolve(scenario.model_copy(update={"name": LAB}), source, _features())
    executor.up(lab, build(lab))
    state = StateDir(LAB)
    out: dict[str, list[float]] = {"out": [], "back": []}
    try:
        for _ in range(args.repeat):
            since = set_listener(state, True)
            out["out"] += wait(state, since, "unhealthy").values()
            since = set_listener(state, False)
            out["back"] += wait(state, since, "healthy").values()
    finally:
        executor.down(LAB)
    report = {k: {"median_s": round(statistics.median(v), 2), "min_s": round(min(v), 2), "max_s": round(max(v), 2),
                  "samples": len(v)} for k, v in out.items()}
    print(json.dumps({"delay_s": 1, "max_retries": 2, **report}, indent=1))


if __name__ == "__main__":
    main()
