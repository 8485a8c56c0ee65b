"""The `netlab` command: parsing arguments and printing results, nothing else.

Exit codes: 0 success (every check ok), 1 a check failed or the kernel refused something,
2 bad input or invocation (one line on stderr, no traceback).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from netlab import __version__
from netlab.errors import NetlabError, NotRootError, UserError

# Wide enough for the check table when the output goes to a file or a CI log.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _require_root(command: str) -> None:
    if os.geteuid() != 0:
        raise NotRootError(f"`netlab {command}` needs root to create network namespaces; "
                           f"run it with sudo")


def _features() -> frozenset[str]:
    """The kernel features this machine can use (netlab.capabilities names)."""
    from netlab.capabilities import detect

    caps = detect(versions=False)
    return frozenset(name for name, feature in caps.features.items() if feature.usable)


def _load(file: str | None, name: str | None = None, strict: bool | None = None):
    """Scenario file (or the built-in default) → resolved Lab, for this machine's kernel.
    With `strict` given, likely mistakes are reported: as warnings (stderr), or as errors
    (exit 2) when strict."""
    lab, source = _load_with_source(file, name)
    if strict is not None:
        _warn(lab, source, strict)
    return lab


def _warn(lab, source, strict: bool) -> None:
    from netlab.lab import warnings

    found = [w.render(source) for w in warnings.find(lab)]
    if strict and found:
        for line in found[:-1]:
            click.echo(f"netlab: error: {line}", err=True)
        raise UserError(found[-1] + " (--strict: warnings are errors)")
    for line in found:
        click.echo(f"netlab: warning: {line}", err=True)


def _load_with_source(file: str | None, name: str | None = None):
    from netlab.lab.resolve import resolve
    from netlab.scenario import loader

    path = Path(file) if file else loader.builtin_path()
    scenario, source = loader.load(path)
    if name:
        from pydantic import TypeAdapter, ValidationError

        from netlab.scenario.schema import LabName
        try:
            TypeAdapter(LabName).validate_python(name)
        except ValidationError:
            raise UserError(f"--name: '{name}' is not a valid lab name (lowercase letters, digits "
                            "and '-', at most 24 characters)") from None
        scenario = scenario.model_copy(update={"name": name})
    return resolve(scenario, source, _features()), source


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _counts(lab) -> str:
    nodes = sum(len(c.nodes) for c in lab.clusters)
    pods = sum(len(c.pods) for c in lab.clusters)
    return (f"{_plural(len(lab.clusters), 'cluster')}, {_plural(nodes, 'node')}, {_plural(pods, 'pod')}, "
            f"{_plural(len(lab.hosts), 'host')}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netlab")
def cli() -> None:
    """netlab: a managed Kubernetes cluster network on real Linux datapaths.

    Build a lab from a scenario file (`netlab up FILE`), prove what it does with packets
    (`netlab check LAB`), and take it down without a trace (`netlab down LAB`).
    """


STRICT = click.option("--strict", is_flag=True, help="treat warnings (likely mistakes) as errors")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@STRICT
def validate(file: str, strict: bool) -> None:
    """Check a scenario file without building anything; warn about likely mistakes (a
    selector that selects no pod, a targetPort no pod declares, a check to a port nobody
    serves)."""
    lab = _load(file, strict=strict)
    console.print(f"{file}: ok — lab {lab.name}: {_counts(lab)}", highlight=False)


@cli.command()
def doctor() -> None:
    """What this kernel and host offer, and which datapaths labs will use."""
    from netlab.capabilities import detect, format_report

    click.echo(format_report(detect()))


@cli.command()
def schema() -> None:
    """Print the scenario JSON Schema (for editor completion)."""
    from netlab.scenario.schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--name", help="lab name (default: the scenario's name)")
def plan(file: str | None, name: str | None) -> None:
    """Print the operations `up` would run, as the equivalent commands."""
    from netlab import plan as plan_mod

    click.echo(str(plan_mod.build(_load(file, name))))


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--name", help="lab name (default: the scenario's name)")
@click.option("-v", "--verbose", is_flag=True, help="print each operation as it runs")
@STRICT
def up(file: str | None, name: str | None, verbose: bool, strict: bool) -> None:
    """Build a lab from FILE (default: the built-in overview scenario)."""
    _require_root("up")
    _up(_load(file, name, strict=strict), verbose)


def _up(lab, verbose: bool = False) -> None:
    from netlab import plan as plan_mod
    from netlab.apply import executor

    p = plan_mod.build(lab)
    start = time.monotonic()
    executor.up(lab, p, on_op=(lambda op: click.echo(f"  {op}")) if verbose else None)
    console.print(f"lab [bold]{lab.name}[/bold] is up: {_counts(lab)}; {len(p.ops)} operations in "
                  f"{time.monotonic() - start:.2f} s", highlight=False)


@cli.command()
@click.argument("lab", required=False)
@click.option("--all", "all_", is_flag=True, help="take down every lab")
def down(lab: str | None, all_: bool) -> None:
    """Take a lab down: its namespaces, processes and files, nothing else."""
    from netlab.apply import executor

    _require_root("down")
    if bool(lab) == all_:
        raise UserError("give a LAB name or --all")
    start = time.monotonic()
    reports = executor.down_all() if all_ else [executor.down(lab)]
    for r in reports:
        console.print(f"lab [bold]{r.lab}[/bold] is down: {_plural(r.netns, 'namespace')} and "
                      f"{_plural(r.processes, 'process', 'processes')} removed in "
                      f"{time.monotonic() - start:.2f} s", highlight=False)
    if all_ and not reports:
        console.print("no lab was up")


def _read_lab(name: str):
    from netlab.apply.state import StateDir

    return StateDir(name).read()


@cli.command()
@click.argument("lab", required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(lab: str | None, as_json: bool) -> None:
    """Show the labs that are up, or one lab's objects and their live addresses.

    Exit 1 when the lab is degraded (a namespace missing, a process not running)."""
    from netlab.apply import status as status_mod
    from netlab.apply.state import list_labs

    _require_root("status")
    if lab is None:
        labs = list_labs()
        if as_json:
            click.echo(json.dumps({"labs": labs}))
        else:
            console.print("\n".join(labs) if labs else "no lab is up")
        return
    data = status_mod.collect(_read_lab(lab))
    healthy = data["state"] == "up"
    if as_json:
        click.echo(json.dumps(data, indent=2))
        sys.exit(0 if healthy else 1)
    procs = data["processes"]
    table = Table(title=f"lab {lab} ({data['state']}; {procs['running']}/{procs['expected']} processes running)")
    for col in ("name", "kind", "cluster", "netns", "addresses"):
        table.add_column(col)
    for o in data["objects"]:
        table.add_row(o["name"], o["kind"], o["cluster"] or "", o["netns"], ", ".join(o["addresses"]))
    console.print(table)
    sys.exit(0 if healthy else 1)  # a degraded lab is not a healthy one


@cli.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("lab")
@click.argument("obj", metavar="OBJECT")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(lab: str, obj: str, cmd: tuple[str, ...]) -> None:
    """Run CMD inside OBJECT's namespace (`vpc`, a host, or CLUSTER/NODE or CLUSTER/POD).

    Example: netlab exec vpc-basic c1/web-1 -- ip route
    """
    from netlab.apply import processes
    from netlab.lab import refs

    _require_root("exec")
    resolved = _read_lab(lab)
    if obj == "vpc":
        netns = resolved.vpc.netns
    else:
        try:
            target = refs.lookup(resolved, obj)
        except refs.RefError as e:
            raise UserError(f"OBJECT: {e}") from None
        if target.netns is None:
            raise UserError(f"OBJECT: {obj} is an address, not an object with a namespace")
        netns = target.netns
    sys.exit(processes.run_in(netns, list(cmd)))


@cli.command()
@click.argument("lab")
@click.argument("node")
def show(lab: str, node: str) -> None:
    """Show what NODE holds now (CLUSTER/NODE, or NODE if unique): addresses, routes,
    kube-proxy's entry points, and for tunnel-model nodes the virtual switch.

    Open vSwitch: bridges, ports and flows with packet counters. linux-bridge: the VXLAN
    device, its FDB and neighbour entries.
    """
    from netlab.apply import show as show_mod

    _require_root("show")
    resolved = _read_lab(lab)
    if "/" not in node:
        owners = [c.name for c in resolved.clusters if any(n.name == node for n in c.nodes)]
        if len(owners) != 1:
            raise UserError(f"NODE: {'no' if not owners else 'more than one'} cluster has a node '{node}'; "
                            "write CLUSTER/NODE")
        node = f"{owners[0]}/{node}"
    cluster_name, _, node_name = node.partition("/")
    cluster = next((c for c in resolved.clusters if c.name == cluster_name), None)
    found = next((n for n in cluster.nodes if n.name == node_name), None) if cluster else None
    if found is None:
        raise UserError(f"NODE: lab {lab} has no node '{node}'")
    for title, text in show_mod.node_sections(resolved, cluster, found):
        console.rule(f"[bold]{title}[/bold]", align="left")
        click.echo(text.rstrip("\n"))


@cli.command()
@click.argument("lab")
@click.argument("pod_set", metavar="CLUSTER/POD-SET")
@click.option("--replicas", type=int, required=True, help="the number of pods the set should have")
def scale(lab: str, pod_set: str, replicas: int) -> None:
    """Scale a pod set of a running lab; Services are re-synced, nothing else is rebuilt."""
    from netlab.apply import executor
    from netlab.lab.scale import scale as scale_lab

    _require_root("scale")
    old = _read_lab(lab)
    start = time.monotonic()
    change = scale_lab(old, pod_set, replicas)
    executor.change(old, change.lab, change.steps)
    added = ", ".join(f"{p.name} ({p.node}, {p.ip})" for p in change.added)
    removed = ", ".join(p.name for p in change.removed)
    console.print(f"{pod_set}: {replicas} replicas" + (f"; added {added}" if added else "")
                  + (f"; removed {removed}" if removed else "")
                  + f"; {len(change.ops)} operations in {time.monotonic() - start:.2f} s", highlight=False)


@cli.command()
@click.argument("lab")
@click.argument("link", metavar="OBJECT:IFNAME")
@click.option("--delay", help="e.g. 20ms")
@click.option("--jitter", help="e.g. 5ms (needs --delay)")
@click.option("--loss", help="e.g. 1%")
@click.option("--rate", help="e.g. 100mbit")
@click.option("--clear", is_flag=True, help="remove the impairment from this link")
def impair(lab: str, link: str, delay, jitter, loss, rate, clear: bool) -> None:
    """Impair a link of a running lab with tc netem (egress of OBJECT's IFNAME).

    Example: netlab impair vpc-basic c1/node-1:eth0 --delay 20ms --loss 1%
    `netlab check` then measures the delay across that link.
    """
    from pydantic import ValidationError

    from netlab.apply import executor
    from netlab.lab import impair as impair_mod
    from netlab.plan import Netem
    from netlab.scenario.schema import Impairment

    _require_root("impair")
    old = _read_lab(lab)
    kept = [i for i in old.impairments if i.link != link]
    if clear:
        gone = [i for i in old.impairments if i.link == link]
        if not gone:
            raise UserError(f"{link} is not impaired; impaired links: "
                            + (", ".join(i.link for i in old.impairments) or "none"))
        ops = [Netem(gone[0].netns, gone[0].ifname, ())]
        new = old.model_copy(update={"impairments": kept})
    else:
        try:
            spec = Impairment(link=link, delay=delay, jitter=jitter, loss=loss, rate=rate)
            info = impair_mod.resolve_one(old, spec)
        except ValidationError as e:
            err = e.errors()[0]
            raise UserError(f"--{err['loc'][0]}: {err['input']!r} is not valid; "
                            "examples: --delay 20ms --jitter 5ms --loss 1% --rate 100mbit") from None
        except impair_mod.ImpairError as e:
            raise UserError(str(e)) from None
        if "netem" not in _features():
            raise UserError("tc netem (sch_netem) is missing from this kernel (see `netlab doctor`); "
                            "run the lab in the kernel tier")
        ops = [Netem(info.netns, info.ifname, tuple(info.netem_args()))]
        new = old.model_copy(update={"impairments": kept + [info]})
    executor.change(old, new, [ops])
    console.print(f"{link}: {ops[0]}", highlight=False)


@cli.command()
@click.argument("lab")
@click.option("--json", "as_json", is_flag=True, help="print the JSON report")
@click.option("--junit", type=click.Path(dir_okay=False, writable=True), help="also write JUnit XML here")
@click.option("--timeout", type=click.FloatRange(min=0.01), default=None,
              help="seconds of silence before a probe counts as dropped [default: 0.3; an unexpected "
                   "silence is probed again, waiting 2 s or 4 × this]")
@click.option("--only", type=click.Choice(["generated", "scenario"]),
              help="only the generated matrix, or only the scenario's own checks")
@click.option("--cluster", "cluster", metavar="CLUSTER", help="only the checks about this cluster")
@click.option("--failed", "failed_only", is_flag=True, help="list only the checks that failed")
@click.option("--why", "why", is_flag=True, help="print each check with the mechanism behind it")
def check(lab: str, as_json: bool, junit: str | None, timeout: float | None, only: str | None,
          cluster: str | None, failed_only: bool, why: bool) -> None:
    """Probe a lab: the expected matrix plus the scenario's checks. Exit 1 if any fails, or
    if the lab itself is broken (its agent does not serve every declared port)."""
    _require_root("check")
    resolved = _read_lab(lab)
    if cluster is not None and cluster not in [c.name for c in resolved.clusters]:
        raise UserError(f"--cluster: lab {lab} has no cluster '{cluster}'; clusters: "
                        + (", ".join(c.name for c in resolved.clusters) or "(none)"))
    sys.exit(_check(resolved, as_json, junit, timeout, only=only, cluster=cluster, failed_only=failed_only,
                    why=why))


def _check(lab, as_json: bool, junit: str | None, timeout: float | None, *, only: str | None = None,
           cluster: str | None = None, failed_only: bool = False, why: bool = False) -> int:
    from netlab.lab import refs
    from netlab.probe import checks, report, selftest
    from netlab.probe.runner import DEFAULT_TIMEOUT, Runner

    out = report.console_for()
    start = time.monotonic()
    broken = selftest.problems(lab)
    if broken:
        # The agent is not the network: nothing is probed, nothing passes as blocked.
        if as_json:
            click.echo(report.to_json(lab.name, [], broken))
        for line in broken:
            click.echo(f"netlab: lab error: {line}", err=True)
        if junit:
            Path(junit).write_text(report.to_junit(lab.name, [], time.monotonic() - start))
        return 1
    book = refs.address_book(lab)

    def name(ip) -> str:
        owner = book.get(ip)
        return f"{owner} ({ip})" if owner else str(ip)

    results = Runner(timeout=timeout or DEFAULT_TIMEOUT, namer=name).run(
        checks.matrix(lab, only=only, cluster=cluster))
    seconds = time.monotonic() - start
    if as_json:
        click.echo(report.to_json(lab.name, results))
    else:
        report.print_table(lab.name, results, out, seconds, lab=lab, failed_only=failed_only, why=why)
    if junit:
        Path(junit).write_text(report.to_junit(lab.name, results, seconds))
    return 0 if all(r.ok for r in results) else 1


@cli.command()
@click.option("--keep", is_flag=True, help="leave the lab up afterwards")
@click.option("--json", "as_json", is_flag=True, help="print the JSON report instead of the table")
def demo(keep: bool, as_json: bool) -> None:
    """Build the built-in overview lab, check it, print the report, take it down."""
    from netlab.apply import executor
    from netlab.apply.state import list_labs

    _require_root("demo")
    lab = _load(None)
    if lab.name in list_labs():
        err_console.print(f"an earlier demo left lab {lab.name} up; taking it down first")
        executor.down(lab.name)
    out = err_console if as_json else console
    out.print(f"[bold]netlab demo[/bold]: {lab.description}", highlight=False)
    from netlab import plan as plan_mod
    start = time.monotonic()
    executor.up(lab, plan_mod.build(lab))
    out.print(f"lab {lab.name} is up ({_counts(lab)}) in {time.monotonic() - start:.2f} s", highlight=False)
    try:
        code = _check(lab, as_json, None, None)
    finally:
        if not keep:
            executor.down(lab.name)
            out.print(f"lab {lab.name} is down")
        else:
            out.print(f"lab {lab.name} left up: `netlab status {lab.name}`, `netlab down {lab.name}`")
    sys.exit(code)


def _register_groups() -> None:
    from netlab.cli_kubeproxy import kube_proxy

    cli.add_command(kube_proxy)


_register_groups()


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("netlab: interrupted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if e.exit_code == 2 or isinstance(e, click.UsageError) else e.exit_code)
    except NetlabError as e:
        click.echo(f"netlab: {'error' if isinstance(e, UserError) else 'failed'}: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("netlab: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
