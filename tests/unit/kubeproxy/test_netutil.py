"""Address parsing as kube-proxy's netutils does it (sloppy: leading zeros read as decimal)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from netlab.kubeproxy.netutil import parse_ip


@pytest.mark.parametrize("text, want", [
    ("10.0.0.1", IPv4Address("10.0.0.1")),
    ("010.000.000.001", IPv4Address("10.0.0.1")),   # ParseIPSloppy: decimal, not octal
    ("256.0.0.1", None), ("1.2.3", None), ("", None), ("a.b.c.d", None),
    ("1.2.3.²", None), ("1.2.3.٣", None),           # digits, but not ASCII ones: not an address
])
def test_sloppy_ipv4(text, want):
    assert parse_ip(text) == want
