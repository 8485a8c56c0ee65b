"""Check reports: a table for people, JSON for tools (a stable contract), JUnit XML for CI.

The table is one section per cluster (objects named within it: `web-0`, `svc/web`,
`node-1:30080`), sized to the terminal, or to `COLUMNS` when set (also when the output is
piped). Addresses are never cut: their columns are at least as wide as the longest one;
names and check kinds wrap. `--why` prints each check with its mechanism on a second line
instead of the table.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from xml.etree import ElementTree as ET

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from netlab.probe.runner import Result

PIPED_WIDTH = 160  # when the output is a file or a CI log and COLUMNS is not set


def console_for(stderr: bool = False) -> Console:
    """A console as wide as the terminal, or COLUMNS when set (tty or not)."""
    stream = sys.stderr if stderr else sys.stdout
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        width = int(columns)
    else:
        width = None if stream.isatty() else PIPED_WIDTH
    return Console(file=stream, width=width, highlight=False)


def as_dict(lab: str, results: list[Result], errors: Iterable[str] = ()) -> dict:
    passed = sum(r.ok for r in results)
    out = {"lab": lab, "checks": [r.as_json() for r in results],
           "summary": {"passed": passed, "failed": len(results) - passed}}
    errors = list(errors)
    if errors:
        out["errors"] = errors  # the lab itself is broken (e.g. its agent): nothing was probed
    return out


def to_json(lab: str, results: list[Result], errors: Iterable[str] = ()) -> str:
    return json.dumps(as_dict(lab, results, errors), indent=2)


def _slug(text: str) -> str:
    text = text.replace("→", "-to-")
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "check"


def to_junit(lab: str, results: list[Result], seconds: float) -> str:
    """One testcase per check; classname `netlab.<lab>.<cluster or lab>.<kind>`, so CI
    groups them by cluster and by kind of check; time is the check's own."""
    failed = sum(not r.ok for r in results)
    suite = ET.Element("testsuite", name=f"netlab.{lab}", tests=str(len(results)),
                       failures=str(failed), errors="0", time=f"{seconds:.3f}")
    for r in results:
        s = r.spec
        classname = f"netlab.{_slug(lab)}.{_slug(s.cluster or 'lab')}.{_slug(s.kind)}"
        case = ET.SubElement(suite, "testcase", classname=classname, name=s.name, time=f"{r.seconds:.3f}")
        text = f"{r.outcome}: {r.detail}\nwhy: {s.why}"
        if not r.ok:
            ET.SubElement(case, "failure", message=r.detail).text = json.dumps(r.as_json(), indent=1)
        else:
            ET.SubElement(case, "system-out").text = text
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


# -- the table ---------------------------------------------------------------------------

def _local(name: str | None, cluster: str | None) -> str:
    """A name within its cluster's section: `cce-vpc/web-0` → `web-0`."""
    if not name:
        return ""
    if cluster and name.startswith(cluster + "/"):
        return name[len(cluster) + 1:]
    return name


def _target(r: Result) -> str:
    s = r.spec
    text = _local(s.target, s.cluster)
    if s.proto == "udp":
        text += "/udp"
    elif s.proto == "icmp":
        text += f" ping {s.size} B" if s.size else " ping"
    return text


def _backends(r: Result) -> str:
    names = sorted(set(r.backends)) if r.backends else ([r.backend] if r.backend else [])
    local = [_local(b, r.spec.cluster) for b in names]
    return ", ".join(local) if len(local) <= 2 else f"{len(local)} backends"


def _sources(r: Result) -> str:
    seen = sorted(set(r.sources)) if r.sources else ([r.seen_source] if r.seen_source else [])
    return ", ".join(seen)


def _outcome(r: Result) -> Text:
    if r.ok:
        return Text(r.outcome or "", style="green" if r.outcome == "reach" else "cyan")
    if r.outcome == r.spec.expect and r.problems:  # the right outcome, the wrong source, backend...
        wrong = next((w for key, w in _WRONG if key in r.problems[0]), "see below")
        return Text(f"{r.outcome}, but {wrong}", style="red")
    return Text(f"{r.outcome} (want {r.spec.expect})", style="red")


_WRONG = (("saw", "wrong source"), ("backend", "wrong backend"), ("answered by", "wrong backend"),
          ("X-Forwarded-For", "wrong X-Forwarded-For"), ("HTTP", "wrong HTTP status"))


