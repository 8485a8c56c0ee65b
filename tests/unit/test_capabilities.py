"""Parsing and classification in netlab.capabilities (no root, no kernel access)."""

from __future__ import annotations

import dataclasses

import pytest

from netlab import capabilities as caps_mod
from netlab.capabilities import (KERNEL_FEATURES, Capabilities, Feature, KernelEvidence,
                                 Status, classify, format_report, parse_iptables_version,
                                 parse_kernel_config, parse_modules_list, parse_ovs_version,
                                 parse_proc_modules)
from netlab.errors import CapabilityError

CONFIG = """\
#
# Automatically generated file; DO NOT EDIT.
CONFIG_MODULES=y
CONFIG_NET_NS=y
CONFIG_VETH=m
CONFIG_BRIDGE=y
# CONFIG_IP_VS is not set
CONFIG_OPENVSWITCH=m
CONFIG_IPVLAN=m
CONFIG_DEFAULT_HOSTNAME="(none)"
"""

MODULES_DEP = """\
kernel/drivers/net/veth.ko: 
kernel/net/openvswitch/openvswitch.ko.xz: kernel/net/nsh/nsh.ko.xz kernel/net/netfilter/nf_conntrack.ko.xz
kernel/net/8021q/8021q.ko.zst: kernel/net/802/garp.ko.zst
kernel/net/netfilter/ipvs/ip_vs.ko:
"""

PROC_MODULES = """\
openvswitch 192512 0 - Live 0x0000000000000000
nf_conntrack 188416 4 nf_nat,openvswitch, Live 0x0000000000000000
"""


def test_parse_kernel_config():
    cfg = parse_kernel_config(CONFIG)
    assert cfg["NET_NS"] == "y"
    assert cfg["VETH"] == "m"
    assert cfg["IP_VS"] == "n"
    assert cfg["DEFAULT_HOSTNAME"] == "(none)"
    assert "Automatically" not in "".join(cfg)


def test_parse_modules_lists():
    assert parse_modules_list(MODULES_DEP) == {"veth", "openvswitch", "8021q", "ip_vs"}
    assert parse_modules_list("kernel/net/bridge/bridge.ko\nkernel/fs/ext4/ext4.ko\n") == {
        "bridge", "ext4"}
    assert caps_mod.module_name("kernel/net/netfilter/nf-nat.ko.gz") == "nf_nat"
    assert parse_proc_modules(PROC_MODULES) == {"openvswitch", "nf_conntrack"}


def test_parse_tool_versions():
    assert parse_iptables_version("iptables v1.8.9 (nf_tables)\n") == ("1.8.9", "nf_tables")
    assert parse_iptables_version("iptables v1.8.7 (legacy)") == ("1.8.7", "legacy")
    assert parse_iptables_version("iptables v1.6.1") == ("1.6.1", "legacy")
    assert parse_iptables_version("garbage") == (None, None)
    assert parse_ovs_version("ovs-vsctl (Open vSwitch) 3.1.0\nDB Schema 8.3.1\n") == "3.1.0"
    assert parse_ovs_version("") is None


def spec(name):
    return KERNEL_FEATURES[name]


def test_classify_from_config_and_modules():
    ev = KernelEvidence(config=parse_kernel_config(CONFIG), config_source="/proc/config.gz",
                        loaded=parse_proc_modules(PROC_MODULES),
                        loadable=parse_modules_list(MODULES_DEP), builtin=frozenset(),
                        modules_supported=True)
    assert classify(spec("netns"), ev).status is Status.BUILTIN
    assert classify(spec("bridge"), ev).status is Status.BUILTIN
    assert classify(spec("veth"), ev).status is Status.LOADABLE
    assert classify(spec("openvswitch"), ev).status is Status.LOADED
    ip_vs = classify(spec("ip_vs"), ev)
    assert ip_vs.status is Status.MISSING and "CONFIG_IP_VS is not set" in ip_vs.source
    # =m in the config but the module file is not installed for this release
    ipvlan = classify(spec("ipvlan"), ev)
    assert ipvlan.status is Status.MISSING and "not installed" in ipvlan.source
    # absent from a full config: missing
    assert classify(spec("netem"), ev).status is Status.MISSING


def test_classify_without_config_uses_module_lists_and_proc():
    ev = KernelEvidence(loaded=frozenset({"ip_vs"}), builtin=frozenset({"bridge"}),
                        loadable=frozenset({"openvswitch", "ipvlan"}), modules_supported=True,
                        sys_modules={"veth": False},
                        existing_paths=frozenset({"/proc/self/ns/net"}))
    assert classify(spec("ip_vs"), ev).status is Status.LOADED
    assert classify(spec("bridge"), ev).status is Status.BUILTIN
    assert classify(spec("veth"), ev).status is Status.BUILTIN        # /sys/module, no initstate
    assert classify(spec("openvswitch"), ev).status is Status.LOADABLE
    assert classify(spec("netns"), ev).status is Status.BUILTIN
    assert classify(spec("netem"), ev).status is Status.MISSING      # lists complete: missing


