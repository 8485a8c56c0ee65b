"""IP parsing and printing with the Go semantics kube-proxy relies on.

kube-proxy parses addresses with ``netutils.ParseIPSloppy`` (IPv4 octets with leading
zeros are read as decimal, so ``10.180.00.001`` is ``10.180.0.1``) and prints them with
Go's ``net.IP.String()`` (RFC 5952 for IPv6). Endpoint strings come from
``net.JoinHostPort`` (IPv6 in brackets). Everything here is pure.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

IPV4 = "IPv4"
IPV6 = "IPv6"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


_DOTTED_QUAD = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\Z")


def _sloppy_ipv4(text: str) -> ipaddress.IPv4Address | None:
    match = _DOTTED_QUAD.match(text)  # the common case, ASCII digits, in one step
    if match is not None:
        a, b, c, d = map(int, match.groups())
        if a > 255 or b > 255 or c > 255 or d > 255:
            return None
        return ipaddress.IPv4Address(a << 24 | b << 16 | c << 8 | d)
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not (part.isascii() and part.isdigit() and len(part) <= 3):  # "²".isdigit() is True
            return None
        octet = int(part, 10)
        if octet > 255:
            return None
        value = value << 8 | octet
    return ipaddress.IPv4Address(value)


def parse_ip(text: str) -> IPAddress | None:
    """``netutils.ParseIPSloppy``: the address, or None when ``text`` is not an IP."""
    if not isinstance(text, str) or not text:
        return None
    return _parse_ip(text)


# Manifests and renderers parse the same addresses again and again.
@lru_cache(maxsize=1 << 17)
def _parse_ip(text: str) -> IPAddress | None:
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
    return _parse_cidr(text)


@lru_cache(maxsize=1 << 12)  # the cluster CIDR, once per rule that matches it
def _parse_cidr(text: str) -> IPNetwork | None:
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
    if ":" not in text and _CANONICAL_IPV4.match(text):
        return text  # already as Go prints it (no leading zeros): skip the slow str()
    return str(addr)


_CANONICAL_IPV4 = re.compile(r"(?:(?:0|[1-9][0-9]{0,2})\.){3}(?:0|[1-9][0-9]{0,2})\Z")


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
