"""`netlab trace`: send one real probe through a running lab and collect what every
namespace and switch says about it.

1. In every namespace the probe may cross, `nft monitor` starts, then a trace table of
   netlab's own (`netlab.trace.nftrace.ruleset`) is added: it sets `meta nftrace` for the
   probe's flow only (its source port or ICMP id, both directions). Each monitor's echo of
   that table's creation (or, if it subscribed too late for that, of a chain made and
   dropped again) proves it listens before any packet flows.
2. One probe (TCP connection with a line of text, UDP datagram, or ICMP echo) from a socket
   opened inside the source namespace, from a fixed source port; AF_PACKET sockets on the
   underlay of tunnel nodes watch for its VXLAN frames.
3. Afterwards: the trace tables are deleted and the monitors stopped (by their PID, started
   here); per hop `ip route get` (the routing decision), `conntrack -L` for the flow (the NAT
   done), and `ovs-appctl ofproto/trace` for every br-int the packet crossed.

Nothing else in the lab changes: the trace table matches only the probe's packets.
"""

from __future__ import annotations

import json
import os
import random
import select
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from scapy.layers.inet import ICMP, IP

from netlab.apply.processes import in_netns
from netlab.errors import ApplyError
from netlab.lab.model import Lab
from netlab.probe.runner import Namespaces, Sniffer, decode
from netlab.trace import conntrack, nftrace, ovstrace, path

READY_TIMEOUT = 10.0
SETTLE = 0.3  # trace events still on their way to the monitors after the last packet


@dataclass
class Monitor:
    netns: str
    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith((f"add table ip {nftrace.TABLE}", f"add chain ip {nftrace.TABLE} ready")):
                self.ready.set()
            elif line.startswith("trace id"):
                self.lines.append(line)


def _nft(netns: str, args: list[str], text: str | None = None) -> None:
    done = subprocess.run(in_netns(netns, ["nft", *args]), input=text, text=True, capture_output=True, timeout=30)
    if done.returncode != 0:
        raise ApplyError(f"nft {' '.join(args)} in {netns}: {done.stderr.strip()}")


def _run(netns: str | None, argv: list[str]) -> tuple[str, str, int]:
    cmd = in_netns(netns, argv) if netns else argv
    done = subprocess.run(cmd, text=True, capture_output=True, timeout=30)
    return done.stdout, done.stderr.strip(), done.returncode


def pick_ident(proto: str) -> int:
    return random.randint(1, 0xFFFF) if proto == "icmp" else random.randint(40000, 59999)


