"""Names of everything a lab creates, within the kernel's limits.

Namespaces are `nl-<lab>-<object>` (cluster objects: `nl-<lab>-<cluster>-<object>`), so
everything a lab owns carries its name. Interface names must fit IFNAMSIZ (15 bytes):
a name that does not fit keeps a readable prefix and ends in a short hash of the whole,
as CNI plugins do (Calico's `cali` + hash).
"""

from __future__ import annotations

import hashlib

IFNAMSIZ = 15
NETNS_PREFIX = "nl-"


def netns(lab: str, *parts: str) -> str:
    return "-".join((NETNS_PREFIX + lab,) + parts)


def lab_prefix(lab: str) -> str:
    return f"{NETNS_PREFIX}{lab}-"


def short_hash(text: str, n: int = 4) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def ifname(prefix: str, name: str, *, unique_by: str | None = None) -> str:
    """`prefix + name` if it fits IFNAMSIZ, else a truncated name plus a hash of `unique_by`."""
    full = prefix + name
    if len(full) <= IFNAMSIZ:
        return full
    h = short_hash(unique_by or full, 6)
    return (prefix + name)[: IFNAMSIZ - len(h) - 1] + "-" + h


def vpc_port(owner: str) -> str:
    """The VPC-side end of a machine's veth (lives in the VPC router namespace)."""
    return ifname("v-", owner.replace("/", "-"), unique_by=owner)


def bridge(subnet: str) -> str:
    return ifname("br-", subnet, unique_by=subnet)


def pod_host_ifname(cluster: str, pod: str) -> str:
    """The node-side end of a pod's veth: `veth-<pod>` (hashed when too long)."""
    return ifname("veth-", pod, unique_by=f"{cluster}/{pod}")
