"""What this kernel and host offer, detected honestly; the report behind `netlab doctor`.

One vocabulary serves the lab and the tests: the names in `KERNEL_FEATURES` are the fields
of `Capabilities` holding a `Feature`, the names `resolve` checks before it picks a
datapath, and the names tests give to ``@pytest.mark.kernel(...)`` (``tests/tiers.py``).

How a kernel feature is detected, first evidence wins:

1. The kernel's build configuration (``/proc/config.gz``, ``/boot/config-<release>``,
   ``/lib/modules/<release>/config``): ``CONFIG_X=y`` is built in, ``=m`` is a module,
   ``is not set`` means the kernel cannot do it at all.
2. For modules: loaded (``/proc/modules``, ``/sys/module/<m>/initstate``), built in
   (``modules.builtin``, or ``/sys/module/<m>`` without ``initstate``), loadable (listed in
   ``modules.dep`` of ``/lib/modules/<release>``, so ``modprobe`` can load it).
3. Runtime evidence (``/proc/net/ip_vs``, ``/proc/self/ns/net``).
4. Optionally (root only, ``probe=True``), for link kinds nothing above could settle: a
   test link inside a throwaway namespace ``nl-capprobe-<pid>``, removed afterwards
   (``netlab.apply.kernelprobe``). The host's root network namespace is never touched.

A feature is *usable* when it is built in, loaded, or loadable; `ensure` loads the modules
of loadable features (``modprobe``) and raises `CapabilityError` naming what is missing.

This module only reads files; everything that runs a program or opens a netlink socket is
in ``netlab/apply/kernelprobe.py`` (house rule: only ``apply/`` imports subprocess/pyroute2).
"""

from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterable, Mapping

from netlab.errors import CapabilityError


class Status(str, Enum):
    """How a kernel feature is present. Ordered from best to worst in `format_report`."""

    BUILTIN = "builtin"    # compiled into the kernel
    LOADED = "loaded"      # a module, loaded now
    LOADABLE = "loadable"  # a module on disk for this release; modprobe can load it
    MISSING = "missing"    # this kernel cannot do it
    UNKNOWN = "unknown"    # no evidence either way (no config, no modules dir, no probe)

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


_PRESENT = (Status.BUILTIN, Status.LOADED)
_USABLE = (Status.BUILTIN, Status.LOADED, Status.LOADABLE)


@dataclass(frozen=True)
class FeatureSpec:
    """Static description of one kernel feature: how to find it and how to load it."""

    name: str
    config: str                       # Kconfig symbol without the CONFIG_ prefix
    module: str | None                # module that provides it (None: never a module)
    description: str
    extra_modules: tuple[str, ...] = ()   # also loaded by `ensure` (e.g. IPVS schedulers)
    link_kind: str | None = None      # rtnetlink kind, for the namespace probe
    proc_path: str | None = None      # file whose existence proves it is present


