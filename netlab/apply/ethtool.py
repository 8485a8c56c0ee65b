"""Device offload settings through the ethtool ioctl, from a socket opened inside the lab
namespace (what `ethtool -K IF tx off` does, without a process per device)."""

from __future__ import annotations

import array
import fcntl
import socket
import struct

from netlab import linux
from netlab.apply.context import Context
from netlab.errors import ApplyError
from netlab.plan.ops import SetOffload

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17


def _ethtool_value(netns_fd: int, ifname: str, cmd: int, value: int = 0) -> int:
    with linux.entered(netns_fd):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        data = array.array("I", [cmd, value])  # struct ethtool_value {u32 cmd; u32 data;}
        addr, _ = data.buffer_info()
        ifreq = struct.pack("16sP16x", ifname.encode(), addr)  # struct ifreq: 40 bytes
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
        return data[1]
    finally:
        sock.close()


def set_offload(ctx: Context, op: SetOffload) -> None:
    try:
        _ethtool_value(ctx.nl.fd(op.netns), op.ifname, ETHTOOL_STXCSUM, int(op.tx_checksum))
    except OSError as e:
        raise ApplyError(f"{op.netns}: ethtool tx {'on' if op.tx_checksum else 'off'} on {op.ifname}: "
                         f"{e.strerror}") from None


def tx_checksum(netns_fd: int, ifname: str) -> bool:
    return bool(_ethtool_value(netns_fd, ifname, ETHTOOL_GTXCSUM))


HANDLERS = {SetOffload: set_offload}
