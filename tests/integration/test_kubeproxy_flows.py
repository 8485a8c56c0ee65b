"""kube-proxy's expected packet flows, checked with real packets on a throwaway node.

The conformance tests (``tests/conformance``) trace every flow of a case through the
rendered rules on paper. Here the same flows go through the kernel: the rules are loaded
into a node namespace the way the lab loads them (``netlab.apply.netfilter``: nfacct
counters, the built-in chain jumps and the full sync with ``iptables-restore --noflush``,
or the ``nft -f`` transaction; the ruleset's sysctls plus ``ip_forward``), a small world is
built around that node, each flow is sent as a real TCP SYN, and what the kernel did is read
back, never assumed.

The world (every namespace ``nl-kpflow-<random>-*``; nothing in the host's root namespace)::

    outside                        node                              pod (one per address)
    eth0 192.168.0.1/24 ─veth─ eth0  <env eth0 addresses>
         203.0.113.2/32 …           pN  10.255.255.254/32 ─veth─ eth0 10.180.0.1/32
    default via 192.168.0.2         default via 192.168.0.1          default via 10.255.255.254
                                    10.180.0.1/32 dev pN
                                    ip_forward=1, ruleset sysctls

- The node has the env's IPv4 addresses on ``eth0`` (``networkInterfaces``) and a default
  route to ``outside``, so Service IPs without DNAT are routed as on a real node.
- Every pod-network address a case uses (10.0.0.0/8: pod sources, endpoint addresses,
  unmatched destinations) is a namespace of its own on a veth to the node; the node side of
  each such veth holds ``NODE_POD_GW``, the node's address towards pods. MASQUERADE picks
  it for packets leaving towards an endpoint, so masquerading is visible as the client
  address an endpoint sees (and for LOCAL sources it differs from the source itself).
- ``outside`` holds every other source address (/32) and is the node's default route.
- Sockets are opened by this process after ``setns`` into each namespace
  (``netlab.linux.entered``): one listener per endpoint address and port, one in the node
  for every flow to a node address (so a packet kube-proxy fails to DNAT would land
  there), one for an unmatched destination on the pod network.

Sending: a LOCAL source (``flowTestLocalIPs``) connects from inside the node namespace; other
sources connect from their own namespace with the socket bound to the source address. A
source that is also some flow's destination (an LB IP hairpinned back by the cloud LB,
``1.2.3.4 -> 1.2.3.4``) cannot be a local address anywhere, so its SYN is built with scapy and
sent on an ``AF_PACKET`` socket in ``outside`` straight to the node's ``eth0``.

Observing, per attempt (one SYN with a source port of its own), then per flow:

====================================================================  ===============
what the kernel showed                                                 output
====================================================================  ===============
ICMP port unreachable quoting the SYN, received by the source          ``REJECT``
no answer within ``SILENCE`` and no conntrack entry in the node (the   ``DROP``
SYN died in netfilter: an entry is confirmed only once a packet
leaves the node or is delivered in it)
a node conntrack entry whose reply source is not the original          the endpoint
destination (DNAT), and that endpoint's listener accepted the          (``ip:port``)
connection from the entry's reply destination
an entry without DNAT, the node's own listener accepted it, and a      ``ACCEPT``
kube-proxy ``-j ACCEPT`` filter rule counted packets meanwhile
an entry without DNAT otherwise (the packet went on unchanged)         ``""``
====================================================================  ===============

``masq`` is the entry's reply destination differing from the source: the node SNATed the
packet. It must then be a node address (in practice ``NODE_POD_GW``) and, for a real
connection, the address the endpoint saw as its client.

A flow whose expected output lists endpoints is sent until every listed endpoint has
answered (at least ``MIN_ATTEMPTS`` times, at most ``MAX_ATTEMPTS``), so the observed set is
compared with the expected set both ways: an endpoint kube-proxy should not pick (e.g.
a remote one under externalTrafficPolicy Local) would show up.

Cases: the shared ``iptables_overall`` (all 7 flows) and every own case of
``tests/conformance/kube-proxy`` in iptables or nftables mode (16 cases, both renderers;
localhost NodePorts through ``route_localnet`` included). Flows other than TCP over IPv4
(the UDP and SCTP flows of the two ClusterIP cases) are not sent (``_sendable``); the
tracer in ``tests/conformance`` still checks them. IPVS cases have no flows.
"""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import select
import socket
import subprocess
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, IPerror, TCPerror
from scapy.layers.l2 import Ether

