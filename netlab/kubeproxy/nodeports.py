"""``--nodeport-addresses``: which node IPs accept NodePort traffic.

Mirrors ``proxyutil.NodePortAddresses``: the CIDRs of the proxier's family are kept;
with none, ``0.0.0.0/0`` (``::/0``) is used; a zero-length prefix means "match all"
(rules use ``--dst-type LOCAL`` / ``fib daddr type local``); otherwise the node IPs
inside the CIDRs are listed. The keywords of ``KubeProxyConfiguration.nodePortAddresses``
(``primary``, ``localhost``, ``all``) are expanded by ``expand_keywords``.
"""

from __future__ import annotations

import ipaddress

from netlab.kubeproxy.netutil import (
    IPV4, IPV6, cidr_family, family_of, host_cidr, ip_family, parse_cidr, parse_ip,
)

KEYWORDS = ("primary", "localhost", "all")
_IPV4_LOOPBACK_START = ipaddress.IPv4Address("127.0.0.0")


def expand_keywords(values, node_ips) -> list[str]:
    """Replace ``primary``/``localhost``/``all`` with the CIDRs they stand for."""
    out: list[str] = []
    for value in values:
        if value == "all":
            out += ["0.0.0.0/0", "::/0"]
        elif value == "localhost":
            out += ["127.0.0.0/8", "::1/128"]
        elif value == "primary":
            out += _primary_cidrs(node_ips)
        else:
            out.append(value)
    return out


def _primary_cidrs(node_ips) -> list[str]:
    primary: dict[str, str] = {}
    for ip in node_ips:
        fam = ip_family(ip)
        if fam and fam not in primary:
            primary[fam] = host_cidr(str(parse_ip(ip)))
    return [primary[f] for f in (IPV4, IPV6) if f in primary]


class NodePortAddresses:
    def __init__(self, family: str, cidr_strings) -> None:
        strings = [c for c in (cidr_strings or []) if cidr_family(c) == family]
        if not strings:
            strings = ["0.0.0.0/0" if family == IPV4 else "::/0"]
        self.cidr_strings = strings
        self.cidrs = []
        self.contains_ipv4_loopback = False
        self.match_all = False
        for text in strings:
            net = parse_cidr(text)
            if net.version == 4 and (net.network_address.is_loopback
                                     or _IPV4_LOOPBACK_START in net):
                self.contains_ipv4_loopback = True
            if net.prefixlen == 0:
                self.cidrs = [net]
                self.match_all = True
                break
            self.cidrs.append(net)

    def node_ips(self, interface_addresses) -> list:
        """``GetNodeIPs``: the interface addresses inside the CIDRs (deduplicated)."""
        found = []
        for net in self.cidrs:
            for text in interface_addresses:
                addr = parse_ip(text)
                if addr is not None and family_of(addr) == family_of(net) and addr in net:
                    if addr not in found:
                        found.append(addr)
        return found
