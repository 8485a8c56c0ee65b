"""Conformance cases: a directory of kube-proxy test data translated to files.

A case directory holds:

- ``manifests.yaml``: the Services and EndpointSlices of the kube-proxy test;
- ``env.json``: the fake proxier's environment (see ``env_from_json`` for the keys);
- ``expected.txt`` (optional): the exact output kube-proxy's test expects, compared after
  the normalisation of the test's helper (``sortIPTablesRules`` for iptables,
  ``sortNFTablesTransaction`` for nftables);
- ``expected-ipvs.json`` (optional): IPVS virtual/real servers, ipset entries and
  iptables jumps the IPVS test checks;
- ``flows.json`` (optional): packets and their expected ``tracePacket`` result.

Used by netlab's conformance tests and available to the lab's own checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from netlab.kubeproxy.manifests import Inputs, load_manifests
from netlab.kubeproxy.model import LocalDetector, NodeEnv


@dataclass(frozen=True)
class Flow:
    name: str
    source_ip: str
    protocol: str
    dest_ip: str
    dest_port: int
    output: str
    masq: bool


@dataclass
class Case:
    path: Path
    mode: str
    inputs: Inputs
    env: NodeEnv
    raw_env: dict
    expected: str | None = None
    expected_ipvs: dict | None = None
    flows: list[Flow] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def local_ips(self) -> list[str]:
        """The addresses the tracer treats as LOCAL (``flowTestLocalIPs``)."""
        ips = self.raw_env.get("flowTestLocalIPs")
        if ips is None:
            ips = ["127.0.0.1", "::1", *self.raw_env.get("nodeIPs", [])]
        return list(ips)


def env_from_json(data: dict) -> NodeEnv:
    """A ``NodeEnv`` from an ``env.json`` (keys as in the shared iptables_overall case)."""
    detector = data.get("localDetector") or {}
    node_ip = data.get("nodeIP")
    node_ips = list(data.get("nodeIPs") or ([node_ip] if node_ip else []))
    if node_ip and node_ip in node_ips:
        node_ips.remove(node_ip)
        node_ips.insert(0, node_ip)
    counters = data.get("nfacctCounters") or {}
    npa = data.get("nodePortAddresses")
    return NodeEnv(
        hostname=data.get("hostname") or data.get("nodeName") or "",
        node_ips=tuple(node_ips),
        ip_family=data.get("ipFamily", "IPv4"),
        local_detector=LocalDetector(mode=detector.get("mode", "ClusterCIDR") or "",
                                     cidr=detector.get("clusterCIDR")
                                     or detector.get("cidr") or "",
                                     interface=detector.get("interface", "")),
        masquerade_bit=int(data.get("masqueradeBit", 14)),
        masquerade_mark=data.get("masqueradeMark"),
        masquerade_all=bool(data.get("masqueradeAll", False)),
        localhost_node_ports=bool(data.get("localhostNodePorts", True)),
        node_port_addresses=tuple(npa) if npa is not None else None,
        nfacct=bool(counters) and all(counters.values()),
        has_random_fully=bool(data.get("hasRandomFully", False)),
        conntrack_tcp_liberal=bool(data.get("conntrackTCPLiberal", False)),
        service_cidrs=tuple(data.get("serviceCIDRs") or ()),
        ipvs_scheduler=data.get("ipvsScheduler", "rr"),
    )


def _flows(path: Path) -> list[Flow]:
    if not path.exists():
        return []
    return [Flow(name=f["name"], source_ip=f["sourceIP"],
                 protocol=(f.get("protocol") or "tcp").lower(), dest_ip=f["destIP"],
                 dest_port=int(f["destPort"]), output=f["output"], masq=bool(f["masq"]))
            for f in json.loads(path.read_text())]


def load_case(path: str | Path) -> Case:
    path = Path(path)
    raw_env = json.loads((path / "env.json").read_text())
    expected = path / "expected.txt"
    expected_ipvs = path / "expected-ipvs.json"
    return Case(
        path=path,
        mode=raw_env.get("mode", "iptables"),
        inputs=load_manifests([path / "manifests.yaml"]),
        env=env_from_json(raw_env),
        raw_env=raw_env,
        expected=expected.read_text() if expected.exists() else None,
        expected_ipvs=json.loads(expected_ipvs.read_text()) if expected_ipvs.exists() else None,
        flows=_flows(path / "flows.json"),
    )


def case_dirs(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "env.json").exists())


# --- IPVS expectations -----------------------------------------------------------------

def _vs_problems(ruleset, expected: dict) -> list[str]:
    problems = []
    count = expected.get("virtualServerCount")
    if count is not None and len(ruleset.virtual_servers) != count:
        problems.append(f"expected {count} virtual servers, got {len(ruleset.virtual_servers)}")
    by_key = {(vs.address, vs.protocol, vs.port): vs for vs in ruleset.virtual_servers}
    for want in expected.get("virtualServers", []):
        key = (want["address"], want["protocol"], want["port"])
        vs = by_key.get(key)
        if vs is None:
            problems.append(f"missing virtual server {key}")
            continue
        if "scheduler" in want and vs.scheduler != want["scheduler"]:
            problems.append(f"{key}: scheduler {vs.scheduler} != {want['scheduler']}")
        got_rs = sorted((rs.address, rs.port, rs.weight) for rs in vs.real_servers)
        want_rs = sorted((r["address"], r["port"], r.get("weight", 1))
                         for r in want.get("realServers", []))
        if got_rs != want_rs:
            problems.append(f"{key}: real servers {got_rs} != {want_rs}")
    return problems


def _jump_rules_by_chain(ruleset) -> dict[str, list]:
    from netlab.kubeproxy.iptdump import parse_dump
    dump = parse_dump(ruleset.iptables_restore_input())
    rules: dict[str, list] = {}
    for table in dump.tables:
        for chain in table.chains:
            rules.setdefault(chain.name, []).extend(chain.rules)
    return rules


def _has_jump(rules, want: dict) -> bool:
    """kube-proxy's ``hasJump`` (plus the source address when the case gives one)."""
    for r in rules:
        if r.jump is None or r.jump.value != want["jump"]:
            continue
        match_set = want.get("matchSet", "")
        if match_set and (r.match_set is None or match_set not in r.match_set.value):
            continue
        src = want.get("sourceAddress")
        if src and (r.source is None or r.source.value != src):
            continue
        return True
    return False


def ipvs_problems(ruleset, expected: dict) -> list[str]:
    """Differences between an ``IPVSRuleset`` and an ``expected-ipvs.json``."""
    problems = _vs_problems(ruleset, expected)
    for name, entries in expected.get("ipsets", {}).items():
        got = sorted(ruleset.ipset(name).entries)
        if got != sorted(entries):
            problems.append(f"ipset {name}: {got} != {sorted(entries)}")
    by_chain = _jump_rules_by_chain(ruleset)
    for chain, jumps in expected.get("iptablesJumps", {}).items():
        for want in jumps:
            if not _has_jump(by_chain.get(chain, []), want):
                problems.append(f"no jump in {chain} to {want['jump']} "
                                f"(match set {want.get('matchSet', '')!r})")
    return problems
