"""Shared helpers for tests: load scenarios from text, run the CLI."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from netlab.lab.resolve import resolve
from netlab.scenario import loader

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "netlab" / "scenarios"


def load_text(text: str, file: str = "test.yaml", features=frozenset()):
    scenario, source = loader.load_text(textwrap.dedent(text), file)
    return resolve(scenario, source, features)


def netlab(*args: str, user: int | None = None, timeout: float = 120, check: bool = False,
           input: str | None = None) -> subprocess.CompletedProcess:
    """Run the netlab CLI in a subprocess (the way users do)."""
    return subprocess.run([sys.executable, "-m", "netlab", *args], capture_output=True, text=True,
                          timeout=timeout, user=user, check=check, input=input, cwd=REPO)