from netlab import linux
from netlab.apply import netfilter
from netlab.apply.executor import IPV4_ONLY
from netlab.kubeproxy.fixture import Case, Flow, case_dirs, load_case
from netlab.kubeproxy.render import render
from netlab.plan import IptablesRestore, NfacctAdd, NftApply

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "conformance" / "kube-proxy"
OWN = REPO / "tests" / "conformance" / "kube-proxy"

PREFIX = "nl-kpflow-"
POD_NET = ipaddress.ip_network("10.0.0.0/8")   # where kube-proxy's tests put pods
NODE_POD_GW = "10.255.255.254"                  # the node's address towards its pods
NODE_MAC = "02:6b:70:00:00:01"
OUTSIDE_MAC = "02:6b:70:00:00:02"
SILENCE = 0.2          # seconds without an answer that count as "dropped"
ANSWER_WAIT = 2.0      # how long a flow that should be answered may take
MIN_ATTEMPTS = 8       # per DNAT flow: enough to see an endpoint that should not be picked
MAX_ATTEMPTS = 48      # per DNAT flow: every listed endpoint answers long before this
VERDICTS = ("", "DROP", "REJECT", "ACCEPT")
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


# --- which cases and flows -------------------------------------------------------------

def _sendable(case: Case, flow: Flow) -> bool:
    return flow.protocol == "tcp" and all(
        ipaddress.ip_address(a).version == 4 for a in (flow.source_ip, flow.dest_ip))


@cache
def _case(path: Path) -> Case:
    return load_case(path)


def _cases() -> list[Path]:
    own = [p for p in case_dirs(OWN)
           if _case(p).mode in ("iptables", "nftables") and _case(p).flows]
    shared = [p for p in case_dirs(SHARED) if p.name == "iptables_overall"]
    return shared + own


def _params():
    if not (SHARED / "iptables_overall").is_dir():
        yield pytest.param(None, "", id="shared/iptables_overall", marks=pytest.mark.skip(
            reason=f"shared conformance data not found at {SHARED.resolve()}"))
    for path in _cases():
        case = _case(path)
        label = f"shared/{path.name}" if path.parent.resolve() == SHARED.resolve() else path.name
        for flow in case.flows:
            if _sendable(case, flow):
                yield pytest.param(path, flow.name, id=f"{label}: {flow.name}")


# --- the world around one node ---------------------------------------------------------

def _endpoints(output: str) -> list[tuple[str, int]]:
    if output in VERDICTS:
        return []
    out = []
    for item in output.split(", "):
        ip, port = item.rsplit(":", 1)
        out.append((ip, int(port)))
    return out


