"""Check reports: a table for people, JSON for tools (a stable contract), JUnit XML for CI."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.table import Table

from netlab.probe.runner import Result


def as_dict(lab: str, results: list[Result]) -> dict:
    passed = sum(r.ok for r in results)
    return {"lab": lab, "checks": [r.as_json() for r in results],
            "summary": {"passed": passed, "failed": len(results) - passed}}


def to_json(lab: str, results: list[Result]) -> str:
    return json.dumps(as_dict(lab, results), indent=2)


def to_junit(lab: str, results: list[Result], seconds: float) -> str:
    failed = sum(not r.ok for r in results)
    suite = ET.Element("testsuite", name=f"netlab.{lab}", tests=str(len(results)),
                       failures=str(failed), errors="0", time=f"{seconds:.3f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=f"netlab.{lab}", name=r.spec.name)
        if not r.ok:
            ET.SubElement(case, "failure", message=r.detail).text = json.dumps(r.as_json(), indent=1)
        else:
            ET.SubElement(case, "system-out").text = r.detail
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def print_table(lab: str, results: list[Result], console: Console, seconds: float) -> None:
    table = Table(title=f"netlab check: lab {lab}", title_justify="left")
    for col in ("", "check", "from", "to", "proto", "expect", "seen source", "backend", "encap"):
        table.add_column(col, no_wrap=col in ("", "proto", "encap"))
    for r in results:
        s = r.spec
        table.add_row("[green]✓[/green]" if r.ok else "[red]✗[/red]", s.name.split(":")[0], s.src,
                      s.dst + (f":{s.port}" if s.port else ""), s.proto, s.expect,
                      r.seen_source or "", r.backend or "", r.encap or "")
    console.print(table)
    for r in results:
        if not r.ok:
            console.print(f"[red]✗ {r.spec.name}[/red]: {r.detail}", highlight=False)
    passed = sum(r.ok for r in results)
    colour = "green" if passed == len(results) else "red"
    console.print(f"[{colour}]{passed} passed, {len(results) - passed} failed[/{colour}]")
    console.print(f"({len(results)} checks in {seconds:.2f} s; `--json` for every detail)", style="dim")
