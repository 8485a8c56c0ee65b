"""`netlab capture`: packets crossing one interface of a lab object, as a pcap file Wireshark
opens, or as tcpdump's one-line decodes.

tcpdump runs inside the object's namespace (`ip netns exec`), with the user's BPF filter
as one argument (never a shell). The pcap stream comes to us on tcpdump's stdout and is
written here, so tcpdump's privilege drop and file-access profile do not decide where a
capture may go. Packets are written as they arrive (`-U`), so a capture cut short still
holds what it saw. It stops after `count` packets, after `seconds`, or on Ctrl-C.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from netlab.apply.processes import in_netns, run_checked
from netlab.errors import ApplyError, UserError


def interfaces(netns: str) -> list[str]:
    out = run_checked(netns, ["ip", "-o", "link", "show"])
    return [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


def argv(ifname: str, *, to_file: bool, bpf: str | None, count: int | None) -> list[str]:
    # --immediate-mode: without it libpcap hands packets over when a ring block retires (up
    # to a second later), and a capture stopped within that second loses them ("received by
    # filter", never "captured").
    out = ["tcpdump", "-i", ifname, "-n", "-U", "--immediate-mode"]
    out += ["-w", "-", "-s", "0"] if to_file else ["-l", "-e"]
    if count:
        out += ["-c", str(count)]
    if bpf:
        out.append(bpf)
    return out


def capture(netns: str, ifname: str, *, out: Path | None, bpf: str | None, count: int | None,
            seconds: float | None, on_ready=None) -> int:
    """Capture until `count` packets, `seconds`, or Ctrl-C; tcpdump's exit status.
    `on_ready` is called once tcpdump listens (its "listening on" line)."""
    names = interfaces(netns)
    if ifname not in names:
        raise UserError(f"IFACE: {netns} has no interface '{ifname}'; interfaces: {', '.join(names)}")
    cmd = in_netns(netns, argv(ifname, to_file=out is not None, bpf=bpf, count=count))
    sink = open(out, "wb") if out is not None else None
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if sink else None, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ApplyError("tcpdump is not installed (run `make setup`)") from None
    errors: list[str] = []

    def relay_stderr() -> None:
        for raw in proc.stderr:
            line = raw.decode(errors="replace")
            if line.startswith("listening on") and on_ready:
                on_ready()
            errors.append(line)
            sys.stderr.write(line)
            sys.stderr.flush()

    def copy_stdout() -> None:
        while chunk := proc.stdout.read1(65536):
            sink.write(chunk)
            sink.flush()

    threads = [threading.Thread(target=relay_stderr, daemon=True)]
    if sink:
        threads.append(threading.Thread(target=copy_stdout, daemon=True))
    for t in threads:
        t.start()
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # tcpdump flushes and prints its counts
        proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        proc.wait()
    finally:
        for t in threads:
            t.join(timeout=5)
        if sink:
            sink.close()
    if proc.returncode not in (0, -signal.SIGINT) and not any("packets captured" in e for e in errors):
        raise ApplyError(f"tcpdump failed: {''.join(errors).strip() or proc.returncode}")
    return 0