#: The kernel feature vocabulary (marker names, `Capabilities` field names), in report order.
KERNEL_FEATURES: dict[str, FeatureSpec] = {s.name: s for s in (
    FeatureSpec("netns", "NET_NS", None, "network namespaces",
                proc_path="/proc/self/ns/net"),
    FeatureSpec("veth", "VETH", "veth", "veth pairs", link_kind="veth"),
    FeatureSpec("bridge", "BRIDGE", "bridge", "Linux bridge", link_kind="bridge"),
    FeatureSpec("dummy", "DUMMY", "dummy", "dummy links", link_kind="dummy"),
    FeatureSpec("vxlan", "VXLAN", "vxlan", "kernel VXLAN devices", link_kind="vxlan"),
    FeatureSpec("macvlan", "MACVLAN", "macvlan", "macvlan sub-interfaces",
                link_kind="macvlan"),
    FeatureSpec("ipvlan", "IPVLAN", "ipvlan", "ipvlan sub-interfaces (ENI model)",
                link_kind="ipvlan"),
    FeatureSpec("vlan", "VLAN_8021Q", "8021q", "802.1Q VLAN sub-interfaces",
                link_kind="vlan"),
    FeatureSpec("openvswitch", "OPENVSWITCH", "openvswitch",
                "Open vSwitch kernel datapath (datapath_type=system)"),
    FeatureSpec("ip_vs", "IP_VS", "ip_vs", "IPVS (kube-proxy IPVS mode, L4 ELB)",
                extra_modules=("ip_vs_rr", "ip_vs_wrr", "ip_vs_sh"),
                proc_path="/proc/net/ip_vs"),
    FeatureSpec("netem", "NET_SCH_NETEM", "sch_netem", "tc netem (link impairment)"),
    FeatureSpec("nf_tables", "NF_TABLES", "nf_tables", "nftables"),
    FeatureSpec("ip_tables", "IP_NF_IPTABLES", "ip_tables", "iptables (x_tables, legacy)"),
    FeatureSpec("nf_conntrack", "NF_CONNTRACK", "nf_conntrack", "connection tracking"),
    FeatureSpec("nf_nat", "NF_NAT", "nf_nat", "NAT (SNAT/DNAT/masquerade)"),
    FeatureSpec("ip_set", "IP_SET", "ip_set", "ipset"),
    FeatureSpec("nfacct", "NETFILTER_XT_MATCH_NFACCT", "xt_nfacct",
                "nfacct counters (kube-proxy's -m nfacct matches)", extra_modules=("nfnetlink_acct",)),
    FeatureSpec("br_netfilter", "BRIDGE_NETFILTER", "br_netfilter",
                "netfilter on bridged traffic"),
)}

#: Userspace programs `detect` looks for (name in `Capabilities.tools` -> executable).
TOOLS: tuple[str, ...] = (
    "ip", "tc", "nft", "iptables", "iptables-restore", "ip6tables", "ipset", "ipvsadm",
    "modprobe", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl",
    "nginx",
)
OVS_USERSPACE: tuple[str, ...] = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl",
                                  "ovs-ofctl")
_SBIN = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


@dataclass(frozen=True)
class Feature:
    """One kernel feature as detected: `status` plus the evidence (`source`)."""

    name: str
    status: Status
    source: str = ""

    @property
    def present(self) -> bool:
        """Built in or loaded: usable right now without loading anything."""
        return self.status in _PRESENT

    @property
    def usable(self) -> bool:
        """Present, or a module `ensure` can load."""
        return self.status in _USABLE

    def __bool__(self) -> bool:
        return self.usable


@dataclass(frozen=True)
class Capabilities:
    """Everything `detect` found. Kernel features are `Feature` fields named as in
    `KERNEL_FEATURES`; userspace programs are in `tools` (name -> path, absent if missing)."""

    kernel_release: str
    is_root: bool
    netns: Feature
    veth: Feature
    bridge: Feature
    dummy: Feature
    vxlan: Feature
    macvlan: Feature
    ipvlan: Feature
    vlan: Feature
    openvswitch: Feature
    ip_vs: Feature
    netem: Feature
    nf_tables: Feature
    ip_tables: Feature
    nf_conntrack: Feature
    nf_nat: Feature
    ip_set: Feature
    nfacct: Feature
    br_netfilter: Feature
    tools: Mapping[str, str] = field(default_factory=dict)
    iptables_backend: str | None = None   # "nf_tables" | "legacy" | None (no iptables)
    iptables_version: str | None = None
    ovs_version: str | None = None
    config_source: str | None = None      # where the kernel config came from, if anywhere
    modules_dir: str | None = None        # /lib/modules/<release> if it exists
    probed: tuple[str, ...] = ()          # link kinds settled by the namespace probe

    # -- kernel features ---------------------------------------------------------------
    def feature(self, name: str) -> Feature:
        if name not in KERNEL_FEATURES:
            raise KeyError(f"unknown kernel feature {name!r}; known: {', '.join(KERNEL_FEATURES)}")
        return getattr(self, name)

    @property
    def features(self) -> dict[str, Feature]:
        return {name: getattr(self, name) for name in KERNEL_FEATURES}

    def missing(self, names: Iterable[str]) -> tuple[str, ...]:
        """The names among `names` that this kernel cannot provide (not usable)."""
        return tuple(n for n in names if not self.feature(n).usable)

    # -- userspace -----------------------------------------------------------------------
    def has_tool(self, name: str) -> bool:
        return name in self.tools

    @property
    def ovs_userspace(self) -> bool:
        """ovsdb-tool, ovsdb-server, ovs-vswitchd, ovs-vsctl and ovs-ofctl are installed."""
        return all(t in self.tools for t in OVS_USERSPACE)

    @property
    def nginx(self) -> bool:
        return "nginx" in self.tools

    # -- what the lab derives from it ----------------------------------------------------
    @property
    def ovs_datapath(self) -> str:
        """The OVS datapath a tunnel lab uses: ``system`` (kernel module present or
        loadable) or ``netdev`` (userspace, with native tunnelling)."""
        return "system" if self.openvswitch.usable else "netdev"


