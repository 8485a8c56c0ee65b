"""Run checks from one process: sockets opened inside lab namespaces, driven by one event loop.

Each probe socket is created after stepping this thread into the source namespace (it stays
there when the thread steps back), so hundreds of checks run concurrently without a process
per probe. TCP and UDP probes are real connections to the pod agent, which answers with its
name and the client address it saw. ICMP probes are crafted with scapy and sent on raw
sockets. While the checks run, one AF_PACKET socket per watched underlay interface records
frames; afterwards scapy decodes them to tell what crossed the wire (plain IP or VXLAN).

Every probe ends in one piece of evidence (`netlab.probe.outcomes.Evidence`): an answer, a
RST, an ICMP error with its sender (TCP and UDP sockets set IP_RECVERR and read the sender
from their error queue; raw sockets read the ICMP packet itself), an error of the sender's
own stack, or silence. Silence is waited for `timeout` seconds (0.3 s by default: in a lab
every answer, ICMP errors included, comes back in well under a millisecond, so this is a
margin of several hundred for a loaded machine). A silence the check did not expect is
probed once more, waiting `patience` (2 s, or 4 × timeout), before it is reported, so a slow
answer on a busy machine does not fail a check; a drop the check expects costs one
`timeout`, and the checks wait for their drops concurrently.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import os
import random
import socket
import ssl
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_address

from scapy.layers.inet import ICMP, IP, TCP

from netlab import linux
from netlab.probe.checks import CheckSpec
from netlab.probe.outcomes import BLOCKED, Evidence, classify, satisfies

ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33  # not exported by Python's socket module
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2  # set DF; the kernel refuses what exceeds the path MTU
IP_RECVERR = 11  # ICMP errors (and their sender) queued on the socket's error queue
SO_EE_ORIGIN_LOCAL, SO_EE_ORIGIN_ICMP = 1, 2
CONCURRENCY = 64
PROBE_LINE = b"netlab-probe\n"
DEFAULT_TIMEOUT = 0.3  # seconds of silence before a probe counts as dropped
MIN_PATIENCE = 2.0  # a silence the check did not expect is probed again, waiting this long


@dataclass
class Result:
    spec: CheckSpec
    reached: bool = False
    outcome: str | None = None  # netlab.probe.outcomes.OUTCOMES
    cause: str = ""  # what the evidence says, and who said it
    seen_source: str | None = None
    backend: str | None = None
    encap: str | None = None
    detail: str = ""
    sport: int | None = None
    icmp_id: int | None = None
    backends: list[str] = field(default_factory=list)  # one per answered connection
    rtts: list[float] = field(default_factory=list)  # ICMP round trips, milliseconds
    sources: list[str] = field(default_factory=list)
    evidence: Evidence | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0  # how long the check took, re-probe included
    retried: bool = False  # an unexpected silence was probed again with more patience
    http_status: int | None = None  # HTTP checks: the answer's status
    forwarded_for: list[str] = field(default_factory=list)  # HTTP: X-Forwarded-For the backend got

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict:
        s = self.spec
        legacy = "blocked" if s.expect in BLOCKED | {"blocked"} else s.expect
        return {"name": s.name, "from": s.src, "to": s.target,
                "proto": s.proto, "expect": legacy, "reached": self.reached, "ok": self.ok,
                "seen_source": self.seen_source, "backend": self.backend, "encap": self.encap,
                "detail": self.detail,
                # added with outcome kinds (the keys above keep their meaning)
                "outcome": self.outcome, "expect_outcome": s.expect, "cause": self.cause, "why": s.why,
                "kind": s.kind, "cluster": s.cluster, "origin": s.origin, "seconds": round(self.seconds, 4)}


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


VXLAN_PORT = 4789


def decode(frame: bytes) -> list[dict]:
    """What an underlay frame carries: the IP packet, encapsulated or not.

    Read with struct, not scapy: a check run records tens of thousands of frames, and
    scapy's dissector manages a few thousand a second (it was most of a run's time)."""
    outer = _ipv4(frame, 14 if frame[12:14] != b"\x81\x00" else 18)
    if outer is None:
        return []
    ihl, proto, src, dst, length = outer
    l4 = (14 if frame[12:14] != b"\x81\x00" else 18) + ihl
    if proto == 17 and len(frame) >= l4 + 16 and int.from_bytes(frame[l4 + 2:l4 + 4], "big") == VXLAN_PORT:
        vni = int.from_bytes(frame[l4 + 12:l4 + 15], "big")
        inner_eth = l4 + 16
        inner = _ipv4(frame, inner_eth + 14) if frame[inner_eth + 12:inner_eth + 14] == b"\x08\x00" else None
        if inner is None:
            return []
        text = (f"VXLAN vni {vni} {src}→{dst} udp/{VXLAN_PORT} ({length} bytes), "
                f"inner {inner[2]}→{inner[3]}")
        return [_flow(frame, inner_eth + 14, inner, "vxlan", text)]
    return [_flow(frame, l4 - ihl, outer, "none", f"plain IP {src}→{dst}")]


def _ipv4(frame: bytes, at: int) -> tuple[int, int, str, str, int] | None:
    """(header length, protocol, source, destination, total length) of an IPv4 header."""
    if len(frame) < at + 20 or frame[at - 2:at] != b"\x08\x00" or frame[at] >> 4 != 4:
        return None
    ihl = (frame[at] & 0x0F) * 4
    return (ihl, frame[at + 9], socket.inet_ntoa(frame[at + 12:at + 16]), socket.inet_ntoa(frame[at + 16:at + 20]),
            int.from_bytes(frame[at + 2:at + 4], "big"))


def _flow(frame: bytes, at: int, ip: tuple, encap: str, text: str) -> dict:
    ihl, proto, src, dst, _ = ip
    l4 = at + ihl
    flow = {"encap": encap, "text": text, "src": src, "dst": dst, "proto": None, "sport": None, "icmp_id": None}
    if proto in (6, 17) and len(frame) >= l4 + 4:
        flow.update(proto="tcp" if proto == 6 else "udp", sport=int.from_bytes(frame[l4:l4 + 2], "big"))
    elif proto == 1 and len(frame) >= l4 + 6 and frame[l4] == 8:
        flow.update(proto="icmp", icmp_id=int.from_bytes(frame[l4 + 4:l4 + 6], "big"))
    return flow


_icmp_ids = itertools.count((os.getpid() * 7919) & 0xFFFF)


class Runner:
    def __init__(self, timeout: float = DEFAULT_TIMEOUT, namer: Callable[[IPv4Address], str] | None = None):
        self.timeout = timeout
        self.patience = max(MIN_PATIENCE, 4 * timeout)
        self.namer = namer or str
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

        async def attempt(spec: CheckSpec, wait: float) -> Result:
            async with gate:
                if spec.count == 1:
                    return await self.probe(spec, wait)
                async with turns.setdefault(spec.turn or (spec.dst_ip, spec.port, spec.proto), asyncio.Lock()):
                    return await self.probe(spec, wait)

        async def one(spec: CheckSpec) -> Result:
            start = time.monotonic()
            result = await attempt(spec, self.timeout)
            if result.outcome == "dropped" and not satisfies("dropped", spec.expect):
                result = await attempt(spec, self.patience)
                result.retried = True
            result.seconds = time.monotonic() - start
            return result

        results = await asyncio.gather(*(one(s) for s in specs))
        await asyncio.sleep(0.02)  # frames still in flight on the veths
        for sn in sniffers.values():
            sn.stop(loop)
        for r in results:
            if r.spec.sniff:
                _classify(r, sniffers[r.spec.sniff])
            _judge(r)
        return results

    def _name(self, ip: IPv4Address | None) -> str:
        return self.namer(ip) if ip is not None else "an unknown sender"

    async def probe(self, spec: CheckSpec, wait: float | None = None) -> Result:
        wait = self.timeout if wait is None else wait
        result = Result(spec)
        kinds = {"tcp": self._tcp, "udp": self._udp, "syn": self._syn, "http": self._http, "https": self._http}
        ev = Evidence("silence")
        for _ in range(spec.count):
            ev = await kinds.get(spec.proto, self._icmp)(spec, result, wait)
            if ev.kind != "answer":
                break
        result.evidence = ev
        result.outcome, result.cause = classify(ev, set(spec.target_ips), spec.rule_rejects, self._name)
        result.reached = result.outcome == "reach"
        if ev.kind == "silence":
            result.detail = ev.note or f"no answer within {wait:g} s"
        elif ev.kind != "answer":
            result.detail = result.cause
        if spec.count > 1 and result.backends:
            tally = Counter(result.backends)
            result.detail = (f"{len(result.backends)} connections answered by "
                             + ", ".join(f"{b} ×{n}" for b, n in sorted(tally.items()))
                             + f"; sources seen: {', '.join(sorted(set(result.sources)))}"
                             + (f"; then {result.detail}" if ev.kind != "answer" else ""))
        return result

    async def _tcp(self, spec: CheckSpec, result: Result, wait: float) -> Evidence:
        loop = asyncio.get_running_loop()
        with self.spaces.socket(spec.src_netns, socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            sock.bind(("0.0.0.0", 0))
            result.sport = sock.getsockname()[1]
            try:
                await asyncio.wait_for(loop.sock_connect(sock, (str(spec.dst_ip), spec.port)), wait)
            except TimeoutError:
                return Evidence("silence")
            except OSError as e:
                return _failure(sock, e, spec.dst_ip, tcp=True)
            try:
                await loop.sock_sendall(sock, PROBE_LINE)
                data = await asyncio.wait_for(read_all(loop, sock), self.patience)
            except TimeoutError:
                result.problems.append(f"connected, but the server sent nothing within {self.patience:g} s")
                return Evidence("answer")
            except OSError as e:
                result.problems.append(f"connected, then {os.strerror(e.errno or 0)}")
                return Evidence("answer")
        _answered(result, data)
        return Evidence("answer")

    async def _http(self, spec: CheckSpec, result: Result, wait: float) -> Evidence:
        """A GET with the check's Host header and path (over TLS with SNI, the server's
        certificate verified against the lab's CA for that name); the pod agent's JSON
        body says who answered, what it saw and the headers that reached it."""
        loop = asyncio.get_running_loop()
        sock = self.spaces.socket(spec.src_netns, socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        try:
            sock.bind(("0.0.0.0", 0))
            result.sport = sock.getsockname()[1]
            await asyncio.wait_for(loop.sock_connect(sock, (str(spec.dst_ip), spec.port)), wait)
        except TimeoutError:
            sock.close()
            return Evidence("silence")
        except OSError as e:
            ev = _failure(sock, e, spec.dst_ip, tcp=True)
            sock.close()
            return ev
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
                sock=sock, ssl=tls, server_hostname=host if tls else None), self.patience)
        except ssl.SSLError as e:
            sock.close()
            return Evidence("tls", sender=spec.dst_ip, note=str(e.reason or e))
        except (TimeoutError, OSError) as e:
            sock.close()
            result.problems.append(f"connected, but TLS failed: {e}")
            return Evidence("answer")
        try:
            writer.write(f"GET {spec.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: netlab-check\r\n"
                         "Connection: close\r\n\r\n".encode())
            data = await asyncio.wait_for(reader.read(), self.patience)
        except (TimeoutError, OSError) as e:
            result.problems.append(f"connected, but no HTTP answer: {e or 'timeout'}")
            return Evidence("answer")
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
            result.detail = f"HTTP {result.http_status} from the server itself (no backend)"
        return Evidence("answer")

    async def _udp(self, spec: CheckSpec, result: Result, wait: float) -> Evidence:
        loop = asyncio.get_running_loop()
        with self.spaces.socket(spec.src_netns, socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            _bind_fresh_port(sock)
            result.sport = sock.getsockname()[1]
            try:
                sock.connect((str(spec.dst_ip), spec.port))
                await loop.sock_sendall(sock, PROBE_LINE)
                data = await asyncio.wait_for(loop.sock_recv(sock, 65535), wait)
            except TimeoutError:
                return Evidence("silence")
            except OSError as e:
                return _failure(sock, e, spec.dst_ip, tcp=False)
        _answered(result, data)
        return Evidence("answer")

    async def _syn(self, spec: CheckSpec, result: Result, wait: float) -> Evidence:
        """A crafted TCP SYN (scapy) on a raw socket; the answer tells how the path treats
        it: SYN-ACK (reached), TCP RST or ICMP unreachable (refused, rejected, unreachable),
        nothing (dropped)."""
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
            try:
                await loop.sock_sendto(tcp, syn, (str(spec.dst_ip), 0))
            except OSError as e:
                return Evidence("local", errno=e.errno)
            deadline = time.monotonic() + wait
            reading = {asyncio.ensure_future(loop.sock_recv(sock, 65535)): sock for sock in (tcp, icmp)}
            try:
                while (left := deadline - time.monotonic()) > 0:
                    done, _ = await asyncio.wait(reading, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        sock = reading.pop(task)
                        ev = _syn_answer(IP(task.result()), sport, isn, spec)
                        if ev:
                            if ev.kind == "answer":
                                result.detail = ev.note
                            return ev
                        reading[asyncio.ensure_future(loop.sock_recv(sock, 65535))] = sock
            finally:
                for task in reading:
                    task.cancel()
            return Evidence("silence", note=f"SYN dropped: no answer within {wait:g} s")

    async def _icmp(self, spec: CheckSpec, result: Result, wait: float) -> Evidence:
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
            try:
                await loop.sock_sendto(sock, request, (str(spec.dst_ip), 0))
            except OSError as e:
                return Evidence("local", errno=e.errno)
            deadline = sent + wait + (spec.min_rtt_ms or 0) / 1000
            while (left := deadline - time.monotonic()) > 0:
                try:
                    data = await asyncio.wait_for(loop.sock_recv(sock, 65535), left)
                except TimeoutError:
                    break
                reply = IP(data)
                icmp = reply[ICMP]
                if icmp.type == 0 and icmp.id == ident and reply.src == str(spec.dst_ip):
                    result.rtts.append((time.monotonic() - sent) * 1000)
                    result.detail = f"echo reply from {reply.src} (ttl {reply.ttl})"
                    if len(result.rtts) > 1:
                        result.detail += (f"; {len(result.rtts)} round trips: min {min(result.rtts):.1f} ms, "
                                          f"max {max(result.rtts):.1f} ms")
                    return Evidence("answer")
                if icmp.type == 3 and bytes(icmp.payload)[24:26] == ident.to_bytes(2, "big"):
                    return Evidence("icmp", sender=ip_address(reply.src), code=icmp.code,
                                    mtu=icmp.nexthopmtu if icmp.code == 4 else None)
            return Evidence("silence")


def _error_queue(sock: socket.socket) -> tuple[int, int, int, int, IPv4Address | None] | None:
    """The first entry of a socket's error queue (IP_RECVERR): (errno, origin, code, info,
    offender), or None. `struct sock_extended_err` is followed by the offender's sockaddr_in."""
    try:
        _, ancdata, _, _ = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError, OSError):
        return None
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_RECVERR and len(data) >= 16:
            ee_errno, origin, _type, code, _pad, info, _data = struct.unpack("=IBBBBII", data[:16])
            offender = None
            if len(data) >= 24 and int.from_bytes(data[16:18], "little") == socket.AF_INET:
                offender = ip_address(data[20:24])
            return ee_errno, origin, code, info, offender
    return None


