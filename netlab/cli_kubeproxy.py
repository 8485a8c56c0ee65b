"""``netlab kube-proxy render|trace``: what kube-proxy would program on a node.

Parsing and printing only; the work is in ``netlab.kubeproxy``. ``netlab.cli`` registers
the group; its top-level handler (``netlab.cli.run``) turns netlab errors into one line on
stderr and their exit code, as for every other command.
"""

from __future__ import annotations

import gc
import json
import os
import socket
from contextlib import contextmanager

import click

from netlab.errors import UserError
from netlab.kubeproxy.config import (
    KubeProxyConfig, check_cluster_cidr, family_of_node, load_config, node_env,
)
from netlab.kubeproxy.manifests import load_manifests
from netlab.kubeproxy.netutil import parse_ip
from netlab.kubeproxy.render import MODES, ipvs_text, iptables_text, nftables_text, render, trace


@click.group("kube-proxy")
def kube_proxy() -> None:
    """Render and trace the rules kube-proxy writes for Services and EndpointSlices.

    MANIFEST files are multi-document YAML as `kubectl get -o yaml` prints them
    (`List` included). v1 Services and discovery.k8s.io/v1 EndpointSlices are read;
    other kinds are ignored (kube-proxy does not watch them) and listed on stderr.
    """


def _common_options(func):
    options = [
        click.option("--mode", type=click.Choice(MODES),
                     help="Proxy mode (default: the config's mode, else iptables)."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1)."),
        click.option("--node-ip", "node_ips", multiple=True, metavar="IP",
                     help="A node address (repeatable; the first of a family is primary)."),
        click.option("--hostname", help="Node name (default: hostnameOverride, else this host's name)."),
        click.option("--service-cidr", "service_cidrs", multiple=True, metavar="CIDR",
                     help="A Service CIDR (repeatable; nftables drops unallocated ClusterIPs)."),
        click.option("--cluster-cidr", metavar="CIDR[,CIDR]",
                     help="Pod CIDR of the cluster, overriding the config's clusterCIDR."),
        click.option("--pod-cidr", "pod_cidrs", multiple=True, metavar="CIDR",
                     help="This node's pod CIDR (for detectLocalMode NodeCIDR)."),
        click.option("--nfacct", is_flag=True,
                     help="The kernel has nfacct: emit kube-proxy's nfacct counter matches."),
        click.argument("manifests", nargs=-1, required=True, type=click.Path(dir_okay=False)),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@contextmanager
def _bulk():
    """Without the cyclic garbage collector: tens of thousands of Services make millions
    of small objects and no cycles, which the collector would only rescan again and again
    (a third of the time at 10,000 Services)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _setup(mode, config_path, node_ips, hostname, service_cidrs, cluster_cidr, pod_cidrs,
           nfacct, manifests):
    # Flags override the config file, as kube-proxy's own flags do.
    config = load_config(config_path) if config_path else KubeProxyConfig()
    if cluster_cidr is not None:
        config.cluster_cidr = check_cluster_cidr(cluster_cidr)
    if hostname:
        config.hostname_override = hostname
    mode = mode or config.mode or "iptables"
    env = node_env(mode, config, hostname=socket.gethostname(),
                   node_ips=node_ips, service_cidrs=service_cidrs, nfacct=nfacct,
                   pod_cidrs=pod_cidrs, ip_family_=family_of_node(node_ips))
    inputs = load_manifests(manifests, two_processes=len(os.sched_getaffinity(0)) > 1)
    for note in inputs.ignored:
        click.echo(f"netlab kube-proxy: note: ignored {note}", err=True)
    return mode, env, render(mode, inputs.services, inputs.endpoint_slices, env)


@kube_proxy.command("render")
@_common_options
@click.option("--sorted", "sorted_", is_flag=True,
              help="Normalise as kube-proxy's tests do (sortIPTablesRules / sortNFTablesTransaction).")
@click.option("--no-jump-rules", is_flag=True,
              help="iptables: omit the commented built-in chain jumps and sysctls.")
def render_cmd(sorted_, no_jump_rules, **kw):
    """Print what kube-proxy would program on this node.

    iptables: the iptables-restore input (with the built-in chain jumps as comments);
    nftables: the `nft -f` transaction; ipvs: virtual servers, kube-ipvs0 addresses,
    ipset and iptables-restore input.
    """
    with _bulk():
        mode, _, ruleset = _setup(**kw)
        if mode == "iptables":
            text = iptables_text(ruleset, sorted_=sorted_, jumps=not no_jump_rules)
        elif mode == "nftables":
            text = nftables_text(ruleset, sorted_=sorted_)
        else:
            text = ipvs_text(ruleset)
    click.echo(text, nl=False)


@kube_proxy.command("trace")
@_common_options
@click.option("--src", required=True, metavar="IP", help="Source address of the packet.")
@click.option("--dst", required=True, metavar="IP", help="Destination address.")
@click.option("--dport", required=True, type=click.IntRange(1, 65535), help="Destination port.")
@click.option("--proto", type=click.Choice(["tcp", "udp", "sctp"]), default="tcp",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help='Print {"output": ..., "masq": ...}.')
def trace_cmd(src, dst, dport, proto, as_json, **kw):
    """Trace one new connection through the rendered rules (kube-proxy's tracePacket).

    Output is the DNAT targets joined by ", ", or ACCEPT, DROP, REJECT, or "" when no
    kube-proxy rule matches; masq tells whether the packet is marked for masquerade.
    The node's addresses and loopback count as LOCAL.
    """
    for name, value in (("--src", src), ("--dst", dst)):
        if parse_ip(value) is None:
            raise UserError(f"{name} {value!r} is not a valid IP address")
    with _bulk():
        _, env, ruleset = _setup(**kw)
        result = trace(ruleset, src, dst, dport, proto,
                       local_ips=["127.0.0.1", "::1", *env.node_ips])
    if as_json:
        click.echo(json.dumps(result.as_json()))
        return
    click.echo(f"output: {result.output or '(no kube-proxy rule matched)'}")
    click.echo(f"masq:   {'yes' if result.masq else 'no'}")
    if result.matches:
        click.echo("matched rules:")
        for line in result.matches:
            click.echo(f"  {line}")

