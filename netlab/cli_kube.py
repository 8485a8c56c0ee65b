"""`netlab get` and `netlab patch`: a running lab's Services and Ingresses, shown and changed
as `kubectl get -o yaml` and `kubectl patch` do. Parsing and printing only:
`netlab.lab.patch` decides the new object and the ops (kube-proxy re-synced on every node,
or the nginx that serves an Ingress reloaded), the executor applies them and records the
lab in lab.json.
"""

from __future__ import annotations

import click
import yaml

from netlab.cli import LAB, _read_lab, _require_root, console
from netlab.errors import UserError

OBJECT_HELP = "CLUSTER/svc/NAME or CLUSTER/ingress/NAME (NAMESPACE/NAME outside default)"


def _yaml(obj: dict) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False).rstrip("\n")


@click.command()
@click.argument("lab", type=LAB)
@click.argument("ref", metavar="OBJECT")
def get(lab: str, ref: str) -> None:
    """Show a Service or an Ingress of a running lab as the API server holds it (YAML).

    OBJECT: CLUSTER/svc/NAME or CLUSTER/ingress/NAME. Example: netlab get vpc-basic c1/svc/web
    """
    from netlab.lab.patch import PatchError, as_object, find

    _require_root("get")
    try:
        _, obj = find(_read_lab(lab), ref)
    except PatchError as e:
        raise UserError(f"OBJECT: {e}") from None
    click.echo(_yaml(as_object(obj)))


@click.command()
@click.argument("lab", type=LAB)
@click.argument("ref", metavar="OBJECT")
@click.argument("patch_text", metavar="PATCH")
@click.option("--type", "kind", type=click.Choice(["merge", "json"]), default="merge", show_default=True,
              help="merge: a JSON merge patch (RFC 7386); json: a JSON patch (RFC 6902)")
def patch(lab: str, ref: str, patch_text: str, kind: str) -> None:
    """Patch a Service or an Ingress of a running lab, as `kubectl patch` does.

    A Service's selector, targetPorts, externalTrafficPolicy, internalTrafficPolicy and
    session affinity, an Ingress's rules and default backend can change; kube-proxy is
    re-synced on every node, or the Ingress's nginx reloaded.

    Example: netlab patch vpc-basic c1/svc/web '{"spec": {"selector": {"app": "web"}}}'
    """
    from netlab.apply import executor
    from netlab.lab import patch as patch_mod

    _require_root("patch")
    old = _read_lab(lab)
    try:
        done = patch_mod.patch(old, ref, patch_mod.parse(patch_text, kind), kind)
    except patch_mod.PatchError as e:
        raise UserError(f"{ref}: {e}") from None
    if done.after == done.before:
        console.print(f"{ref}: unchanged", highlight=False)
        return
    executor.change(old, done.lab, done.steps)
    console.print(f"{ref}: patched; {len(done.ops)} operations", highlight=False)


@click.command()
@click.argument("lab", type=LAB)
@click.argument("eip", required=False)
@click.argument("action", required=False, type=click.Choice(["bind"]))
@click.argument("target", required=False, metavar="OBJECT")
def eip(lab: str, eip: str | None, action: str | None, target: str | None) -> None:
    """List a running lab's EIPs, or bind one to another port (as the console's unbind, then bind).

    OBJECT: a node (CLUSTER/NODE), a VPC host, or a pod of an eni cluster.
    Example: netlab eip access 198.51.100.10 bind cce-vpc/node-2
    """
    from ipaddress import IPv4Address

    from netlab.apply import executor
    from netlab.cloud.eip import EipError, change

    _require_root("eip")
    old = _read_lab(lab)
    if eip is not None:
        if action is None or target is None:
            raise UserError("write EIP bind OBJECT")
        try:
            address = IPv4Address(eip)
        except ValueError:
            raise UserError(f"EIP: '{eip}' is not an IPv4 address") from None
        try:
            new, info, ops = change(old, address, target)
        except EipError as e:
            raise UserError(str(e)) from None
        executor.change(old, new, [ops])
        old = new
    for e in old.eips:
        where = f" ({e.private})" if e.private else ""
        console.print(f"{e.ip}: {e.kind} {e.bind}{where}, VPC {e.vpc}", highlight=False)
    if not old.eips:
        console.print(f"lab {lab} has no EIP", highlight=False)