def _failure(sock: socket.socket, exc: OSError, dst: IPv4Address, *, tcp: bool) -> Evidence:
    """What a failed connect/send/recv means: an ICMP error (with its sender), a RST, or an
    error of the sender's own stack."""
    entry = _error_queue(sock)
    if entry is not None:
        ee_errno, origin, code, info, offender = entry
        if origin == SO_EE_ORIGIN_ICMP:
            return Evidence("icmp", sender=offender, code=code, mtu=info if code == 4 else None)
        if origin == SO_EE_ORIGIN_LOCAL:
            return Evidence("local", errno=ee_errno, mtu=info or None)
    if exc.errno == errno.ECONNREFUSED:
        # TCP: a RST (no error-queue entry: RSTs are not ICMP). UDP always queues the ICMP.
        return Evidence("rst", sender=dst) if tcp else Evidence("icmp", code=3)
    return Evidence("local", errno=exc.errno)


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


async def read_all(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            return data
        data += chunk


def _syn_answer(reply, sport: int, isn: int, spec: CheckSpec) -> Evidence | None:
    """What an answer to our SYN says, or None if the packet answers something else (the raw
    sockets see every TCP and ICMP packet of the namespace; another connection may even use
    the same port, so an answer is ours only if it acknowledges our sequence number)."""
    if TCP in reply and reply[TCP].dport == sport and reply[TCP].ack == (isn + 1) % 2**32:
        flags = reply[TCP].flags
        if flags.S and flags.A:
            if (reply.src, reply[TCP].sport) != (str(spec.dst_ip), spec.port):
                # The reply bypassed the NAT that rewrote the request (an asymmetric path):
                # a real client's stack finds no connection for it and drops it.
                return Evidence("silence", note=(
                    f"SYN-ACK came back from {reply.src}:{reply[TCP].sport}, not from "
                    f"{spec.dst_ip}:{spec.port}: un-NATed reply, a real client drops it"))
            return Evidence("answer", note=f"SYN-ACK from {reply.src}:{reply[TCP].sport}")
        if flags.R:
            return Evidence("rst", sender=ip_address(reply.src))
    if ICMP in reply and reply[ICMP].type == 3:
        inner = bytes(reply[ICMP].payload)  # our IP header and the first 8 bytes of our SYN
        if (len(inner) >= 28 and int.from_bytes(inner[20:22], "big") == sport
                and int.from_bytes(inner[24:28], "big") == isn):
            code = reply[ICMP].code
            return Evidence("icmp", sender=ip_address(reply.src), code=code,
                            mtu=reply[ICMP].nexthopmtu if code == 4 else None)
    return None


def _answered(result: Result, data: bytes) -> None:
    body = data.split(b"\r\n\r\n", 1)[-1] if data.startswith(b"HTTP/") else data
    try:
        answer = json.loads(body.decode().strip().splitlines()[0])
    except (ValueError, IndexError):
        result.problems.append(f"connected, but the answer is not the agent's: {data[:60]!r}")
        return
    result.backend = answer.get("server")
    result.seen_source = answer.get("client", "").rpartition(":")[0] or None
    result.backends.append(result.backend)
    result.sources.append(result.seen_source)
    result.detail = f"answered by {result.backend}, which saw {answer.get('client')}"


def _judge_answers(result: Result) -> None:
    spec = result.spec
    pairs = list(zip(result.backends, result.sources, strict=True))
    hairpin_backend, hairpin_sources = spec.hairpin or (None, ())
    sources = {src for backend, src in pairs if backend != hairpin_backend}
    if spec.expect_source and sources - {str(spec.expect_source)}:
        result.problems.append(f"server saw {', '.join(sorted(sources))}, expected {spec.expect_source}")
    if spec.allowed_sources and sources - {str(a) for a in spec.allowed_sources}:
        result.problems.append(f"server saw {', '.join(sorted(sources))}, expected one of "
                               + ", ".join(str(a) for a in spec.allowed_sources))
    hairpinned = {src for backend, src in pairs if backend == hairpin_backend}
    if hairpinned - {str(a) for a in hairpin_sources}:
        result.problems.append(f"{hairpin_backend} answered itself and saw {', '.join(sorted(hairpinned))}, "
                               f"expected the masqueraded {', '.join(str(a) for a in hairpin_sources)}")
    backends = set(result.backends)
    if spec.expect_backend and backends - {spec.expect_backend}:
        result.problems.append(f"answered by {', '.join(sorted(backends))}, expected {spec.expect_backend}")
    if spec.allowed_backends and backends - set(spec.allowed_backends):
        what = f"not an endpoint of {spec.dst}" if spec.origin == "generated" or "/svc/" in spec.dst else \
            f"not among the expected backends ({', '.join(spec.allowed_backends)})"
        result.problems.append(f"answered by {', '.join(sorted(backends - set(spec.allowed_backends)))}, {what}")
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


def _by_key(sniffer) -> dict[tuple, list[dict]]:
    """The sniffer's flows by (protocol, source port or ICMP id), in capture order."""
    index = getattr(sniffer, "_by_key_cache", None)
    if index is None:
        index = {}
        for flows in sniffer.observations():
            for f in flows:
                index.setdefault((f["proto"], f["icmp_id"] if f["proto"] == "icmp" else f["sport"]), []).append(f)
        sniffer._by_key_cache = index
    return index


def _classify(result: Result, sniffer: Sniffer) -> None:
    spec = result.spec
    key = ("icmp", result.icmp_id) if spec.proto == "icmp" else (spec.proto, result.sport)
    # The probe's own flow: the same source port (or ICMP id) *and* destination. A source
    # may use the same port again towards another destination (another check's probe).
    targets = {str(a) for a in spec.target_ips}
    seen = next((f for f in _by_key(sniffer).get(key, [])
                 if f["dst"] in targets and (f["src"] == str(spec.src_ip) or _source_ok(spec, f))), None)
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
    if not satisfies(result.outcome, spec.expect):
        if spec.expect == "reach":
            problem = f"not reached: {result.outcome} ({result.cause})"
        elif result.outcome == "reach":
            problem = f"reached, but should be {spec.expect}"
        else:
            problem = f"{result.outcome} ({result.cause}), expected {spec.expect}"
            if result.outcome == "refused" and spec.expect == "blocked":
                problem += ": the target itself refused (nothing listens there), the network did not block it"
        result.problems.insert(0, problem)
    if result.reached and spec.expect == "reach":
        _judge_answers(result)
    if len(set(result.backends)) > 1:
        result.backend = ", ".join(dict.fromkeys(result.backends))
    if len(set(result.sources)) > 1:
        result.seen_source = ", ".join(dict.fromkeys(result.sources))
    if result.problems:
        result.detail = "; ".join(result.problems) + (f" ({result.detail})" if result.detail else "")
