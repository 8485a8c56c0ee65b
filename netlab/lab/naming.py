"""Names of everything a lab creates, within the kernel's limits, and the check that a lab
name is one before it becomes a path or a namespace.

Namespaces are `nl-<lab>.<object>` (cluster objects: `nl-<lab>.<cluster>.<object>`). Lab,
cluster and object names are DNS labels (`[a-z0-9-]`, the schema's `Name`/`LabName`), so
they never hold the `.` that separates them: `nl-<lab>.` is a prefix no other lab's
namespace can start with (with `-` as the separator, lab `a` with cluster `b-c` and lab `a-b`
with cluster `c` both made `nl-a-b-c-…`). A namespace without a `.` after `nl-` (the
capability probe's `nl-capprobe-<pid>`, test namespaces like `nl-kt-<pid>-x`) belongs to
no lab.

Interface names must fit IFNAMSIZ (15 bytes): a name that does not fit keeps a readable
prefix and ends in a short hash of the whole, as CNI plugins do (Calico's `cali` + hash).
"""

from __future__ import annotations

import functools
import hashlib
import re

IFNAMSIZ = 15
NETNS_PREFIX = "nl-"
SEP = "."  # never in a DNS label: the boundary between lab, cluster and object
LAB_NAME_RULE = "lowercase letters, digits and '-', at most {max} characters"


def netns(lab: str, *parts: str) -> str:
    return NETNS_PREFIX + SEP.join((lab,) + parts)


def lab_prefix(lab: str) -> str:
    """What every namespace of `lab`, and no other lab's, starts with."""
    return f"{NETNS_PREFIX}{lab}{SEP}"


def lab_of_netns(name: str) -> str | None:
    """The lab a namespace name belongs to, or None if it is no lab's."""
    if not name.startswith(NETNS_PREFIX) or SEP not in name:
        return None
    lab = name[len(NETNS_PREFIX):].split(SEP, 1)[0]
    return lab if is_lab_name(lab) else None


@functools.cache
def _lab_name_rule() -> tuple[re.Pattern[str], int]:
    # The schema's LabName is the one definition (imported late: the schema imports models,
    # which import this module).
    from netlab.scenario.types import LAB_NAME_MAX, NAME_PATTERN

    return re.compile(NAME_PATTERN), LAB_NAME_MAX


def is_lab_name(name: str) -> bool:
    pattern, max_length = _lab_name_rule()
    return bool(name) and len(name) <= max_length and pattern.fullmatch(name) is not None


def check_lab_name(name: str) -> str:
    """`name` if it is a valid lab name; ValueError saying what would be valid otherwise."""
    if not is_lab_name(name):
        raise ValueError(f"{name!r} is not a valid lab name ({LAB_NAME_RULE.format(max=_lab_name_rule()[1])})")
    return name


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
