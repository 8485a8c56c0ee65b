"""`netlab graph`: the default scenario drawn as SVG and as an HTML page that a real headless
browser (Debian's Chromium) renders: it draws every object, and hovering a pod lights up its
links; a running lab's checks are drawn after `netlab check`, a failed one in red."""

from __future__ import annotations

import html
import json
import re
import subprocess
import tempfile
from pathlib import Path

from tests.helpers import netlab

CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--virtual-time-budget=3000"]


def browse(page: Path) -> str:
    """The page's DOM after its scripts ran, in headless Chromium."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([*CHROMIUM, f"--user-data-dir={profile}", "--dump-dom", f"file://{page}#selftest"],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def element(dom: str, id_: str) -> str:
    return re.search(rf'<div id="{id_}">([^<]*)</div>', dom).group(1)


def test_default_scenario_as_svg_and_as_a_page_a_browser_shows(tmp_path):
    svg, page = tmp_path / "default.svg", tmp_path / "default.html"
    for out in (svg, page):
        done = netlab("graph", "netlab/scenarios/default.yaml", "-o", str(out))
        assert done.returncode == 0, done.stderr
    text = html.unescape(svg.read_text())  # Graphviz writes "-" as &#45; in attributes
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert 'id="n-vpc_vpc"' in text and 'class="node obj kind-pod"' in text and "VXLAN" in text
    objects = len(re.findall(r'class="node obj ', text))

    dom = browse(page)
    assert 'data-ready="yes"' in dom
    assert element(dom, "summary").startswith(f"{objects} objects drawn, ")  # every object has a size
    selftest = json.loads(element(dom, "selftest").replace("&quot;", '"'))
    assert selftest["node"].startswith("n-pod_") and selftest["edges"] >= 2  # its node, its Services
    assert any(n.startswith("n-node_") for n in selftest["neighbours"]) and selftest["dimmed"] > 0


def test_a_running_labs_checks_are_drawn_red_when_failed(lab, tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(Path("netlab/scenarios/vpc-basic.yaml").read_text().replace(
        "checks:\n", "checks:\n  - {from: ecs-1, to: 'c1/web-1:8081', expect: reach}\n"))
    lab(str(scenario), "tr-graph")
    check = netlab("check", "tr-graph", "--json", "--timeout", "0.5")
    assert check.returncode == 1
    report = json.loads(check.stdout)
    page = tmp_path / "lab.html"
    done = netlab("graph", "tr-graph", "-o", str(page))
    assert done.returncode == 0, done.stderr
    text = html.unescape(page.read_text())
    assert text.count("kind-check") >= 5 and " failed" in text
    assert "✗ scenario check: ecs-1 → c1/web-1:8081 tcp" in text
    dom = browse(page)
    summary = element(dom, "summary")
    ok = int(re.search(r"checks: (\d+) as expected", summary).group(1))
    assert 0 < ok < report["summary"]["passed"] + 1 and summary.endswith(", 1 not")
