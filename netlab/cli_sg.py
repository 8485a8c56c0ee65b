"""`netlab sg LAB [add|remove GROUP ...]`: a running lab's security groups.

Parsing and printing only: `netlab.cloud.secgroup.change_rule` decides the new groups and
the ops (every affected VPC router's table re-rendered whole and replaced atomically), the
executor applies them and records the groups in lab.json.
"""

from __future__ import annotations

import click
from pydantic import ValidationError
from rich.table import Table

from netlab.errors import UserError

RULE_OPTIONS = [
    click.option("--inbound", "direction", flag_value="inbound", help="a rule for what arrives"),
    click.option("--outbound", "direction", flag_value="outbound", help="a rule for what leaves"),
    click.option("--protocol", default="all", show_default=True, type=click.Choice(["tcp", "udp", "icmp", "all"])),
    click.option("--port", help="tcp/udp: a port or a range LOW-HIGH (default: every port)"),
    click.option("--remote-ip-prefix", help="the remote CIDR (default 0.0.0.0/0)"),
    click.option("--remote-group", help="the members of this group, instead of a CIDR"),
]


def _rule_options(f):
    for option in reversed(RULE_OPTIONS):
        f = option(f)
    return f


def _rule(direction, protocol, port, remote_ip_prefix, remote_group):
    from netlab.scenario.security_groups import Rule

    if direction is None:
        raise UserError("give --inbound or --outbound")
    try:
        port_value = int(port) if port and port.isdigit() else port
        rule = Rule(protocol=protocol, port=port_value, remote_ip_prefix=remote_ip_prefix, remote_group=remote_group)
    except ValidationError as e:
        err = e.errors()[0]
        where = f"--{str(err['loc'][0]).replace('_', '-')}: " if err["loc"] else ""
        raise UserError(f"{where}{err['msg'].removeprefix('Value error, ')}") from None
    if (problem := rule.problem()) is not None:
        raise UserError(f"--{problem[0].replace('_', '-')}: {problem[1]}")
    return direction, rule


@click.group("sg", invoke_without_command=True)
@click.argument("lab")
@click.pass_context
def sg(ctx: click.Context, lab: str) -> None:
    """Show a running lab's security groups, or change one rule (`add`, `remove`).

    Example: netlab sg eni-basic remove guarded --inbound --protocol tcp --port 8080
    --remote-ip-prefix 192.168.1.0/24
    """
    ctx.obj = lab  # read by the subcommand, after its own --help
    if ctx.invoked_subcommand is None:
        _show(_running(lab))


def _running(name: str):
    from netlab.cli import _read_lab, _require_root

    _require_root("sg")
    return _read_lab(name)


def _show(lab) -> None:
    from netlab.cli import console
    from netlab.cloud.secgroup import group_members

    members = group_members(lab)
    table = Table(title=f"security groups of lab {lab.name}")
    for col in ("group", "inbound", "outbound", "members"):
        table.add_column(col)
    for g in lab.security_groups:
        table.add_row(g.name, "\n".join(r.text("inbound") for r in g.inbound) or "(nothing)",
                      "\n".join(r.text("outbound") for r in g.outbound) or "(nothing)",
                      "\n".join(f"{m.name} {m.ip}" for m in members.get(g.name, [])) or "")
    console.print(table)


def _change(name: str, group: str, rule_args, add: bool) -> None:
    from netlab.apply import executor
    from netlab.cli import console
    from netlab.cloud.secgroup import change_rule

    direction, rule = _rule(*rule_args)
    lab = _running(name)
    new, ops = change_rule(lab, group, direction, rule, add=add)
    executor.change(lab, new, [ops])
    console.print(f"{group}: {'added' if add else 'removed'} {direction} rule {rule.text(direction)}; "
                  f"{len(ops)} operations", highlight=False)


def _rule_command(verb: str, add: bool, help_text: str):
    @sg.command(name=verb, help=help_text)
    @click.argument("group")
    @_rule_options
    @click.pass_obj
    def command(lab, group: str, direction, protocol, port, remote_ip_prefix, remote_group) -> None:
        _change(lab, group, (direction, protocol, port, remote_ip_prefix, remote_group), add=add)

    return command


add = _rule_command("add", True, "Add a rule to GROUP on the running lab.")
remove = _rule_command("remove", False, "Remove the rule of GROUP that admits exactly this on the running lab.")
