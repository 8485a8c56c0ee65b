"""The kernel accepts what the kube-proxy renderers produce (needs root).

Every test runs in its own throwaway network namespace ``nl-kptest-<random>``, created
and deleted by the ``netns`` fixture with ``ip netns add/del``; nothing touches the
host's root namespace. Each mode's output is loaded the way kube-proxy loads it:

- iptables: nfacct counters (``nfacct add``), the built-in chain jumps, then the
  proxier's input with ``iptables-restore --noflush --counters``;
- nftables: the transaction with ``nft -f``;
- ipvs: ``ipset restore``, the jumps, the iptables input, and the kube-ipvs0 dummy
  device with its addresses. IPVS virtual servers themselves need ip_vs, which this
  kernel lacks; the kernel tier (a VM) covers them.

Loading twice checks that a second full sync replaces rather than duplicates rules.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections import Counter

import pytest

from netlab.kubeproxy import render_iptables, render_ipvs, render_nftables
from netlab.kubeproxy.iptdump import parse_dump
from netlab.kubeproxy.model import EndpointPort, LocalDetector

from tests.unit.kubeproxy.helpers import NODE, ep, env, nft_env, port, slice_, svc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

PREFIX = "nl-kptest-"


class Netns:
    """Runs argv lists inside one network namespace."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, *argv: str, stdin: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(["ip", "netns", "exec", self.name, *argv], input=stdin,
                              capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): "
                                 f"{proc.stderr.strip()}")
        return proc.stdout

    def ok(self, *argv: str, stdin: str | None = None) -> bool:
        proc = subprocess.run(["ip", "netns", "exec", self.name, *argv], input=stdin,
                              capture_output=True, text=True, timeout=60)
        return proc.returncode == 0


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@pytest.fixture
def netns():
    name = PREFIX + secrets.token_hex(4)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    ns = Netns(name)
    try:
        ns.run("ip", "link", "set", "lo", "up")
        yield ns
    finally:
        # Deleting the namespace frees its netfilter tables, ipsets and nfacct objects.
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        assert name not in _namespaces()


# --- scenario: one Service of every kind ------------------------------------------------

LOCAL_AND_REMOTE = [ep("10.180.0.1", node=NODE), ep("10.180.0.2", node="other")]


def _services():
    lb = dict(type="LoadBalancer", lb_ips=["1.2.3.4"])
    return [
        svc("ns1", "cluster", "172.30.0.41"),
        svc("ns1", "nodeport", "172.30.0.42", ports=[port(node_port=30080)], type="NodePort"),
        svc("ns1", "lb", "172.30.0.43", ports=[port(node_port=30081)], **lb,
            load_balancer_source_ranges=("203.0.113.0/25", "192.168.0.0/24"),
            session_affinity="ClientIP", session_affinity_timeout=600),
        svc("ns1", "etp", "172.30.0.44", ports=[port(node_port=30082)],
            type="LoadBalancer", lb_ips=["5.6.7.8"], external_traffic_policy="Local",
            health_check_node_port=30000),
        svc("ns1", "itp", "172.30.0.45", internal_traffic_policy="Local",
            external_ips=("192.168.99.11",)),
        svc("ns1", "empty", "172.30.0.46", ports=[port(name="dns", port_=53, protocol="UDP"),
                                                  port(name="s", port_=9, protocol="SCTP")]),
        svc("ns1", "udp", "172.30.0.47", ports=[port(name="dns", port_=53, protocol="UDP",
                                                     node_port=30053)], type="NodePort"),
    ]


def _slices():
    out = [slice_("ns1", name, endpoints=LOCAL_AND_REMOTE)
           for name in ("cluster", "nodeport", "lb", "etp", "itp")]
    out.append(slice_("ns1", "udp", endpoints=LOCAL_AND_REMOTE,
                      ports=[EndpointPort("dns", 53, "UDP")]))
    return out


def _rule_counts(dump_text: str, prefix: str = "KUBE-") -> Counter:
    counts: Counter = Counter()
    for table in parse_dump(dump_text).tables:
        for chain in table.chains:
            if chain.name.startswith(prefix):
                counts[(table.name, chain.name)] += len(chain.rules)
    return counts


