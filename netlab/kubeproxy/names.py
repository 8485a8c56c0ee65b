"""kube-proxy's chain and set names, hashed exactly as kube-proxy hashes them.

iptables (pkg/proxy/iptables/proxier.go): ``portProtoHash`` is the first 16 characters
of base32(sha256(servicePortName + protocol)); the KUBE-SVC-/SVL-/EXT-/FW- chains share
it, and KUBE-SEP- hashes servicePortName + protocol + "ip:port".

nftables (pkg/proxy/nftables/proxier.go): ``hashAndTruncate`` prefixes a readable name
with 8 base32 characters of its sha256 and cuts the result to 240 characters
(knftables' 256-character limit minus the 16 reserved for prefixes such as
``service-``/``endpoint-``).
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from netlab.kubeproxy.netutil import split_host_port

def _b32sha256(text: str, chars: int) -> str:
    """The first `chars` (a multiple of 8) characters of base32(sha256(text)): they encode
    the digest's first chars*5/8 bytes, so only those are converted."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:chars * 5 // 8]).decode()


# --- iptables --------------------------------------------------------------------------

SVC_PREFIX = "KUBE-SVC-"
SVL_PREFIX = "KUBE-SVL-"
EXT_PREFIX = "KUBE-EXT-"
FW_PREFIX = "KUBE-FW-"
SEP_PREFIX = "KUBE-SEP-"


@lru_cache(maxsize=1 << 16)  # the SVC, SVL, EXT and FW chains of a port share it
def port_proto_hash(service_port_name: str, protocol: str) -> str:
    return _b32sha256(service_port_name + protocol, 16)


def service_port_policy_cluster_chain(spn: str, protocol: str) -> str:
    return SVC_PREFIX + port_proto_hash(spn, protocol)


def service_port_policy_local_chain(spn: str, protocol: str) -> str:
    return SVL_PREFIX + port_proto_hash(spn, protocol)


def service_external_chain(spn: str, protocol: str) -> str:
    return EXT_PREFIX + port_proto_hash(spn, protocol)


def service_firewall_chain(spn: str, protocol: str) -> str:
    return FW_PREFIX + port_proto_hash(spn, protocol)


@lru_cache(maxsize=1 << 18)  # named by the service rules, then by the endpoint's chain
def service_port_endpoint_chain(spn: str, protocol: str, endpoint: str) -> str:
    return SEP_PREFIX + _b32sha256(spn + protocol + endpoint, 16)


# --- nftables --------------------------------------------------------------------------

NAME_LENGTH_MAX = 256          # knftables.NameLengthMax
CHAIN_NAME_PREFIX_LENGTH_MAX = 16
CHAIN_NAME_BASE_LENGTH_MAX = NAME_LENGTH_MAX - CHAIN_NAME_PREFIX_LENGTH_MAX

NFT_SERVICE_PREFIX = "service-"
NFT_LOCAL_PREFIX = "local-"
NFT_EXTERNAL_PREFIX = "external-"
NFT_ENDPOINT_PREFIX = "endpoint-"
NFT_AFFINITY_PREFIX = "affinity-"
NFT_FIREWALL_PREFIX = "firewall-"


def hash_and_truncate(name: str) -> str:
    name = _b32sha256(name, 8) + "-" + name
    if len(name) > CHAIN_NAME_BASE_LENGTH_MAX:
        name = name[:CHAIN_NAME_BASE_LENGTH_MAX - 3] + "..."
    return name


def service_port_chain_name_base(namespace: str, name: str, protocol: str, port_name: str) -> str:
    """``servicePortChainNameBase``: e.g. ``ULMVA6XW-ns1/svc1/tcp/p80``."""
    return hash_and_truncate(f"{namespace}/{name}/{protocol}/{port_name}")


@lru_cache(maxsize=1 << 18)  # an endpoint's chain and affinity set share it
def service_port_endpoint_chain_name_base(namespace: str, name: str, protocol: str,
                                          port_name: str, endpoint: str) -> str:
    """``servicePortEndpointChainNameBase``: e.g. ``5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80``."""
    ip, port = split_host_port(endpoint)
    ip = ip.replace(":", ".")
    return hash_and_truncate(f"{namespace}/{name}/{protocol}/{port_name}__{ip}/{port}")