# ----------------------------------------------------------------------------- parsing
def parse_kernel_config(text: str) -> dict[str, str]:
    """Kconfig text -> {"NET_NS": "y", "IP_VS": "n", ...} (``# ... is not set`` -> "n")."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            out[key[len("CONFIG_"):]] = value.strip().strip('"')
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            out[line[len("# CONFIG_"):-len(" is not set")].strip()] = "n"
    return out


def module_name(path: str) -> str:
    """``kernel/net/8021q/8021q.ko.xz`` -> ``8021q``; dashes normalised to underscores as
    the kernel does (``nf-nat`` and ``nf_nat`` are one module)."""
    base = os.path.basename(path.strip())
    for suffix in (".xz", ".zst", ".gz", ".bz2"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    if base.endswith(".ko"):
        base = base[:-3]
    return base.replace("-", "_")


def parse_modules_list(text: str) -> frozenset[str]:
    """``modules.builtin`` / ``modules.dep`` / ``modules.order`` -> module names
    (``modules.dep`` lines are ``path: deps...``; only the path before ``:`` counts)."""
    names = set()
    for line in text.splitlines():
        line = line.split(":", 1)[0].strip()
        if line and not line.startswith("#"):
            names.add(module_name(line))
    return frozenset(names)


def parse_proc_modules(text: str) -> frozenset[str]:
    """``/proc/modules`` -> names of loaded modules."""
    return frozenset(line.split()[0].replace("-", "_") for line in text.splitlines()
                     if line.strip())


def parse_iptables_version(text: str) -> tuple[str | None, str | None]:
    """``iptables v1.8.9 (nf_tables)`` -> ("1.8.9", "nf_tables"); ``(legacy)`` -> legacy.
    iptables before 1.8 printed no backend: that is legacy."""
    text = text.strip()
    version = backend = None
    for word in text.split():
        if word.startswith("v") and word[1:2].isdigit():
            version = word[1:]
    if "(nf_tables)" in text:
        backend = "nf_tables"
    elif "(legacy)" in text or (version is not None):
        backend = "legacy"
    return version, backend


@dataclass(frozen=True)
class KernelEvidence:
    """The raw evidence `classify` works from (all optional: absent files are None)."""

    config: Mapping[str, str] | None = None
    config_source: str | None = None
    loaded: frozenset[str] | None = None        # /proc/modules (None: no module support)
    sys_modules: Mapping[str, bool] = field(default_factory=dict)  # name -> has initstate
    builtin: frozenset[str] | None = None       # modules.builtin
    loadable: frozenset[str] | None = None      # modules.dep
    existing_paths: frozenset[str] = frozenset()  # proc_path evidence that exists
    modules_supported: bool | None = None       # CONFIG_MODULES, if known


def classify(spec: FeatureSpec, ev: KernelEvidence) -> Feature:
    """Decide one feature's status from the evidence (pure; see the module docstring)."""
    name, cfg = spec.name, spec.config
    mod = spec.module
    # 1. loaded right now: the strongest evidence of all
    if mod is not None:
        if ev.loaded is not None and mod in ev.loaded:
            return Feature(name, Status.LOADED, f"module {mod} loaded (/proc/modules)")
        if ev.sys_modules.get(mod) is True:
            return Feature(name, Status.LOADED, f"module {mod} loaded (/sys/module)")
    # 2. the kernel's own configuration
    if ev.config is not None and cfg in ev.config:
        value = ev.config[cfg]
        where = ev.config_source or "kernel config"
        if value == "y":
            return Feature(name, Status.BUILTIN, f"CONFIG_{cfg}=y ({where})")
        if value == "m":
            if ev.modules_supported is False:
                return Feature(name, Status.MISSING, f"CONFIG_{cfg}=m but modules disabled")
            if ev.loadable is None or mod in ev.loadable:
                status = Status.LOADABLE
                if ev.loadable is None:
                    return Feature(name, status,
                                   f"CONFIG_{cfg}=m ({where}); no modules.dep to confirm")
                return Feature(name, status, f"CONFIG_{cfg}=m, {mod} in modules.dep")
            return Feature(name, Status.MISSING,
                           f"CONFIG_{cfg}=m but {mod} is not installed for this release")
        return Feature(name, Status.MISSING, f"CONFIG_{cfg} is not set ({where})")
    # 3. module lists of this release
    if mod is not None:
        if ev.builtin is not None and mod in ev.builtin:
            return Feature(name, Status.BUILTIN, f"{mod} in modules.builtin")
        if mod in ev.sys_modules:  # /sys/module/<m> without initstate: built in
            return Feature(name, Status.BUILTIN, f"/sys/module/{mod} (built in)")
        if ev.loadable is not None and mod in ev.loadable and ev.modules_supported is not False:
            return Feature(name, Status.LOADABLE, f"{mod} in modules.dep")
    # 4. runtime evidence
    if spec.proc_path and spec.proc_path in ev.existing_paths:
        return Feature(name, Status.BUILTIN, f"{spec.proc_path} exists")
    # Nothing found. If we had complete lists to look in, that is a real "missing".
    if ev.config is not None:
        return Feature(name, Status.MISSING,
                       f"CONFIG_{cfg} absent from {ev.config_source or 'kernel config'}")
    if mod is not None and ev.builtin is not None and ev.loadable is not None:
        return Feature(name, Status.MISSING,
                       f"{mod} neither built in nor in modules.dep")
    return Feature(name, Status.UNKNOWN, "no kernel config or module lists to check")


