"""The packet tracers: kube-proxy's TestTracePacket (static rules that include the
built-in PREROUTING/INPUT/FORWARD/OUTPUT jumps, with unquoted multi-word comments), and
nftables tracer edge cases."""

from pathlib import Path

import pytest

from netlab.kubeproxy.trace import trace_iptables, trace_nftables

from tests.unit.kubeproxy.helpers import EXTERNAL, LOCAL_IPS, NODE_IP

RULES = (Path(__file__).parent / "data" / "trace_packet_rules.txt").read_text()


@pytest.mark.parametrize("name,src,dst,dport,output,masq", [
    ("no match", "10.0.0.2", "10.0.0.3", 80, "", False),
    ("single endpoint", "10.0.0.2", "172.30.0.41", 80, "10.180.0.1:80", False),
    ("multiple endpoints", "10.0.0.2", "172.30.0.44", 80, "10.180.0.4:80, 10.180.0.5:80", False),
    ("LOCAL, KUBE-MARK-MASQ", NODE_IP, "192.168.99.22", 80, "10.180.0.2:80", True),
    ("DROP", EXTERNAL, "192.168.99.22", 80, "DROP", False),
    ("ACCEPT (NodePortHealthCheck)", NODE_IP, NODE_IP, 30000, "ACCEPT", False),
    ("REJECT", "10.0.0.2", "172.30.0.46", 80, "REJECT", False),
])
def test_trace_packet(name, src, dst, dport, output, masq):
    result = trace_iptables(RULES, src, "tcp", dst, dport, LOCAL_IPS)
    assert (result.output, result.masq) == (output, masq), "\n".join(result.matches)


def test_trace_result_json_shape():
    result = trace_iptables(RULES, "10.0.0.2", "tcp", "172.30.0.41", 80, LOCAL_IPS)
    assert result.as_json() == {"output": "10.180.0.1:80", "masq": False}
    assert result.matches  # the rules that matched, for humans


def test_wrong_protocol_does_not_match():
    assert trace_iptables(RULES, "10.0.0.2", "udp", "172.30.0.41", 80, LOCAL_IPS).output == ""


# knftables Fake.Dump format (what kube-proxy's nftables tracer reads, and what
# NFTablesRuleset.dump() prints); `nft list ruleset` output is not parsed.
NFT = """\
add table ip kube-proxy
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add rule ip kube-proxy nat-prerouting jump services
add chain ip kube-proxy services
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add chain ip kube-proxy service-X
add rule ip kube-proxy service-X ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-X numgen random mod 2 vmap { 0 : goto endpoint-A , 1 : goto endpoint-B }
add chain ip kube-proxy endpoint-A
add rule ip kube-proxy endpoint-A meta l4proto tcp dnat to 10.180.0.1:80
add chain ip kube-proxy endpoint-B
add rule ip kube-proxy endpoint-B meta l4proto tcp dnat to 10.180.0.2:80
add chain ip kube-proxy mark-for-masquerade
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-X }
"""


def test_nft_trace_over_a_dump():
    result = trace_nftables(NFT, "10.0.0.2", "tcp", "172.30.0.41", 80, LOCAL_IPS)
    assert (result.output, result.masq) == ("10.180.0.1:80, 10.180.0.2:80", False)
    result = trace_nftables(NFT, EXTERNAL, "tcp", "172.30.0.41", 80, LOCAL_IPS)
    assert result.masq
    assert trace_nftables(NFT, "10.0.0.2", "udp", "172.30.0.41", 80, LOCAL_IPS).output == ""