# --- iptables ---------------------------------------------------------------------------

def _load_iptables(ns: Netns, rs) -> None:
    for counter in rs.nfacct_counters:
        if not ns.ok("nfacct", "get", counter):
            ns.run("nfacct", "add", counter)
    ns.run("iptables-restore", "--noflush", "--counters", stdin=rs.jump_rules_restore_input())
    ns.run("iptables-restore", "--noflush", "--counters", stdin=rs.restore_input())


@pytest.mark.parametrize("nfacct", [True, False], ids=["nfacct", "no-nfacct"])
def test_iptables_rules_load(netns, nfacct):
    rs = render_iptables(_services(), _slices(), env(nfacct=nfacct, has_random_fully=True))
    _load_iptables(netns, rs)
    saved = netns.run("iptables-save")
    for chain in ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ",
                  "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-PROXY-FIREWALL"):
        assert f":{chain} " in saved
    for prefix in ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"):
        assert re.search(rf"^:{prefix}[A-Z2-7]{{16}} ", saved, re.M), prefix
    assert "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES" in saved
    assert ("nfacct" in saved) is nfacct
    # the kernel holds exactly the rules rendered, chain by chain
    assert _rule_counts(saved) == _rule_counts(rs.restore_input())


def test_iptables_second_full_sync_replaces_rules(netns):
    rs = render_iptables(_services(), _slices(), env())
    _load_iptables(netns, rs)
    first = _rule_counts(netns.run("iptables-save"))
    netns.run("iptables-restore", "--noflush", "--counters", stdin=rs.restore_input())
    assert _rule_counts(netns.run("iptables-save")) == first


def test_iptables_jump_rules_in_builtin_chains(netns):
    rs = render_iptables(_services(), _slices(), env(nfacct=False))
    _load_iptables(netns, rs)
    saved = netns.run("iptables-save", "-t", "filter")
    input_jumps = [line for line in saved.splitlines() if line.startswith("-A INPUT ")]
    # inserted with -I in list order, so the kubelet's KUBE-FIREWALL jump ends up first
    assert input_jumps[0] == "-A INPUT -j KUBE-FIREWALL"
    for jump in rs.jumps:
        assert netns.ok(*jump.check_argv()), jump


def test_ip6tables_rules_load(netns):
    services = [svc("ns1", "v6", "fd00::41", ports=[port(node_port=30080)], type="NodePort")]
    slices = [slice_("ns1", "v6", address_type="IPv6",
                     endpoints=[ep("fd00:10::1", node=NODE), ep("fd00:10::2")])]
    rs = render_iptables(services, slices, env(ip_family="IPv6", nfacct=False,
                                               local_detector=LocalDetector("ClusterCIDR", "fd00:10::/64")))
    netns.run("ip6tables-restore", "--noflush", stdin=rs.jump_rules_restore_input())
    netns.run("ip6tables-restore", "--noflush", stdin=rs.restore_input())
    assert _rule_counts(netns.run("ip6tables-save")) == _rule_counts(rs.restore_input())


# --- nftables ---------------------------------------------------------------------------

def test_nftables_transaction_loads(netns):
    rs = render_nftables(_services(), _slices(),
                         nft_env(service_cidrs=("172.30.0.0/16", "172.31.0.0/16")))
    netns.run("nft", "-f", "-", stdin=rs.transaction())
    listed = netns.run("nft", "list", "table", "ip", "kube-proxy")
    for name in ("chain nat-prerouting", "map service-ips", "map service-nodeports",
                 "set cluster-ips", "set nodeport-ips", "map no-endpoint-services",
                 "map firewall-ips", "chain masquerading", "numgen random mod 2"):
        assert name in listed, name
    assert re.search(r"set affinity-[A-Z2-7]{8}-ns1/lb/tcp/p80__10\.180\.0\.1/80", listed)
    chains = set(re.findall(r"^\s*chain (\S+) \{", listed, re.M))
    expected = set(re.findall(r"^add chain ip kube-proxy (\S+)", rs.dump(), re.M))
    assert chains == expected


def _nft_lines(ns: Netns) -> list[str]:
    return sorted(ns.run("nft", "list", "table", "ip", "kube-proxy").splitlines())