# ----------------------------------------------------------------------------- gathering
def _read(path: str | Path) -> str | None:
    try:
        p = Path(path)
        if p.suffix == ".gz":
            with gzip.open(p, "rt", errors="replace") as fh:
                return fh.read()
        return p.read_text(errors="replace")
    except OSError:
        return None


def modules_dir(release: str) -> Path | None:
    for base in ("/lib/modules", "/usr/lib/modules"):
        p = Path(base, release)
        if p.is_dir():
            return p
    return None


def gather_evidence(release: str | None = None) -> KernelEvidence:
    """Read the files `classify` needs for the running kernel (no root needed)."""
    release = release or os.uname().release
    mdir = modules_dir(release)
    config = config_source = None
    candidates = ["/proc/config.gz", f"/boot/config-{release}"]
    if mdir is not None:
        candidates += [str(mdir / "config"), str(mdir / "build" / ".config")]
    if os.environ.get("NETLAB_KERNEL_CONFIG"):
        candidates.insert(0, os.environ["NETLAB_KERNEL_CONFIG"])
    for cand in candidates:
        text = _read(cand)
        if text and "CONFIG_" in text:
            config, config_source = parse_kernel_config(text), cand
            break
    loaded_text = _read("/proc/modules")
    loaded = parse_proc_modules(loaded_text) if loaded_text is not None else None
    sys_modules: dict[str, bool] = {}
    wanted = {m for s in KERNEL_FEATURES.values() for m in (s.module, *s.extra_modules) if m}
    for m in wanted:
        d = Path("/sys/module", m)
        if d.is_dir():
            sys_modules[m] = (d / "initstate").exists()
    builtin = loadable = None
    if mdir is not None:
        t = _read(mdir / "modules.builtin")
        builtin = parse_modules_list(t) if t is not None else None
        t = _read(mdir / "modules.dep")
        loadable = parse_modules_list(t) if t is not None else None
    modules_supported: bool | None = None
    if config is not None:
        modules_supported = config.get("MODULES") == "y"
    elif loaded is not None:
        modules_supported = True
    existing = frozenset(s.proc_path for s in KERNEL_FEATURES.values()
                         if s.proc_path and os.path.exists(s.proc_path))
    return KernelEvidence(config=config, config_source=config_source, loaded=loaded,
                          sys_modules=sys_modules, builtin=builtin, loadable=loadable,
                          existing_paths=existing, modules_supported=modules_supported)


