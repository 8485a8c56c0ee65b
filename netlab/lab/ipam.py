"""IP address management: hand out addresses and per-node blocks from CIDRs (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

# Like a cloud VPC, the first addresses of a subnet are reserved: .0 network, .1 gateway,
# .2-.9 for the platform (DNS, DHCP, …); machines get addresses from .10 on.
FIRST_HOST_OFFSET = 10


def gateway(cidr: IPv4Network) -> IPv4Address:
    return cidr.network_address + 1


class Pool:
    """Sequential allocator over one subnet that skips addresses already taken."""

    def __init__(self, cidr: IPv4Network, first_offset: int = FIRST_HOST_OFFSET):
        self.cidr = cidr
        self.first = cidr.network_address + first_offset
        self.taken: set[IPv4Address] = set()

    def claim(self, ip: IPv4Address) -> None:
        self.taken.add(ip)

    def usable(self, ip: IPv4Address) -> bool:
        return ip in self.cidr and ip not in (self.cidr.network_address, self.cidr.broadcast_address,
                                                 gateway(self.cidr))

    def next(self) -> IPv4Address | None:
        ip = self.first
        while ip < self.cidr.broadcast_address:
            if ip not in self.taken:
                self.taken.add(ip)
                return ip
            ip += 1
        return None


def blocks(cidr: IPv4Network, prefixlen: int) -> Iterator[IPv4Network]:
    """The per-node blocks of a container CIDR, in order."""
    return cidr.subnets(new_prefix=prefixlen)


def block_hosts(block: IPv4Network) -> Iterator[IPv4Address]:
    """Pod addresses of a node block: the first address is the block's gateway."""
    it = block.hosts()
    next(it)
    return it
