"""The pod agent: one process per lab that serves every pod's and host's declared ports.

For each (object, port, protocol) it opens a listening socket inside that object's
namespace, then serves them all from one event loop. Every answer names the object that
answered and the client address it saw, so load balancing and SNAT are observed, not
assumed:

- TCP: the client sends a line (or an HTTP request); the agent answers one JSON line
  (or an HTTP/1.1 response whose body is that JSON) and closes. To an HTTP request the JSON
  also says what arrived: `name` (who answered), `method`, `host` (the Host header),
  `path`, `headers`, so routing by host and path and `X-Forwarded-For` are observed.
- UDP: any datagram gets one JSON datagram back.

`netlab listener LAB OBJECT:PORT stop|start` stops and restarts one listener (the file
`agent.stopped` lists the stopped ones; the agent re-reads it with the lab), e.g. to watch
a load balancer's health check take a backend out of rotation.

Run as `python -m netlab.probe.agent LAB`; it reads its listener table (`agent.json`,
written by the plan: `netlab.probe.listeners`) from the lab's run directory, writes
`agent.ready` there once every socket is open, re-reads the table on SIGHUP (pods added or
removed) and exits on SIGTERM. It imports nothing but the standard library and
`netlab.linux`, so it starts at once.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import time

from netlab import linux, paths
from netlab.probe.listeners import AGENT_FILE, STOPPED_FILE, Listener, key, read_table

HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")
READ_TIMEOUT = 1.0


def answer(listener: Listener, client: tuple, local: tuple, request: bytes = b"") -> bytes:
    out = {"server": listener.owner, "kind": listener.kind, "proto": listener.proto,
           "client": f"{client[0]}:{client[1]}", "local": f"{local[0]}:{local[1]}"}
    if request.startswith(HTTP_METHODS):
        out.update(http_request(request))
        out["name"] = listener.owner
    return json.dumps(out).encode()


def http_request(data: bytes) -> dict:
    """The request line and headers of an HTTP request, as the JSON answer reports them."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.rpartition(" ")[0] or rest
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    host = next((v for k, v in headers.items() if k.lower() == "host"), "")
    return {"method": method, "host": host, "path": target.split("?", 1)[0], "headers": headers}


class Agent:
    def __init__(self, lab_name: str):
        self.dir = paths.lab_dir(lab_name)
        self.sel = selectors.DefaultSelector()
        self.sockets: dict[Listener, socket.socket] = {}
        self.pending: dict[socket.socket, tuple[Listener, float, bytes]] = {}
        self.reload_requested = False
        self.stop_requested = False
        self.generation = 0

    # -- listeners --------------------------------------------------------------
    def reconcile(self) -> None:
        """Open what the lab now declares, close what it no longer does; then say so in
        the ready file (its content changes with every generation)."""
        stopped_file = self.dir / STOPPED_FILE
        stopped = set(open(stopped_file).read().split()) if os.path.exists(stopped_file) else set()
        with open(self.dir / AGENT_FILE) as f:
            wanted = {lst for lst in read_table(f.read()) if key(lst) not in stopped}
        for gone in [lst for lst in self.sockets if lst not in wanted]:
            sock = self.sockets.pop(gone)
            self.sel.unregister(sock)
            sock.close()
        for lst in sorted(wanted - set(self.sockets), key=lambda x: (x.netns, x.port, x.proto)):
            sock = self._open(lst)
            self.sockets[lst] = sock
            self.sel.register(sock, selectors.EVENT_READ, ("listen", lst))
        self.generation += 1
        ready = self.dir / "agent.ready"
        tmp = self.dir / "agent.ready.tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()} {self.generation} {len(self.sockets)}\n")
        os.replace(tmp, ready)

    def _open(self, lst: Listener) -> socket.socket:
        kind = socket.SOCK_STREAM if lst.proto == "tcp" else socket.SOCK_DGRAM
        with linux.entered(lst.netns):
            sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", lst.port))
        if kind == socket.SOCK_STREAM:
            sock.listen(512)
        sock.setblocking(False)
        return sock

    # -- serving ----------------------------------------------------------------
    def serve(self) -> None:
        while not self.stop_requested:
            if self.reload_requested:
                self.reload_requested = False
                self.reconcile()
            for key, _ in self.sel.select(timeout=0.2):
                role, lst = key.data
                if role == "listen" and lst.proto == "tcp":
                    self._accept(key.fileobj, lst)
                elif role == "listen":
                    self._datagram(key.fileobj, lst)
                else:
                    self._read(key.fileobj)
            self._expire()

    def _accept(self, sock: socket.socket, lst: Listener) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            self.pending[conn] = (lst, time.monotonic() + READ_TIMEOUT, b"")
            self.sel.register(conn, selectors.EVENT_READ, ("conn", lst))

    def _read(self, conn: socket.socket) -> None:
        lst, deadline, data = self.pending[conn]
        try:
            chunk = conn.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        data += chunk
        # A line, or for HTTP the whole head (the JSON answer reports the headers).
        end = b"\r\n\r\n" if data.startswith(HTTP_METHODS) else b"\n"
        if chunk and end not in data and len(data) < 16384:
            self.pending[conn] = (lst, deadline, data)
            return
        self._reply(conn, lst, data)

    def _reply(self, conn: socket.socket, lst: Listener, data: bytes) -> None:
        self.sel.unregister(conn)
        del self.pending[conn]
        try:
            body = answer(lst, conn.getpeername(), conn.getsockname(), data) + b"\n"
            if data.startswith(HTTP_METHODS):
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\nConnection: close\r\nServer: netlab-agent\r\n\r\n")
                body = head.encode() + (b"" if data.startswith(b"HEAD ") else body)
            conn.setblocking(True)
            conn.settimeout(1.0)
            conn.sendall(body)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            conn.close()

    def _expire(self) -> None:
        now = time.monotonic()
        for conn, (lst, deadline, data) in list(self.pending.items()):
            if now > deadline:
                self._reply(conn, lst, data)  # a client that sends nothing still gets an answer

    def _datagram(self, sock: socket.socket, lst: Listener) -> None:
        while True:
            try:
                _, client = sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            try:
                sock.sendto(answer(lst, client, sock.getsockname()), client)
            except OSError:
                pass


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m netlab.probe.agent LAB", file=sys.stderr)
        return 2
    agent = Agent(argv[0])
    signal.signal(signal.SIGTERM, lambda *_: setattr(agent, "stop_requested", True))
    signal.signal(signal.SIGHUP, lambda *_: setattr(agent, "reload_requested", True))
    agent.reconcile()
    print(f"netlab agent for lab {argv[0]}: {len(agent.sockets)} listeners", flush=True)
    agent.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
