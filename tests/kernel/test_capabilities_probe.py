"""The namespace probe agrees with file-based detection, and leaves nothing behind."""

from __future__ import annotations

import os

import pytest

from netlab import capabilities
from netlab.apply import kernelprobe

LINK_FEATURES = [n for n, s in capabilities.KERNEL_FEATURES.items() if s.link_kind]


@pytest.mark.kernel("netns", "veth")
def test_probe_matches_detection_and_cleans_up():
    if os.geteuid() != 0:
        pytest.fail("needs root")
    caps = capabilities.detect(probe=False, versions=False)
    kinds = [capabilities.KERNEL_FEATURES[n].link_kind for n in LINK_FEATURES]
    result = kernelprobe.probe_link_kinds(kinds)
    assert result is not None
    netns_ok, created = result
    assert netns_ok
    for name in LINK_FEATURES:
        kind = capabilities.KERNEL_FEATURES[name].link_kind
        assert created[kind] == caps.feature(name).usable, (name, caps.feature(name))
    leftovers = [n for n in os.listdir("/run/netns") if n.startswith(kernelprobe.PROBE_PREFIX)] \
        if os.path.isdir("/run/netns") else []
    assert leftovers == []