def _sections(results: list[Result]) -> list[tuple[str | None, list[Result]]]:
    order: dict[str | None, list[Result]] = {}
    for r in results:
        order.setdefault(r.spec.cluster, []).append(r)
    return sorted(order.items(), key=lambda kv: kv[0] is None)


def _title(lab, cluster: str | None) -> str:
    if cluster is None:
        return "lab-wide"
    info = next((c for c in lab.clusters if c.name == cluster), None) if lab is not None else None
    return f"cluster {cluster}" + (f" ({info.model} model, {info.proxy_mode})" if info else "")


def _table(title: str, rows: list[Result], width: int) -> Table:
    """Columns sized so that no address is cut: `to` and `from` at least as wide as their
    longest entry (up to a bound), `server saw` one address wide (several wrap at commas);
    `backend` folds when the line would not fit `width`; the check kind takes what is left
    and wraps."""
    cells = [("[green]✓[/green]" if r.ok else "[red]✗[/red]", r.spec.kind, _local(r.spec.src, r.spec.cluster),
              _target(r), _outcome(r), _sources(r), _backends(r), r.encap or "") for r in rows]

    def longest(i: int, bound: int) -> int:
        return min(bound, max((len(str(c[i])) for c in cells), default=0))

    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                  padding=(0, 1), collapse_padding=True, pad_edge=False, show_edge=False)
    ips = [a for c in cells for a in c[5].split(", ") if a]
    widths = {"from": max(4, longest(2, 20)), "to": max(2, longest(3, 24)), "outcome": max(7, longest(4, 24)),
              "server saw": max((len(a) for a in ips), default=10)}
    spare = width - sum(widths.values()) - 1 - 10 - 5 - 14  # the mark, the check kind's least, encap, 2 per gap
    table.add_column("", no_wrap=True, width=1)
    table.add_column("check", ratio=1, min_width=10)
    table.add_column("from", width=widths["from"], overflow="fold")
    table.add_column("to", width=widths["to"], overflow="fold")
    table.add_column("outcome", width=widths["outcome"])
    table.add_column("server saw", width=widths["server saw"])
    table.add_column("backend", width=max(7, min(spare, longest(6, 20))), overflow="fold")
    table.add_column("encap", width=5, no_wrap=True)
    for row in cells:
        table.add_row(*row)
    return table


def print_table(lab_name: str, results: list[Result], console: Console, seconds: float, *,
                lab=None, failed_only: bool = False, why: bool = False) -> None:
    shown = [r for r in results if not (failed_only and r.ok)]
    console.print(f"[bold]netlab check[/bold]: lab {lab_name}")
    for cluster, rows in _sections(shown):
        if why:
            _print_why(_title(lab, cluster), rows, console)
        else:
            console.print(_table(_title(lab, cluster), rows, console.width))
    failures = [r for r in results if not r.ok]
    for r in failures:
        console.print(f"[red]✗ {r.spec.name}[/red]: {r.detail}")
        if r.spec.why and not why:
            console.print(f"  why: {r.spec.why}", style="dim")
    passed = len(results) - len(failures)
    colour = "green" if not failures else "red"
    console.print(f"[{colour}]{passed} passed, {len(failures)} failed[/{colour}]")
    hint = "`--json` for every detail" + ("" if why else ", `--why` for the mechanism behind each check")
    console.print(f"({len(results)} checks in {seconds:.2f} s; {hint})", style="dim")


def _print_why(title: str, rows: list[Result], console: Console) -> None:
    console.print(Text(title, style="bold"))
    for r in rows:
        s = r.spec
        mark = "[green]✓[/green]" if r.ok else "[red]✗[/red]"
        line = Text.from_markup(f"{mark} {s.kind}: ")
        line.append(f"{_local(s.src, s.cluster)} → {_target(r)}  ")
        line.append_text(_outcome(r))
        extra = ", ".join(x for x in (f"saw {_sources(r)}" if _sources(r) else "",
                                      f"answered by {_backends(r)}" if _backends(r) else "",
                                      f"encap {r.encap}" if r.encap else "") if x)
        if extra:
            line.append(f"  ({extra})", style="dim")
        console.print(line)
        console.print(Text("    " + (s.why or "(no explanation)"), style="dim"))