def _ip(argv_ns: str, lines: list[str]) -> None:
    done = subprocess.run(["ip", "-n", argv_ns, "-batch", "-"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise AssertionError(f"ip -n {argv_ns} -batch failed: {done.stderr.strip()}")


def _run(netns: str, *argv: str) -> str:
    """Run a tool (conntrack, iptables-save) inside a namespace: a child started by a thread
    that has entered the namespace is born there (cheaper than ``ip netns exec``)."""
    with linux.entered(netns):
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} in {netns} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class CtEntry:
    reply_src: str
    reply_sport: int
    reply_dst: str
    reply_dport: int
    state: str


def _conntrack(netns: str, src: str, dst: str) -> dict[tuple[str, int, str, int], CtEntry]:
    """The node's TCP conntrack entries from src to dst (original direction), keyed by
    original (src, sport, dst, dport)."""
    entries = {}
    for line in _run(netns, "conntrack", "-L", "-p", "tcp", "-s", src, "-d", dst).splitlines():
        tokens = line.split()
        orig: dict[str, str] = {}
        reply: dict[str, str] = {}
        for token in tokens:
            if "=" in token:
                key, value = token.split("=", 1)
                (reply if key in orig else orig).setdefault(key, value)
        if all(k in orig and k in reply for k in ("src", "dst", "sport", "dport")):
            state = tokens[3] if len(tokens) > 3 and "=" not in tokens[3] else ""
            entries[(orig["src"], int(orig["sport"]), orig["dst"], int(orig["dport"]))] = CtEntry(
                reply["src"], int(reply["sport"]), reply["dst"], int(reply["dport"]), state)
    return entries


def _accept_counts(netns: str) -> dict[str, int]:
    """Packets counted by each kube-proxy ``-j ACCEPT`` rule of the filter table."""
    counts = {}
    for line in _run(netns, "iptables-save", "-c", "-t", "filter").splitlines():
        if line.startswith("[") and " -A KUBE-" in line and line.endswith("-j ACCEPT"):
            packets = int(line[1:line.index(":")])
            counts[line[line.index("]") + 2:]] = packets
    return counts


def _reply(packet: IP, flow: Flow) -> tuple[int, str, tuple[int, int] | None] | None:
    """What a packet arriving back at the source says about one of the flow's SYNs:
    (the SYN's source port, "connected" | "refused" | "icmp", ICMP (type, code))."""
    if ICMP in packet and IPerror in packet and TCPerror in packet:
        quoted, tcp = packet[IPerror], packet[TCPerror]
        if packet[ICMP].type == 3 and (quoted.src, quoted.dst, tcp.dport) == (
                flow.source_ip, flow.dest_ip, flow.dest_port):
            return tcp.sport, "icmp", (packet[ICMP].type, packet[ICMP].code)
        return None
    if TCP in packet and (packet[IP].src, packet[TCP].sport) == (flow.dest_ip, flow.dest_port):
        return packet[TCP].dport, "refused" if packet[TCP].flags.R else "connected", None
    return None


@dataclass
class Attempt:
    sport: int
    sent_from: str
    crafted: bool = False
    answer: str = ""                 # connected | refused | silent | icmp | <OSError name>
    icmp: tuple[int, int] | None = None
    accepted: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # (where, local, peer)
    ct: CtEntry | None = None
    accept_rule_hit: bool = False

    def outcome(self, flow: Flow) -> tuple[str, bool]:
        if self.icmp == (3, 3):
            return "REJECT", False
        if self.ct is None:
            if self.answer == "silent" and not self.accepted and self.icmp is None:
                return "DROP", False
            return f"?{self.answer}, icmp {self.icmp}, no conntrack entry", False
        masq = self.ct.reply_dst != flow.source_ip
        if (self.ct.reply_src, self.ct.reply_sport) != (flow.dest_ip, flow.dest_port):
            return f"{self.ct.reply_src}:{self.ct.reply_sport}", masq
        if self.accept_rule_hit and any(where == "node" for where, _, _ in self.accepted):
            return "ACCEPT", masq
        return "", masq

    def __str__(self) -> str:
        how = "crafted SYN" if self.crafted else "connect"
        return (f"{how} sport {self.sport} from {self.sent_from}: answer={self.answer or '-'} "
                f"icmp={self.icmp} accepted={self.accepted} conntrack={self.ct}")


class World:
    """One node namespace with kube-proxy's rules, and the namespaces around it."""

    def __init__(self, case: Case) -> None:
        self.case = case
        tag = PREFIX + secrets.token_hex(3)
        self.node, self.outside = f"{tag}-node", f"{tag}-out"
        self.local = {a for a in case.local_ips if ipaddress.ip_address(a).version == 4}
        flows = [f for f in case.flows if _sendable(case, f)]
        dests = {f.dest_ip for f in flows}
        eth0 = (case.raw_env.get("networkInterfaces") or {}).get("eth0") or \
            [f"{a}/24" for a in case.raw_env.get("nodeIPs", [])]
        self.node_addrs = [a for a in eth0 if ipaddress.ip_interface(a).version == 4]
        first = ipaddress.ip_interface(self.node_addrs[0])
        self.gateway = next(str(h) for h in first.network.hosts() if str(h) not in self.local)
        self.prefix = first.network.prefixlen

        pods: set[str] = set()
        self.outside_srcs: set[str] = set()
        self.crafted_srcs: set[str] = set()
        # where -> {(ip, port)}: "node" or a pod address
        self.listen: dict[str, set[tuple[str, int]]] = {"node": set()}
        for f in flows:
            src = f.source_ip
            if src in self.local:
                pass
            elif ipaddress.ip_address(src) in POD_NET:
                pods.add(src)
            elif src in dests:
                self.crafted_srcs.add(src)
            else:
                self.outside_srcs.add(src)
            for ip, port in _endpoints(f.output):
                pods.add(ip)
                self.listen.setdefault(ip, set()).add((ip, port))
            if f.dest_ip in self.local:
                self.listen["node"].add((f.dest_ip, f.dest_port))
            elif f.output == "" and ipaddress.ip_address(f.dest_ip) in POD_NET:
                pods.add(f.dest_ip)
                self.listen.setdefault(f.dest_ip, set()).add((f.dest_ip, f.dest_port))
        self.pods = {ip: f"{tag}-p{i}"
                     for i, ip in enumerate(sorted(pods, key=ipaddress.ip_address))}
        self.listeners: dict[socket.socket, str] = {}
        # Source ports are never reused within a world: the node's conntrack table is read
        # by original tuple, and a reused tuple would hide the earlier attempt's entry.
        self._ports = iter(random.sample(range(20000, 60000), 40000))
        self.ruleset = render(case.mode, case.inputs.services, case.inputs.endpoint_slices,
                              case.env)

    @property
    def namespaces(self) -> list[str]:
        return [self.node, self.outside, *self.pods.values()]

    # -- building ------------------------------------------------------------------------

    def build(self) -> None:
        for ns in self.namespaces:
            linux.create_netns(ns, IPV4_ONLY)
        node = ["link set lo up",
                f"link add eth0 address {NODE_MAC} type veth peer name eth0 "
                f"address {OUTSIDE_MAC} netns {self.outside}"]
        node += [f"address add {a} dev eth0" for a in self.node_addrs]
        node += ["link set eth0 up"]
        for i, (ip, ns) in enumerate(self.pods.items()):
            node += [f"link add p{i} type veth peer name eth0 netns {ns}",
                     f"address add {NODE_POD_GW}/32 dev p{i}", f"link set p{i} up",
                     f"route add {ip}/32 dev p{i}"]
        node += [f"route add default via {self.gateway} dev eth0"]
        _ip(self.node, node)
        node_ip = str(ipaddress.ip_interface(self.node_addrs[0]).ip)
        _ip(self.outside, ["link set lo up", f"address add {self.gateway}/{self.prefix} dev eth0",
                           *(f"address add {a}/32 dev eth0" for a in sorted(self.outside_srcs)),
                           "link set eth0 up", f"route add default via {node_ip} dev eth0"])
        for ip, ns in self.pods.items():
            _ip(ns, ["link set lo up", f"address add {ip}/32 dev eth0", "link set eth0 up",
                     f"route add {NODE_POD_GW}/32 dev eth0 scope link",
                     f"route add default via {NODE_POD_GW} dev eth0"])
        self.load_rules()
        self.open_listeners()

    def load_rules(self) -> None:
        """As the lab does it (`netlab.proxy.node_ops` + `netlab.apply.netfilter`)."""
        rs, ns = self.ruleset, self.node
        with linux.entered(ns):
            linux.write_sysctl("net.ipv4.ip_forward", "1")
            for key, value in getattr(rs, "sysctls", {}).items():
                linux.write_sysctl(key, str(value))
        if self.case.mode == "iptables":
            if rs.nfacct_counters:
                netfilter.nfacct_add(NfacctAdd(ns, tuple(rs.nfacct_counters)))
            netfilter.iptables_restore(IptablesRestore(ns, rs.jump_rules_restore_input()))
            netfilter.iptables_restore(IptablesRestore(ns, rs.restore_input()))
        else:
            netfilter.nft_apply(NftApply(ns, rs.transaction()))

    def open_listeners(self) -> None:
        for where, addrs in self.listen.items():
            with linux.entered(self.node if where == "node" else self.pods[where]):
                for ip, port in sorted(addrs):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((ip, port))
                    s.listen(64)
                    s.setblocking(False)
                    self.listeners[s] = where

    def destroy(self) -> None:
        for s in self.listeners:
            s.close()
        self.listeners.clear()
        for ns in self.namespaces:
            linux.remove_netns(ns)

    # -- probing -------------------------------------------------------------------------

    def _accept(self, wait: float) -> list[tuple[str, tuple, tuple]]:
        """Accept what reached any listener: wait up to ``wait`` for the first connection,
        then take whatever else is already queued. (where, local address, peer address)."""
        got: list[tuple[str, tuple, tuple]] = []
        timeout = wait
        while True:
            ready, _, _ = select.select(list(self.listeners), [], [], timeout)
            if not ready:
                return got
            for s in ready:
                try:
                    conn, peer = s.accept()
                except BlockingIOError:
                    continue
                got.append((self.listeners[s], conn.getsockname(), peer))
                conn.close()
            timeout = 0.0

    def _wait(self, flow: Flow) -> float:
        """How long to wait for an answer: a flow kube-proxy should answer (DNAT to a
        listener, REJECT, ACCEPT, an unmatched packet to a listener) gets ANSWER_WAIT, so
        a slow machine cannot fake a DROP; one that should die gets SILENCE."""
        answered = flow.output != "DROP" and (flow.output != "" or any(
            (flow.dest_ip, flow.dest_port) in addrs for addrs in self.listen.values()))
        return ANSWER_WAIT if answered else SILENCE

    def _connect(self, flow: Flow) -> Attempt:
        src = flow.source_ip
        where = self.node if src in self.local else self.pods.get(src, self.outside)
        with linux.entered(where):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        try:
            icmp.setblocking(False)
            sock.bind((src, next(self._ports)))
            attempt = Attempt(sock.getsockname()[1], where.removeprefix(PREFIX))
            sock.settimeout(self._wait(flow))
            try:
                sock.connect((flow.dest_ip, flow.dest_port))
                attempt.answer = "connected"
            except ConnectionRefusedError:
                attempt.answer = "refused"
            except TimeoutError:
                attempt.answer = "silent"
            except OSError as e:
                attempt.answer = type(e).__name__
            attempt.accepted = self._accept(ANSWER_WAIT if attempt.answer == "connected" else 0.0)
            while True:
                try:
                    reply = _reply(IP(icmp.recv(65535)), flow)
                except BlockingIOError:
                    break
                if reply and reply[0] == attempt.sport:
                    attempt.icmp = reply[2]
            return attempt
        finally:
            sock.close()
            icmp.close()

    def _crafted(self, flow: Flow, count: int) -> list[Attempt]:
        """SYNs with a source address no namespace can own, sent from ``outside``."""
        with linux.entered(self.outside):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            sock.bind(("eth0", ETH_P_ALL))
            sock.setblocking(False)
            attempts = {}
            for sport in (next(self._ports) for _ in range(count)):
                attempts[sport] = Attempt(sport, "outside", crafted=True, answer="silent")
                frame = (Ether(src=OUTSIDE_MAC, dst=NODE_MAC)
                         / IP(src=flow.source_ip, dst=flow.dest_ip)
                         / TCP(sport=sport, dport=flow.dest_port, flags="S",
                               seq=random.getrandbits(32)))
                sock.send(bytes(frame))
            # The node routes answers to the fake source by its default route, to outside.
            deadline = time.monotonic() + self._wait(flow)
            while any(a.answer == "silent" for a in attempts.values()):
                ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                frame, addr = sock.recvfrom(65535)
                packet = Ether(frame)
                if addr[2] == PACKET_OUTGOING or IP not in packet:
                    continue
                reply = _reply(packet[IP], flow)
                if reply and reply[0] in attempts:
                    attempt = attempts[reply[0]]
                    attempt.answer, attempt.icmp = reply[1], reply[2]
            # An endpoint answers with a SYN-ACK but its handshake cannot complete (the
            # source is not a real host), so no listener accepts: conntrack is the witness.
            return list(attempts.values())
        finally:
            sock.close()

    def probe(self, flow: Flow) -> list[Attempt]:
        expected = {f"{ip}:{port}" for ip, port in _endpoints(flow.output)}
        # ACCEPT and "" differ only in whether a kube-proxy ACCEPT rule counted the packet;
        # for any other expectation both are wrong anyway, so the counters are read only
        # when that difference matters (two iptables-save runs saved per flow).
        count_accepts = (self.case.mode == "iptables" and flow.dest_ip in self.local
                         and flow.output in ("", "ACCEPT"))
        before = _accept_counts(self.node) if count_accepts else {}
        if flow.source_ip in self.crafted_srcs:
            attempts = self._crafted(flow, MIN_ATTEMPTS if expected else 1)
        else:
            attempts, seen = [], set()
            while True:
                attempt = self._connect(flow)
                attempts.append(attempt)
                seen |= {f"{local[0]}:{local[1]}" for where, local, _ in attempt.accepted
                         if where != "node"}
                if not expected or len(attempts) >= MAX_ATTEMPTS or (
                        len(attempts) >= MIN_ATTEMPTS and expected <= seen):
                    break
        table = _conntrack(self.node, flow.source_ip, flow.dest_ip)
        hit = False
        if count_accepts:
            after = _accept_counts(self.node)
            hit = any(after[rule] > before.get(rule, 0) for rule in after)
        for a in attempts:
            a.ct = table.get((flow.source_ip, a.sport, flow.dest_ip, flow.dest_port))
            a.accept_rule_hit = hit
        return attempts


def _namespaces_left() -> list[str]:
    return [n for n in linux.list_netns() if n.startswith(PREFIX)]


class _Worlds:
    """One built world at a time: tests come ordered by case, so each case is built once."""

    def __init__(self) -> None:
        self.current: World | None = None

    def get(self, path: Path) -> World:
        if self.current is None or self.current.case.path != path:
            self.close()
            world = World(_case(path))
            self.current = world
            world.build()
        return self.current

    def close(self) -> None:
        world, self.current = self.current, None
        if world is not None:
            world.destroy()
            left = [n for n in _namespaces_left() if n in world.namespaces]
            assert not left, f"namespaces left behind: {left}"


@pytest.fixture(scope="module")
def worlds():
    pool = _Worlds()
    try:
        yield pool
    finally:
        pool.close()


def _sorted_endpoints(endpoints) -> str:
    """``ip:port`` items in address order, joined as flows.json joins them (the tracer lists
    them in rule order; the kernel picks them at random, so only the set can be compared)."""
    return ", ".join(sorted(endpoints, key=lambda e: ipaddress.ip_address(e.rsplit(":", 1)[0])))


def _summary(flow: Flow, attempts: list[Attempt]) -> tuple[str, bool]:
    """The flow's (output, masq) from all its attempts, in flows.json's terms."""
    outcomes = [a.outcome(flow) for a in attempts]
    outputs = {o for o, _ in outcomes}
    masqs = {m for _, m in outcomes}
    if len(masqs) != 1:
        return f"attempts disagree on masquerading: {outcomes}", False
    if all(o not in VERDICTS and not o.startswith("?") for o in outputs):
        return _sorted_endpoints(outputs), masqs.pop()
    if len(outputs) != 1:
        return f"attempts disagree: {sorted(outputs)}", False
    return outputs.pop(), masqs.pop()


def _consistent(world: World, flow: Flow, attempts: list[Attempt]) -> list[str]:
    """Cross-checks between what the listeners saw and the node's conntrack entries."""
    problems = []
    for a in attempts:
        if a.answer == "connected" and not a.crafted and not a.accepted:
            problems.append(f"{a}: connected but no listener accepted it")
        for where, local, peer in a.accepted:
            if a.ct is None:
                problems.append(f"{a}: accepted by {where} without a conntrack entry")
                continue
            if (local, peer) != ((a.ct.reply_src, a.ct.reply_sport),
                                 (a.ct.reply_dst, a.ct.reply_dport)):
                problems.append(f"{a}: {where} accepted {peer} -> {local}, conntrack says "
                                f"{a.ct.reply_dst}:{a.ct.reply_dport} -> "
                                f"{a.ct.reply_src}:{a.ct.reply_sport}")
        if a.ct and a.ct.reply_dst != flow.source_ip:
            node_addrs = {str(ipaddress.ip_interface(x).ip) for x in world.node_addrs}
            if a.ct.reply_dst not in node_addrs | {NODE_POD_GW}:
                problems.append(f"{a}: SNAT to {a.ct.reply_dst}, not a node address")
    return problems


@pytest.mark.parametrize("case_path,flow_name", list(_params()))
def test_flow_on_real_packets(worlds, case_path, flow_name):
    world = worlds.get(case_path)
    flow = next(f for f in world.case.flows if f.name == flow_name)
    attempts = world.probe(flow)
    details = "\n".join(str(a) for a in attempts)
    assert _consistent(world, flow, attempts) == [], details
    expected_output = (_sorted_endpoints(flow.output.split(", ")) if _endpoints(flow.output)
                       else flow.output)
    assert _summary(flow, attempts) == (expected_output, flow.masq), details
