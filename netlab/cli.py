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


def _writable_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A file option that will be written: its directory must exist and be writable, so a
    bad path fails before any work, not after it."""
    if value is not None:
        folder = os.path.dirname(os.path.abspath(value))
        if not os.path.isdir(folder):
            raise click.BadParameter(f"directory {folder} does not exist", ctx, param)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise click.BadParameter(f"directory {folder} is not writable", ctx, param)
    return value


def _features() -> frozenset[str]:
    """The kernel features this machine can use (netlab.capabilities names)."""
    from netlab.capabilities import detect

    caps = detect(versions=False)
    return frozenset(name for name, feature in caps.features.items() if feature.usable)


class LabNameType(click.ParamType):
    """A lab name (LAB, `--name`): checked against the schema's LabName before anything uses
    it, so `..`, `.`, `''` or `a/b` never become a path; exit 2 with one line otherwise."""

    name = "lab"

    def convert(self, value, param, ctx):
        from netlab.lab import naming

        try:
            return naming.check_lab_name(value)
        except ValueError as e:
            label = param.opts[0] if param is not None and param.param_type_name == "option" else "LAB"
            raise UserError(f"{label}: {e}") from None


LAB = LabNameType()


def _load(file: str | None, name: str | None = None, *, host: bool = True, strict: bool | None = None):
    """Scenario file (or the built-in default) → resolved Lab, for this machine's kernel
    (`host`), or judged on its own (`host=False`: as if the kernel had every feature).
    With `strict` given, likely mistakes are reported: as warnings (stderr), or as errors
    (exit 2) when strict."""
    lab, source = _load_with_source(file, name, host=host)
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


def _load_with_source(file: str | None, name: str | None = None, *, host: bool = True):
    from netlab.lab.resolve import resolve
    from netlab.scenario import loader

    path = Path(file) if file else loader.builtin_path()
    scenario, source = loader.load(path)
    if name is not None:  # already checked by LAB
        scenario = scenario.model_copy(update={"name": name})
    return resolve(scenario, source, _features() if host else None), source


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
@click.option("--host", is_flag=True, help="also refuse what this machine's kernel cannot run "
                                           "(IPVS, netem, the OVS kernel datapath), as `up` does")
@STRICT
def validate(file: str, host: bool, strict: bool) -> None:
    """Check a scenario file without building anything (the file alone; `--host`: also
    whether this machine can run it). Warn about likely mistakes: a selector that selects
    no pod, a targetPort no pod declares, a check to a port nobody serves."""
    lab = _load(file, host=host, strict=strict)
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
@click.option("--name", type=LAB, help="lab name (default: the scenario's name)")
@click.option("--script", is_flag=True, help="print a runnable bash script that builds the lab by hand")
def plan(file: str | None, name: str | None, script: bool) -> None:
    """Print the operations `up` would run, as the equivalent commands (`--script`: as a
    bash script that builds the same lab, for typing it by hand)."""
    from netlab.plan.planner import build

    lab = _load(file, name)
    p = build(lab)
    if not script:
        click.echo(p.render(bodies=True))
        return
    from netlab import paths
    from netlab.apply.state import make_record
    from netlab.plan import script as script_mod

    record = json.dumps(make_record(lab, phase="up", netns=lab.netns_names()), indent=1)
    click.echo(script_mod.render(p, paths.lab_dir(lab.name), source=file or "(built-in default)",
                                 register=record, netns=lab.netns_names()), nl=False)


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--name", type=LAB, help="lab name (default: the scenario's name)")
@click.option("-v", "--verbose", is_flag=True, help="print each operation as it runs")
@click.option("--placement", type=click.Path(dir_okay=False),
              help="a lab split across machines (a simulation, docs/scale-out.md): which "
                   "machine holds which hosts and nodes; needs --machine")
@click.option("--machine", help="with --placement: the machine whose part to build here")
@STRICT
def up(file: str | None, name: str | None, verbose: bool, placement: str | None,
       machine: str | None, strict: bool) -> None:
    """Build a lab from FILE (default: the built-in overview scenario); warn about likely
    mistakes first (`--strict`: refuse them)."""
    _require_root("up")
    if bool(placement) != bool(machine):
        raise UserError("--placement and --machine go together")
    lab = _load(file, name, strict=strict)
    if placement:
        from netlab.lab.placement import place
        lab = place(lab, placement, machine)
    _up(lab, verbose)


def _up(lab, verbose: bool = False) -> None:
    from netlab.apply import executor
    from netlab.plan.planner import build

    p = build(lab)
    start = time.monotonic()
    executor.up(lab, p, on_op=(lambda op: click.echo(f"  {op}")) if verbose else None)
    console.print(f"lab [bold]{lab.name}[/bold] is up: {_counts(lab)}; {len(p.ops)} operations in "
                  f"{time.monotonic() - start:.2f} s", highlight=False)


@cli.command()
@click.argument("lab", required=False, type=LAB)
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
@click.argument("lab", required=False, type=LAB)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(lab: str | None, as_json: bool) -> None:
    """Show the labs that are up, or one lab's objects and their live addresses.

    Also names labs whose state was lost (orphaned) and damaged state. Exit 1 when LAB is
    degraded (a namespace missing, a process dead) or orphaned.
    """
    from netlab.apply import status as status_mod

    _require_root("status")
    if lab is None:
        overview = status_mod.overview()
        if as_json:
            click.echo(json.dumps(overview))
            return
        lines = [f"{name}: {overview['damaged'][name]}" if name in overview["damaged"] else name
                 for name in overview["labs"]]
        lines += [f"{o['lab']}: {o['state']}" for o in overview["orphaned"]]
        console.print("\n".join(lines) if lines else "no lab is up", highlight=False)
        return
    from netlab.lab import inventory

    orphan = status_mod.orphaned(lab)
    if orphan:
        click.echo(json.dumps(orphan, indent=2) if as_json else f"lab {lab}: {orphan['state']}")
        sys.exit(1)
    resolved = _read_lab(lab)
    data = inventory.extend_status(resolved, status_mod.collect(resolved))
    healthy = data["state"] == "up"
    if as_json:
        click.echo(json.dumps(data, indent=2))
        sys.exit(0 if healthy else 1)
    procs = data["processes"]
    table = Table(title=f"lab {lab} ({data['state']}; {procs['running']}/{procs['expected']} processes running)")
    for col in ("name", "kind", "cluster", "node", "labels", "netns", "addresses"):
        table.add_column(col)
    for o in data["objects"]:
        labels = ",".join(f"{k}={v}" for k, v in o.get("labels", {}).items())
        table.add_row(o["name"], o["kind"], o["cluster"] or "", o.get("node", ""), labels, o["netns"],
                      ", ".join(o["addresses"]))
    console.print(table)
    if data["services"]:
        svcs = Table(title="Services")
        for col in ("cluster", "service", "type", "ClusterIP", "ports", "endpoints"):
            svcs.add_column(col)
        for s in data["services"]:
            name = s["name"] if s["namespace"] == "default" else f"{s['namespace']}/{s['name']}"
            svcs.add_row(s["cluster"], name, s["type"], s["cluster_ip"],
                         ", ".join(inventory.port_text(p) for p in s["ports"]),
                         ", ".join(f"{e['pod'].split('/', 1)[1]} {e['address']}" for e in s["endpoints"]) or "(none)")
        console.print(svcs)
    sys.exit(0 if healthy else 1)  # a degraded lab is not a healthy one


@cli.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("lab", type=LAB)
@click.argument("obj", metavar="OBJECT")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(lab: str, obj: str, cmd: tuple[str, ...]) -> None:
    """Run CMD inside OBJECT's namespace (a VPC's router such as `vpc`, a host, or
    CLUSTER/NODE or CLUSTER/POD; a node or pod named alone when one cluster has it; the
    cloud's `internet`, `internet/HOST`, `igw/VPC`, `natgw/NAME`, `elb/NAME`). Inside a
    tunnel-model node,
    ovs-vsctl, ovs-ofctl and ovs-appctl talk to that node's own Open vSwitch.

    Example: netlab exec vpc-basic c1/web-1 -- ip route
    """
    from netlab import models
    from netlab.apply import processes
    from netlab.lab.model import NodeInfo

    _require_root("exec")
    resolved = _read_lab(lab)
    target = _object(resolved, obj)
    argv = list(cmd)
    if isinstance(target.obj, NodeInfo):
        cluster = resolved.cluster(target.obj.cluster)
        argv = models.get(cluster.model).exec_argv(resolved, cluster, target.obj, argv)
    sys.exit(processes.run_in(target.netns, argv))


def _object(resolved, text: str, what: str = "OBJECT"):
    """A lab object with a namespace, named as users write it (bare names when unique)."""
    from netlab.lab import refs

    try:
        target = refs.lookup_object(resolved, text)
    except refs.RefError as e:
        raise UserError(f"{what}: {e}") from None
    if target.netns is None:
        raise UserError(f"{what}: {text} is an address, not an object with a namespace")
    return target


@cli.command()
@click.argument("lab", type=LAB)
@click.argument("where", metavar="OBJECT[:IFACE]")
@click.option("-w", "write", type=click.Path(dir_okay=False, writable=True), callback=_writable_file,
              help="write a pcap file (Wireshark opens it) instead of printing packets")
@click.option("--filter", "bpf", metavar="BPF", help="a tcpdump filter, e.g. 'udp port 4789'")
@click.option("--count", type=click.IntRange(min=1), help="stop after N packets")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), help="stop after this long")
def capture(lab: str, where: str, write: str | None, bpf: str | None, count: int | None,
            seconds: float | None) -> None:
    """Capture packets on OBJECT's interface (default eth0) with tcpdump inside its namespace.

    Example: netlab capture tunnel-basic node-1:eth0 -w vxlan.pcap --filter 'udp port 4789' --count 10
    """
    import re

    from netlab.apply import capture as capture_mod

    _require_root("capture")
    resolved = _read_lab(lab)
    name, _, ifname = where.partition(":")
    ifname = ifname or "eth0"
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,15}", ifname):
        raise UserError(f"IFACE: '{ifname}' is not an interface name (at most 15 letters, digits, '_.@-')")
    target = _object(resolved, name)
    capture_mod.capture(target.netns, ifname, out=Path(write) if write else None, bpf=bpf,
                        count=count, seconds=seconds)
    if write:
        err_console.print(f"wrote {write}", highlight=False)


@cli.command()
@click.argument("source", metavar="LAB|FILE")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              callback=_writable_file, help="the file to write: .svg, .png, .dot or .html (a self-contained page)")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "dot", "html"]),
              help="default: from the output file's extension")
def graph(source: str, output: str, fmt: str | None) -> None:
    """Draw a lab: VPCs, subnets, route tables, nodes, pods, tunnels, Services and, after
    `netlab check`, the checks (green: as expected, red: not). LAB is a running lab; FILE a
    scenario, drawn without building anything.

    Example: netlab graph vpc-basic -o vpc-basic.html
    """
    from netlab.apply import graphviz
    from netlab.graph import build, dot, html

    fmt = fmt or Path(output).suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "dot", "html"):
        raise UserError(f"-o: {output}: say which format with an extension .svg, .png, .dot or .html, or --format")
    checks = None
    if Path(source).is_file():
        lab = _load(source, host=False)
    else:
        from pydantic import TypeAdapter, ValidationError

        from netlab.apply.state import StateDir
        from netlab.scenario.types import LabName
        try:
            TypeAdapter(LabName).validate_python(source)
        except ValidationError:
            raise UserError(f"LAB|FILE: '{source}' is neither a file nor a lab name") from None
        lab = _read_lab(source)
        last = StateDir(source).path / "last-check.json"
        if last.exists():
            checks = json.loads(last.read_text())
    g = build.build(lab, checks)
    text = dot.render(g)
    if fmt == "dot":
        Path(output).write_text(text)
    elif fmt == "html":
        Path(output).write_text(html.render(g, graphviz.draw(text, "svg").decode()))
    else:
        Path(output).write_bytes(graphviz.draw(text, fmt))
    s = build.summary(g)
    console.print(f"wrote {output}: {sum(s['objects'].values())} objects, {len(g.edges)} links"
                  + (f", {s['checks']['ok'] + s['checks']['failed']} check edges (the "
                     f"{len(checks.get('checks', []))} checks of the last `netlab check`, one edge per "
                     "pair of objects and protocol)" if checks else ""), highlight=False)


@cli.command(name="trace")
@click.argument("lab", type=LAB)
@click.argument("src", metavar="FROM")
@click.argument("dst", metavar="TO[:PORT]")
@click.option("--proto", type=click.Choice(["tcp", "udp", "icmp"]),
              help="default: tcp with a PORT, icmp without")
@click.option("--json", "as_json", is_flag=True, help="print the stable JSON report")
@click.option("--timeout", default=2.0, show_default=True, help="seconds to wait for the answer")
def trace_(lab: str, src: str, dst: str, proto: str | None, as_json: bool, timeout: float) -> None:
    """Send one real probe FROM an object TO an object, Service or address, and show every
    hop: routes, netfilter rules (iptables and nftables), NAT, Open vSwitch tables, VXLAN,
    and where and why it died. Exit 1 if it was not answered.

    Example: netlab trace services ipt/client ipt/svc/web:80
    """
    from netlab.apply import trace as trace_mod
    from netlab.lab import refs
    from netlab.trace.path import Probe

    _require_root("trace")
    resolved = _read_lab(lab)
    source = _object(resolved, src, "FROM")
    try:
        name, port = refs.split_port(dst)
        if "/svc/" in name or "/" not in name and not _is_address(name):
            target = refs.lookup_object(resolved, name) if "/svc/" not in name else refs.lookup(resolved, name)
        else:
            target = refs.lookup(resolved, name)
    except refs.RefError as e:
        raise UserError(f"TO: {e}") from None
    proto = proto or ("tcp" if port else "icmp")
    if proto != "icmp" and port is None:
        raise UserError(f"TO: {proto} needs a port: {dst}:PORT")
    if proto == "icmp" and port is not None:
        raise UserError("TO: ICMP has no port; drop ':PORT' or give --proto tcp|udp")
    probe = Probe(src_object=source.name, src_netns=source.netns, src_ip=str(source.ip), dst=target.name,
                  dst_ip=str(target.ip), proto=proto, ident=trace_mod.pick_ident(proto), port=port)
    report = trace_mod.trace(resolved, probe, timeout=timeout)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_trace(report)
    sys.exit(0 if report["result"]["reached"] else 1)


def _is_address(text: str) -> bool:
    from ipaddress import ip_address

    try:
        ip_address(text)
        return True
    except ValueError:
        return False


def _print_trace(report: dict) -> None:
    from netlab.trace.path import hop_lines

    p = report["probe"]
    ident = f"sport {p['sport']}" if "sport" in p else f"icmp id {p['icmp_id']}"
    console.print(f"[bold]trace[/bold] {report['from']} → {report['to']} {report['proto']} "
                  f"({p['src']} → {p['dst']}, {ident})", highlight=False)
    for direction in ("request", "reply"):
        hops = [h for h in report["hops"] if h["direction"] == direction]
        if not hops:
            continue
        table = Table(title=f"{direction}", title_justify="left", show_lines=True)
        for col in ("#", "where", "what"):
            table.add_column(col, overflow="fold")
        for i, hop in enumerate(hops, 1):
            where, what, details = hop_lines(hop)
            table.add_row(str(i), where, "\n".join([what] + [f"  {d}" for d in details]))
        console.print(table)
    for kp in report["kube_proxy"]:
        console.print(f"kube-proxy on {kp['object']}: {' → '.join(kp['chains'])}"
                      + (f"; DNAT to {kp['dnat']}" if kp["dnat"] else ""), highlight=False)
    r = report["result"]
    colour = "green" if r["reached"] else "red"
    console.print(f"[{colour}]{'reached' if r['reached'] else 'not reached'}[/{colour}]: {r['detail']}", highlight=False)
    if report["died"]:
        d = report["died"]
        console.print(f"[red]died[/red] ({d['direction']}) at {d['object'] or '?'}: {d['reason']}", highlight=False)


@cli.command()
@click.argument("lab", type=LAB)
@click.argument("node")
def show(lab: str, node: str) -> None:
    """Show what NODE holds now (CLUSTER/NODE, or NODE if unique): addresses, routes,
    kube-proxy's entry points, and for tunnel-model nodes the virtual switch; or what an
    ELB holds (elb/NAME): its listeners, layer-4 datapath, members' health, nginx.

    Open vSwitch: bridges, ports and flows with packet counters. linux-bridge: the VXLAN
    device, its FDB and neighbour entries.
    """
    from netlab.apply import show as show_mod

    _require_root("show")
    resolved = _read_lab(lab)
    if node.startswith("elb/"):
        found_elb = next((e for e in resolved.elbs if e.ref == node), None)
        if found_elb is None:
            raise UserError(f"NODE: lab {lab} has no ELB '{node[4:]}'; ELBs: "
                            + (", ".join(e.name for e in resolved.elbs) or "none"))
        for title, text in show_mod.elb_sections(resolved, found_elb):
            console.rule(f"[bold]{title}[/bold]", align="left")
            click.echo(text.rstrip("\n"))
        return
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
@click.argument("lab", type=LAB)
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
@click.argument("lab", type=LAB)
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
    from netlab.plan.ops import Netem
    from netlab.scenario.types import Impairment

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
@click.argument("lab", type=LAB)
@click.argument("natgw", metavar="NATGW")
@click.argument("action", required=False, type=click.Choice(["add", "remove"]))
@click.argument("source", required=False)
@click.option("--eip", help="add: the gateway's EIP to SNAT to (default: its first)")
def nat(lab: str, natgw: str, action: str | None, source: str | None, eip: str | None) -> None:
    """List, add or remove a NAT gateway's SNAT rules on a running lab.

    SOURCE is a subnet of the gateway's VPC (its name, or a CIDR inside it).
    Example: netlab nat access ngw remove nodes
    `netlab check` then expects that subnet's traffic to the internet to be blocked.
    """
    from ipaddress import IPv4Address

    from netlab.apply import executor
    from netlab.cloud.natgw import NatError, change

    _require_root("nat")
    old = _read_lab(lab)
    if action and not source:
        raise UserError(f"{action} needs a SOURCE (a subnet name or CIDR)")
    try:
        address = IPv4Address(eip) if eip else None
    except ValueError:
        raise UserError(f"--eip: '{eip}' is not an IPv4 address") from None
    try:
        new, gw, ops = change(old, natgw, add=source if action == "add" else None,
                              remove=source if action == "remove" else None, eip=address)
    except NatError as e:
        raise UserError(str(e)) from None
    if action:
        executor.change(old, new, [ops])
    rules = ", ".join(f"{r.subnet} ({r.source}) → {r.eip}" for r in gw.snat_rules) or "none"
    console.print(f"NAT gateway {gw.name} (VPC {gw.vpc}, EIPs {', '.join(map(str, gw.eips))}): "
                  f"SNAT rules: {rules}", highlight=False)


@cli.command()
@click.argument("lab", type=LAB)
@click.argument("target", metavar="OBJECT:PORT[/PROTO]")
@click.argument("action", type=click.Choice(["stop", "start"]))
def listener(lab: str, target: str, action: str) -> None:
    """Stop or restart one listener of the pod agent (a pod's or host's port) on a running lab.

    Example: netlab listener ingress cce/web-0:8080 stop
    A load balancer's health check then takes that backend out of rotation.
    """
    from netlab.apply import processes
    from netlab.apply.state import StateDir
    from netlab.probe import listeners as agent

    _require_root("listener")
    resolved = _read_lab(lab)
    head, proto = target, ""
    if target.lower().endswith(("/tcp", "/udp")):
        head, _, proto = target.rpartition("/")
    wanted = [lst for lst in agent.listeners(resolved)
              if f"{lst.owner}:{lst.port}" == head and (not proto or lst.proto == proto.lower())]
    if not wanted:
        served = ", ".join(sorted({f"{lst.owner}:{lst.port}/{lst.proto}" for lst in agent.listeners(resolved)}))
        raise UserError(f"OBJECT:PORT: '{target}' is not a listener of lab {lab}; listeners: {served or 'none'}")
    state = StateDir(lab)
    path = state.path / agent.STOPPED_FILE
    stopped = set(path.read_text().split()) if path.exists() else set()
    keys = {agent.key(lst) for lst in wanted}
    stopped = stopped | keys if action == "stop" else stopped - keys
    path.write_text("".join(f"{k}\n" for k in sorted(stopped)))
    processes.reload(state, "agent")
    console.print(f"{', '.join(sorted(keys))}: {'stopped' if action == 'stop' else 'serving'}", highlight=False)


@cli.command()
@click.argument("lab", type=LAB)
@click.option("--json", "as_json", is_flag=True, help="print the JSON report")
@click.option("--junit", type=click.Path(dir_okay=False, writable=True), callback=_writable_file,
              help="also write JUnit XML here")
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

    # A split lab checks from this machine's part; the destinations may be anywhere.
    specs = [c for c in checks.matrix(lab, only=only, cluster=cluster) if lab.is_local(c.src_netns)]
    results = Runner(timeout=timeout or DEFAULT_TIMEOUT, namer=name).run(specs)
    seconds = time.monotonic() - start
    if as_json:
        click.echo(report.to_json(lab.name, results))
    else:
        report.print_table(lab.name, results, report.console_for(), seconds, lab=lab, failed_only=failed_only,
                           why=why)
    if junit:
        Path(junit).write_text(report.to_junit(lab.name, results, seconds))
    _save_last_check(lab.name, report.to_json(lab.name, results))
    return 0 if all(r.ok for r in results) else 1


def _save_last_check(lab: str, text: str) -> None:
    """The last report, in the lab's state directory: `netlab graph` draws the checks."""
    from netlab.apply.state import StateDir

    state = StateDir(lab)
    if state.exists():
        tmp = state.path / "last-check.json.tmp"
        tmp.write_text(text)
        tmp.replace(state.path / "last-check.json")


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
    from netlab.plan.planner import build
    start = time.monotonic()
    executor.up(lab, build(lab))
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
    from netlab.cli_course import course
    from netlab.cli_kube import eip, get, patch
    from netlab.cli_kubeproxy import kube_proxy
    from netlab.cli_sg import sg

    cli.add_command(kube_proxy)
    cli.add_command(sg)
    for command in (course, get, patch, eip):
        cli.add_command(command)


_register_groups()


def main() -> None:
    """The console script."""
    sys.exit(run(sys.argv[1:]))


def run(args: list[str]) -> int:
    """Run one command; the only place where errors become an exit code and one line on
    stderr (no traceback): 2 for bad input or invocation, the error's own code otherwise."""
    try:
        # Not standalone: click returns instead of exiting, with the code of ctx.exit(n).
        result = cli.main(args, prog_name="netlab", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("netlab: interrupted")
        return 130
    except click.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""
        _complain(f"netlab: error: {e.format_message()}{hint}")
        return 2
    except click.ClickException as e:
        _complain(f"netlab: error: {e.format_message()}")
        return e.exit_code
    except NetlabError as e:
        _complain(f"netlab: {'error' if isinstance(e, UserError) else 'failed'}: {e}")
        return e.exit_code
    except BrokenPipeError:
        # The reader went away (`netlab plan | head`): say nothing more, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return result if isinstance(result, int) else 0


def _complain(line: str) -> None:
    # One line whatever the input held: control characters (a newline in a YAML key or a
    # file name) are shown escaped.
    click.echo("".join(c if c.isprintable() else repr(c)[1:-1] for c in line), err=True)


if __name__ == "__main__":
    main()