def test_nftables_second_sync_and_delete(netns):
    rs = render_nftables(_services(), _slices(), nft_env())
    netns.run("nft", "-f", "-", stdin=rs.transaction())
    first = _nft_lines(netns)
    # the first-sync transaction re-creates the base chains (add+delete), so only the
    # listing order may change
    netns.run("nft", "-f", "-", stdin=rs.transaction())
    assert _nft_lines(netns) == first
    netns.run("nft", "-f", "-", stdin=rs.transaction(replace=True))
    netns.run("nft", "-f", "-", stdin=rs.delete_table_transaction())
    assert "kube-proxy" not in netns.run("nft", "list", "tables")


def test_nftables_ipv6_transaction_loads(netns):
    services = [svc("ns1", "v6", "fd00::41", ports=[port(node_port=30080)], type="NodePort",
                    session_affinity="ClientIP")]
    slices = [slice_("ns1", "v6", address_type="IPv6", endpoints=[ep("fd00:10::1")])]
    rs = render_nftables(services, slices, nft_env(
        ip_family="IPv6", node_port_addresses=("2001:db8::1/128",), service_cidrs=("fd00::/108",),
        local_detector=LocalDetector("ClusterCIDR", "fd00:10::/64")))
    netns.run("nft", "-f", "-", stdin=rs.transaction())
    assert "table ip6 kube-proxy" in netns.run("nft", "list", "tables")


# --- ipvs -------------------------------------------------------------------------------

def _load_ipvs(ns: Netns, rs) -> None:
    ns.run("ipset", "restore", "-exist", stdin=rs.ipset_restore_input())
    ns.run("iptables-restore", "--noflush", "--counters", stdin=rs.jump_rules_restore_input())
    ns.run("iptables-restore", "--noflush", "--counters", stdin=rs.iptables_restore_input())


def _ipvs_services(source_ranges: bool):
    services = _services()
    if not source_ranges:
        services = [s for s in services if not s.load_balancer_source_ranges]
    return services


def test_ipvs_ipsets_iptables_and_dummy_addresses_load(netns):
    rs = render_ipvs(_ipvs_services(False), _slices(), env(nfacct=False, node_ips=("192.168.0.2",)))
    assert not any("-m ipvs" in line for line in rs.filter_lines)
    _load_ipvs(netns, rs)
    for ipset in rs.ipsets:
        listed = netns.run("ipset", "list", ipset.name)
        assert f"Number of entries: {len(ipset.entries)}" in listed, ipset.name
    saved = netns.run("iptables-save")
    for chain in ("KUBE-SERVICES", "KUBE-NODE-PORT", "KUBE-IPVS-FILTER", "KUBE-LOAD-BALANCER"):
        assert f":{chain} " in saved
    assert "--match-set KUBE-CLUSTER-IP dst,dst" in saved
    assert _rule_counts(saved) == _rule_counts(rs.iptables_restore_input())


@pytest.mark.kernel("dummy")
def test_ipvs_dummy_device_addresses(netns):
    rs = render_ipvs(_ipvs_services(False), _slices(), env(nfacct=False, node_ips=("192.168.0.2",)))
    netns.run("ip", "link", "add", rs.dummy_device, "type", "dummy")
    for cidr in rs.dummy_addresses():
        netns.run("ip", "addr", "add", cidr, "dev", rs.dummy_device)
    addrs = netns.run("ip", "-o", "addr", "show", "dev", rs.dummy_device)
    for cidr in rs.dummy_addresses():
        assert f" {cidr} " in addrs


@pytest.mark.kernel("ip_vs")  # the -m ipvs match of KUBE-IPVS-OUT-FILTER is xt_ipvs
def test_ipvs_source_ranges_need_xt_ipvs(netns):
    rs = render_ipvs(_ipvs_services(True), _slices(), env(nfacct=False, node_ips=("10.9.9.9",)))
    assert any("-m ipvs" in line for line in rs.filter_lines)
    _load_ipvs(netns, rs)
    assert "-m ipvs" in netns.run("iptables-save", "-t", "filter")


def test_no_namespace_left_behind():
    assert not [n for n in _namespaces() if n.startswith(PREFIX)]
