"""Scenario snippets for the tunnel-model unit tests."""

from __future__ import annotations

import textwrap

from netlab.lab.resolve import resolve
from netlab.scenario import loader


def scenario(cluster_extra: str = "", *, nodes: int = 2, pods: str | None = None, model: str = "tunnel") -> str:
    node_lines = "\n".join(f"      - {{name: node-{i + 1}}}" for i in range(nodes))
    pod_lines = pods if pods is not None else textwrap.dedent("""\
              - {name: a-1, node: node-1, ports: [{port: 8080}]}
              - {name: a-2, node: node-1}
              - {name: b-1, node: node-2, ports: [{port: 8080}]}""")
    pod_lines = textwrap.indent(textwrap.dedent(pod_lines), "      ")
    extra = textwrap.indent(textwrap.dedent(cluster_extra), "    ") if cluster_extra else ""
    return (f"name: tl\nhosts:\n  - {{name: ecs-1}}\nclusters:\n  - name: c1\n    model: {model}\n"
            f"{extra}    nodes:\n{node_lines}\n    pods:\n{pod_lines}\n")


def lab_of(text: str, features: frozenset[str] = frozenset()):
    s, source = loader.load_text(text, "t.yaml")
    return resolve(s, source, features=features)