def find_tool(name: str) -> str | None:
    """Executable path of `name`: PATH first, then the sbin directories (a non-root
    user's PATH often lacks /usr/sbin, where iproute2/nftables/OVS daemons live)."""
    found = shutil.which(name)
    if found:
        return found
    for d in _SBIN:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def detect(*, probe: bool | None = None, versions: bool = True) -> Capabilities:
    """Detect what this kernel and host offer.

    `probe`: settle link kinds that file evidence left UNKNOWN by creating test links in a
    throwaway namespace (``nl-capprobe-<pid>``). Default: only when running as root.
    `versions`: ask ``iptables -V`` / ``ovs-vsctl --version`` for backend and versions.
    Never changes the root network namespace; loads no module (see `ensure`).
    """
    release = os.uname().release
    is_root = os.geteuid() == 0
    ev = gather_evidence(release)
    feats = {name: classify(spec, ev) for name, spec in KERNEL_FEATURES.items()}

    probed: tuple[str, ...] = ()
    if probe is None:
        probe = is_root
    unknown_kinds = {KERNEL_FEATURES[n].link_kind: n for n, f in feats.items()
                     if f.status is Status.UNKNOWN and KERNEL_FEATURES[n].link_kind}
    if probe and is_root and (unknown_kinds or feats["netns"].status is Status.UNKNOWN):
        from netlab.apply import kernelprobe
        result = kernelprobe.probe_link_kinds(sorted(unknown_kinds))
        if result is not None:
            ns_ok, kinds = result
            feats["netns"] = (Feature("netns", Status.BUILTIN, "namespace probe")
                              if ns_ok else feats["netns"])
            for kind, ok in kinds.items():
                name = unknown_kinds[kind]
                feats[name] = Feature(name, Status.BUILTIN if ok else Status.MISSING,
                                      f"namespace probe: {kind} link "
                                      + ("created" if ok else "refused"))
            probed = tuple(sorted(kinds))

    tools = {t: p for t in TOOLS if (p := find_tool(t))}
    ipt_version = ipt_backend = ovs_version = None
    if "iptables" in tools:
        if versions:
            from netlab.apply import kernelprobe
            out = kernelprobe.tool_output([tools["iptables"], "-V"])
            if out:
                ipt_version, ipt_backend = parse_iptables_version(out)
        if ipt_backend is None:
            ipt_backend = iptables_backend_from_path(tools["iptables"])
    if versions and "ovs-vsctl" in tools:
        from netlab.apply import kernelprobe
        out = kernelprobe.tool_output([tools["ovs-vsctl"], "--version"])
        if out:
            ovs_version = parse_ovs_version(out)

    mdir = modules_dir(release)
    return Capabilities(kernel_release=release, is_root=is_root, **feats, tools=tools,
                        iptables_backend=ipt_backend, iptables_version=ipt_version,
                        ovs_version=ovs_version, config_source=ev.config_source,
                        modules_dir=str(mdir) if mdir else None, probed=probed)


