"""IP parsing and printing with the Go semantics kube-proxy relies on.

kube-proxy parses addresses with ``netutils.ParseIPSloppy`` (IPv4 octets with leading
zeros are read as decimal, so ``10.180.00.001`` is ``10.180.0.1``) and prints them with
Go's ``net.IP.String()`` (RFC 5952 for IPv6). Endpoint strings come from
``net.JoinHostPort`` (IPv6 in brackets). Everything here is pure.
"""

from __future__ import annotations

import ipaddress

IPV4 = "IPv4"
IPV6 = "IPv6"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _sloppy_ipv4(text: str) -> ipaddress.IPv4Address | None:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and 0 < len(p) <= 3 for p in parts):
        return None
    octets = [int(p, 10) for p in parts]
    if any(o > 255 for o in octets):
        return None
    return ipaddress.IPv4Address(".".join(str(o) for o in octets))


def parse_ip(text: str) -> IPAddress | None:
    """``netutils.ParseIPSloppy``: the address, or None when ``text`` is not an IP."""
    if not isinstance(text, str) or not text:
        return None
    if ":" not in text:
        return _sloppy_ipv4(text)
    try:
        addr = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return addr.ipv4_mapped or addr


def parse_cidr(text: str) -> IPNetwork | None:
    """``netutils.ParseCIDRSloppy`` returning the masked network, or None."""
    if not isinstance(text, str) or "/" not in text:
        return None
    addr_text, _, prefix = text.partition("/")
    addr = parse_ip(addr_text)
    if addr is None or not prefix.isdigit():
        return None
    try:
        return ipaddress.ip_network(f"{addr}/{int(prefix)}", strict=False)
    except ValueError:
        return None


def family_of(addr: IPAddress | IPNetwork) -> str:
    return IPV4 if addr.version == 4 else IPV6


def ip_family(text: str) -> str | None:
    addr = parse_ip(text)
    return family_of(addr) if addr is not None else None


def cidr_family(text: str) -> str | None:
    net = parse_cidr(text)
    return family_of(net) if net is not None else None


def normalize_ip(text: str) -> str:
    """Go's ``ParseIPSloppy(text).String()``; raises ValueError for a non-IP."""
    addr = parse_ip(text)
    if addr is None:
        raise ValueError(f"{text!r} is not an IP address")
    return str(addr)


def join_host_port(ip: str, port: int) -> str:
    """``net.JoinHostPort``: ``1.2.3.4:80`` or ``[2001:db8::1]:80``."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def split_host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback(text: str) -> bool:
    addr = parse_ip(text)
    return bool(addr is not None and addr.is_loopback)


def is_link_local(text: str) -> bool:
    addr = parse_ip(text)
    return bool(addr is not None and addr.is_link_local)


def is_zero_cidr(net: IPNetwork) -> bool:
    return net.prefixlen == 0


def host_cidr(ip: str) -> str:
    """``ip/32`` or ``ip/128``: the mask kube-proxy uses for a single address."""
    return f"{ip}/32" if ":" not in ip else f"{ip}/128"


def loopback_cidr(family: str) -> str:
    return "127.0.0.0/8" if family == IPV4 else "::1/128"
