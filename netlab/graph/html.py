"""One self-contained HTML page for a lab graph (pure): Graphviz's SVG inline, the lab's
objects as JSON, a little CSS and JavaScript and nothing fetched from anywhere.

Hovering an object highlights it, the lines that touch it and the objects at their other
ends; clicking shows its details. After `netlab check` the checks are drawn (green: as
expected, red: not) and listed. The page writes what it drew into `#summary` once loaded,
and with `#selftest` in the address it hovers the first pod and reports what lit up in
`#selftest`, so a headless browser can check what a person would see.
"""

from __future__ import annotations

import html
import json
import re

from netlab.graph.build import Graph, summary
from netlab.graph.dot import css_id

CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0; display: flex; height: 100vh; }
#drawing { flex: 1; overflow: auto; padding: 8px; }
#side { width: 320px; border-left: 1px solid #ccc; padding: 10px; overflow: auto; font-size: 13px; }
h1 { font-size: 16px; margin: 0 0 6px; }
#summary { color: #444; margin-bottom: 8px; }
#details pre { white-space: pre-wrap; background: #f6f6f6; padding: 6px; }
.legend span { display: inline-block; margin-right: 8px; }
.checks li.failed { color: #cc0000; } .checks li.ok { color: #38761d; }
svg .dim { opacity: 0.18; } svg .hl polygon, svg .hl path, svg .hl ellipse { stroke-width: 3px; }
svg g.node { cursor: pointer; }
#drawing svg { max-width: 100%; height: auto; }
#selftest { display: none; }
"""

JS = """
(function () {
  const data = JSON.parse(document.getElementById('lab-data').textContent);
  const svg = document.querySelector('#drawing svg');
  const nodes = Array.from(svg.querySelectorAll('g.node.obj'));
  const edges = Array.from(svg.querySelectorAll('g.edge.rel'));
  const byId = new Map(data.nodes.map(n => [n.css, n]));
  function ends(edge) { return Array.from(edge.classList).filter(c => c.startsWith('n-')); }
  function highlight(node) {
    const lit = new Set([node.id]);
    const litEdges = edges.filter(e => e.classList.contains(node.id));
    litEdges.forEach(e => ends(e).forEach(id => lit.add(id)));
    nodes.forEach(n => { n.classList.toggle('dim', !lit.has(n.id)); n.classList.toggle('hl', n.id === node.id); });
    edges.forEach(e => { const on = litEdges.includes(e); e.classList.toggle('dim', !on); e.classList.toggle('hl', on); });
    return {node: node.id, edges: litEdges.length, neighbours: Array.from(lit).filter(id => id !== node.id).sort()};
  }
  function clear() { svg.querySelectorAll('.dim, .hl').forEach(el => el.classList.remove('dim', 'hl')); }
  function show(node) {
    const info = byId.get(node.id);
    if (!info) return;
    document.getElementById('details').innerHTML = '<b></b><pre></pre>';
    document.querySelector('#details b').textContent = info.id;
    document.querySelector('#details pre').textContent = [info.label].concat(info.details).join('\\n');
  }
  nodes.forEach(n => {
    n.addEventListener('mouseenter', () => highlight(n));
    n.addEventListener('mouseleave', clear);
    n.addEventListener('click', () => show(n));
  });
  const drawn = nodes.filter(n => { const b = n.getBBox(); return b.width > 0 && b.height > 0; }).length;
  const s = data.summary;
  document.getElementById('summary').textContent = drawn + ' objects drawn, ' + edges.length + ' links; checks: '
    + s.checks.ok + ' as expected, ' + s.checks.failed + ' not';
  if (location.hash === '#selftest') {
    const pod = nodes.find(n => n.classList.contains('kind-pod'));
    const r = highlight(pod); show(pod);
    const dimmed = svg.querySelectorAll('g.node.dim').length;
    document.getElementById('selftest').textContent = JSON.stringify(Object.assign(r, {dimmed: dimmed}));
  }
  document.body.dataset.ready = 'yes';
})();
"""


def render(g: Graph, svg: str) -> str:
    svg = re.sub(r"^<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?", "", svg.strip())
    data = {"lab": g.name, "summary": summary(g),
            "nodes": [{"id": n.id, "css": css_id(n.id), "kind": n.kind, "label": n.label, "details": n.details}
                      for n in g.nodes]}
    checks = [e for e in g.edges if e.kind == "check"]
    check_items = "".join(f'<li class="{"ok" if e.ok else "failed"}">{"✓" if e.ok else "✗"} {html.escape(e.title)}</li>'
                          for e in sorted(checks, key=lambda e: bool(e.ok)))
    failed = sum(1 for e in checks if not e.ok)
    legend = ('<div class="legend"><span>▭ pod</span><span>⬡ Service</span><span>▯ node</span>'
              '<span style="color:#e69138">━ VXLAN tunnel</span><span style="color:#3d85c6">┈ VPC route</span>'
              '<span style="color:#a64d79">╌ endpoint</span><span style="color:#38761d">━ check reached</span>'
              '<span style="color:#38761d">╌ check blocked</span><span style="color:#cc0000">━ check not as '
              'expected</span></div>')
    payload = json.dumps(data).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>netlab {html.escape(g.name)}</title>
<style>{CSS}</style></head>
<body>
<div id="drawing">{svg}</div>
<div id="side">
<h1>lab {html.escape(g.name)}</h1>
<div>{html.escape(g.description)}</div>
<div id="summary">(drawing…)</div>
{legend}
<p>Hover an object to see what it connects to; click it for its details.</p>
<div id="details"></div>
{f'<details{" open" if failed else ""}><summary><b>checks</b> ({len(checks)} drawn, {failed} not as expected)</summary><ul class="checks">' + check_items + '</ul></details>' if checks else '<p>No check yet: <code>netlab check</code> adds them.</p>'}
<div id="selftest"></div>
</div>
<script type="application/json" id="lab-data">{payload}</script>
<script>{JS}</script>
</body></html>
"""