def test_classify_without_any_evidence_is_unknown_not_missing():
    ev = KernelEvidence()
    f = classify(spec("ipvlan"), ev)
    assert f.status is Status.UNKNOWN and not f.usable


def test_classify_sysfs_initstate_means_loaded():
    ev = KernelEvidence(sys_modules={"sch_netem": True})
    assert classify(spec("netem"), ev).status is Status.LOADED


def make_caps(**overrides) -> Capabilities:
    feats = {name: Feature(name, Status.BUILTIN, "test") for name in KERNEL_FEATURES}
    for name, status in overrides.items():
        feats[name] = Feature(name, status, "test")
    tools = {t: f"/usr/sbin/{t}" for t in caps_mod.TOOLS}
    return Capabilities(kernel_release="6.1.0-test", is_root=True, tools=tools,
                        iptables_backend="nf_tables", iptables_version="1.8.9", **feats)


def test_capabilities_fields_match_the_vocabulary():
    feature_fields = [f.name for f in dataclasses.fields(Capabilities)
                      if f.type in ("Feature", Feature)]
    assert feature_fields == list(KERNEL_FEATURES)


def test_ovs_datapath_choice():
    assert make_caps().ovs_datapath == "system"
    assert make_caps(openvswitch=Status.LOADABLE).ovs_datapath == "system"
    assert make_caps(openvswitch=Status.MISSING).ovs_datapath == "netdev"
    assert make_caps(openvswitch=Status.UNKNOWN).ovs_datapath == "netdev"


def test_missing_and_feature_lookup():
    caps = make_caps(ip_vs=Status.MISSING, netem=Status.LOADABLE)
    assert caps.missing(["ip_vs", "netem", "veth"]) == ("ip_vs",)
    assert caps.feature("netem").usable and not caps.feature("netem").present
    with pytest.raises(KeyError, match="unknown kernel feature"):
        caps.feature("nope")


def test_ensure_raises_naming_missing_features():
    caps = make_caps(ip_vs=Status.MISSING, openvswitch=Status.MISSING)
    with pytest.raises(CapabilityError, match="ip_vs .*openvswitch"):
        caps_mod.ensure(["ip_vs", "openvswitch", "veth"], caps)
    with pytest.raises(CapabilityError, match="unknown kernel feature"):
        caps_mod.ensure(["bogus"], caps)


def test_ensure_loads_loadable_modules(monkeypatch):
    from netlab.apply import kernelprobe
    loaded = []
    monkeypatch.setattr(kernelprobe, "load_module", lambda m, **kw: (loaded.append(m) or (True, "")))
    monkeypatch.setattr(caps_mod, "detect", lambda **kw: make_caps())
    monkeypatch.setattr(caps_mod, "_module_loaded", lambda m: False)
    caps = make_caps(ip_vs=Status.LOADABLE)
    out = caps_mod.ensure(["ip_vs", "veth"], caps)
    assert loaded == ["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh"]
    assert out.ip_vs.present


def test_ensure_skips_loaded_extras(monkeypatch):
    from netlab.apply import kernelprobe
    loaded = []
    monkeypatch.setattr(kernelprobe, "load_module", lambda m, **kw: (loaded.append(m) or (True, "")))
    monkeypatch.setattr(caps_mod, "_module_loaded", lambda m: True)
    caps = make_caps()
    assert caps_mod.ensure(["ip_vs"], caps) is caps
    assert loaded == []


def test_ensure_reports_modprobe_failure(monkeypatch):
    from netlab.apply import kernelprobe
    monkeypatch.setattr(kernelprobe, "load_module", lambda m, **kw: (False, "FATAL: not found"))
    with pytest.raises(CapabilityError, match="modprobe openvswitch: FATAL"):
        caps_mod.ensure(["openvswitch"], make_caps(openvswitch=Status.LOADABLE))


def test_format_report_mentions_datapath_and_missing_features():
    text = format_report(make_caps(openvswitch=Status.MISSING, ipvlan=Status.MISSING))
    assert "OVS datapath (tunnel model): netdev" in text
    assert "ipvlan no" in text
    assert "lacks the modules ipvlan, openvswitch" in text
    assert "kernel 6.1.0-test" in text
    text = format_report(make_caps())
    assert "OVS datapath (tunnel model): system" in text
    assert "lacks" not in text


def test_detect_on_this_machine_is_consistent():
    """Runs anywhere (reads files only, probe disabled): the result is self-consistent."""
    caps = caps_mod.detect(probe=False, versions=False)
    assert caps.kernel_release
    for name, f in caps.features.items():
        assert f.name == name and isinstance(f.status, Status)
    assert caps.ovs_datapath in ("system", "netdev")
    assert format_report(caps)
