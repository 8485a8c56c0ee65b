"""Kernel cache for the kernel tier: Debian's stock kernel, unpacked inside the repo.

``python -m tests.kernel.cache`` (``make kernel-cache``) resolves the meta package
``linux-image-amd64`` to the concrete ``linux-image-<abi>-amd64`` package apt would install,
downloads it with ``apt-get download`` and unpacks it with ``dpkg-deb -x`` into
``.cache/kernel/<abi>/`` (``boot/vmlinuz-<abi>``, ``lib/modules/<abi>/``), then runs
``depmod -b`` on that tree (the .deb ships no modules.dep: postinst makes it). A stamp file
records the package and version; a second run finds it and does nothing. Nothing outside
the cache directory is written: the host's ``/lib/modules`` is untouched, and the guest
sees the modules because virtme-ng mounts a tmpfs over ``/lib/modules`` inside the VM and
links ``<abi>`` to the cached tree (it finds the tree next to the kernel image).

Environment:
  NETLAB_KERNEL_CACHE   cache directory (default: <repo>/.cache/kernel)
  NETLAB_VM_KERNEL      use this kernel image instead (path to a vmlinuz inside an
                        unpacked tree ``<root>/boot/vmlinuz-<v>`` + ``<root>/lib/modules/<v>``);
                        nothing is downloaded then
  NETLAB_KERNEL_PACKAGE the apt package to resolve (default: linux-image-amd64)
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
META_PACKAGE = "linux-image-amd64"
STAMP = ".netlab-kernel.json"


class KernelCacheError(RuntimeError):
    """The kernel could not be resolved, downloaded or unpacked (message says what to do)."""


@dataclass(frozen=True)
class CachedKernel:
    release: str       # uname -r inside the guest, e.g. 6.1.0-28-amd64
    root: Path         # unpacked tree: root/boot/vmlinuz-<release>, root/lib/modules/<release>
    package: str = ""
    version: str = ""

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.release


def cache_dir() -> Path:
    return Path(os.environ.get("NETLAB_KERNEL_CACHE") or REPO / ".cache" / "kernel")


def _which(name: str) -> str:
    """PATH first, then the sbin directories (a non-root PATH often lacks them)."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    return name


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    except FileNotFoundError as exc:
        raise KernelCacheError(f"{argv[0]} not found ({exc}); the kernel tier needs apt, "
                               "dpkg-deb and depmod (Debian packages apt, dpkg, kmod)") from exc


def parse_apt_show(text: str) -> dict[str, str]:
    """First stanza of ``apt-cache show --no-all-versions`` -> fields."""
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and key:
            fields[key] += "\n" + line.strip()
            continue
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def image_dependency(depends: str) -> str | None:
    """``linux-image-6.1.0-28-amd64 (= 6.1.119-1)`` -> ``linux-image-6.1.0-28-amd64``."""
    for alt in depends.split(","):
        name = alt.split("|")[0].strip().split(" ")[0]
        if name.startswith("linux-image-") and name[len("linux-image-"):][:1].isdigit():
            return name
    return None


def resolve(meta: str | None = None) -> tuple[str, str, str]:
    """The concrete kernel package apt would install for `meta`: (package, version, release)."""
    meta = meta or os.environ.get("NETLAB_KERNEL_PACKAGE") or META_PACKAGE
    proc = _run(["apt-cache", "show", "--no-all-versions", meta])
    info = parse_apt_show(proc.stdout) if proc.returncode == 0 else {}
    if not info:
        raise KernelCacheError(
            f"apt knows no package {meta} (not Debian, or `apt-get update` never ran). "
            "Run `apt-get update`, or point NETLAB_VM_KERNEL at an unpacked kernel "
            "(<root>/boot/vmlinuz-<v> with <root>/lib/modules/<v>).")
    package = image_dependency(info.get("Depends", "")) if meta == META_PACKAGE or \
        not meta[len("linux-image-"):][:1].isdigit() else meta
    if package is None:
        raise KernelCacheError(f"{meta} depends on no linux-image-<version> package: "
                               f"{info.get('Depends', '')!r}")
    proc = _run(["apt-cache", "show", "--no-all-versions", package])
    pinfo = parse_apt_show(proc.stdout) if proc.returncode == 0 else {}
    if not pinfo.get("Version"):
        raise KernelCacheError(f"apt has no candidate for {package}")
    return package, pinfo["Version"], package[len("linux-image-"):]


def read_stamp(root: Path) -> dict | None:
    try:
        return json.loads((root / STAMP).read_text())
    except (OSError, ValueError):
        return None


def current() -> CachedKernel | None:
    """The kernel the harness boots, without downloading anything (None if not cached)."""
    override = os.environ.get("NETLAB_VM_KERNEL")
    if override:
        img = Path(override).resolve()
        name = img.name
        release = name[len("vmlinuz-"):] if name.startswith("vmlinuz-") else ""
        root = img.parent.parent if img.parent.name == "boot" else img.parent
        return CachedKernel(release=release, root=root)
    base = cache_dir()
    link = base / "current"
    if link.is_symlink() or link.exists():
        root = link.resolve()
        stamp = read_stamp(root)
        if stamp:
            return CachedKernel(stamp["release"], root, stamp["package"], stamp["version"])
    return None


