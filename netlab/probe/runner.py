"""Run checks from one process: sockets opened inside lab namespaces, driven by one event loop.

Each probe socket is created after stepping this thread into the source namespace (it stays
there when the thread steps back), so hundreds of checks run concurrently without a process
per probe. TCP and UDP probes are real connections to the pod agent, which answers with its
name and the client address it saw. ICMP probes are crafted with scapy and sent on raw
sockets. While the checks run, one AF_PACKET socket per watched underlay interface records
frames; afterwards scapy decodes them to tell what crossed the wire (plain IP or VXLAN).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
import json
import os
import random
import socket
import ssl
import time
from dataclasses import dataclass, field

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from netlab import linux
from netlab.probe.checks import CheckSpec

ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33  # not exported by Python's socket module
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2  # set DF; the kernel refuses what exceeds the path MTU
CONCURRENCY = 64
PROBE_LINE = b"netlab-probe\n"


@dataclass
class Result:
    spec: CheckSpec
    reached: bool = False
    seen_source: str | None = None
    backend: str | None = None
    encap: str | None = None
    detail: str = ""
    sport: int | None = None
    icmp_id: int | None = None
    backends: list[str] = field(default_factory=list)  # one per answered connection
    rtts: list[float] = field(default_factory=list)  # ICMP round trips, milliseconds
    sources: list[str] = field(default_factory=list)
    refusal: str | None = None  # "reject" or "drop" when not reached
    problems: list[str] = field(default_factory=list)
    http_status: int | None = None  # HTTP checks: the answer's status
    forwarded_for: list[str] = field(default_factory=list)  # HTTP: X-Forwarded-For the backend got

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict:
        s = self.spec
        return {"name": s.name, "from": s.src, "to": s.dst + (f":{s.port}" if s.port else ""),
                "proto": s.proto, "expect": s.expect, "reached": self.reached, "ok": self.ok,
                "seen_source": self.seen_source, "backend": self.backend, "encap": self.encap,
                "detail": self.detail}


class Namespaces:
    """Open namespace file descriptors for the run, and sockets created inside them."""

    def __init__(self) -> None:
        self.fds: dict[str, int] = {}

    def socket(self, netns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
        if netns not in self.fds:
            self.fds[netns] = linux.open_netns(netns)
        with linux.entered(self.fds[netns]):
            sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


class Sniffer:
    """Every frame crossing one interface of one namespace while the checks run."""

    def __init__(self, spaces: Namespaces, netns: str, ifname: str):
        self.sock = spaces.socket(netns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        self.sock.bind((ifname, ETH_P_ALL))
        self.frames: list[bytes] = []
        self._parsed: list[list[dict]] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.sock.fileno(), self._drain)

    def _drain(self) -> None:
        while True:
            try:
                self.frames.append(self.sock.recv(65535))
            except (BlockingIOError, InterruptedError):
                return

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._drain()
        loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def observations(self) -> list[list[dict]]:
        if self._parsed is None:
            self._parsed = [decode(f) for f in self.frames]
        return self._parsed


def decode(frame: bytes) -> list[dict]:
    """What an underlay frame carries: the IP packet, encapsulated or not."""
    try:
        pkt = Ether(frame)
    except Exception:  # scapy raises many kinds on truncated frames
        return []
    if IP not in pkt:
        return []
    if VXLAN in pkt:
        outer = pkt[IP]
        inner = pkt[VXLAN].payload
        if IP not in inner:
            return []
        return [_flow(inner[IP], "vxlan", f"VXLAN vni {pkt[VXLAN].vni} {outer.src}→{outer.dst} "
                                           f"udp/{pkt[UDP].dport} ({outer.len} bytes), "
                                           f"inner {inner[IP].src}→{inner[IP].dst}")]
    return [_flow(pkt[IP], "none", f"plain IP {pkt[IP].src}→{pkt[IP].dst}")]


def _flow(ip, encap: str, text: str) -> dict:
    flow = {"encap": encap, "text": text, "src": ip.src, "dst": ip.dst, "proto": None, "sport": None, "icmp_id": None}
    if TCP in ip:
        flow.update(proto="tcp", sport=ip[TCP].sport)
    elif UDP in ip:
        flow.update(proto="udp", sport=ip[UDP].sport)
    elif ICMP in ip and ip[ICMP].type == 8:
        flow.update(proto="icmp", icmp_id=ip[ICMP].id)
    return flow


_icmp_ids = itertools.count((os.getpid() * 7919) & 0xFFFF)


class Runner:
    def __init__(self, timeout: float = 2.0):
        self.timeout = timeout
        self.spaces = Namespaces()

    def run(self, specs: list[CheckSpec]) -> list[Result]:
        try:
            return asyncio.run(self._run(specs))
        finally:
            self.spaces.close()

    async def _run(self, specs: list[CheckSpec]) -> list[Result]:
        loop = asyncio.get_running_loop()
        sniffers = {where: Sniffer(self.spaces, *where) for where in {s.sniff for s in specs if s.sniff}}
        for sn in sniffers.values():
            sn.start(loop)
        gate = asyncio.Semaphore(CONCURRENCY)
        # Checks that count answers from one target take turns: interleaved in lockstep,
        # two clients of a round-robin IPVS service would each see only every other backend.
        turns: dict[tuple, asyncio.Lock] = {}

        async def one(spec: CheckSpec) -> Result:
            async with gate:
                if spec.count == 1:
                    return await self.probe(spec)
                async with turns.setdefault(spec.turn or (spec.dst_ip, spec.port, spec.proto), asyncio.Lock()):
                    return await self.probe(spec)

        results = await asyncio.gather(*(one(s) for s in specs))
        await asyncio.sleep(0.02)  # frames still in flight on the veths
        for sn in sniffers.values():
            sn.stop(loop)
        for r in results:
            if r.spec.sniff:
                _classify(r, sniffers[r.spec.sniff])
            _judge(r)
        return results

    async def probe(self, spec: CheckSpec) -> Result:
        result = Result(spec)
        for _ in range(spec.count):
            try:
                if spec.proto == "tcp":
                    await self._tcp(spec, result)
                elif spec.proto == "udp":
                    await self._udp(spec, result)
                elif spec.proto == "syn":
                    await self._syn(spec, result)
                elif spec.proto in ("http", "https"):
                    await self._http(spec, result)
                else:
                    await self._icmp(spec, result)
            except (asyncio.TimeoutError, TimeoutError):
                result.detail, result.refusal = f"no answer within {self.timeout:g} s", "drop"
            except ConnectionRefusedError:
                result.detail, result.refusal = "refused (TCP RST or ICMP port unreachable)", "reject"
            except OSError as e:
                result.detail = f"{os.strerror(e.errno) if e.errno else e}"
                result.refusal = "reject"  # ICMP host/network unreachable
            if not result.reached:
                break
        if spec.count > 1 and result.backends:
            tally = Counter(result.backends)
            result.detail = (f"{len(result.backends)} connections answered by "
                             + ", ".join(f"{b} ×{n}" for b, n in sorted(tally.items()))
                             + f"; sources seen: {', '.join(sorted(set(result.sources)))}")
        return result

    async def _tcp(self, spec: CheckSpec, result: Result) -> None:
        loop = asyncio.get_running_loop()
        with self.spaces.socket(spec.src_netns, socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("0.0.0.0", 0))
            result.sport = sock.getsockname()[1]
            await asyncio.wait_for(loop.sock_connect(sock, (str(spec.dst_ip), spec.port)), self.timeout)
            await loop.sock_sendall(sock, PROBE_LINE)
            data = await asyncio.wait_for(_read_all(loop, sock), self.timeout)
        _answered(result, data)

    async def _http(self, spec: CheckSpec, result: Result) -> None:
        """A GET with the check's Host header and path (over TLS with SNI, the server's
        certificate verified against the lab's CA for that name); the pod agent's JSON
        body says who answered, what it saw and the headers that reached it."""
        loop = asyncio.get_running_loop()
        sock = self.spaces.socket(spec.src_netns, socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("0.0.0.0", 0))
            result.sport = sock.getsockname()[1]
            await asyncio.wait_for(loop.sock_connect(sock, (str(spec.dst_ip), spec.port)), self.timeout)
        except BaseException:
            sock.close()
            raise
        host = spec.host or str(spec.dst_ip)
        tls = None
        if spec.proto == "https":
            tls = ssl.create_default_context(cadata=spec.ca_pem)
            if not spec.ca_pem:  # a name without a certificate of its own: the listener's default one
                tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                sock=sock, ssl=tls, server_hostname=host if tls else None), self.timeout)
        except ssl.SSLError as e:
            sock.close()
            result.detail, result.refusal = f"TLS: {e.reason or e}", "reject"
            return
        try:
            writer.write(f"GET {spec.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: netlab-check\r\n"
                         "Connection: close\r\n\r\n".encode())
            data = await asyncio.wait_for(reader.read(), self.timeout)
        finally:
            writer.close()
        status = data.split(b" ", 2)[1:2]
        result.http_status = int(status[0]) if status and status[0].isdigit() else None
        body = data.split(b"\r\n\r\n", 1)[-1]
        if body.lstrip().startswith(b"{"):
            _answered(result, data)
            try:
                headers = json.loads(body.decode().strip().splitlines()[0]).get("headers", {})
            except ValueError:
                headers = {}
            xff = next((v for k, v in headers.items() if k.lower() == "x-forwarded-for"), "")
            result.forwarded_for = [a.strip() for a in xff.split(",") if a.strip()]
            result.detail += f"; HTTP {result.http_status}, X-Forwarded-For {xff or '(none)'}"
        else:
            result.reached = True
            result.detail = f"HTTP {result.http_status} from the server itself (no backend)"

    async def _udp(self, spec: CheckSpec, result: Result) -> None:
        loop = asyncio.get_running_loop()
        with self.spaces.socket(spec.src_netns, socket.AF_INET, socket.SOCK_DGRAM) as sock:
            _bind_fresh_port(sock)
            result.sport = sock.getsockname()[1]
            sock.connect((str(spec.dst_ip), spec.port))
            await loop.sock_sendall(sock, PROBE_LINE)
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), self.timeout)
        _answered(result, data)

    async def _syn(self, spec: CheckSpec, result: Result) -> None:
        """A crafted TCP SYN (scapy) on a raw socket; the answer tells how the path treats
        it: SYN-ACK (reached), TCP RST or ICMP unreachable (rejected), nothing (dropped)."""
        loop = asyncio.get_running_loop()
        sport = 40000 + next(_icmp_ids) % 20000
        result.sport = sport
        isn = random.getrandbits(32)
        syn = bytes(IP(src=str(spec.src_ip), dst=str(spec.dst_ip)) /
                    TCP(sport=sport, dport=spec.port, flags="S", seq=isn))
        tcp = self.spaces.socket(spec.src_netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        icmp = self.spaces.socket(spec.src_netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        with tcp, icmp:
            tcp.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            await loop.sock_sendto(tcp, syn, (str(spec.dst_ip), 0))
            deadline = time.monotonic() + self.timeout
            reading = {asyncio.ensure_future(loop.sock_recv(sock, 65535)): sock for sock in (tcp, icmp)}
            try:
                while (left := deadline - time.monotonic()) > 0:
                    done, _ = await asyncio.wait(reading, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        sock = reading.pop(task)
                        verdict = _syn_answer(IP(task.result()), sport, isn, spec)
                        if verdict:
                            kind, result.detail = verdict
                            if kind == "reached":
                                result.reached = True
                            else:
                                result.refusal = kind
                            return
                        reading[asyncio.ensure_future(loop.sock_recv(sock, 65535))] = sock
            finally:
                for task in reading:
                    task.cancel()
            result.detail, result.refusal = f"SYN dropped: no answer within {self.timeout:g} s", "drop"

    async def _icmp(self, spec: CheckSpec, result: Result) -> None:
        loop = asyncio.get_running_loop()
        ident = next(_icmp_ids) & 0xFFFF
        result.icmp_id = ident
        payload = b"netlab-probe"
        if spec.size:
            payload = payload.ljust(spec.size - 28, b".")  # IP header 20 + ICMP header 8
        request = bytes(ICMP(type=8, id=ident, seq=1) / payload)
        with self.spaces.socket(spec.src_netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
            if spec.size:
                sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
            sent = time.monotonic()
            await loop.sock_sendto(sock, request, (str(spec.dst_ip), 0))
            deadline = sent + self.timeout + (spec.min_rtt_ms or 0) / 1000
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                data = await asyncio.wait_for(loop.sock_recv(sock, 65535), left)
                reply = IP(data)
                icmp = reply[ICMP]
                if icmp.type == 0 and icmp.id == ident and reply.src == str(spec.dst_ip):
                    result.reached = True
                    result.rtts.append((time.monotonic() - sent) * 1000)
                    result.detail = f"echo reply from {reply.src} (ttl {reply.ttl})"
                    if len(result.rtts) > 1:
                        result.detail += (f"; {len(result.rtts)} round trips: min {min(result.rtts):.1f} ms, "
                                          f"max {max(result.rtts):.1f} ms")
                    return
                if icmp.type == 3 and bytes(icmp.payload)[24:26] == ident.to_bytes(2, "big"):
                    result.detail = f"ICMP destination unreachable (code {icmp.code}) from {reply.src}"
                    return


_udp_ports = itertools.count((os.getpid() * 7919) % 20000)


def _bind_fresh_port(sock: socket.socket) -> None:
    """A UDP source port not used by the previous probes: each probe is a new flow for
    conntrack and IPVS (a kernel may hand the same ephemeral port out again, and a reused
    port rides the previous flow's NAT entry to the same backend)."""
    for _ in range(100):
        try:
            sock.bind(("0.0.0.0", 40000 + next(_udp_ports) % 20000))
            return
        except OSError:
            continue
    sock.bind(("0.0.0.0", 0))


async def _read_all(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            return data
        data += chunk


def _syn_answer(reply, sport: int, isn: int, spec: CheckSpec) -> tuple[str, str] | None:
    """What an answer to our SYN says, or None if the packet answers something else (the raw
    sockets see every TCP and ICMP packet of the namespace; another connection may even use
    the same port, so an answer is ours only if it acknowledges our sequence number)."""
    if TCP in reply and reply[TCP].dport == sport and reply[TCP].ack == (isn + 1) % 2**32:
        flags = reply[TCP].flags
        if flags.S and flags.A:
            if (reply.src, reply[TCP].sport) != (str(spec.dst_ip), spec.port):
                # The reply bypassed the NAT that rewrote the request (an asymmetric path):
                # a real client's stack finds no connection for it and drops it.
                return "drop", (f"SYN-ACK came back from {reply.src}:{reply[TCP].sport}, not from "
                                f"{spec.dst_ip}:{spec.port}: un-NATed reply, a real client drops it")
            return "reached", f"SYN-ACK from {reply.src}:{reply[TCP].sport}"
        if flags.R:
            return "reject", f"rejected: TCP RST from {reply.src}"
    if ICMP in reply and reply[ICMP].type == 3:
        inner = bytes(reply[ICMP].payload)  # our IP header and the first 8 bytes of our SYN
        if (len(inner) >= 28 and int.from_bytes(inner[20:22], "big") == sport
                and int.from_bytes(inner[24:28], "big") == isn):
            kind = {3: "port", 1: "host", 0: "network", 13: "administratively"}.get(reply[ICMP].code, "")
            return "reject", f"rejected: ICMP {kind} unreachable (code {reply[ICMP].code}) from {reply.src}"
    return None


def _answered(result: Result, data: bytes) -> None:
    body = data.split(b"\r\n\r\n", 1)[-1] if data.startswith(b"HTTP/") else data
    try:
        answer = json.loads(body.decode().strip().splitlines()[0])
    except (ValueError, IndexError):
        result.detail = f"unexpected answer: {data[:60]!r}"
        return
    result.reached = True
    result.backend = answer.get("server")
    result.seen_source = answer.get("client", "").rpartition(":")[0] or None
    result.backends.append(result.backend)
    result.sources.append(result.seen_source)
    result.detail = f"answered by {result.backend}, which saw {answer.get('client')}"


def _judge_answers(result: Result) -> None:
    spec = result.spec
    sources = set(result.sources)
    if spec.expect_source and sources - {str(spec.expect_source)}:
        result.problems.append(f"server saw {', '.join(sorted(sources))}, expected {spec.expect_source}")
    if spec.allowed_sources and sources - {str(a) for a in spec.allowed_sources}:
        result.problems.append(f"server saw {', '.join(sorted(sources))}, expected one of "
                               + ", ".join(str(a) for a in spec.allowed_sources))
    backends = set(result.backends)
    if spec.expect_backend and backends - {spec.expect_backend}:
        result.problems.append(f"answered by {', '.join(sorted(backends))}, expected {spec.expect_backend}")
    if spec.allowed_backends and backends - set(spec.allowed_backends):
        result.problems.append(f"answered by {', '.join(sorted(backends - set(spec.allowed_backends)))}, "
                               f"not an endpoint of {spec.dst}")
    if spec.spread == "all" and set(spec.allowed_backends) - backends:
        result.problems.append(f"{', '.join(sorted(set(spec.allowed_backends) - backends))} never answered "
                               f"in {len(result.backends)} connections")
    if spec.spread == "one" and len(backends) > 1:
        result.problems.append(f"session affinity broken: {len(backends)} backends answered")
    if spec.proto in ("http", "https"):
        wanted = spec.expect_status
        if wanted is not None and result.http_status != wanted:
            result.problems.append(f"HTTP {result.http_status}, expected {wanted}")
        if wanted is None and not (result.http_status and 200 <= result.http_status < 300):
            result.problems.append(f"HTTP {result.http_status}, expected a backend's 2xx")
        if spec.expect_forwarded_for and result.forwarded_for[-1:] != [spec.expect_forwarded_for]:
            result.problems.append(f"X-Forwarded-For {', '.join(result.forwarded_for) or '(none)'}, expected it to "
                                   f"end with {spec.expect_forwarded_for}")
    if spec.min_rtt_ms and result.rtts and min(result.rtts) < spec.min_rtt_ms:
        result.problems.append(f"fastest round trip {min(result.rtts):.1f} ms, below the {spec.min_rtt_ms:g} ms delay set")


def _classify(result: Result, sniffer: Sniffer) -> None:
    spec = result.spec
    seen = None
    for flows in sniffer.observations():
        for f in flows:
            if spec.proto == "icmp":
                hit = f["proto"] == "icmp" and f["icmp_id"] == result.icmp_id
            else:
                hit = f["proto"] == spec.proto and f["sport"] == result.sport
            if hit and (f["src"] == str(spec.src_ip) or f["dst"] == str(spec.dst_ip) and _source_ok(spec, f)):
                seen = f
                break
        if seen:
            break
    where = spec.sniff_label or f"{spec.sniff[1]}"
    if seen is None:
        result.encap = "none"
        note = f"not on {where} (stayed inside the node)"
        if spec.expect_encap in ("none", "vxlan") and result.reached:
            result.problems.append(f"expected {spec.expect_encap} on {where}, saw nothing")
    else:
        result.encap = seen["encap"]
        note = f"on {where}: {seen['text']}"
        if spec.expect_encap == "absent":
            result.problems.append(f"expected to stay inside the node, but crossed {where}")
        elif spec.expect_encap and spec.expect_encap != seen["encap"]:
            result.problems.append(f"expected {spec.expect_encap} on {where}, saw {seen['encap']}")
    result.detail = f"{result.detail}; {note}" if result.detail else note


def _source_ok(spec: CheckSpec, flow: dict) -> bool:
    # A probe may leave with another source than its own (SNAT, or the node stack picking
    # its pod-side address): the one the check expects. Another connection to the same
    # destination that happens to use the same source port is not this probe.
    return spec.expect_source is None or flow["src"] == str(spec.expect_source)


def _judge(result: Result) -> None:
    spec = result.spec
    if spec.expect == "reach" and not result.reached:
        result.problems.insert(0, "not reached")
    if spec.expect == "blocked" and result.reached:
        result.problems.insert(0, "reached, but should be blocked")
    if spec.expect == "blocked" and not result.reached and spec.blocked_by and result.refusal != spec.blocked_by:
        result.problems.append(f"expected a {spec.blocked_by}, got a {result.refusal or 'different answer'}")
    if result.reached and spec.expect == "reach":
        _judge_answers(result)
    if len(set(result.backends)) > 1:
        result.backend = ", ".join(dict.fromkeys(result.backends))
    if len(set(result.sources)) > 1:
        result.seen_source = ", ".join(dict.fromkeys(result.sources))
    if result.problems:
        result.detail = "; ".join(result.problems) + (f" ({result.detail})" if result.detail else "")
