"""A lab graph in Graphviz's DOT language (pure). Each node and edge carries an `id` and a
`class` that the HTML page uses for highlighting; Graphviz copies both into its SVG."""

from __future__ import annotations

import re

from netlab.graph.build import Edge, Graph, Node

STYLE = {
    "vpc": {"shape": "box3d", "fillcolor": "#dbe9f6"},
    "subnet": {"shape": "box", "style": "rounded,filled", "fillcolor": "#eef5fb"},
    "host": {"shape": "box", "fillcolor": "#f4f4f4"},
    "node": {"shape": "component", "fillcolor": "#fff2cc"},
    "pod": {"shape": "box", "style": "rounded,filled", "fillcolor": "#d9ead3"},
    "service": {"shape": "hexagon", "fillcolor": "#ead1dc"},
    "internet": {"shape": "doubleoctagon", "fillcolor": "#fce5cd"},
    "igw": {"shape": "box3d", "fillcolor": "#fce5cd"},
    "natgw": {"shape": "box3d", "fillcolor": "#f9cb9c"},
    "elb": {"shape": "box", "style": "filled,bold", "fillcolor": "#cfe2f3"},
    "secgroup": {"shape": "note", "fillcolor": "#fff9db"},
}
EDGE_STYLE = {
    "attach": {"color": "#7f8c8d", "arrowhead": "none"},
    "pod": {"color": "#6aa84f", "arrowhead": "none"},
    "endpoint": {"color": "#a64d79", "style": "dashed"},
    "route": {"color": "#3d85c6", "style": "dotted", "constraint": "false"},
    "tunnel": {"color": "#e69138", "style": "bold", "dir": "both", "constraint": "false"},
    "eip": {"color": "#cc4125", "style": "dashed", "constraint": "false"},
    "peering": {"color": "#674ea7", "style": "bold", "dir": "both"},
    "backend": {"color": "#3d85c6", "style": "dashed", "constraint": "false"},
}
GROUP_STYLE = {"vpc": "#f7fbff", "cluster": "#fffdf5", "node": "#fff8e1", "internet": "#fff5ec"}


def q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def css_id(text: str) -> str:
    return "n-" + re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _attrs(attrs: dict) -> str:
    return ", ".join(f"{k}={q(str(v))}" for k, v in attrs.items())


def _node(n: Node) -> str:
    label = "\n".join([n.label] + n.details)
    attrs = {"label": label, "id": css_id(n.id), "class": f"obj kind-{n.kind}", "tooltip": n.id,
             "style": "filled", **STYLE[n.kind]}
    return f"{q(n.id)} [{_attrs(attrs)}];"


def _edge(i: int, e: Edge) -> str:
    if e.kind == "check":
        style = {"color": "#38761d" if e.ok else "#cc0000", "fontcolor": "#38761d" if e.ok else "#cc0000",
                 "penwidth": "2", "style": "dashed" if "blocked" in e.label else "solid"}
    else:
        style = dict(EDGE_STYLE[e.kind])
    attrs = {"id": f"e{i}", "class": f"rel kind-{e.kind} {css_id(e.src)} {css_id(e.dst)}"
                                     + ("" if e.ok is None else (" ok" if e.ok else " failed")),
             "tooltip": e.title or f"{e.src} — {e.dst}", "label": "" if e.kind == "check" else e.label,
             "fontsize": "9", **style}
    return f"{q(e.src)} -> {q(e.dst)} [{_attrs(attrs)}];"


def render(g: Graph) -> str:
    out = [f"digraph {q('netlab ' + g.name)} {{",
           '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, compound=true, '
           f'labelloc=t, label={q("lab " + g.name + (": " + g.description if g.description else ""))}];',
           '  node [fontname="Helvetica", fontsize=10];',
           '  edge [fontname="Helvetica"];']
    children: dict[str | None, list] = {}
    for grp in g.groups:
        children.setdefault(grp.parent, []).append(grp)

    def emit(group_id: str | None, indent: str) -> None:
        for n in g.nodes:
            if n.group == group_id:
                out.append(indent + _node(n))
        for grp in children.get(group_id, []):
            out.append(f"{indent}subgraph {q('cluster_' + grp.id)} {{")
            out.append(f"{indent}  label={q(grp.label)}; style=\"rounded,filled\"; "
                       f"fillcolor={q(GROUP_STYLE[grp.kind])}; color=\"#999999\"; id={q(css_id(grp.id))};")
            emit(grp.id, indent + "  ")
            out.append(f"{indent}}}")

    emit(None, "  ")
    out += ["  " + _edge(i, e) for i, e in enumerate(g.edges)]
    out.append("}")
    return "\n".join(out) + "\n"