@contextmanager
def _locked(base: Path):
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure(*, log=print, offline_ok: bool = True) -> CachedKernel:
    """Fetch and unpack the stock kernel unless the cache already holds it (idempotent).

    If apt cannot resolve the package (no index, not Debian) but a kernel is cached, the
    cached one is used (`offline_ok`).
    """
    if os.environ.get("NETLAB_VM_KERNEL"):
        k = current()
        assert k is not None
        if not k.vmlinuz.is_file():
            raise KernelCacheError(f"NETLAB_VM_KERNEL={k.vmlinuz} does not exist")
        return k
    base = cache_dir()
    with _locked(base):
        try:
            package, version, release = resolve()
        except KernelCacheError:
            k = current()
            if offline_ok and k is not None:
                log(f"kernel cache: apt cannot resolve {META_PACKAGE}; using cached {k.release}")
                return k
            raise
        root = base / release
        stamp = read_stamp(root)
        if stamp and stamp.get("package") == package and stamp.get("version") == version \
                and (root / "boot" / f"vmlinuz-{release}").is_file():
            _point_current(base, release)
            log(f"kernel cache: {package} {version} already in {root}")
            return CachedKernel(release, root, package, version)
        log(f"kernel cache: fetching {package} {version} (resolved from {META_PACKAGE})")
        _fetch(base, package, version, release)
        _point_current(base, release)
        _prune(base, keep=release, log=log)
        log(f"kernel cache: {package} {version} ready in {root}")
        return CachedKernel(release, root, package, version)


def _fetch(base: Path, package: str, version: str, release: str) -> None:
    work = Path(tempfile.mkdtemp(prefix=f".fetch-{release}-", dir=base))
    try:
        argv = ["apt-get", "download", f"{package}={version}"]
        if os.geteuid() == 0:
            # apt drops to user _apt for downloads, which cannot write into a root-owned
            # repo checkout; download as root into our own directory instead.
            argv[1:1] = ["-o", "APT::Sandbox::User=root"]
        proc = _run(argv, cwd=work)
        debs = sorted(work.glob("*.deb"))
        if proc.returncode != 0 or not debs:
            raise KernelCacheError(f"`{' '.join(argv)}` failed:\n{proc.stdout}{proc.stderr}")
        tree = work / "tree"
        proc = _run(["dpkg-deb", "-x", str(debs[0]), str(tree)])
        if proc.returncode != 0:
            raise KernelCacheError(f"dpkg-deb -x {debs[0].name} failed:\n{proc.stderr}")
        if not (tree / "boot" / f"vmlinuz-{release}").is_file():
            raise KernelCacheError(f"{debs[0].name} holds no boot/vmlinuz-{release}")
        proc = _run([_which("depmod"), "-b", str(tree), release])
        if proc.returncode != 0 or not (tree / "lib/modules" / release / "modules.dep").exists():
            raise KernelCacheError(f"depmod -b {tree} {release} failed:\n{proc.stderr}")
        (tree / STAMP).write_text(json.dumps(
            {"package": package, "version": version, "release": release}, indent=1) + "\n")
        final = base / release
        if final.exists():
            shutil.rmtree(final)
        tree.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _point_current(base: Path, release: str) -> None:
    link = base / "current"
    if link.is_symlink() and os.readlink(link) == release:
        return
    tmp = base / ".current.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(release)
    tmp.replace(link)


def _prune(base: Path, keep: str, log=print) -> None:
    """Drop kernels other than `keep` (each tree is ~400 MB)."""
    for entry in base.iterdir():
        if entry.is_dir() and not entry.is_symlink() and entry.name != keep \
                and read_stamp(entry) is not None:
            log(f"kernel cache: removing old {entry.name}")
            shutil.rmtree(entry, ignore_errors=True)


# What the kernel-tier tests need beyond the development machines' kernel.
KERNEL_TIER_FEATURES = ("openvswitch", "ip_vs", "ipvlan", "netem", "vlan", "dummy")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.kernel.cache", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--print", action="store_true",
                    help="print the cached kernel image path (fetching it if needed)")
    ap.add_argument("--if-needed", action="store_true",
                    help="do nothing when this host's kernel already offers every kernel-tier feature")
    args = ap.parse_args(argv)
    if args.if_needed and not args.print:
        from netlab.capabilities import detect

        missing = detect(versions=False).missing(KERNEL_TIER_FEATURES)
        if not missing:
            print("kernel cache: this kernel has " + ", ".join(KERNEL_TIER_FEATURES) + "; no VM kernel needed")
            return 0
        print(f"kernel cache: this kernel lacks the modules {', '.join(missing)}; `make test` runs the tests "
              "that need them in a VM with this Debian kernel (labs use fallbacks: `netlab doctor`)")
    try:
        k = ensure(log=(lambda m: print(m, file=sys.stderr)) if args.print else print)
    except KernelCacheError as exc:
        print(f"kernel cache: error: {exc}", file=sys.stderr)
        return 1
    if args.print:
        print(k.vmlinuz)
    return 0


if __name__ == "__main__":
    sys.exit(main())