def iptables_backend_from_path(path: str) -> str | None:
    """Fallback without running it: the alternatives symlink chain ends in
    ``xtables-nft-multi`` or ``xtables-legacy-multi``."""
    real = os.path.basename(os.path.realpath(path))
    if "nft" in real:
        return "nf_tables"
    if "legacy" in real:
        return "legacy"
    return None


def parse_ovs_version(text: str) -> str | None:
    """``ovs-vsctl (Open vSwitch) 3.1.0`` -> ``3.1.0``."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    parts = first.split()
    return parts[-1] if parts and parts[-1][:1].isdigit() else None


# ----------------------------------------------------------------------------- loading
def modules_for(names: Iterable[str]) -> tuple[str, ...]:
    """The modules `ensure` loads for these features (feature module + extras)."""
    out: list[str] = []
    for n in names:
        spec = KERNEL_FEATURES[n]
        for m in (spec.module, *spec.extra_modules):
            if m and m not in out:
                out.append(m)
    return tuple(out)


def ensure(names: Iterable[str], caps: Capabilities | None = None) -> Capabilities:
    """Make the named kernel features present: load the modules of loadable ones.

    Raises `CapabilityError` naming every feature this kernel cannot provide. Returns
    fresh capabilities when something was loaded (else the ones given / detected).
    """
    names = tuple(names)
    unknown = [n for n in names if n not in KERNEL_FEATURES]
    if unknown:
        raise CapabilityError(f"unknown kernel feature(s) {', '.join(unknown)}; "
                              f"known: {', '.join(KERNEL_FEATURES)}")
    caps = caps or detect(versions=False)
    missing = caps.missing(names)
    if missing:
        raise CapabilityError(_missing_message(caps, missing))
    to_load = [n for n in names if caps.feature(n).status is Status.LOADABLE]
    extras = [n for n in names if any(not _module_loaded(m)
                                      for m in KERNEL_FEATURES[n].extra_modules)]
    if not to_load and not extras:
        return caps
    from netlab.apply import kernelprobe
    failed = []
    for n in dict.fromkeys(to_load + extras):
        spec = KERNEL_FEATURES[n]
        if n in to_load and spec.module:
            ok, err = kernelprobe.load_module(spec.module, modprobe=find_tool("modprobe"))
            if not ok:
                failed.append(f"{n} (modprobe {spec.module}: {err or 'failed'})")
                continue
        for extra in spec.extra_modules:
            if not _module_loaded(extra):
                kernelprobe.load_module(extra, modprobe=find_tool("modprobe"))  # best effort: the kernel autoloads them too
    if failed:
        raise CapabilityError("cannot load kernel feature(s): " + "; ".join(failed))
    return detect(probe=False, versions=False) if to_load else caps


def _module_loaded(name: str) -> bool:
    return os.path.isdir(f"/sys/module/{name.replace('-', '_')}")


def _missing_message(caps: Capabilities, missing: Iterable[str]) -> str:
    parts = [f"{n} ({caps.feature(n).source or caps.feature(n).status.value})"
             for n in missing]
    return (f"kernel {caps.kernel_release} lacks: " + "; ".join(parts)
            + ". Run the lab in a VM with a stock distribution kernel (see `make test-kernel`"
              " and the Vagrantfile).")


# ----------------------------------------------------------------------------- report
def format_report(caps: Capabilities) -> str:
    """Plain-text report for ``netlab doctor``."""
    lines = [f"kernel {caps.kernel_release}"
             + (" (running as root)" if caps.is_root else " (not root: labs need root)")]
    if caps.config_source:
        lines.append(f"  kernel config: {caps.config_source}")
    lines.append(f"  modules: {caps.modules_dir or 'no /lib/modules directory for this release'}")
    lines.append("")
    lines.append("kernel features")
    width = max(len(n) for n in KERNEL_FEATURES)
    for name, spec in KERNEL_FEATURES.items():
        f = caps.feature(name)
        mark = "ok " if f.usable else "-- "
        lines.append(f"  {mark}{name:<{width}}  {f.status.value:<8}  {spec.description}"
                     + (f"  [{f.source}]" if f.source else ""))
    lines.append("")
    lines.append("programs")
    for t in TOOLS:
        path = caps.tools.get(t)
        extra = ""
        if t == "iptables" and path:
            extra = f"  (v{caps.iptables_version or '?'}, {caps.iptables_backend or '?'} backend)"
        if t == "ovs-vsctl" and path and caps.ovs_version:
            extra = f"  (Open vSwitch {caps.ovs_version})"
        lines.append(f"  {'ok ' if path else '-- '}{t:<16} {path or 'not found'}{extra}")
    lines.append("")
    lines.append("what labs will use")
    if caps.ovs_userspace:
        why = ("openvswitch module " + caps.openvswitch.status.value
               if caps.openvswitch.usable else "no openvswitch kernel module")
        lines.append(f"  OVS datapath (tunnel model): {caps.ovs_datapath}"
                     f" ({'kernel' if caps.ovs_datapath == 'system' else 'userspace'}; {why})")
    else:
        lines.append("  OVS datapath (tunnel model): unavailable (OVS userspace programs missing:"
                     f" {', '.join(t for t in OVS_USERSPACE if t not in caps.tools)})")
    modes = [("iptables", caps.has_tool("iptables-restore") and caps.nf_conntrack.usable),
             ("nftables", caps.has_tool("nft") and caps.nf_tables.usable),
             ("ipvs", caps.ip_vs.usable and caps.has_tool("ipset") and caps.ip_set.usable)]
    lines.append("  kube-proxy modes: " + ", ".join(f"{m} {'yes' if ok else 'no'}"
                                                  for m, ok in modes))
    lines.append(f"  ENI sub-interfaces: macvlan {'yes' if caps.macvlan.usable else 'no'}, "
                 f"ipvlan {'yes' if caps.ipvlan.usable else 'no'}")
    lines.append(f"  link impairment (netem): {'yes' if caps.netem.usable else 'no'}")
    l4 = ("ipvs" if caps.ip_vs.usable and caps.has_tool("ipvsadm")
          else "nftables" + ("" if caps.ip_vs.usable else " (no ip_vs)"))
    lines.append(f"  L4 ELB: {l4}; dedicated ELB reply steering (br_netfilter): "
                 f"{'yes' if caps.br_netfilter.usable else 'no'}")
    lines.append(f"  L7 ELB / Ingress (nginx): {'yes' if caps.nginx else 'no'}")
    lacking = [n for n in KERNEL_FEATURES if not caps.feature(n).usable]
    if lacking:
        lines.append("")
        lines.append(f"This kernel lacks the modules {', '.join(lacking)}: labs use the fallbacks above "
                     "where there are some; tests that need the modules run in the kernel tier (a VM "
                     "with Debian's stock kernel, started by `make test`; `make test-kernel` runs "
                     "everything there).")
    return "\n".join(lines)


__all__ = [
    "Capabilities", "Feature", "FeatureSpec", "KERNEL_FEATURES", "KernelEvidence", "Status",
    "TOOLS", "OVS_USERSPACE", "classify", "detect", "ensure", "find_tool", "format_report",
    "gather_evidence", "modules_for", "parse_iptables_version", "parse_kernel_config",
    "parse_modules_list", "parse_proc_modules", "parse_ovs_version",
]
