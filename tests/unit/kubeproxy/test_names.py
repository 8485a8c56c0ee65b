"""Chain and set names: every vector of kube-proxy's tests and NOTES.md."""

import pytest

from netlab.kubeproxy import names

LONG_NS = "very-long-namespace-name-abcdefghijklmnopqrstuvwxyz0123456789xx"
LONG_SVC = "very-long-service-name-why-would-you-even-do-this-i-mean-really"
LONG_PORT = "port-443-providing-the-hypertext-transmission-protocol-with-tls"


@pytest.mark.parametrize("spn,proto,expected", [
    ("ns1/svc1:p80", "tcp", "XPGD46QRK7WJZT7O"),
    ("ns1/svc1", "tcp", "AQI2S6QIMU7PVVRP"),
    ("ns2/svc2:p80", "tcp", "GNZBNJ2PO5MGZ6GT"),
    ("ns5/svc5:p80", "tcp", "NUKIZ6OKUXPJNT4C"),
])
def test_port_proto_hash(spn, proto, expected):
    assert names.port_proto_hash(spn, proto) == expected


def test_iptables_chain_prefixes_share_the_hash():
    assert names.service_port_policy_cluster_chain("ns2/svc2:p80", "tcp") == "KUBE-SVC-GNZBNJ2PO5MGZ6GT"
    assert names.service_port_policy_local_chain("ns2/svc2:p80", "tcp") == "KUBE-SVL-GNZBNJ2PO5MGZ6GT"
    assert names.service_external_chain("ns2/svc2:p80", "tcp") == "KUBE-EXT-GNZBNJ2PO5MGZ6GT"
    assert names.service_firewall_chain("ns5/svc5:p80", "tcp") == "KUBE-FW-NUKIZ6OKUXPJNT4C"


@pytest.mark.parametrize("spn,proto,endpoint,expected", [
    ("ns1/svc1:p80", "tcp", "10.180.0.1:80", "KUBE-SEP-SXIVWICOYRO3J4NJ"),
    ("ns4/svc4:p80", "tcp", "10.180.0.5:80", "KUBE-SEP-C6EBXVWJJZMIWKLZ"),
    ("ns5/svc5:p80", "tcp", "10.180.0.3:80", "KUBE-SEP-I77PXRDZVX7PMWMN"),
    ("ns1/svc1:p80", "tcp", "10.0.0.0:80", "KUBE-SEP-DKGQUZGBKLTPAR56"),
    ("ns3/svc3:p8081", "tcp", "203.0.113.4:8081", "KUBE-SEP-RUVVH7YV3PHQBDOS"),
    ("ns4/svc4:p8082", "tcp", "10.4.0.1:8082", "KUBE-SEP-SU5STNODRYEWJAUF"),
])
def test_service_port_endpoint_chain(spn, proto, endpoint, expected):
    assert names.service_port_endpoint_chain(spn, proto, endpoint) == expected


def test_svc_chain_of_large_cluster_test():
    assert names.service_port_policy_cluster_chain("ns4/svc4:p8082", "tcp") == "KUBE-SVC-EBDQOQU5SJFXRIL3"


@pytest.mark.parametrize("ns,svc,proto,port,expected", [
    ("testing", "service", "tcp", "http", "P4ZYZVCF-testing/service/tcp/http"),
    ("testing", "service", "tcp", "https", "LZBRENCP-testing/service/tcp/https"),
    (LONG_NS, LONG_SVC, "sctp", LONG_PORT, f"KR6NACJP-{LONG_NS}/{LONG_SVC}/sctp/{LONG_PORT}"),
    ("ns1", "svc1", "tcp", "p80", "ULMVA6XW-ns1/svc1/tcp/p80"),
])
def test_service_port_chain_name_base(ns, svc, proto, port, expected):
    assert names.service_port_chain_name_base(ns, svc, proto, port) == expected


TRUNC = f"{LONG_NS}/{LONG_SVC}/sctp/{LONG_PORT}__1234.5678.9abc.def0..abcd.1234..."


@pytest.mark.parametrize("endpoint,expected", [
    ("10.180.0.1:80", "JO2XBXZR-testing/service/tcp/http__10.180.0.1/80"),
    ("10.180.0.2:80", "5S6H3H22-testing/service/tcp/http__10.180.0.2/80"),
    ("[fd80:abcd:12::a1b2:c3d4:e5f6:9999]:80",
     "U7E2ET36-testing/service/tcp/http__fd80.abcd.12..a1b2.c3d4.e5f6.9999/80"),
])
def test_service_port_endpoint_chain_name_base(endpoint, expected):
    assert names.service_port_endpoint_chain_name_base(
        "testing", "service", "tcp", "http", endpoint) == expected


@pytest.mark.parametrize("endpoint,expected", [
    ("[1234:5678:9abc:def0::abc:1234]:443",
     f"5YS7AFEA-{LONG_NS}/{LONG_SVC}/sctp/{LONG_PORT}__1234.5678.9abc.def0..abc.1234/443"),
    ("[1234:5678:9abc:def0::abcd:1234:5678]:443", "CI6C53Q3-" + TRUNC),
    ("[1234:5678:9abc:def0::abcd:1234:8765]:443", "2FLXFK6X-" + TRUNC),
])
def test_endpoint_chain_name_base_max_length(endpoint, expected):
    name = names.service_port_endpoint_chain_name_base(LONG_NS, LONG_SVC, "sctp", LONG_PORT,
                                                      endpoint)
    assert name == expected
    assert len(name) <= names.CHAIN_NAME_BASE_LENGTH_MAX
