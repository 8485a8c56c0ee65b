"""Graphviz's `dot`, drawing a lab graph as SVG or PNG (Debian package graphviz)."""

from __future__ import annotations

import subprocess

from netlab.errors import ApplyError


def draw(dot_text: str, fmt: str) -> bytes:
    try:
        done = subprocess.run(["dot", f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=120)
    except FileNotFoundError:
        raise ApplyError("Graphviz's `dot` is not installed (Debian package graphviz; run `make setup`)") from None
    if done.returncode != 0:
        raise ApplyError(f"dot -T{fmt}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