def trace(lab: Lab, probe: path.Probe, *, timeout: float = 2.0) -> dict:
    spaces = None
    monitors: list[Monitor] = []
    added: list[str] = []
    instrumented = path.instrumented(lab, probe)
    try:
        for netns in instrumented:
            proc = subprocess.Popen(in_netns(netns, ["stdbuf", "-oL", "nft", "monitor"]), stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
            m = Monitor(netns, proc)
            threading.Thread(target=m.read, daemon=True).start()
            monitors.append(m)
        rules = nftrace.ruleset(probe.proto, probe.ident)
        for netns in instrumented:
            _nft(netns, ["-f", "-"], rules)
            added.append(netns)
        # A monitor that subscribed after its table appeared missed the event: ping it with a
        # chain made and dropped again until it has seen one.
        deadline = time.monotonic() + READY_TIMEOUT
        while waiting := [m for m in monitors if not m.ready.wait(0.2)]:
            if time.monotonic() > deadline:
                raise ApplyError(f"nft monitor in {waiting[0].netns} did not start")
            for m in waiting:
                _nft(m.netns, ["-f", "-"], f"add chain ip {nftrace.TABLE} ready\n"
                                           f"delete chain ip {nftrace.TABLE} ready\n")
        spaces = Namespaces()
        sniffers = _sniffers(lab, probe, spaces)
        result = _send(spaces, probe, timeout)
        time.sleep(SETTLE)
        wire = [f for sn in sniffers for f in _ours(sn, probe)]
        for sn in sniffers:
            sn.sock.close()
    finally:
        for netns in added:
            try:
                _nft(netns, ["delete", "table", "ip", nftrace.TABLE])
            except ApplyError:
                pass  # the namespace is gone; so is the table
        for m in monitors:
            m.proc.terminate()
            try:
                m.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait()
        if spaces:
            spaces.close()
    found = {m.netns: nftrace.traversals(m.lines) for m in monitors}
    return assemble(lab, probe, instrumented, found, result, wire)


def _sniffers(lab: Lab, probe: path.Probe, spaces: Namespaces) -> list[Sniffer]:
    """The underlay (`eth0`) of every node of a tunnel cluster: where VXLAN frames show."""
    out = []
    for c in lab.clusters:
        if c.network is None or not hasattr(c.network, "vni"):
            continue
        for n in c.nodes:
            out.append(Sniffer(spaces, n.netns, "eth0"))
            out[-1].label = f"{c.name}/{n.name} eth0"
    return out


def _ours(sn: Sniffer, probe: path.Probe) -> list[dict]:
    sn._drain()
    hits = []
    for flows in sn.observations():
        for f in flows:
            if f["encap"] != "vxlan":
                continue
            if (probe.proto == "icmp" and f["icmp_id"] == probe.ident) or f["sport"] == probe.ident:
                hits.append({**f, "on": sn.label, "direction": "request"})
            elif f["proto"] == probe.proto and f["dst"] == probe.src_ip:
                hits.append({**f, "on": sn.label, "direction": "reply"})
    return hits


def _send(spaces: Namespaces, probe: path.Probe, timeout: float) -> dict:
    """One probe; what came back."""
    out = {"reached": False, "answered_by": None, "seen_source": None, "detail": ""}
    try:
        if probe.proto == "icmp":
            sock = spaces.socket(probe.src_netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            sock.setblocking(True)
            with sock:
                sock.sendto(bytes(ICMP(type=8, id=probe.ident, seq=1) / b"netlab-trace"), (probe.dst_ip, 0))
                deadline = time.monotonic() + timeout
                while (left := deadline - time.monotonic()) > 0:
                    if not select.select([sock], [], [], left)[0]:
                        break
                    reply = IP(sock.recv(65535))
                    icmp = reply[ICMP]
                    if icmp.type == 0 and icmp.id == probe.ident:
                        out.update(reached=True, detail=f"echo reply from {reply.src}")
                        return out
                    if icmp.type == 3 and bytes(icmp.payload)[24:26] == probe.ident.to_bytes(2, "big"):
                        out["detail"] = f"ICMP destination unreachable (code {icmp.code}) from {reply.src}"
                        return out
                out["detail"] = f"no answer within {timeout:g} s"
                return out
        kind = socket.SOCK_STREAM if probe.proto == "tcp" else socket.SOCK_DGRAM
        sock = spaces.socket(probe.src_netns, socket.AF_INET, kind)
        sock.setblocking(True)
        sock.settimeout(timeout)
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", probe.ident))
            sock.connect((probe.dst_ip, probe.port))
            sock.sendall(b"netlab-trace\n")
            data = sock.recv(65535)
    except (socket.timeout, TimeoutError):
        out["detail"] = f"no answer within {timeout:g} s"
        return out
    except OSError as e:
        out["detail"] = os.strerror(e.errno) if e.errno else str(e)
        return out
    try:
        answer = json.loads(data.decode().strip().splitlines()[0])
    except (ValueError, IndexError):
        out["detail"] = f"unexpected answer: {data[:60]!r}"
        return out
    out.update(reached=True, answered_by=answer.get("server"),
               seen_source=answer.get("client", "").rpartition(":")[0] or None,
               detail=f"answered by {answer.get('server')}, which saw {answer.get('client')}")
    return out


def _route(netns: str, t: nftrace.Traversal) -> dict:
    args = path.route_query(t)
    stdout, err, code = _run(netns, ["ip", "-j", "-d", "route", "get", *args])
    try:
        answer = json.loads(stdout) if code == 0 and stdout.strip() else None
    except ValueError:
        answer = None
    return path.route_facts(answer, err.removeprefix("RTNETLINK answers: ") if code else None, args[1])


def _conntrack(netns: str, probe: path.Probe) -> list[conntrack.Entry]:
    if probe.proto == "icmp":
        argv = ["conntrack", "-L", "-p", "icmp", "--icmp-id", str(probe.ident)]
    else:
        argv = ["conntrack", "-L", "-p", probe.proto, "--orig-port-src", str(probe.ident)]
    stdout, _, code = _run(netns, argv)
    return conntrack.parse(stdout) if code == 0 else []


def _switch(q) -> ovstrace.OvsTrace:
    stdout, err, code = _run(None, list(q.argv))
    if code != 0:
        raise ApplyError(f"{' '.join(q.argv[:4])} on {q.cluster}/{q.node}: {err}")
    return ovstrace.parse(stdout)


def assemble(lab: Lab, probe: path.Probe, names: dict[str, str], found: dict[str, list[nftrace.Traversal]],
             result: dict, wire: list[dict]) -> dict:
    request, reply = path.order(found, probe)
    hops: list[dict] = []
    for direction, items in (("request", request), ("reply", reply)):
        for netns, t in items:
            hop = path.netns_hop(lab, direction, netns, names[netns], t)
            if hop["fate"] != "delivered":
                hop["route"] = _route(netns, t)
            if direction == "request":
                hop["nat"] = [n for e in _conntrack(netns, probe) for n in e.nat()]
            hops.append(hop)
            encap = path.encap_hop(lab, hop)
            if encap:
                hops.append(encap)
            q = path.switch_entry(lab, hop, t)
            for _ in range(4):  # a pod's br-int, the tunnel, the far node's br-int
                if q is None:
                    break
                switch, underlay, q = path.switch_hop(lab, direction, q, _switch(q))
                hops += [switch] + ([underlay] if underlay else [])
    for hop in hops:
        if hop["kind"] == "underlay":
            seen = next((w for w in wire if w["on"].startswith(hop["from_object"] + " ")
                         and w["direction"] == hop["direction"]), None)
            hop["seen"] = f"{seen['on']}: {seen['text']}" if seen else None
    report = {"lab": lab.name, "from": probe.src_object, "to": probe.dst + (f":{probe.port}" if probe.port else ""),
              "proto": probe.proto,
              "probe": {"src": probe.src_ip, "dst": probe.dst_ip,
                        **({"icmp_id": probe.ident} if probe.proto == "icmp" else
                           {"sport": probe.ident, "dport": probe.port})},
              "result": result, "hops": hops, "kube_proxy": path.kube_proxy(hops)}
    report["died"] = path.died(hops, result["reached"])
    return report
